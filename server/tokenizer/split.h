// How a pattern's matches cut a piece of text, shared by the pre-tokenizers.
//
// A pattern turns a string into consecutive segments covering it, each flagged as a match or not.
// The split behaviour then decides what becomes of the matched segments (from tokenizer.json):
//   Isolated            every segment is its own piece          "a-b" on "-" -> "a" "-" "b"
//   Removed             matched segments are dropped             -> "a" "b"
//   MergedWithPrevious  a match is glued to the piece before it  -> "a-" "b"
//   MergedWithNext      a match is glued to the piece after it   -> "a" "-b"
//   Contiguous          runs of equal flags are merged           "a--b" -> "a" "--" "b"
// Empty pieces are never produced.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::tokenizer {

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

absl::StatusOr<SplitBehavior> ParseSplitBehavior(std::string_view name);

struct Segment {
  size_t start;
  size_t end;
  bool is_match;
};

// Turns sorted, non-overlapping match ranges into segments covering [0, size).
std::vector<Segment> SegmentsFromMatches(const std::vector<std::pair<size_t, size_t>>& matches, size_t size);

// Applies `behavior` and returns the [start, end) ranges of the resulting non-empty pieces.
std::vector<std::pair<size_t, size_t>> ApplySplitBehavior(const std::vector<Segment>& segments, SplitBehavior behavior);

}  // namespace tessera::tokenizer
