#include "runtime/llm/sequence.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace tessera::llm {

absl::Status ValidatePrompt(std::span<const int32_t> prompt, int64_t vocab_size) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt: must not be empty");
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt[", i, "]: token id ", prompt[i], " outside vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

FinishReason CheckFinish(const SamplingParams& params, std::span<const int32_t> eos_token_ids, int32_t token,
                         int64_t num_output) {
  const bool is_eos = std::find(eos_token_ids.begin(), eos_token_ids.end(), token) != eos_token_ids.end();
  const bool is_stop =
      std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) != params.stop_token_ids.end();
  if ((is_eos && !params.ignore_eos) || is_stop) return FinishReason::kStop;
  if (num_output >= params.max_tokens) return FinishReason::kLength;
  return FinishReason::kNone;
}

std::vector<int32_t> EosTokenIds(const GenerationDefaults& defaults) {
  return {defaults.eos_token_ids.begin(), defaults.eos_token_ids.end()};
}

absl::StatusOr<Sequence> Sequence::Create(std::vector<int32_t> prompt, const SamplingParams& params, int64_t vocab_size,
                                          std::vector<int32_t> eos_token_ids) {
  TS_RETURN_IF_ERROR(ValidatePrompt(prompt, vocab_size));
  auto state = SamplerState::Create(params, vocab_size, eos_token_ids);
  if (!state.ok()) return absl::InvalidArgumentError(state.status().message());
  return Sequence(*std::move(state), std::move(prompt), std::move(eos_token_ids));
}

absl::StatusOr<SampledToken> Sequence::Sample(Sampler& sampler, std::span<const float> logits) {
  if (num_pending() != 0 || finish_ != FinishReason::kNone) {
    return absl::FailedPreconditionError(
        absl::StrCat("sequence: sample with ", num_pending(), " tokens pending or after it finished"));
  }
  TS_ASSIGN_OR_RETURN(SampledToken tok, sampler.Sample(sampler_state_, logits, prompt(), output()));
  tokens_.push_back(tok.id);
  finish_ = CheckFinish(params(), eos_, tok.id, num_output());
  return tok;
}

}  // namespace tessera::llm
