#include "runtime/llm/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace tessera::llm {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;

// SplitMix64's output function (Steele, Lea, Flood, "Fast splittable pseudorandom number
// generators", 2014): a bijection on 64 bits whose outputs at consecutive multiples of the golden
// gamma pass BigCrush.
uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

absl::Status CheckTokenId(int32_t id, int64_t vocab_size, const char* what, size_t index) {
  if (id < 0 || id >= vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s[%d] = %d is outside the vocabulary [0, %d)", what, index, id, vocab_size));
  }
  return absl::OkStatus();
}

// logprob = logit - logsumexp(logits), and the `n` largest logits (ties: lower id first).
void FillLogprobs(std::span<const float> raw, int32_t n, SampledToken& tok) {
  float max_logit = kNegInf;
  for (float v : raw) max_logit = std::max(max_logit, v);
  double sum = 0.0;
  for (float v : raw) sum += std::exp(v - max_logit);
  const double log_sum_exp = static_cast<double>(max_logit) + std::log(sum);
  tok.logprob = static_cast<float>(static_cast<double>(raw[tok.id]) - log_sum_exp);

  tok.top_logprobs.clear();
  if (n <= 0) return;
  // Insertion into a sorted list of at most n (<= kMaxLogprobs) entries; ids arrive ascending, so an
  // entry only enters ahead of strictly smaller logits.
  auto& top = tok.top_logprobs;
  for (size_t i = 0; i < raw.size(); ++i) {
    const float v = raw[i];
    if (static_cast<int32_t>(top.size()) == n && !(v > top.back().second)) continue;
    auto pos = std::find_if(top.begin(), top.end(), [v](const auto& e) { return e.second < v; });
    top.insert(pos, {static_cast<int32_t>(i), v});
    if (static_cast<int32_t>(top.size()) > n) top.pop_back();
  }
  for (auto& [id, value] : top) value = static_cast<float>(static_cast<double>(value) - log_sum_exp);
}

}  // namespace

// ---- SamplerState --------------------------------------------------------------------------------

absl::StatusOr<SamplerState> SamplerState::Create(SamplingParams params, int64_t vocab_size,
                                                  std::vector<int32_t> eos_token_ids) {
  TS_RETURN_IF_ERROR(params.Validate(vocab_size));
  for (size_t i = 0; i < eos_token_ids.size(); ++i) {
    TS_RETURN_IF_ERROR(CheckTokenId(eos_token_ids[i], vocab_size, "eos_token_ids", i));
  }
  SamplerState state;
  state.vocab_size_ = vocab_size;
  state.min_tokens_masked_ids_ = params.stop_token_ids;
  if (!params.ignore_eos) {
    state.min_tokens_masked_ids_.insert(state.min_tokens_masked_ids_.end(), eos_token_ids.begin(), eos_token_ids.end());
  }
  uint64_t seed = 0;
  if (params.seed.has_value()) {
    seed = *params.seed;
  } else {
    std::random_device device;
    seed = (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
  }
  // Hashing the seed makes nearby seeds start far apart on the counter line.
  state.rng_key_ = Mix64(seed ^ 0x5DEECE66DULL);
  state.params_ = std::move(params);
  return state;
}

double SamplerState::NextUniform() {
  ++rng_counter_;
  const uint64_t bits = Mix64(rng_key_ + rng_counter_ * kGoldenGamma);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

absl::Status SamplerState::SyncOutputCounts(std::span<const int32_t> output_tokens) {
  if (output_tokens.size() < counted_outputs_) {
    output_counts_.clear();
    counted_outputs_ = 0;
  }
  for (size_t i = counted_outputs_; i < output_tokens.size(); ++i) {
    TS_RETURN_IF_ERROR(CheckTokenId(output_tokens[i], vocab_size_, "output_tokens", i));
    ++output_counts_[output_tokens[i]];
    counted_outputs_ = i + 1;
  }
  return absl::OkStatus();
}

absl::Status SamplerState::SyncPromptIds(std::span<const int32_t> prompt_tokens) {
  if (prompt_ids_ready_) return absl::OkStatus();
  for (size_t i = 0; i < prompt_tokens.size(); ++i) {
    TS_RETURN_IF_ERROR(CheckTokenId(prompt_tokens[i], vocab_size_, "prompt_tokens", i));
  }
  prompt_ids_.assign(prompt_tokens.begin(), prompt_tokens.end());
  std::sort(prompt_ids_.begin(), prompt_ids_.end());
  prompt_ids_.erase(std::unique(prompt_ids_.begin(), prompt_ids_.end()), prompt_ids_.end());
  prompt_ids_ready_ = true;
  return absl::OkStatus();
}

// ---- Sampler -------------------------------------------------------------------------------------

absl::StatusOr<std::span<const float>> Sampler::ProcessLogits(SamplerState& state, std::span<const float> logits,
                                                              std::span<const int32_t> prompt_tokens,
                                                              std::span<const int32_t> output_tokens) {
  const SamplingParams& params = state.params_;
  if (static_cast<int64_t>(logits.size()) != state.vocab_size_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("logits has %d entries, the vocabulary %d", logits.size(), state.vocab_size_));
  }
  logits_.assign(logits.begin(), logits.end());
  for (size_t i = 0; i < logits_.size(); ++i) {
    if (std::isnan(logits_[i]) || logits_[i] == std::numeric_limits<float>::infinity()) {
      return absl::InvalidArgumentError(absl::StrFormat("logits[%d] is %g", i, logits_[i]));
    }
  }

  if (output_tokens.size() < static_cast<size_t>(params.min_tokens)) {
    for (int32_t id : state.min_tokens_masked_ids_) logits_[id] = kNegInf;
  }

  const bool repetition = params.repetition_penalty != 1.0f;
  const bool frequency_presence = params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f;
  if (repetition || frequency_presence) TS_RETURN_IF_ERROR(state.SyncOutputCounts(output_tokens));
  if (repetition) {
    TS_RETURN_IF_ERROR(state.SyncPromptIds(prompt_tokens));
    const float penalty = params.repetition_penalty;
    // transformers RepetitionPenaltyLogitsProcessor: torch.where(score < 0, score * penalty, score / penalty).
    auto penalize = [&](int32_t id) {
      float& x = logits_[id];
      x = x > 0.0f ? x / penalty : x * penalty;
    };
    for (int32_t id : state.prompt_ids_) penalize(id);
    for (const auto& [id, count] : state.output_counts_) {
      if (!std::binary_search(state.prompt_ids_.begin(), state.prompt_ids_.end(), id)) penalize(id);
    }
  }
  if (frequency_presence) {
    for (const auto& [id, count] : state.output_counts_) {
      logits_[id] -= params.frequency_penalty * static_cast<float>(count) + params.presence_penalty;
    }
  }
  return std::span<const float>(logits_);
}

absl::StatusOr<int32_t> Sampler::ProcessAndArgmax(SamplerState& state, std::span<const float> logits,
                                                  std::span<const int32_t> prompt_tokens,
                                                  std::span<const int32_t> output_tokens) {
  TS_RETURN_IF_ERROR(ProcessLogits(state, logits, prompt_tokens, output_tokens).status());
  int32_t best = 0;
  for (size_t i = 1; i < logits_.size(); ++i) {
    if (logits_[i] > logits_[best]) best = static_cast<int32_t>(i);
  }
  if (logits_[best] == kNegInf) {
    return absl::InvalidArgumentError("every token is masked (all logits are -inf after processing)");
  }
  return best;
}

void Sampler::Truncate(const SamplingParams& params, int32_t argmax) {
  // Scaled logits s = (x - x_max) / T: the maximum is exactly 0, nothing overflows, and an entry that
  // underflows to -inf has weight 0 anyway.
  const float max_logit = logits_[argmax];
  const float temperature = params.temperature;
  float* s = logits_.data();
  const size_t vocab = logits_.size();
  for (size_t i = 0; i < vocab; ++i) s[i] = (s[i] - max_logit) / temperature;

  // Top-k: keep s >= the k-th largest s (all ties with it).
  float top_k_cut = kNegInf;
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < vocab) {
    order_.clear();
    for (size_t i = 0; i < vocab; ++i) {
      if (s[i] > kNegInf) order_.push_back(static_cast<int32_t>(i));
    }
    const size_t k = static_cast<size_t>(params.top_k);
    if (k < order_.size()) {
      std::nth_element(order_.begin(), order_.begin() + static_cast<ptrdiff_t>(k - 1), order_.end(),
                       [s](int32_t a, int32_t b) { return s[a] > s[b]; });
      top_k_cut = s[order_[k - 1]];
    }
  }

  kept_.clear();
  weights_.clear();
  double total = 0.0;
  for (size_t i = 0; i < vocab; ++i) {
    if (s[i] > kNegInf && s[i] >= top_k_cut) {
      const float w = std::exp(s[i]);
      kept_.push_back(static_cast<int32_t>(i));
      weights_.push_back(w);
      total += w;
    }
  }

  // Top-p over the top-k distribution: walk the tokens by decreasing s until the mass reaches
  // top_p * total; everything with s >= the s where it did is kept. Only tokens that min-p keeps
  // (weight >= min_p, the argmax weighing 1) can be in the answer, and they are exactly the head of
  // that order, so only they are sorted, and only in chunks of doubling size until the mass is found.
  float top_p_cut = kNegInf;
  if (params.top_p < 1.0f) {
    const double target = static_cast<double>(params.top_p) * total;
    order_.clear();
    for (size_t j = 0; j < kept_.size(); ++j) {
      if (weights_[j] >= params.min_p) order_.push_back(static_cast<int32_t>(j));
    }
    const int32_t* kept = kept_.data();
    auto before = [s, kept](int32_t a, int32_t b) {
      const float sa = s[kept[a]];
      const float sb = s[kept[b]];
      return sa > sb || (sa == sb && a < b);
    };
    double mass = 0.0;
    bool found = false;
    size_t chunk = 64;
    for (size_t begin = 0; begin < order_.size() && !found; begin += chunk, chunk *= 2) {
      const auto first = order_.begin() + static_cast<ptrdiff_t>(begin);
      const size_t end = std::min(order_.size(), begin + chunk);
      const auto last = order_.begin() + static_cast<ptrdiff_t>(end);
      if (last != order_.end()) std::nth_element(first, last, order_.end(), before);
      std::sort(first, last, before);
      for (auto it = first; it != last; ++it) {
        mass += weights_[*it];
        if (mass >= target) {
          top_p_cut = s[kept_[*it]];
          found = true;
          break;
        }
      }
    }
  }

  // Min-p: p_i >= min_p * p_max  <=>  weight_i >= min_p, since the argmax weighs exactly 1 and
  // renormalization after top-k / top-p scales both sides alike.
  if (top_p_cut > kNegInf || params.min_p > 0.0f) {
    size_t n = 0;
    for (size_t j = 0; j < kept_.size(); ++j) {
      if (s[kept_[j]] >= top_p_cut && weights_[j] >= params.min_p) {
        kept_[n] = kept_[j];
        weights_[n] = weights_[j];
        ++n;
      }
    }
    kept_.resize(n);
    weights_.resize(n);
  }
}

absl::StatusOr<SampledToken> Sampler::Sample(SamplerState& state, std::span<const float> logits,
                                             std::span<const int32_t> prompt_tokens,
                                             std::span<const int32_t> output_tokens) {
  TS_ASSIGN_OR_RETURN(const int32_t argmax, ProcessAndArgmax(state, logits, prompt_tokens, output_tokens));
  const SamplingParams& params = state.params_;
  SampledToken tok;
  tok.id = argmax;
  if (!params.IsGreedy()) {
    Truncate(params, argmax);
    double total = 0.0;
    for (float w : weights_) total += w;
    // Inverse CDF: the first token whose cumulative weight exceeds u * total. The sums are taken in
    // the same order as `total`, so only rounding of u * total can leave the loop without a pick.
    const double target = state.NextUniform() * total;
    double cumulative = 0.0;
    for (size_t j = 0; j < kept_.size(); ++j) {
      if (weights_[j] == 0.0f) continue;
      tok.id = kept_[j];
      cumulative += weights_[j];
      if (cumulative > target) break;
    }
  }
  if (params.logprobs >= 0) FillLogprobs(logits, params.logprobs, tok);
  return tok;
}

absl::StatusOr<std::vector<std::pair<int32_t, double>>> Sampler::Distribution(SamplerState& state,
                                                                              std::span<const float> logits,
                                                                              std::span<const int32_t> prompt_tokens,
                                                                              std::span<const int32_t> output_tokens) {
  TS_ASSIGN_OR_RETURN(const int32_t argmax, ProcessAndArgmax(state, logits, prompt_tokens, output_tokens));
  const SamplingParams& params = state.params_;
  std::vector<std::pair<int32_t, double>> probs;
  if (params.IsGreedy()) {
    probs.emplace_back(argmax, 1.0);
    return probs;
  }
  Truncate(params, argmax);
  double total = 0.0;
  for (float w : weights_) total += w;
  for (size_t j = 0; j < kept_.size(); ++j) {
    if (weights_[j] > 0.0f) probs.emplace_back(kept_[j], weights_[j] / total);
  }
  return probs;
}

}  // namespace tessera::llm
