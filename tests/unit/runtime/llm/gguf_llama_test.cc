// GGUF llama models against transformers (which loads the same GGUF, dequantizes to f32 and undoes
// llama.cpp's q/k row permutation itself): tests/fixtures/gguf/tiny_llama.{gguf,json} from
// tools/make_gguf_fixtures.py, and SmolLM2-135M-Instruct when it is in the model cache.
#include "runtime/llm/models/gguf_llama.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/ops.h"
#include "nlohmann/json.hpp"
#include "runtime/llm/kv_cache.h"
#include "runtime/llm/model.h"

namespace tessera::llm {
namespace {

using ::testing::HasSubstr;

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// Runs `prompt` (all logits) and then `steps` greedy decode steps; returns the logits of every prompt
// position followed by those of each decode step, and the greedy tokens.
struct RunResult {
  std::vector<std::vector<float>> prompt_logits;  // [prompt_len][vocab]
  std::vector<std::vector<float>> step_logits;    // [steps][vocab]: logits that chose greedy[i]
  std::vector<int32_t> greedy;
};

// With `forced`, decode step s feeds forced[s] (teacher forcing) instead of our own choice, so every
// step sees the reference's context; greedy[] still records our argmax.
RunResult RunGreedy(Model& model, const std::vector<int32_t>& prompt, int steps,
                    const std::vector<int32_t>* forced = nullptr) {
  RunResult r;
  const int64_t vocab = model.config().vocab_size;
  const int64_t block = 16;
  const int64_t blocks = (static_cast<int64_t>(prompt.size()) + steps + block) / block + 1;
  auto made = model.CreateKvCache(blocks, block);
  EXPECT_TRUE(made.ok()) << made.status();
  PagedKvCache& cache = *made;
  std::vector<int32_t> table(blocks);
  std::iota(table.begin(), table.end(), 0);
  std::vector<float> logits;
  SequenceInput seq{.tokens = prompt, .start_pos = 0, .block_table = table, .all_logits = true};
  EXPECT_TRUE(model.Forward({&seq, 1}, cache, &logits).ok());
  for (size_t i = 0; i < prompt.size(); ++i)
    r.prompt_logits.emplace_back(logits.begin() + i * vocab, logits.begin() + (i + 1) * vocab);
  std::vector<float> last = r.prompt_logits.back();
  int64_t pos = static_cast<int64_t>(prompt.size());
  for (int s = 0; s < steps; ++s) {
    r.step_logits.push_back(last);
    const int32_t next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    r.greedy.push_back(next);
    if (s + 1 == steps) break;
    const int32_t* in = forced != nullptr ? &(*forced)[s] : &r.greedy.back();
    SequenceInput d{.tokens = {in, 1}, .start_pos = pos, .block_table = table};
    EXPECT_TRUE(model.Forward({&d, 1}, cache, &logits).ok());
    last = logits;
    ++pos;
  }
  return r;
}

// KL(p_ref || p_ours) restricted to the reference's top entries: Σ_top p_ref (log p_ref − log p_ours),
// with log p_ref = logit − lse_ref (over the whole vocabulary) and p_ours our full softmax. The tail
// mass the top entries leave out is added to `uncovered`.
double TopKl(const nlohmann::json& ref, const std::vector<float>& ours, double* uncovered) {
  const double lse_ref = ref["lse"].get<double>();
  const std::vector<int64_t> ids = ref["top_ids"];
  const std::vector<double> logits = ref["top_logits"];
  const double mo = *std::max_element(ours.begin(), ours.end());
  double zo = 0;
  for (float v : ours) zo += std::exp(v - mo);
  const double lse_ours = mo + std::log(zo);
  double kl = 0, mass = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const double lp = logits[i] - lse_ref;
    const double lq = ours[ids[i]] - lse_ours;
    kl += std::exp(lp) * (lp - lq);
    mass += std::exp(lp);
  }
  *uncovered += 1 - mass;
  return kl;
}

TEST(GgufLlamaTest, ConfigFromMetadata) {
  auto file = loader::GgufFile::Open("tests/fixtures/gguf/tiny_llama.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  auto c = GgufLlamaConfig(**file);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_hidden_layers, 2);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 96);
  EXPECT_EQ(c->num_attention_heads, 4);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->max_position_embeddings, 256);
  EXPECT_DOUBLE_EQ(c->rope.theta, 10000.0);
  EXPECT_NEAR(c->rms_norm_eps, 1e-5, 1e-12);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_token_id, 510);
  EXPECT_THAT(c->eos_token_ids, ::testing::ElementsAre(511));
}

// Error bound relative to max |logit| for the tiny model (see TinyModelMatchesTransformers).
constexpr double kLlamaCppRelativeError = 0.07;

TEST(GgufLlamaTest, TinyModelMatchesTransformers) {
  auto model = Model::Load("tests/fixtures/gguf/tiny_llama.gguf", {.num_threads = 2});
  ASSERT_TRUE(model.ok()) << model.status();
  const auto ref = nlohmann::json::parse(std::ifstream("tests/fixtures/gguf/tiny_llama.json"));
  ASSERT_EQ((*model)->config().vocab_size, ref["vocab_size"].get<int64_t>());
  for (const auto& p : ref["prompts"]) {
    const std::vector<int32_t> ids = p["ids"];
    const std::vector<int32_t> greedy = p["greedy"];
    SCOPED_TRACE(testing::PrintToString(ids));
    RunResult r = RunGreedy(**model, ids, static_cast<int>(greedy.size()));
    for (const auto& [key, row] :
         {std::pair{"logits_first", r.prompt_logits.front()}, std::pair{"logits_last", r.prompt_logits.back()}}) {
      const std::vector<double> want = p[key];
      ASSERT_EQ(want.size(), row.size());
      double max_abs = 0, max_err = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        max_abs = std::max(max_abs, std::abs(want[i]));
        max_err = std::max(max_err, std::abs(want[i] - row[i]));
      }
      // Quantized weights multiply int8-quantized activations (llama.cpp's q8_0/q8_1, ops.h), prompt
      // rows included, and this random model amplifies the rounding: llama.cpp itself (0.3.36, same
      // GGUF and ids) is off from transformers by 1.0–2.4% of max |logit| on the 3- and 8-token
      // prompts and 5.8% on the last row of the 40-token one (6.6% with flash attention). The bound
      // is llama.cpp's worst case with some room; ours measures 0.6–5.1%.
      const double tol = kLlamaCppRelativeError * max_abs;
      EXPECT_LE(max_err, tol) << key << ": max |logit| " << max_abs;
    }
    // Greedy tokens agree up to the first step where the reference's top-2 gap is within that error;
    // after a divergence the contexts differ.
    const std::vector<double> margins = p["margins"];
    const std::vector<double> last = p["logits_last"];
    double scale = 0;
    for (double v : last) scale = std::max(scale, std::abs(v));
    for (size_t s = 0; s < greedy.size(); ++s) {
      if (r.greedy[s] == greedy[s]) continue;
      EXPECT_LE(margins[s], kLlamaCppRelativeError * scale)
          << "greedy step " << s << ": got " << r.greedy[s] << ", reference " << greedy[s] << " wins by " << margins[s];
      break;
    }
  }
}

// The adjacent-pair rotation on llama.cpp-permuted rows equals the rotate-half rotation on the
// original rows, permuted the same way.
TEST(GgufLlamaTest, InterleavedRopeOnPermutedRowsEqualsNeoxRope) {
  const int64_t tokens = 3, heads = 2, hd = 8, rot = 8;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<float> x(tokens * heads * hd);
  for (float& v : x) v = nd(rng);
  std::vector<int32_t> pos = {0, 5, 1000};
  std::vector<float> inv_freq(rot / 2);
  for (int64_t i = 0; i < rot / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / rot);
  // perm[j]: HF dimension stored at GGUF dimension j (2i → i, 2i+1 → i + hd/2).
  std::vector<int64_t> perm(hd);
  for (int64_t i = 0; i < hd / 2; ++i) {
    perm[2 * i] = i;
    perm[2 * i + 1] = i + hd / 2;
  }
  std::vector<float> permuted(x.size());
  for (int64_t r = 0; r < tokens * heads; ++r) {
    for (int64_t j = 0; j < hd; ++j) permuted[r * hd + j] = x[r * hd + perm[j]];
  }
  kernels::RopeNeox(x.data(), tokens, heads, hd, rot, pos.data(), inv_freq.data());
  kernels::RopeInterleaved(permuted.data(), tokens, heads, hd, rot, pos.data(), inv_freq.data());
  for (int64_t r = 0; r < tokens * heads; ++r) {
    for (int64_t j = 0; j < hd; ++j) EXPECT_FLOAT_EQ(permuted[r * hd + j], x[r * hd + perm[j]]) << r << "," << j;
  }
}

TEST(GgufLlamaTest, BadFilesGiveClearErrors) {
  auto wrong_arch = Model::Load("tests/fixtures/gguf/types.gguf", {.num_threads = 1});
  ASSERT_FALSE(wrong_arch.ok());
  EXPECT_THAT(wrong_arch.status().message(), HasSubstr("general.architecture"));
  EXPECT_THAT(wrong_arch.status().message(), HasSubstr("testarch"));
  auto no_weights = Model::Load("tests/fixtures/gguf/tok_bpe.gguf", {.num_threads = 1});
  ASSERT_FALSE(no_weights.ok());
  EXPECT_THAT(no_weights.status().message(), HasSubstr("llama.block_count"));
}

// ---- SmolLM2-135M-Instruct (Q4_1), when present --------------------------------------------------

std::string SmolLm2Path() {
  std::vector<std::string> dirs;
  if (const char* c = std::getenv("TESSERA_MODEL_CACHE")) dirs.push_back(std::string(c) + "/smollm2-135m-instruct");
  if (const char* h = std::getenv("HOME"))
    dirs.push_back(std::string(h) + "/.cache/tessera/models/smollm2-135m-instruct");
  for (const std::string& d : dirs) {
    const std::string p = d + "/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

struct Agreement {
  double top1 = 0;     // teacher-forced top-1 agreement with the reference's greedy tokens
  double mean_kl = 0;  // KL(ref || ours) over the recorded positions
  int64_t kl_n = 0;
};

// SmolLM2-135M-Instruct (Q4_1 GGUF) against transformers loading the same file (it dequantizes to
// f32), 20 prompts × 64 teacher-forced greedy steps, recorded by tools/make_gguf_fixtures.py.
Agreement SmolLm2Agreement(kernels::Activations act) {
  auto model = Model::Load(SmolLm2Path(), {.num_threads = 0, .activations = act});
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  const auto ref = ReadJson("tests/fixtures/gguf/smollm2_reference.json");
  int64_t agree = 0, total = 0, prompts_identical = 0;
  double kl_sum = 0;
  int64_t kl_n = 0;
  double kl_max = 0, uncovered = 0;
  for (const auto& p : ref["prompts"]) {
    const std::vector<int32_t> ids = p["ids"];
    const std::vector<int32_t> want = p["greedy"];
    RunResult r = RunGreedy(**model, ids, static_cast<int>(want.size()), &want);
    // Teacher-forced: our top-1 at each of the 64 steps against the reference's greedy token.
    for (size_t s = 0; s < want.size(); ++s) agree += r.greedy[s] == want[s] ? 1 : 0;
    total += static_cast<int64_t>(want.size());
    if (r.greedy == want) ++prompts_identical;
    if (p.contains("logits")) {
      for (const auto& [step, logits] : p["logits"].items()) {
        const double kl = TopKl(logits, r.step_logits[std::stoul(step)], &uncovered);
        kl_sum += kl;
        kl_max = std::max(kl_max, kl);
        ++kl_n;
      }
    }
  }
  const double agreement = static_cast<double>(agree) / static_cast<double>(total);
  std::printf(
      "[smollm2, %s activations] top-1 agreement %.4f (%lld/%lld teacher-forced greedy steps), %lld/%zu prompts "
      "agree at every step; KL(ref||ours) mean %.3g max %.3g over %lld positions (top-256 entries, "
      "mean tail mass left out %.2g)\n",
      std::string(kernels::ActivationsName(act)).c_str(), agreement, static_cast<long long>(agree),
      static_cast<long long>(total), static_cast<long long>(prompts_identical), ref["prompts"].size(),
      kl_n ? kl_sum / kl_n : 0.0, kl_max, static_cast<long long>(kl_n), kl_n ? uncovered / kl_n : 0.0);
  return {agreement, kl_n ? kl_sum / kl_n : 0.0, kl_n};
}

// Why the SmolLM2 comparison cannot run here, or "" when it can.
std::string SmolLm2Missing() {
  if (SmolLm2Path().empty()) return "SmolLM2-135M-Instruct.Q4_1.gguf not in the model cache (scripts/setup fetches it)";
  if (!std::filesystem::exists("tests/fixtures/gguf/smollm2_reference.json")) {
    return "smollm2_reference.json not recorded (tools/make_gguf_fixtures.py --only-smollm2 writes it)";
  }
  return "";
}

// int8 activations (the default): llama.cpp's numerics, which cost about 3% of top-1 agreement with
// the f32 reference: teacher-forced on these prompts llama.cpp 0.3.36 itself scores 97.0% (KL mean
// 0.0019), we score 97.6% (KL 0.0039). Which of two close tokens wins after a rounding flip is
// chaotic: llama.cpp with and without flash attention gives identical 64-token greedy output on
// only 4 of bench/llamacpp's 20 prompts.
TEST(GgufLlamaTest, SmolLm2MatchesTransformers) {
  if (const std::string why = SmolLm2Missing(); !why.empty()) GTEST_SKIP() << why;
  const Agreement a = SmolLm2Agreement(kernels::Activations::kInt8);
  EXPECT_GE(a.top1, 0.95);
  ASSERT_GT(a.kl_n, 0);
  EXPECT_LE(a.mean_kl, 0.01);
}

// f32 activations compute what transformers computes from the dequantized weights, up to f32
// rounding: at least 99% top-1 agreement and a mean KL of order 1e-6 (int8 activations give 3e-3).
TEST(GgufLlamaTest, SmolLm2WithF32ActivationsMatchesTransformersTo99Percent) {
  if (const std::string why = SmolLm2Missing(); !why.empty()) GTEST_SKIP() << why;
  const Agreement a = SmolLm2Agreement(kernels::Activations::kF32);
  EXPECT_GE(a.top1, 0.99);
  ASSERT_GT(a.kl_n, 0);
  EXPECT_LE(a.mean_kl, 1e-4);
}

}  // namespace
}  // namespace tessera::llm
