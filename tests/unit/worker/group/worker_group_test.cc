// A worker group over in-process ranks: the engine on rank 0 with GroupLeader as its forward pass,
// followers on the other ranks. Every request's greedy tokens must equal llm::Generator running the
// request alone on one process (the independent reference the engine tests use too), with
// continuous batching, chunked prefill and several ranks at once. Plus the plan's wire format.
#include "worker/group/worker_group.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "runtime/base/status_macros.h"
#include "runtime/llm/generator.h"
#include "runtime/parallel/local_comm.h"
#include "worker/engine/engine.h"

namespace tessera::worker {
namespace {

TEST(StepPlan, RoundTripsAndRejectsDamage) {
  const std::vector<int32_t> t1 = {5, 6, 7}, b1 = {3, 9}, t2 = {42}, b2 = {0, 1, 2, 4};
  const std::vector<llm::SequenceInput> batch = {
      {.tokens = t1, .start_pos = 0, .block_table = b1, .all_logits = true},
      {.tokens = t2, .start_pos = (int64_t{1} << 33) + 17, .block_table = b2}};
  const std::vector<int32_t> words = EncodePlan(batch);
  DecodedPlan plan;
  ASSERT_TRUE(DecodePlan(words, &plan).ok());
  ASSERT_EQ(plan.batch.size(), 2u);
  for (size_t s = 0; s < 2; ++s) {
    EXPECT_EQ(std::vector<int32_t>(plan.batch[s].tokens.begin(), plan.batch[s].tokens.end()),
              std::vector<int32_t>(batch[s].tokens.begin(), batch[s].tokens.end()));
    EXPECT_EQ(std::vector<int32_t>(plan.batch[s].block_table.begin(), plan.batch[s].block_table.end()),
              std::vector<int32_t>(batch[s].block_table.begin(), batch[s].block_table.end()));
    EXPECT_EQ(plan.batch[s].start_pos, batch[s].start_pos);
    EXPECT_EQ(plan.batch[s].all_logits, batch[s].all_logits);
  }
  // Every truncation, and a trailing word, is an error (never a read past the end).
  for (size_t n = 0; n < words.size(); ++n) {
    EXPECT_FALSE(DecodePlan(std::span(words.data(), n), &plan).ok()) << n;
  }
  std::vector<int32_t> longer = words;
  longer.push_back(0);
  EXPECT_FALSE(DecodePlan(longer, &plan).ok());
  std::vector<int32_t> negative = words;
  negative[1] = -1;
  EXPECT_FALSE(DecodePlan(negative, &plan).ok());
}

struct Case {
  std::string model;
  int world;
};

class WorkerGroupTest : public ::testing::TestWithParam<Case> {};

TEST_P(WorkerGroupTest, GreedyEqualsOneProcess) {
  const Case c = GetParam();
  const std::string path = "tests/fixtures/models/" + c.model;
  auto ref_model = llm::Model::Load(path, {.num_threads = 1});
  ASSERT_TRUE(ref_model.ok()) << ref_model.status();
  const int64_t vocab = (*ref_model)->config().vocab_size;
  std::mt19937 rng(5);
  struct Req {
    std::vector<int32_t> prompt;
    int max_tokens;
    std::vector<int32_t> want, got;
    bool done = false;
  };
  std::vector<Req> reqs;
  for (int64_t len : {1, 17, 64, 150, 40, 90}) {
    Req r;
    for (int64_t i = 0; i < len; ++i) r.prompt.push_back(static_cast<int32_t>(rng() % vocab));
    r.max_tokens = 6 + static_cast<int>(rng() % 10);
    llm::Generator gen(ref_model->get(), {.block_size = 16});
    llm::SamplingParams p;
    p.temperature = 0;
    p.max_tokens = r.max_tokens;
    p.ignore_eos = true;
    ASSERT_TRUE(gen.Run({{.prompt = r.prompt, .params = p}},
                        [&](const llm::Generator::TokenEvent& e) { r.want.push_back(e.token.id); })
                    .ok());
    reqs.push_back(std::move(r));
  }

  auto group = parallel::LocalCommGroup::Create({.size = c.world, .timeout = absl::Seconds(120)});
  ASSERT_TRUE(group.ok());
  absl::Mutex mu;
  llm::SpTotals totals;
  absl::Status s = (*group)->RunOnAllRanks([&](parallel::Communicator& comm) -> absl::Status {
    TS_ASSIGN_OR_RETURN(auto model, llm::Model::Load(path, {.num_threads = 1}));
    if (comm.rank() != 0) return RunFollower(model.get(), &comm, {});
    GroupLeader leader(model.get(), &comm, {});
    engine::Options opts;
    opts.block_size = 16;
    opts.num_blocks = 96;
    opts.max_num_batched_tokens = 128;  // the 150-token prompt is prefilled in two chunks
    opts.enable_prefix_caching = false;
    opts.forward = [&](std::span<const llm::SequenceInput> b, llm::PagedKvCache& cache, std::vector<float>* logits) {
      return leader.Forward(b, cache, logits);
    };
    TS_ASSIGN_OR_RETURN(auto eng, engine::Engine::Create(model.get(), opts));
    TS_RETURN_IF_ERROR(leader.Start(eng->num_blocks(), opts.block_size));
    for (size_t i = 0; i < reqs.size(); ++i) {
      engine::Request r;
      r.id = "r" + std::to_string(i);
      r.prompt = reqs[i].prompt;
      r.params.temperature = 0;
      r.params.max_tokens = reqs[i].max_tokens;
      r.params.ignore_eos = true;
      TS_RETURN_IF_ERROR(eng->Add(std::move(r), [&, i](const engine::Event& e) {
        absl::MutexLock lock(&mu);
        for (const llm::SampledToken& t : e.tokens) reqs[i].got.push_back(t.id);
        if (e.finish != engine::FinishReason::kNone) reqs[i].done = true;
      }));
    }
    for (int step = 0; step < 10000; ++step) {
      TS_ASSIGN_OR_RETURN(bool busy, eng->Step());
      if (!busy) break;
    }
    totals = leader.totals();
    leader.Stop();
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_TRUE(reqs[i].done) << i;
    EXPECT_EQ(reqs[i].got, reqs[i].want) << "request " << i << " (prompt " << reqs[i].prompt.size() << " tokens)";
  }
  EXPECT_EQ(totals.prefill_sequences, static_cast<int64_t>(reqs.size()));
  EXPECT_GT(totals.algo[0].calls + totals.algo[1].calls, 0);
}

INSTANTIATE_TEST_SUITE_P(All, WorkerGroupTest,
                         ::testing::Values(Case{"llama_gqa4_hd64_f32", 2}, Case{"llama_gqa4_hd64_f32", 4},
                                           Case{"qwen3moe_qknorm_hd64_bf16", 3}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.model + "_N" + std::to_string(info.param.world);
                         });

}  // namespace
}  // namespace tessera::worker
