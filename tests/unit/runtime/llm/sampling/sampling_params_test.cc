#include "runtime/llm/sampling/sampling_params.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::llm {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kVocab = 1000;

TEST(SamplingParamsTest, DefaultsAndTypicalRequestsAreValid) {
  EXPECT_TRUE(SamplingParams{}.Validate(kVocab).ok());
  const SamplingParams typical{.temperature = 0.7f,
                               .top_k = 40,
                               .top_p = 0.95f,
                               .min_p = 0.05f,
                               .repetition_penalty = 1.1f,
                               .presence_penalty = -2.0f,
                               .frequency_penalty = 2.0f,
                               .seed = 7,
                               .stop_token_ids = {0, 999},
                               .logprobs = kMaxLogprobs,
                               .max_tokens = 128,
                               .min_tokens = 128};
  EXPECT_TRUE(typical.Validate(kVocab).ok());
  const SamplingParams edges{.temperature = 0.0f, .top_k = -1, .top_p = 1.0f, .min_p = 1.0f, .logprobs = 0};
  EXPECT_TRUE(edges.Validate(kVocab).ok());
}

TEST(SamplingParamsTest, IsGreedy) {
  EXPECT_FALSE(SamplingParams{}.IsGreedy());
  EXPECT_TRUE(SamplingParams{.temperature = 0.0f}.IsGreedy());
  EXPECT_TRUE(SamplingParams{.temperature = 1e-6f}.IsGreedy());
  EXPECT_TRUE(SamplingParams{.top_k = 1}.IsGreedy());
  EXPECT_FALSE(SamplingParams{.top_k = 2}.IsGreedy());
}

struct InvalidCase {
  std::string field;  // must appear in the message
  std::function<void(SamplingParams&)> mutate;
};

TEST(SamplingParamsTest, EachOutOfRangeFieldIsNamed) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<InvalidCase> cases = {
      {"temperature", [](SamplingParams& p) { p.temperature = -0.1f; }},
      {"temperature", [nan](SamplingParams& p) { p.temperature = nan; }},
      {"temperature", [inf](SamplingParams& p) { p.temperature = inf; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -2; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0.0f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.01f; }},
      {"top_p", [nan](SamplingParams& p) { p.top_p = nan; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.01f; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.5f; }},
      {"min_p", [nan](SamplingParams& p) { p.min_p = nan; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0.0f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = -1.0f; }},
      {"repetition_penalty", [nan](SamplingParams& p) { p.repetition_penalty = nan; }},
      {"repetition_penalty", [inf](SamplingParams& p) { p.repetition_penalty = inf; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = 2.5f; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = -2.01f; }},
      {"presence_penalty", [nan](SamplingParams& p) { p.presence_penalty = nan; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = -3.0f; }},
      {"frequency_penalty", [nan](SamplingParams& p) { p.frequency_penalty = nan; }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = kMaxLogprobs + 1; }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = -2; }},
      {"max_tokens", [](SamplingParams& p) { p.max_tokens = 0; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = -1; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = p.max_tokens + 1; }},
      {"stop_token_ids[1]",
       [](SamplingParams& p) {
         p.stop_token_ids = {5, kVocab};
       }},
      {"stop_token_ids[0]", [](SamplingParams& p) { p.stop_token_ids = {-1}; }},
  };
  for (const InvalidCase& c : cases) {
    SamplingParams params;
    c.mutate(params);
    const absl::Status status = params.Validate(kVocab);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr(c.field));
  }
}

TEST(SamplingParamsTest, RejectsBadVocabSize) {
  EXPECT_EQ(SamplingParams{}.Validate(0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SamplingParams{}.Validate(int64_t{1} << 40).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::llm
