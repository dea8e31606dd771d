// Per-request sampling settings, with the meanings the OpenAI API and vLLM give each field.
//
//   SamplingParams params{.temperature = 0.7f, .top_p = 0.9f, .seed = 1234, .max_tokens = 256};
//   TS_RETURN_IF_ERROR(params.Validate(model_config.vocab_size));  // INVALID_ARGUMENT names the field
//   TS_ASSIGN_OR_RETURN(SamplerState state, SamplerState::Create(params, vocab_size, eos_ids));
//
// Every field has an "off" value, and the defaults switch every transform off (plain sampling from
// softmax(logits)). Validate() is the only check: the sampler trusts a validated SamplingParams.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"

namespace tessera::llm {

// Largest number of alternatives a request may ask for in `logprobs` (OpenAI's limit).
inline constexpr int32_t kMaxLogprobs = 20;

// Temperatures below this are greedy (argmax): dividing logits by them would overflow float, and the
// distribution is a point mass anyway. vLLM uses the same cut-off.
inline constexpr float kGreedyTemperatureEpsilon = 1e-5f;

struct SamplingParams {
  // Logits are divided by `temperature` before the softmax; 0 means greedy (argmax).
  float temperature = 1.0f;
  // Keep the `top_k` most likely tokens (tokens tied with the k-th are kept too); 0 or -1 = off.
  int32_t top_k = 0;
  // Keep the smallest most-likely set whose probability mass is >= top_p; 1 = off. Tokens tied with
  // the last one kept are kept too.
  float top_p = 1.0f;
  // Keep tokens with probability >= min_p * (probability of the most likely token); 0 = off.
  float min_p = 0.0f;
  // For each token that appears in the prompt or the output: logit > 0 ? logit / penalty
  // : logit * penalty (Hugging Face / vLLM semantics); 1 = off. Must be > 0.
  float repetition_penalty = 1.0f;
  // OpenAI semantics, over the output so far: logit -= presence_penalty * (count > 0)
  // + frequency_penalty * count. Both in [-2, 2]; 0 = off.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // Same seed and same inputs → same tokens, on any thread or platform. Unset: seeded at random.
  std::optional<uint64_t> seed = std::nullopt;
  // Tokens that end the sequence in addition to the model's EOS ids.
  std::vector<int32_t> stop_token_ids = {};
  // Keep generating after EOS; EOS is then also not masked by min_tokens.
  bool ignore_eos = false;
  // Number of most likely alternatives to report with each token (0..kMaxLogprobs); 0 reports only
  // the chosen token's logprob; -1 = logprobs not requested.
  int32_t logprobs = -1;
  // Generate at most `max_tokens` tokens (>= 1), and at least `min_tokens`: until then EOS and
  // stop_token_ids are masked out of the distribution.
  int32_t max_tokens = 16;
  int32_t min_tokens = 0;

  // INVALID_ARGUMENT naming the offending field when a value is out of range for a model with
  // `vocab_size` tokens.
  absl::Status Validate(int64_t vocab_size) const;

  // True when the token is the argmax of the processed logits (temperature ~0 or top_k == 1).
  bool IsGreedy() const { return temperature < kGreedyTemperatureEpsilon || top_k == 1; }
};

}  // namespace tessera::llm
