#include "runtime/llm/generator.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace tessera::llm {
namespace {

struct Sequence {
  const Generator::Request* request = nullptr;
  std::optional<SamplerState> sampler;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  std::vector<int32_t> output;
  std::vector<int32_t> blocks;
  int64_t cached = 0;  // tokens whose K/V are in the cache
  bool done = false;
};

std::vector<int32_t> ToInt32(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

}  // namespace

absl::Status Generator::Run(const std::vector<Request>& requests,
                            const std::function<void(const TokenEvent&)>& on_token) {
  const ModelConfig& cfg = model_->config();
  const std::vector<int32_t> eos = ToInt32(model_->generation_defaults().eos_token_ids);
  std::vector<Sequence> seqs(requests.size());
  int64_t blocks_needed = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    if (r.prompt.empty()) return absl::InvalidArgumentError(absl::StrCat("request ", i, ": empty prompt"));
    for (int32_t id : r.prompt) {
      if (id < 0 || id >= cfg.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("request ", i, ": prompt token ", id, " outside vocabulary"));
      }
    }
    auto state = SamplerState::Create(r.params, cfg.vocab_size, eos);
    if (!state.ok()) return absl::InvalidArgumentError(absl::StrCat("request ", i, ": ", state.status().message()));
    seqs[i].request = &r;
    seqs[i].sampler.emplace(*std::move(state));
    seqs[i].tokens = r.prompt;
    blocks_needed += (static_cast<int64_t>(r.prompt.size()) + r.params.max_tokens + options_.block_size - 1) /
                     options_.block_size;
  }
  PagedKvCache cache(model_->KvCacheOptions(options_.num_blocks > 0 ? options_.num_blocks : blocks_needed,
                                            options_.block_size));
  BlockAllocator allocator(cache.num_blocks());
  Sampler sampler;
  std::vector<float> logits;

  for (;;) {
    // Build one step: every running sequence's pending tokens, prefill chunked to the budget.
    std::vector<SequenceInput> batch;
    std::vector<Sequence*> members;
    int64_t budget = options_.max_step_tokens;
    bool has_prefill = false;
    for (Sequence& s : seqs) {
      if (s.done || budget <= 0) continue;
      const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.cached;
      const int64_t n = std::min(pending, budget);
      TS_RETURN_IF_ERROR(allocator.Grow(s.blocks, cache.BlocksFor(s.cached + n)));
      batch.push_back({.tokens = {s.tokens.data() + s.cached, static_cast<size_t>(n)},
                       .start_pos = s.cached,
                       .block_table = s.blocks});
      members.push_back(&s);
      has_prefill |= n > 1 || s.output.empty();
      budget -= n;
    }
    if (batch.empty()) break;

    const auto t0 = std::chrono::steady_clock::now();
    TS_RETURN_IF_ERROR(model_->Forward(batch, cache, &logits));
    int64_t step_tokens = 0;
    for (size_t b = 0; b < batch.size(); ++b) {
      Sequence& s = *members[b];
      s.cached += static_cast<int64_t>(batch[b].tokens.size());
      step_tokens += static_cast<int64_t>(batch[b].tokens.size());
      if (s.cached < static_cast<int64_t>(s.tokens.size())) continue;  // prompt chunk, nothing to sample yet
      std::span<const float> row(logits.data() + b * cfg.vocab_size, cfg.vocab_size);
      TS_ASSIGN_OR_RETURN(SampledToken tok, sampler.Sample(*s.sampler, row, s.request->prompt, s.output));
      s.output.push_back(tok.id);
      s.tokens.push_back(tok.id);
      const SamplingParams& p = s.request->params;
      FinishReason finish = FinishReason::kNone;
      const bool is_eos = std::find(eos.begin(), eos.end(), tok.id) != eos.end();
      const bool is_stop = std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok.id) != p.stop_token_ids.end();
      if ((is_eos && !p.ignore_eos) || is_stop) {
        finish = FinishReason::kStop;
      } else if (static_cast<int64_t>(s.output.size()) >= p.max_tokens) {
        finish = FinishReason::kLength;
      }
      if (finish != FinishReason::kNone) {
        s.done = true;
        allocator.Release(s.blocks);
      }
      on_token({.request = static_cast<size_t>(&s - seqs.data()), .token = std::move(tok), .finish = finish});
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (has_prefill) {
      stats_.prefill_tokens += step_tokens;
      stats_.prefill_seconds += seconds;
    } else {
      stats_.decode_tokens += step_tokens;
      stats_.decode_seconds += seconds;
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::llm
