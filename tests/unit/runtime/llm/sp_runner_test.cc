// SpRunner across N in-process ranks against Model::Forward on one process (itself checked against
// transformers in model_reference_test): prefill split zigzag, decode steps with the KV cache spread
// over the ranks, chunked prefill continuations and mixed batches, for several models and N.
#include "runtime/llm/sp_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "runtime/base/status_macros.h"
#include "runtime/parallel/local_comm.h"

namespace tessera::llm {
namespace {

struct Input {
  int seq;  // 0, 1, 2: which sequence (block table)
  std::vector<int32_t> tokens;
  int64_t start_pos;
  bool all_logits;
};
using Step = std::vector<Input>;

constexpr int64_t kBlockSize = 16, kBlocksPerSeq = 12, kNumBlocks = 3 * kBlocksPerSeq;

std::vector<int32_t> Table(int seq) {
  std::vector<int32_t> t(kBlocksPerSeq);
  // Interleaved block ids, so that a sequence's blocks are not contiguous in the cache.
  for (int64_t i = 0; i < kBlocksPerSeq; ++i) t[i] = static_cast<int32_t>(i * 3 + seq);
  return t;
}

std::vector<SequenceInput> Batch(const Step& step, const std::vector<std::vector<int32_t>>& tables) {
  std::vector<SequenceInput> b;
  for (const Input& in : step) {
    b.push_back(
        {.tokens = in.tokens, .start_pos = in.start_pos, .block_table = tables[in.seq], .all_logits = in.all_logits});
  }
  return b;
}

// Builds the step script with the single-process model, each decode token the reference's argmax,
// and records the reference logits of every step.
void MakeScript(Model& model, int64_t prompt_a, std::vector<Step>* steps, std::vector<std::vector<float>>* ref) {
  const int64_t vocab = model.config().vocab_size;
  std::mt19937 rng(11);
  auto prompt = [&](int64_t n) {
    std::vector<int32_t> p(n);
    for (int32_t& t : p) t = static_cast<int32_t>(rng() % vocab);
    return p;
  };
  const std::vector<std::vector<int32_t>> tables = {Table(0), Table(1), Table(2)};
  auto made = model.CreateKvCache(kNumBlocks, kBlockSize);
  EXPECT_TRUE(made.ok()) << made.status();
  PagedKvCache& cache = *made;
  std::vector<int64_t> len(3, 0);
  std::vector<int32_t> next(3, -1);
  const std::vector<int32_t> c_prompt = prompt(50);
  auto decode = [&](int s) { return Input{s, {next[s]}, len[s], false}; };
  const int kSteps = 9;
  for (int i = 0; i < kSteps; ++i) {
    Step st;
    if (i == 0) st.push_back({0, prompt(prompt_a), 0, false});
    if (i >= 1) st.push_back(decode(0));
    if (i == 1) st.push_back({1, prompt(33), 0, true});
    if (i >= 2) st.push_back(decode(1));
    if (i == 2) st.push_back({2, {c_prompt.begin(), c_prompt.begin() + 20}, 0, false});  // first chunk
    if (i == 3) st.push_back({2, {c_prompt.begin() + 20, c_prompt.end()}, 20, true});    // continuation
    if (i >= 4) st.push_back(decode(2));
    std::vector<float> logits;
    ASSERT_TRUE(model.Forward(Batch(st, tables), cache, &logits).ok());
    int64_t row = 0;
    for (const Input& in : st) {
      len[in.seq] += static_cast<int64_t>(in.tokens.size());
      row += in.all_logits ? static_cast<int64_t>(in.tokens.size()) : 1;
      const float* last = &logits[(row - 1) * vocab];
      next[in.seq] = static_cast<int32_t>(std::max_element(last, last + vocab) - last);
    }
    steps->push_back(st);
    ref->push_back(logits);
  }
}

struct Case {
  std::string model;
  int world;
  int64_t prompt;
  parallel::SpPolicy::Mode mode;
};

class SpRunnerTest : public ::testing::TestWithParam<Case> {};

TEST_P(SpRunnerTest, MatchesSingleProcessForward) {
  const Case c = GetParam();
  const std::string path = "tests/fixtures/models/" + c.model;
  auto ref_model = Model::Load(path, {.num_threads = 1});
  ASSERT_TRUE(ref_model.ok()) << ref_model.status();
  std::vector<Step> steps;
  std::vector<std::vector<float>> ref;
  MakeScript(**ref_model, c.prompt, &steps, &ref);
  ASSERT_EQ(steps.size(), ref.size());

  auto group = parallel::LocalCommGroup::Create({.size = c.world, .timeout = absl::Seconds(120)});
  ASSERT_TRUE(group.ok()) << group.status();
  std::vector<std::vector<float>> got(steps.size());
  SpTotals totals;
  absl::Status status = (*group)->RunOnAllRanks([&](parallel::Communicator& comm) -> absl::Status {
    TS_ASSIGN_OR_RETURN(auto model, Model::Load(path, {.num_threads = 1}));
    TS_ASSIGN_OR_RETURN(PagedKvCache cache, model->CreateKvCache(kNumBlocks, kBlockSize));
    SpRunner::Options opts;
    opts.policy.mode = c.mode;
    TS_ASSIGN_OR_RETURN(auto runner, SpRunner::Create(model.get(), &comm, kNumBlocks, kBlockSize, opts));
    const std::vector<std::vector<int32_t>> tables = {Table(0), Table(1), Table(2)};
    for (size_t i = 0; i < steps.size(); ++i) {
      std::vector<float> logits;
      TS_RETURN_IF_ERROR(runner->Forward(Batch(steps[i], tables), cache, &logits));
      if (comm.rank() == 0) got[i] = logits;
    }
    if (comm.rank() == 0) totals = runner->totals();
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSERT_EQ(got[i].size(), ref[i].size()) << "step " << i;
    double max_abs = 0, max_err = 0;
    for (size_t j = 0; j < ref[i].size(); ++j) {
      max_abs = std::max(max_abs, double{std::fabs(ref[i][j])});
      max_err = std::max(max_err, double{std::fabs(ref[i][j] - got[i][j])});
    }
    EXPECT_LE(max_err, 1e-4 * max_abs) << "step " << i << ": max |logit| " << max_abs;
  }
  // Traffic happened on the group, and was counted: three prefills and 21 continuations (decode steps and one chunk).
  EXPECT_EQ(totals.prefill_sequences, 3);
  EXPECT_EQ(totals.decode_sequences, 21);
  if (c.world > 1) {
    const auto& tr = totals.algo[static_cast<size_t>(parallel::SpAlgorithm::kTokenRing)];
    EXPECT_GT(tr.bytes[static_cast<size_t>(parallel::SpDirection::kQuery)], 0);
    EXPECT_GT(tr.bytes[static_cast<size_t>(parallel::SpDirection::kOutput)], 0);
    if (c.mode == parallel::SpPolicy::Mode::kRing) {
      EXPECT_GT(totals.algo[static_cast<size_t>(parallel::SpAlgorithm::kRing)]
                    .bytes[static_cast<size_t>(parallel::SpDirection::kKv)],
                0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, SpRunnerTest,
                         ::testing::Values(Case{"llama_gqa4_hd64_f32", 1, 70, parallel::SpPolicy::Mode::kTokenRing},
                                           Case{"llama_gqa4_hd64_f32", 2, 70, parallel::SpPolicy::Mode::kTokenRing},
                                           Case{"llama_gqa4_hd64_f32", 3, 130, parallel::SpPolicy::Mode::kRing},
                                           Case{"llama_gqa4_hd64_f32", 4, 70, parallel::SpPolicy::Mode::kAuto},
                                           Case{"llama3rope_gqa2_bias_sharded_f32", 4, 150,
                                                parallel::SpPolicy::Mode::kTokenRing},
                                           Case{"qwen3moe_qknorm_hd64_bf16", 2, 90, parallel::SpPolicy::Mode::kRing}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.model + "_N" + std::to_string(info.param.world) + "_S" +
                                  std::to_string(info.param.prompt);
                         });

}  // namespace
}  // namespace tessera::llm
