#include "runtime/llm/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::llm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---- Independent reference, in double, sorting everything ---------------------------------------

// The penalized logits, straight from the definitions in sampling_params.h.
std::vector<double> ReferencePenalized(const std::vector<float>& logits, const std::vector<int32_t>& prompt,
                                       const std::vector<int32_t>& output, const SamplingParams& p) {
  std::vector<double> x(logits.begin(), logits.end());
  std::set<int32_t> seen(prompt.begin(), prompt.end());
  seen.insert(output.begin(), output.end());
  for (int32_t id : seen) x[id] = x[id] > 0 ? x[id] / p.repetition_penalty : x[id] * p.repetition_penalty;
  std::vector<int> count(logits.size(), 0);
  for (int32_t id : output) ++count[id];
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] -= p.frequency_penalty * count[i] + (count[i] > 0 ? p.presence_penalty : 0.0);
  }
  return x;
}

// Probabilities after temperature → top-k → top-p → min-p, by full sort. [vocab]
std::vector<double> ReferenceProbs(const std::vector<double>& logits, const SamplingParams& p) {
  const size_t n = logits.size();
  std::vector<double> probs(n, 0.0);
  if (p.IsGreedy()) {
    probs[std::max_element(logits.begin(), logits.end()) - logits.begin()] = 1.0;
    return probs;
  }
  std::vector<double> s(n);
  for (size_t i = 0; i < n; ++i) s[i] = logits[i] / p.temperature;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  std::vector<bool> keep(n);
  size_t finite = 0;
  for (size_t i = 0; i < n; ++i) finite += (keep[i] = std::isfinite(s[i]));
  auto normalize = [&] {
    double mx = -INFINITY;
    for (size_t i = 0; i < n; ++i) {
      if (keep[i]) mx = std::max(mx, s[i]);
    }
    double z = 0;
    for (size_t i = 0; i < n; ++i) z += probs[i] = keep[i] ? std::exp(s[i] - mx) : 0.0;
    for (double& q : probs) q /= z;
  };
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < finite) {
    const double kth = s[order[p.top_k - 1]];
    for (size_t i = 0; i < n; ++i) keep[i] = keep[i] && s[i] >= kth;
  }
  normalize();
  if (p.top_p < 1.0f) {
    double cum = 0;
    for (size_t idx : order) {
      if (!keep[idx]) continue;
      cum += probs[idx];
      if (cum >= p.top_p) {
        const double cut = s[idx];
        for (size_t i = 0; i < n; ++i) keep[i] = keep[i] && s[i] >= cut;
        break;
      }
    }
    normalize();
  }
  if (p.min_p > 0.0f) {
    const double pmax = *std::max_element(probs.begin(), probs.end());
    for (size_t i = 0; i < n; ++i) keep[i] = keep[i] && probs[i] >= p.min_p * pmax;
    normalize();
  }
  return probs;
}

std::vector<double> ToDouble(const std::vector<float>& v) { return {v.begin(), v.end()}; }

std::vector<float> LogOf(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

// ---- Helpers --------------------------------------------------------------------------------------

SamplerState MakeState(const SamplingParams& params, int64_t vocab, std::vector<int32_t> eos = {}) {
  absl::StatusOr<SamplerState> state = SamplerState::Create(params, vocab, std::move(eos));
  EXPECT_TRUE(state.ok()) << state.status();
  return *std::move(state);
}

// Distribution() as a dense [vocab] vector.
std::vector<double> DenseDistribution(const SamplingParams& params, const std::vector<float>& logits,
                                      const std::vector<int32_t>& prompt = {},
                                      const std::vector<int32_t>& output = {}) {
  SamplerState state = MakeState(params, static_cast<int64_t>(logits.size()));
  Sampler sampler;
  auto dist = sampler.Distribution(state, logits, prompt, output);
  EXPECT_TRUE(dist.ok()) << dist.status();
  std::vector<double> dense(logits.size(), 0.0);
  if (dist.ok()) {
    for (auto [id, prob] : *dist) dense[id] = prob;
  }
  return dense;
}

std::vector<int32_t> Support(const std::vector<double>& probs) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] > 0) ids.push_back(static_cast<int32_t>(i));
  }
  return ids;
}

// Same support, and |found - expected| <= atol + rtol * expected everywhere; prints the first few
// mismatches.
void ExpectProbsNear(const std::vector<double>& found, const std::vector<double>& expected, double rtol = 1e-5,
                     double atol = 1e-7) {
  ASSERT_EQ(found.size(), expected.size());
  EXPECT_EQ(Support(found), Support(expected));
  int shown = 0;
  double norm_found = 0, norm_expected = 0;
  for (size_t i = 0; i < found.size(); ++i) {
    norm_found += found[i];
    norm_expected += expected[i];
    const double tol = atol + rtol * expected[i];
    if (std::abs(found[i] - expected[i]) > tol && shown++ < 5) {
      ADD_FAILURE() << "token " << i << ": found " << found[i] << ", expected " << expected[i] << ", tol " << tol;
    }
  }
  EXPECT_NEAR(norm_found, 1.0, 1e-9);
  EXPECT_NEAR(norm_expected, 1.0, 1e-9);
}

// ---- Top-k / top-p / min-p / temperature, exact cases ----------------------------------------------

TEST(SamplerTest, TopKKeepsTheKLargest) {
  const std::vector<float> logits = {1, 3, 2, 5, 4};
  const std::vector<double> probs = DenseDistribution({.top_k = 2}, logits);
  EXPECT_THAT(Support(probs), ElementsAre(3, 4));
  const double e = std::exp(1.0);
  EXPECT_NEAR(probs[3], e / (e + 1), 1e-6);
  EXPECT_NEAR(probs[4], 1 / (e + 1), 1e-6);
}

TEST(SamplerTest, TopKKeepsEveryTokenTiedWithTheKth) {
  EXPECT_THAT(Support(DenseDistribution({.top_k = 2}, {3, 3, 3, 0, 1})), ElementsAre(0, 1, 2));
  EXPECT_THAT(Support(DenseDistribution({.top_k = 3}, {0, 2, 1, 2, 1})), ElementsAre(1, 2, 3, 4));
}

TEST(SamplerTest, TopKOffOrLargerThanVocabKeepsEverything) {
  const std::vector<float> logits = {1, 3, 2, 5, 4};
  for (int32_t k : {0, -1, 5, 100}) {
    EXPECT_EQ(Support(DenseDistribution({.top_k = k}, logits)).size(), 5u) << "top_k " << k;
  }
}

TEST(SamplerTest, TopPKeepsTheSmallestSetReachingTheMass) {
  // Probabilities 0.5, 0.05, 0.3, 0.15: by rank 0.5, 0.8, 0.95, 1.0 cumulative.
  const std::vector<float> logits = LogOf({0.5, 0.05, 0.3, 0.15});
  EXPECT_THAT(Support(DenseDistribution({.top_p = 0.4f}, logits)), ElementsAre(0));
  EXPECT_THAT(Support(DenseDistribution({.top_p = 0.7f}, logits)), ElementsAre(0, 2));
  EXPECT_THAT(Support(DenseDistribution({.top_p = 0.85f}, logits)), ElementsAre(0, 2, 3));
  EXPECT_THAT(Support(DenseDistribution({.top_p = 0.99f}, logits)), ElementsAre(0, 1, 2, 3));
  const std::vector<double> probs = DenseDistribution({.top_p = 0.7f}, logits);
  EXPECT_NEAR(probs[0], 0.5 / 0.8, 1e-6);
  EXPECT_NEAR(probs[2], 0.3 / 0.8, 1e-6);
}

TEST(SamplerTest, TopPKeepsTokensTiedWithTheLastOneKept) {
  // 0.4 + 0.25 reaches 0.5 at one of the two 0.25s; both stay, whatever the order among ties.
  EXPECT_THAT(Support(DenseDistribution({.top_p = 0.5f}, LogOf({0.4, 0.25, 0.1, 0.25}))), ElementsAre(0, 1, 3));
  EXPECT_THAT(Support(DenseDistribution({.top_p = 0.5f}, LogOf({0.1, 0.25, 0.4, 0.25}))), ElementsAre(1, 2, 3));
}

TEST(SamplerTest, MinPThresholdIsMinPTimesTheLargestProbability) {
  const std::vector<float> logits = LogOf({0.5, 0.3, 0.15, 0.05});
  EXPECT_THAT(Support(DenseDistribution({.min_p = 0.2f}, logits)), ElementsAre(0, 1, 2));  // >= 0.1
  EXPECT_THAT(Support(DenseDistribution({.min_p = 0.5f}, logits)), ElementsAre(0, 1));     // >= 0.25
  EXPECT_THAT(Support(DenseDistribution({.min_p = 1.0f}, logits)), ElementsAre(0));
  EXPECT_THAT(Support(DenseDistribution({.min_p = 0.05f}, logits)), ElementsAre(0, 1, 2, 3));
}

TEST(SamplerTest, MinPAppliesAfterTopP) {
  // Probabilities 0.4, 0.3, 0.2, 0.1. top_p = 0.75 on the full distribution keeps {0,1,2}
  // (0.4, 0.7, 0.9); min_p = 0.3 (threshold 0.12) then keeps all three. Min-p first would drop
  // token 3, renormalize to 0.44, 0.33, 0.22, and top-p would stop at {0,1}.
  const std::vector<double> probs = DenseDistribution({.top_p = 0.75f, .min_p = 0.3f}, LogOf({0.4, 0.3, 0.2, 0.1}));
  EXPECT_THAT(Support(probs), ElementsAre(0, 1, 2));
  EXPECT_NEAR(probs[0], 0.4 / 0.9, 1e-6);
}

TEST(SamplerTest, TemperatureDividesLogits) {
  const std::vector<float> logits = {1.5f, -0.5f, 0.25f, 2.0f, kNegInf, 0.0f};
  for (float t : {0.25f, 0.5f, 1.0f, 2.0f, 10.0f}) {
    SCOPED_TRACE(t);
    std::vector<double> expected(logits.size());
    double z = 0;
    for (size_t i = 0; i < logits.size(); ++i) z += expected[i] = std::exp(logits[i] / static_cast<double>(t));
    for (double& e : expected) e /= z;
    ExpectProbsNear(DenseDistribution({.temperature = t}, logits), expected);
  }
}

TEST(SamplerTest, HugeLogitsAndTinyTemperaturesDoNotOverflow) {
  const std::vector<float> logits = {3e38f, 2.9e38f, -3e38f};
  const std::vector<double> probs = DenseDistribution({.temperature = 1e-3f}, logits);
  EXPECT_THAT(Support(probs), ElementsAre(0));
}

// ---- Against the reference on random inputs ------------------------------------------------------

TEST(SamplerTest, MatchesReferenceOnRandomSmallInputs) {
  std::mt19937_64 rng(12345);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (int trial = 0; trial < 400; ++trial) {
    SCOPED_TRACE(trial);
    const size_t vocab = 2 + rng() % 60;
    std::vector<float> logits(vocab);
    for (float& x : logits) x = normal(rng);
    if (trial % 4 == 0) {
      for (float& x : logits) x = std::round(x);  // many exact ties
    }
    if (trial % 5 == 0) logits[rng() % vocab] = kNegInf;
    SamplingParams params{.temperature = 0.2f + 2.0f * unit(rng)};
    if (rng() % 2) params.top_k = static_cast<int32_t>(1 + rng() % vocab);
    if (rng() % 2) params.top_p = 0.05f + 0.95f * unit(rng);
    if (rng() % 2) params.min_p = 0.5f * unit(rng);
    if (params.top_k == 1) continue;
    ExpectProbsNear(DenseDistribution(params, logits), ReferenceProbs(ToDouble(logits), params));
  }
}

TEST(SamplerTest, LargeVocabularyMatchesReference) {
  // 152064 tokens (Qwen2): top-p sorts in chunks here, and the reference sorts everything. With this
  // many tokens the float and double cumulative sums may disagree on the one token at the top-p
  // boundary, so allow that token either way.
  constexpr size_t kVocab = 152064;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = normal(rng);
  const std::vector<SamplingParams> cases = {
      {.top_k = 50},
      {.temperature = 0.7f, .top_p = 0.5f},
      {.top_p = 0.9f},
      {.top_p = 0.9f, .min_p = 0.01f},
      {.temperature = 1.3f, .top_k = 1000, .top_p = 0.95f, .min_p = 0.001f},
  };
  for (const SamplingParams& params : cases) {
    SCOPED_TRACE(::testing::Message() << "T " << params.temperature << " k " << params.top_k << " p " << params.top_p
                                      << " min_p " << params.min_p);
    const std::vector<double> found = DenseDistribution(params, logits);
    const std::vector<double> expected = ReferenceProbs(ToDouble(logits), params);
    const std::vector<int32_t> a = Support(found);
    const std::vector<int32_t> b = Support(expected);
    std::vector<int32_t> diff;
    std::set_symmetric_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(diff));
    EXPECT_LE(diff.size(), 1u);
    EXPECT_GT(a.size(), 1u);
    double l1 = 0;
    for (size_t i = 0; i < kVocab; ++i) l1 += std::abs(found[i] - expected[i]);
    EXPECT_LT(l1, 1e-3);
  }
}

// ---- Greedy ------------------------------------------------------------------------------------------

int32_t SampleOnce(const SamplingParams& params, const std::vector<float>& logits,
                   const std::vector<int32_t>& prompt = {}, const std::vector<int32_t>& output = {},
                   std::vector<int32_t> eos = {}) {
  SamplerState state = MakeState(params, static_cast<int64_t>(logits.size()), std::move(eos));
  Sampler sampler;
  auto tok = sampler.Sample(state, logits, prompt, output);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? tok->id : -1;
}

TEST(SamplerTest, GreedyTakesTheArgmaxLowestIdOnTies) {
  EXPECT_EQ(SampleOnce({.temperature = 0.0f}, {1, 5, 5, 2}), 1);
  EXPECT_EQ(SampleOnce({.temperature = 0.0f}, {kNegInf, -3, kNegInf}), 1);
  EXPECT_EQ(SampleOnce({.temperature = 1.0f, .top_k = 1}, {0.1f, 0.3f, 0.2f, 0.3f}), 1);
  EXPECT_EQ(SampleOnce({.temperature = 1e-7f}, {0.1f, 0.3f, 0.2f, 0.31f}), 3);
  SamplerState state = MakeState({.temperature = 0.0f}, 3);
  EXPECT_THAT(*Sampler().Distribution(state, std::vector<float>{1, 3, 2}, {}, {}), ElementsAre(Pair(1, 1.0)));
}

TEST(SamplerTest, GreedyUsesPenalizedLogits) {
  const std::vector<float> logits = {2.0f, 1.9f, -1.0f};
  EXPECT_EQ(SampleOnce({.temperature = 0.0f}, logits, {}, {0}), 0);
  EXPECT_EQ(SampleOnce({.temperature = 0.0f, .repetition_penalty = 1.2f}, logits, {}, {0}), 1);  // 2/1.2 < 1.9
  EXPECT_EQ(SampleOnce({.temperature = 0.0f, .repetition_penalty = 1.2f}, logits, {0}, {}), 1);  // prompt too
  EXPECT_EQ(SampleOnce({.temperature = 0.0f, .presence_penalty = 0.2f}, logits, {}, {0}), 1);
  EXPECT_EQ(SampleOnce({.temperature = 0.0f, .presence_penalty = 0.2f}, logits, {0}, {}), 0);  // output only
  EXPECT_EQ(SampleOnce({.temperature = 0.0f, .frequency_penalty = 0.06f}, logits, {}, {0, 0}), 1);
  EXPECT_EQ(SampleOnce({.temperature = 0.0f, .frequency_penalty = 0.06f}, logits, {}, {0}), 0);
}

// ---- Penalties and masks -----------------------------------------------------------------------------

TEST(SamplerTest, PenaltiesExact) {
  // Values chosen so every step is exact in float.
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f};
  const std::vector<int32_t> prompt = {0, 1, 0};
  const std::vector<int32_t> output = {1, 2, 2};
  SamplerState state = MakeState({.repetition_penalty = 2.0f, .presence_penalty = 0.25f, .frequency_penalty = 0.5f}, 5);
  Sampler sampler;
  auto processed = sampler.ProcessLogits(state, logits, prompt, output);
  ASSERT_TRUE(processed.ok()) << processed.status();
  // 0: prompt, 2 / 2 = 1.   1: prompt + output once, -1 * 2 - 0.5 - 0.25 = -2.75.
  // 2: output twice, 0.5 / 2 - 2 * 0.5 - 0.25 = -1.   3, 4: untouched.
  EXPECT_THAT(*processed, ElementsAre(1.0f, -2.75f, -1.0f, 3.0f, -2.0f));
}

TEST(SamplerTest, NegativePenaltiesEncourage) {
  SamplerState state = MakeState({.presence_penalty = -1.0f, .frequency_penalty = -0.5f}, 3);
  Sampler sampler;
  auto processed = sampler.ProcessLogits(state, std::vector<float>{0, 0, 0}, {}, std::vector<int32_t>{2, 2});
  ASSERT_TRUE(processed.ok());
  EXPECT_THAT(*processed, ElementsAre(0.0f, 0.0f, 2.0f));
}

TEST(SamplerTest, PenaltiesMatchReferenceAsOutputGrowsAndShrinks) {
  std::mt19937_64 rng(99);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  constexpr int kVocab = 50;
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = normal(rng);
  std::vector<int32_t> prompt(30);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % kVocab);
  const SamplingParams params{.repetition_penalty = 1.3f, .presence_penalty = 0.4f, .frequency_penalty = 0.3f};
  SamplerState state = MakeState(params, kVocab);
  Sampler sampler;
  std::vector<int32_t> output;
  for (int step = 0; step < 80; ++step) {
    if (step == 60) output.resize(10);  // e.g. a rollback: counts must follow
    output.push_back(static_cast<int32_t>(rng() % kVocab));
    auto processed = sampler.ProcessLogits(state, logits, prompt, output);
    ASSERT_TRUE(processed.ok());
    const std::vector<double> expected = ReferencePenalized(logits, prompt, output, params);
    for (int i = 0; i < kVocab; ++i) {
      ASSERT_NEAR((*processed)[i], expected[i], 1e-5 * (1 + std::abs(expected[i])))
          << "step " << step << " token " << i;
    }
  }
}

TEST(SamplerTest, MinTokensMasksStopAndEosIds) {
  // Token 4 is EOS and token 2 a stop id; both are the most likely tokens.
  const std::vector<float> logits = {0.0f, 1.0f, 9.0f, 2.0f, 10.0f};
  const std::vector<int32_t> two = {0, 1};
  const std::vector<int32_t> three = {0, 1, 3};
  const SamplingParams params{.temperature = 0.0f, .stop_token_ids = {2}, .max_tokens = 10, .min_tokens = 3};
  EXPECT_EQ(SampleOnce(params, logits, {}, two, {4}), 3);
  EXPECT_EQ(SampleOnce(params, logits, {}, three, {4}), 4);

  SamplerState state = MakeState(params, 5, {4});
  Sampler sampler;
  auto processed = sampler.ProcessLogits(state, logits, {}, two);
  ASSERT_TRUE(processed.ok());
  EXPECT_THAT(*processed, ElementsAre(0.0f, 1.0f, kNegInf, 2.0f, kNegInf));

  SamplingParams ignore_eos = params;
  ignore_eos.ignore_eos = true;  // EOS no longer ends the sequence, so it is not masked either
  EXPECT_EQ(SampleOnce(ignore_eos, logits, {}, two, {4}), 4);
  ignore_eos.stop_token_ids = {4, 2};  // but an explicit stop id still is
  EXPECT_EQ(SampleOnce(ignore_eos, logits, {}, two, {4}), 3);
  SamplingParams sampled = params;
  sampled.temperature = 1.0f;
  EXPECT_EQ(DenseDistribution(sampled, logits, {}, two)[2], 0.0);
}

// ---- Logprobs ------------------------------------------------------------------------------------------

std::vector<double> ReferenceLogSoftmax(const std::vector<float>& logits) {
  double mx = -INFINITY;
  for (float x : logits) mx = std::max(mx, static_cast<double>(x));
  double z = 0;
  for (float x : logits) z += std::exp(x - mx);
  std::vector<double> out;
  for (float x : logits) out.push_back(x - mx - std::log(z));
  return out;
}

TEST(SamplerTest, LogprobsAreThoseOfTheRawLogits) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(1000);
  for (float& x : logits) x = normal(rng);
  logits[17] = logits[400] = 12.5f;  // a tie at the top: lower id first
  const std::vector<double> expected = ReferenceLogSoftmax(logits);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  ASSERT_EQ(order[0], 17);
  ASSERT_EQ(order[1], 400);

  // Penalties and temperature change what is sampled, not the reported logprobs.
  SamplerState state =
      MakeState({.temperature = 0.5f, .top_k = 20, .repetition_penalty = 1.5f, .seed = 5, .logprobs = 5}, 1000);
  Sampler sampler;
  const std::vector<int32_t> output = {17, 400, order[2]};
  for (int step = 0; step < 20; ++step) {
    auto tok = sampler.Sample(state, logits, {}, output);
    ASSERT_TRUE(tok.ok());
    EXPECT_NEAR(tok->logprob, expected[tok->id], 1e-5);
    ASSERT_EQ(tok->top_logprobs.size(), 5u);
    for (int j = 0; j < 5; ++j) {
      EXPECT_EQ(tok->top_logprobs[j].first, order[j]);
      EXPECT_NEAR(tok->top_logprobs[j].second, expected[order[j]], 1e-5);
    }
  }
}

TEST(SamplerTest, ChosenTokenLogprobEvenOutsideTopN) {
  // The penalty moves the greedy pick off the raw argmax (token 0) to token 1.
  const std::vector<float> logits = {2.0f, 1.9f, -1.0f, kNegInf};
  SamplerState state = MakeState({.temperature = 0.0f, .repetition_penalty = 2.0f, .logprobs = 1}, 4);
  Sampler sampler;
  auto tok = sampler.Sample(state, logits, std::vector<int32_t>{0}, {});
  ASSERT_TRUE(tok.ok());
  const std::vector<double> expected = ReferenceLogSoftmax(logits);
  EXPECT_EQ(tok->id, 1);
  EXPECT_NEAR(tok->logprob, expected[1], 1e-6);
  ASSERT_EQ(tok->top_logprobs.size(), 1u);
  EXPECT_EQ(tok->top_logprobs[0].first, 0);
  EXPECT_NEAR(tok->top_logprobs[0].second, expected[0], 1e-6);
}

TEST(SamplerTest, LogprobsZeroAndNotRequested) {
  const std::vector<float> logits = {0.0f, std::log(3.0f)};
  SamplerState zero = MakeState({.temperature = 0.0f, .logprobs = 0}, 2);
  auto tok = Sampler().Sample(zero, logits, {}, {});
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->id, 1);
  EXPECT_NEAR(tok->logprob, std::log(0.75), 1e-6);
  EXPECT_TRUE(tok->top_logprobs.empty());
  SamplerState none = MakeState({.temperature = 0.0f}, 2);
  tok = Sampler().Sample(none, logits, {}, {});
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->logprob, 0.0f);
  EXPECT_TRUE(tok->top_logprobs.empty());
}

// ---- Seeds ---------------------------------------------------------------------------------------------

std::vector<int32_t> Generate(std::optional<uint64_t> seed, int n) {
  const std::vector<float> logits(16, 0.0f);  // uniform over 16 tokens
  SamplerState state = MakeState({.seed = seed}, 16);
  Sampler sampler;
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    auto tok = sampler.Sample(state, logits, {}, out);
    EXPECT_TRUE(tok.ok());
    out.push_back(tok->id);
  }
  return out;
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedsDiffer) {
  EXPECT_EQ(Generate(42, 200), Generate(42, 200));
  EXPECT_NE(Generate(42, 200), Generate(43, 200));
  EXPECT_NE(Generate(0, 200), Generate(1, 200));
  EXPECT_NE(Generate(std::nullopt, 200), Generate(std::nullopt, 200));  // equal with chance 16^-200
}

TEST(SamplerTest, SeedDeterminismSurvivesOtherSequencesInterleaving) {
  // One Sampler serving two sequences: each sequence's tokens depend only on its own state.
  const std::vector<float> logits(16, 0.0f);
  SamplerState a = MakeState({.seed = 42}, 16);
  SamplerState b = MakeState({.seed = 77}, 16);
  Sampler sampler;
  std::vector<int32_t> out_a, out_b;
  for (int i = 0; i < 200; ++i) {
    out_a.push_back(sampler.Sample(a, logits, {}, out_a)->id);
    out_b.push_back(sampler.Sample(b, logits, {}, out_b)->id);
  }
  EXPECT_EQ(out_a, Generate(42, 200));
}

TEST(SamplerTest, UniformStreamIsInUnitIntervalWithMeanHalf) {
  SamplerState state = MakeState({.seed = 1}, 2);
  double sum = 0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    const double u = state.NextUniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / kN, 0.5, 0.005);  // 5 standard errors
}

// ---- Bad input -------------------------------------------------------------------------------------------

TEST(SamplerTest, BadInputsAreInvalidArgument) {
  Sampler sampler;
  SamplerState state = MakeState({.repetition_penalty = 1.1f}, 4);
  const std::vector<float> ok = {0, 1, 2, 3};
  auto expect_error = [&](std::vector<float> logits, std::vector<int32_t> prompt, std::vector<int32_t> output,
                          const char* what) {
    auto tok = sampler.Sample(state, logits, prompt, output);
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_THAT(tok.status().message(), HasSubstr(what));
  };
  expect_error({0, 1, 2}, {}, {}, "logits has 3");
  expect_error({0, std::nanf(""), 2, 3}, {}, {}, "logits[1]");
  expect_error({0, 1, INFINITY, 3}, {}, {}, "logits[2]");
  expect_error(ok, {}, {0, 4}, "output_tokens[1]");
  expect_error(ok, {-1}, {}, "prompt_tokens[0]");
  expect_error({kNegInf, kNegInf, kNegInf, kNegInf}, {}, {}, "every token is masked");

  EXPECT_EQ(SamplerState::Create({.top_p = 0.0f}, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(SamplerState::Create({}, 4, {4}).status().message(), HasSubstr("eos_token_ids[0]"));
}

// ---- Chi-square goodness of fit of the draws ------------------------------------------------------------

// 0.999 quantile of chi-square with `df` degrees of freedom, Wilson–Hilferty:
// df * (1 - 2/(9 df) + z * sqrt(2/(9 df)))^3 with z = Phi^-1(0.999).
double ChiSquareQuantile999(int df) {
  constexpr double kZ999 = 3.090232306167813;
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + kZ999 * std::sqrt(a), 3.0);
}

TEST(ChiSquareTest, QuantileMatchesTables) {
  // Published 0.999 quantiles: df 5 → 20.515, 10 → 29.588, 19 → 43.820.
  EXPECT_NEAR(ChiSquareQuantile999(5), 20.515, 0.25);
  EXPECT_NEAR(ChiSquareQuantile999(10), 29.588, 0.2);
  EXPECT_NEAR(ChiSquareQuantile999(19), 43.820, 0.2);
}

std::vector<int64_t> DrawCounts(const SamplingParams& params, const std::vector<float>& logits, int n,
                                const std::vector<int32_t>& prompt = {}, const std::vector<int32_t>& output = {}) {
  SamplerState state = MakeState(params, static_cast<int64_t>(logits.size()));
  Sampler sampler;
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    auto tok = sampler.Sample(state, logits, prompt, output);
    EXPECT_TRUE(tok.ok());
    ++counts[tok->id];
  }
  return counts;
}

struct Fit {
  double chi2 = 0;
  int df = 0;
  int64_t outside_support = 0;  // draws of tokens with expected probability 0
  double quantile() const { return ChiSquareQuantile999(df); }
};

Fit GoodnessOfFit(const std::vector<int64_t>& counts, const std::vector<double>& expected) {
  Fit fit;
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  // Cells expected to see fewer than 5 draws are pooled into one (the chi-square approximation needs
  // about 5 per cell); a pool still below 5 joins the smallest regular cell.
  std::vector<std::pair<double, double>> cells;  // (observed, expected)
  double pool_observed = 0, pool_expected = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] <= 0) {
      fit.outside_support += counts[i];
      continue;
    }
    const double e = expected[i] * static_cast<double>(n);
    if (e < 5.0) {
      pool_observed += static_cast<double>(counts[i]);
      pool_expected += e;
    } else {
      cells.emplace_back(static_cast<double>(counts[i]), e);
    }
  }
  if (pool_expected >= 5.0 || (pool_expected > 0 && cells.empty())) {
    cells.emplace_back(pool_observed, pool_expected);
  } else if (pool_expected > 0) {
    auto smallest =
        std::min_element(cells.begin(), cells.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    smallest->first += pool_observed;
    smallest->second += pool_expected;
  }
  for (auto [o, e] : cells) fit.chi2 += (o - e) * (o - e) / e;
  fit.df = static_cast<int>(cells.size()) - 1;
  return fit;
}

const std::vector<float> kFitLogits = {1.2f,  -0.3f, 0.8f, 2.0f,  0.0f, -1.5f, 0.4f,  1.7f,
                                       -0.8f, 0.9f,  0.1f, -2.2f, 1.1f, 0.6f,  -0.1f, 0.3f};
constexpr int kDraws = 40000;

TEST(ChiSquareTest, DrawsFollowTheTruncatedDistribution) {
  const std::vector<int32_t> prompt = {3, 3, 7};
  const std::vector<int32_t> output = {0, 7, 7};
  struct Case {
    const char* name;
    SamplingParams params;
    bool with_history;
  };
  const std::vector<Case> cases = {
      {"temperature 1", {.seed = 1}, false},
      {"temperature 0.5", {.temperature = 0.5f, .seed = 2}, false},
      {"temperature 1.7", {.temperature = 1.7f, .seed = 3}, false},
      {"top_k 6", {.top_k = 6, .seed = 4}, false},
      {"top_p 0.6", {.top_p = 0.6f, .seed = 5}, false},
      {"min_p 0.2", {.min_p = 0.2f, .seed = 6}, false},
      {"combined",
       {.temperature = 0.8f,
        .top_k = 10,
        .top_p = 0.9f,
        .min_p = 0.1f,
        .repetition_penalty = 1.3f,
        .presence_penalty = 0.3f,
        .frequency_penalty = 0.2f,
        .seed = 7},
       true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::vector<int32_t>& p = c.with_history ? prompt : std::vector<int32_t>{};
    const std::vector<int32_t>& o = c.with_history ? output : std::vector<int32_t>{};
    const std::vector<double> expected = ReferenceProbs(ReferencePenalized(kFitLogits, p, o, c.params), c.params);
    const Fit fit = GoodnessOfFit(DrawCounts(c.params, kFitLogits, kDraws, p, o), expected);
    EXPECT_EQ(fit.outside_support, 0);
    EXPECT_GE(fit.df, 2);
    EXPECT_LT(fit.chi2, fit.quantile()) << "df " << fit.df;
  }
}

TEST(ChiSquareTest, DetectsTheWrongDistribution) {
  // Negative controls: the same statistic rejects draws from a nearby but different distribution.
  const std::vector<int64_t> t1 = DrawCounts({.temperature = 1.0f, .seed = 11}, kFitLogits, kDraws);
  const Fit vs_t05 = GoodnessOfFit(t1, ReferenceProbs(ToDouble(kFitLogits), {.temperature = 0.5f}));
  EXPECT_GT(vs_t05.chi2, vs_t05.quantile());
  const Fit vs_t12 = GoodnessOfFit(t1, ReferenceProbs(ToDouble(kFitLogits), {.temperature = 1.2f}));
  EXPECT_GT(vs_t12.chi2, vs_t12.quantile());
  // Untruncated draws checked against the top-k distribution land outside its support.
  const Fit vs_top_k = GoodnessOfFit(t1, ReferenceProbs(ToDouble(kFitLogits), {.top_k = 6}));
  EXPECT_GT(vs_top_k.outside_support, 0);
  // Min-p draws checked against plain softmax restricted to nothing: too few of the small tokens.
  const std::vector<int64_t> min_p = DrawCounts({.min_p = 0.2f, .seed = 12}, kFitLogits, kDraws);
  const Fit vs_full = GoodnessOfFit(min_p, ReferenceProbs(ToDouble(kFitLogits), {}));
  EXPECT_GT(vs_full.chi2, vs_full.quantile());
}

}  // namespace
}  // namespace tessera::llm
