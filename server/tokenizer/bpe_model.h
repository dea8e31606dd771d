// Byte-pair-encoding model ("model": {"type": "BPE", ...} in tokenizer.json).
//
// JSON fields used:
//   vocab                      {token: id}
//   merges                     ranked merge rules, either "left right" strings (older files) or
//                              ["left", "right"] pairs (newer files); earlier = higher priority
//   unk_token, fuse_unk        id for characters missing from the vocabulary (runs fused if set)
//   byte_fallback              spell missing characters as <0xHH> byte tokens instead of unk
//   ignore_merges              a piece that is itself in the vocabulary maps to that id directly
//   continuing_subword_prefix, end_of_word_suffix
//                              decorations of non-first / last symbols (null or "" for GPT-style)
//   dropout                    must be null or 0 (inference only)
//
// Merging runs a min-heap over (rank, position) of adjacent symbol pairs, always applying the
// lowest-ranked merge, leftmost first, until no adjacent pair has a rule. Results for short pieces
// are cached (thread-safe).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/tokenizer/model.h"

namespace tessera::tokenizer {

absl::StatusOr<std::unique_ptr<Model>> ParseBpeModel(const nlohmann::json& j);

}  // namespace tessera::tokenizer
