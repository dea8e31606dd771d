// Picks the next token of a sequence from the model's logits.
//
//   TS_ASSIGN_OR_RETURN(SamplerState state, SamplerState::Create(request.params, vocab_size, {eos_id}));
//   Sampler sampler;  // one per worker thread: owns the scratch buffers, not thread-safe
//   // each decode step, with logits: [vocab_size] for this sequence
//   TS_ASSIGN_OR_RETURN(SampledToken tok, sampler.Sample(state, logits, prompt_tokens, output_tokens));
//   output_tokens.push_back(tok.id);
//
// Processing order (as vLLM's sampler): min_tokens masking and penalties (repetition, then
// frequency/presence) → temperature → top-k → top-p → min-p → a draw from the softmax of what is
// left, by inverse CDF on one uniform double. Greedy requests (temperature ~0 or top_k == 1) take the
// argmax of the penalized logits instead, ties going to the lowest id.
//
// Logprobs are those of the raw model logits (log_softmax before penalties and temperature, vLLM's
// default), computed only when params.logprobs >= 0.
//
// Cost for a vocabulary V: O(V) for the copy, penalties and masks; top-k adds one nth_element; top-p
// sorts only the head of the distribution it needs (in growing chunks), and min-p shrinks what top-p
// has to sort. Nothing sorts the whole vocabulary unless top-p needs all of it.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/llm/sampling/sampling_params.h"

namespace tessera::llm {

struct SampledToken {
  int32_t id = -1;
  // log_softmax(raw logits)[id]; 0 unless params.logprobs >= 0.
  float logprob = 0.0f;
  // The params.logprobs most likely tokens of the raw logits as (id, logprob), sorted by logprob
  // descending (ties: lower id first). May or may not contain `id`.
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

// The per-sequence part of sampling: validated params, the random stream, and token counts of the
// output so far (for the penalties). Cheap to create and to move; lives as long as the sequence.
class SamplerState {
 public:
  // Validates `params` for a model with `vocab_size` tokens. `eos_token_ids` are the model's
  // end-of-sequence ids; they are masked together with params.stop_token_ids while fewer than
  // params.min_tokens tokens have been generated (unless params.ignore_eos).
  static absl::StatusOr<SamplerState> Create(SamplingParams params, int64_t vocab_size,
                                             std::vector<int32_t> eos_token_ids = {});

  const SamplingParams& params() const { return params_; }
  int64_t vocab_size() const { return vocab_size_; }

  // The next number of the random stream, uniform in [0, 1) with 53 random bits. The n-th number
  // depends only on the seed and n: SplitMix64 keyed by a hash of the seed, evaluated at counter n.
  double NextUniform();

 private:
  friend class Sampler;
  SamplerState() = default;

  // Brings output_counts_ up to date with `output_tokens` (recounting if it shrank).
  absl::Status SyncOutputCounts(std::span<const int32_t> output_tokens);
  // Builds prompt_ids_ on first use.
  absl::Status SyncPromptIds(std::span<const int32_t> prompt_tokens);

  SamplingParams params_;
  int64_t vocab_size_ = 0;
  std::vector<int32_t> min_tokens_masked_ids_;  // stop ids (+ EOS unless ignore_eos)
  uint64_t rng_key_ = 0;
  uint64_t rng_counter_ = 0;

  // Counts of output_tokens[0, counted_outputs_), kept in step with the output passed to Sample().
  absl::flat_hash_map<int32_t, int32_t> output_counts_;
  size_t counted_outputs_ = 0;
  // Distinct prompt ids, sorted; built on first use (repetition penalty only).
  std::vector<int32_t> prompt_ids_;
  bool prompt_ids_ready_ = false;
};

// Turns logits into tokens. Holds O(vocab) scratch reused across calls, so keep one per thread
// and pass each sequence's SamplerState in. Inputs that no validated request can fix (wrong logits
// length, NaN or +inf logits, token ids outside the vocabulary, every token masked) come back as
// INVALID_ARGUMENT; nothing here aborts.
class Sampler {
 public:
  // logits: [vocab_size], raw model output for this sequence (not modified).
  // prompt_tokens: the sequence's prompt; must be the same on every call with this state.
  // output_tokens: the tokens generated so far (the state's counts follow it, also if it shrinks).
  absl::StatusOr<SampledToken> Sample(SamplerState& state, std::span<const float> logits,
                                      std::span<const int32_t> prompt_tokens, std::span<const int32_t> output_tokens);

  // The distribution Sample() draws from for the same inputs: (id, probability) for every token with
  // non-zero probability, by id ascending; greedy gives the argmax with probability 1. Uses no
  // randomness.
  absl::StatusOr<std::vector<std::pair<int32_t, double>>> Distribution(SamplerState& state,
                                                                       std::span<const float> logits,
                                                                       std::span<const int32_t> prompt_tokens,
                                                                       std::span<const int32_t> output_tokens);

  // The logits after min_tokens masking and penalties, before temperature: [vocab_size]. Valid
  // until the next call on this Sampler.
  absl::StatusOr<std::span<const float>> ProcessLogits(SamplerState& state, std::span<const float> logits,
                                                       std::span<const int32_t> prompt_tokens,
                                                       std::span<const int32_t> output_tokens);

 private:
  // ProcessLogits, then the argmax of logits_ (lowest id on ties); an error if every token is -inf.
  absl::StatusOr<int32_t> ProcessAndArgmax(SamplerState& state, std::span<const float> logits,
                                           std::span<const int32_t> prompt_tokens,
                                           std::span<const int32_t> output_tokens);
  // Applies temperature, top-k, top-p and min-p to logits_, whose maximum is logits_[argmax]: fills
  // kept_ (ids ascending) and weights_ (exp(scaled logit - scaled max), so the argmax weighs 1).
  void Truncate(const SamplingParams& params, int32_t argmax);

  std::vector<float> logits_;   // [vocab_size] processed, then divided by the temperature
  std::vector<int32_t> kept_;   // ids still in the distribution
  std::vector<float> weights_;  // [kept_.size()] unnormalized probabilities
  std::vector<int32_t> order_;  // positions into kept_, partially sorted by top-k / top-p
};

}  // namespace tessera::llm
