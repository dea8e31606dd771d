// The token-level state of one generating sequence: its prompt, the tokens sampled so far, its
// sampler state and how many of its tokens already have K/V in the cache. Shared by the offline
// Generator and the serving engine (worker/engine), which differ only in how they schedule.
//
//   TS_ASSIGN_OR_RETURN(Sequence seq, Sequence::Create(prompt, params, model->config(), eos_ids));
//   // a step ran seq.tokens()[seq.num_computed() .. +n) through Model::Forward:
//   seq.set_num_computed(seq.num_computed() + n);
//   if (seq.num_pending() == 0) {  // the whole sequence is in the cache: its logits are the next token's
//     TS_ASSIGN_OR_RETURN(SampledToken tok, seq.Sample(sampler, logits_row));
//     if (seq.finish() != FinishReason::kNone) ...  // EOS, a stop id or max_tokens
//   }
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/llm/model_config.h"
#include "runtime/llm/sampling/sampler.h"

namespace tessera::llm {

enum class FinishReason { kNone, kStop, kLength };

// INVALID_ARGUMENT naming `prompt` unless the prompt is non-empty and every id is in [0, vocab_size).
absl::Status ValidatePrompt(std::span<const int32_t> prompt, int64_t vocab_size);

// How `token`, just sampled as output token number `num_output` (1-based), ends a sequence: kStop
// for an EOS id (unless params.ignore_eos) or one of params.stop_token_ids (the token is kept as the
// last output), kLength once num_output reaches params.max_tokens, else kNone.
FinishReason CheckFinish(const SamplingParams& params, std::span<const int32_t> eos_token_ids, int32_t token,
                         int64_t num_output);

// The model's EOS ids (generation_config.json, else config.json) as int32.
std::vector<int32_t> EosTokenIds(const GenerationDefaults& defaults);

class Sequence {
 public:
  // Validates the prompt (ValidatePrompt) and the params (SamplingParams::Validate); the errors are
  // INVALID_ARGUMENT and name the field.
  static absl::StatusOr<Sequence> Create(std::vector<int32_t> prompt, const SamplingParams& params, int64_t vocab_size,
                                         std::vector<int32_t> eos_token_ids);

  const SamplingParams& params() const { return sampler_state_.params(); }
  int64_t prompt_len() const { return prompt_len_; }
  std::span<const int32_t> prompt() const { return {tokens_.data(), static_cast<size_t>(prompt_len_)}; }
  std::span<const int32_t> output() const {
    return {tokens_.data() + prompt_len_, tokens_.size() - static_cast<size_t>(prompt_len_)};
  }
  int64_t num_output() const { return num_tokens() - prompt_len_; }
  // Prompt then output: [num_tokens()].
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }

  // Tokens [0, num_computed) have their K/V in the cache; the rest still have to go through the
  // model before the next token can be sampled. A preempted sequence goes back to 0 (or to the
  // length of a cached prefix) and recomputes prompt and output alike.
  int64_t num_computed() const { return num_computed_; }
  void set_num_computed(int64_t n) { num_computed_ = n; }
  int64_t num_pending() const { return num_tokens() - num_computed_; }

  FinishReason finish() const { return finish_; }

  // Samples the next token from `logits` ([vocab_size], the logits of the last token), appends it
  // and updates finish(). Call only with num_pending() == 0 and finish() == kNone.
  absl::StatusOr<SampledToken> Sample(Sampler& sampler, std::span<const float> logits);

 private:
  Sequence(SamplerState state, std::vector<int32_t> prompt, std::vector<int32_t> eos)
      : sampler_state_(std::move(state)), tokens_(std::move(prompt)), eos_(std::move(eos)) {
    prompt_len_ = static_cast<int64_t>(tokens_.size());
  }

  SamplerState sampler_state_;
  std::vector<int32_t> tokens_;
  std::vector<int32_t> eos_;
  int64_t prompt_len_ = 0;
  int64_t num_computed_ = 0;
  FinishReason finish_ = FinishReason::kNone;
};

}  // namespace tessera::llm
