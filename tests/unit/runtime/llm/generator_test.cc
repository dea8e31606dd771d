// End-to-end generation through Generator: continuous batches of several requests, chunked
// prefill and sampling, checked against the transformers greedy continuations of the fixtures.
#include "runtime/llm/generator.h"

#include <fstream>
#include <map>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::llm {
namespace {

struct Reference {
  std::vector<std::vector<int32_t>> prompts, greedy;
};

Reference LoadReference(const std::string& dir) {
  std::ifstream in(dir + "/reference.json");
  auto j = nlohmann::json::parse(in);
  return {j["prompts"].get<std::vector<std::vector<int32_t>>>(), j["greedy"].get<std::vector<std::vector<int32_t>>>()};
}

std::map<size_t, std::vector<int32_t>> RunAll(Generator& gen, const std::vector<Generator::Request>& reqs,
                                              std::map<size_t, FinishReason>* finish = nullptr) {
  std::map<size_t, std::vector<int32_t>> out;
  absl::Status s = gen.Run(reqs, [&](const Generator::TokenEvent& e) {
    out[e.request].push_back(e.token.id);
    if (finish && e.finish != FinishReason::kNone) (*finish)[e.request] = e.finish;
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

class GeneratorTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = std::string("tests/fixtures/models/") + GetParam();
    ref_ = LoadReference(dir_);
    auto m = Model::Load(dir_, {.num_threads = 2});
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *std::move(m);
  }
  std::string dir_;
  Reference ref_;
  std::unique_ptr<Model> model_;
};

// All prompts at once, prefill chunked to 8 tokens a step and mixed with decodes.
TEST_P(GeneratorTest, BatchedGreedyMatchesTransformers) {
  Generator gen(model_.get(), {.block_size = 4, .max_step_tokens = 8});
  std::vector<Generator::Request> reqs;
  for (const auto& p : ref_.prompts) {
    reqs.push_back(
        {.prompt = p,
         .params = {.temperature = 0, .ignore_eos = true, .max_tokens = static_cast<int32_t>(ref_.greedy[0].size())}});
  }
  std::map<size_t, FinishReason> finish;
  auto out = RunAll(gen, reqs, &finish);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(out[i], ref_.greedy[i]) << "request " << i;
    EXPECT_EQ(finish[i], FinishReason::kLength);
  }
  EXPECT_GT(gen.stats().prefill_tokens, 0);
  EXPECT_GT(gen.stats().decode_tokens, 0);
}

TEST_P(GeneratorTest, SeededSamplingIsReproducibleAndBatchIndependent) {
  SamplingParams params{.temperature = 0.9f, .top_p = 0.95f, .seed = 42, .ignore_eos = true, .max_tokens = 12};
  Generator alone(model_.get(), {});
  auto a = RunAll(alone, {{.prompt = ref_.prompts[1], .params = params}});
  Generator batched(model_.get(), {.max_step_tokens = 5});
  SamplingParams other = params;
  other.seed = 7;
  auto b =
      RunAll(batched, {{.prompt = ref_.prompts[0], .params = other}, {.prompt = ref_.prompts[1], .params = params}});
  EXPECT_EQ(a[0], b[1]) << "same seed, same tokens, whatever else is in the batch";
  ASSERT_EQ(a[0].size(), 12u);
}

TEST_P(GeneratorTest, StopTokenEndsTheSequence) {
  const int32_t stop = ref_.greedy[0][3];
  Generator gen(model_.get(), {});
  std::map<size_t, FinishReason> finish;
  auto out = RunAll(gen,
                    {{.prompt = ref_.prompts[0],
                      .params = {.temperature = 0, .stop_token_ids = {stop}, .ignore_eos = true, .max_tokens = 30}}},
                    &finish);
  // Generation stops at the first occurrence of the stop id, which is included as the last token.
  std::vector<int32_t> expected;
  for (int32_t t : ref_.greedy[0]) {
    expected.push_back(t);
    if (t == stop) break;
  }
  EXPECT_EQ(out[0], expected);
  EXPECT_EQ(finish[0], FinishReason::kStop);
}

TEST_P(GeneratorTest, RejectsInvalidRequestsBeforeRunning) {
  Generator gen(model_.get(), {});
  int calls = 0;
  auto count = [&](const Generator::TokenEvent&) { ++calls; };
  EXPECT_EQ(gen.Run({{.prompt = {}, .params = {}}}, count).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gen.Run({{.prompt = {1, 999999}, .params = {}}}, count).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gen.Run({{.prompt = {1, 2}, .params = {.temperature = -1}}}, count).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 0);
}

INSTANTIATE_TEST_SUITE_P(Models, GeneratorTest,
                         ::testing::Values("llama_gqa4_hd64_f32", "mixtral_top2_bf16", "qwen2moe_shared_top2_bf16"));

}  // namespace
}  // namespace tessera::llm
