#include "runtime/llm/generator.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace tessera::llm {
namespace {

struct Slot {
  std::optional<Sequence> seq;
  std::vector<int32_t> blocks;
  bool done = false;
};

}  // namespace

absl::Status Generator::Run(const std::vector<Request>& requests,
                            const std::function<void(const TokenEvent&)>& on_token) {
  const ModelConfig& cfg = model_->config();
  const std::vector<int32_t> eos = EosTokenIds(model_->generation_defaults());
  std::vector<Slot> slots(requests.size());
  int64_t blocks_needed = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    auto seq = Sequence::Create(r.prompt, r.params, cfg.vocab_size, eos);
    if (!seq.ok()) return absl::InvalidArgumentError(absl::StrCat("request ", i, ": ", seq.status().message()));
    slots[i].seq.emplace(*std::move(seq));
    blocks_needed +=
        (static_cast<int64_t>(r.prompt.size()) + r.params.max_tokens + options_.block_size - 1) / options_.block_size;
  }
  TS_ASSIGN_OR_RETURN(
      PagedKvCache cache,
      model_->CreateKvCache(options_.num_blocks > 0 ? options_.num_blocks : blocks_needed, options_.block_size));
  BlockAllocator allocator(cache.num_blocks());
  Sampler sampler;
  std::vector<float> logits;

  for (;;) {
    // Build one step: every running sequence's pending tokens, prefill chunked to the budget.
    std::vector<SequenceInput> batch;
    std::vector<Slot*> members;
    int64_t budget = options_.max_step_tokens;
    bool has_prefill = false;
    for (Slot& slot : slots) {
      if (slot.done || budget <= 0) continue;
      Sequence& s = *slot.seq;
      const int64_t n = std::min(s.num_pending(), budget);
      TS_RETURN_IF_ERROR(allocator.Grow(slot.blocks, cache.BlocksFor(s.num_computed() + n)));
      batch.push_back({.tokens = {s.tokens().data() + s.num_computed(), static_cast<size_t>(n)},
                       .start_pos = s.num_computed(),
                       .block_table = slot.blocks});
      members.push_back(&slot);
      has_prefill |= n > 1 || s.num_output() == 0;
      budget -= n;
    }
    if (batch.empty()) break;

    const auto t0 = std::chrono::steady_clock::now();
    TS_RETURN_IF_ERROR(model_->Forward(batch, cache, &logits));
    int64_t step_tokens = 0;
    for (size_t b = 0; b < batch.size(); ++b) {
      Slot& slot = *members[b];
      Sequence& s = *slot.seq;
      const auto n = static_cast<int64_t>(batch[b].tokens.size());
      s.set_num_computed(s.num_computed() + n);
      step_tokens += n;
      if (s.num_pending() > 0) continue;  // prompt chunk, nothing to sample yet
      std::span<const float> row(logits.data() + b * cfg.vocab_size, cfg.vocab_size);
      TS_ASSIGN_OR_RETURN(SampledToken tok, s.Sample(sampler, row));
      if (s.finish() != FinishReason::kNone) {
        slot.done = true;
        allocator.Release(slot.blocks);
      }
      on_token({.request = static_cast<size_t>(&slot - slots.data()), .token = std::move(tok), .finish = s.finish()});
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
