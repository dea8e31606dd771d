// Streaming detokenizer: turns generated ids into text pieces as soon as the text is final.
//
// The concatenation of every Add() result and the final Flush() equals
// tokenizer.Decode(all ids, skip_special_tokens), and every piece is valid UTF-8 (an incomplete
// multi-byte character is held back until it completes).
//
//   IncrementalDecoder stream(*tokenizer, /*skip_special_tokens=*/true);
//   for (int32_t id : generated) SendToClient(stream.Add(id));
//   SendToClient(stream.Flush());
//
// How: the decoder keeps a short window of recent ids. prefix = Decode(window up to the last
// emission point), full = Decode(whole window); the new text is full minus prefix. Decoding the
// window from an earlier token (rather than from the new token alone) keeps context-dependent
// rules right: Metaspace/Strip drop a leading space only on the first token, which here is always
// inside the prefix. Nothing is emitted while full ends in U+FFFD (bytes of a character still
// missing) or while the last id is a <0xHH> token under ByteFallback (the whole run of byte tokens
// is decoded as a unit). Once text is emitted the window advances past it.
//
// Not thread-safe; use one per stream. The tokenizer must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/tokenizer/tokenizer.h"

namespace tessera::tokenizer {

class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

  // Adds one id; returns the text that became final (often empty).
  std::string Add(int32_t id);
  // Returns everything still held back and resets the stream.
  std::string Flush();

 private:
  std::string Emit(bool final);

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> window_;  // ids from the start of the previous emission on
  size_t read_ = 0;              // window_[0, read_) produced the text emitted last
  bool in_byte_run_ = false;     // the last decoded id was a <0xHH> token under ByteFallback
};

}  // namespace tessera::tokenizer
