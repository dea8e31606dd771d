#include "server/tokenizer/incremental_decoder.h"

#include <span>

#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {

std::string IncrementalDecoder::Add(int32_t id) {
  window_.push_back(id);
  // A dropped id (e.g. a skipped special token) does not end a run of byte tokens: Decode() sees
  // the bytes on both sides of it as one run.
  if (!tokenizer_.IsDroppedInDecode(id, skip_special_tokens_)) in_byte_run_ = tokenizer_.IsPendingByteToken(id);
  if (in_byte_run_) return {};
  return Emit(/*final=*/false);
}

std::string IncrementalDecoder::Flush() {
  std::string out = Emit(/*final=*/true);
  window_.clear();
  read_ = 0;
  in_byte_run_ = false;
  return out;
}

std::string IncrementalDecoder::Emit(bool final) {
  const std::span<const int32_t> ids(window_);
  const std::string prefix = tokenizer_.Decode(ids.first(read_), skip_special_tokens_);
  const std::string full = tokenizer_.Decode(ids, skip_special_tokens_);
  if (full.size() <= prefix.size() || full.compare(0, prefix.size(), prefix) != 0) return {};
  if (!final && full.size() >= kReplacementUtf8.size() &&
      full.compare(full.size() - kReplacementUtf8.size(), kReplacementUtf8.size(), kReplacementUtf8) == 0) {
    return {};
  }
  std::string out = full.substr(prefix.size());
  // The ids that produced `out` become the context for the next emission.
  window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(read_));
  read_ = window_.size();
  return out;
}

}  // namespace tessera::tokenizer
