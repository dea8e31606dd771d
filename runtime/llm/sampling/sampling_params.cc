#include "runtime/llm/sampling/sampling_params.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"

namespace tessera::llm {

absl::Status SamplingParams::Validate(int64_t vocab_size) const {
  if (vocab_size <= 0 || vocab_size > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrFormat("vocab_size must be in [1, 2^31), got %d", vocab_size));
  }
  // Comparisons are written so that NaN fails them.
  if (!(temperature >= 0.0f) || std::isinf(temperature)) {
    return absl::InvalidArgumentError(absl::StrFormat("temperature must be finite and >= 0, got %g", temperature));
  }
  if (top_k < -1) {
    return absl::InvalidArgumentError(absl::StrFormat("top_k must be -1 or 0 (off) or >= 1, got %d", top_k));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrFormat("top_p must be in (0, 1], got %g", top_p));
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrFormat("min_p must be in [0, 1], got %g", min_p));
  }
  if (!(repetition_penalty > 0.0f) || std::isinf(repetition_penalty)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("repetition_penalty must be finite and > 0, got %g", repetition_penalty));
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    return absl::InvalidArgumentError(absl::StrFormat("presence_penalty must be in [-2, 2], got %g", presence_penalty));
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("frequency_penalty must be in [-2, 2], got %g", frequency_penalty));
  }
  if (logprobs < -1 || logprobs > kMaxLogprobs) {
    return absl::InvalidArgumentError(
        absl::StrFormat("logprobs must be in [0, %d] (or -1 = not requested), got %d", kMaxLogprobs, logprobs));
  }
  if (max_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("max_tokens must be >= 1, got %d", max_tokens));
  }
  if (min_tokens < 0 || min_tokens > max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrFormat("min_tokens must be in [0, max_tokens=%d], got %d", max_tokens, min_tokens));
  }
  for (size_t i = 0; i < stop_token_ids.size(); ++i) {
    if (stop_token_ids[i] < 0 || stop_token_ids[i] >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrFormat("stop_token_ids[%d] = %d is outside the vocabulary [0, %d)", i,
                                                        stop_token_ids[i], vocab_size));
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::llm
