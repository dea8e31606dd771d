#include "server/tokenizer/split.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tessera::tokenizer {

absl::StatusOr<SplitBehavior> ParseSplitBehavior(std::string_view name) {
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return absl::InvalidArgumentError(absl::StrCat("unsupported split behavior '", std::string(name), "'"));
}

std::vector<Segment> SegmentsFromMatches(const std::vector<std::pair<size_t, size_t>>& matches, size_t size) {
  std::vector<Segment> out;
  if (size == 0) return out;
  size_t prev = 0;
  for (const auto& [start, end] : matches) {
    if (prev != start) out.push_back({prev, start, false});
    out.push_back({start, end, true});
    prev = end;
  }
  if (prev != size) out.push_back({prev, size, false});
  return out;
}

std::vector<std::pair<size_t, size_t>> ApplySplitBehavior(const std::vector<Segment>& segments,
                                                          SplitBehavior behavior) {
  std::vector<std::pair<size_t, size_t>> ranges;
  ranges.reserve(segments.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Segment& s : segments) ranges.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::kRemoved:
      for (const Segment& s : segments) {
        if (!s.is_match) ranges.emplace_back(s.start, s.end);
      }
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Segment& s : segments) {
        if (s.is_match == previous_match && !ranges.empty()) {
          ranges.back().second = s.end;
        } else {
          ranges.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Segment& s : segments) {
        if (s.is_match && !previous_match && !ranges.empty()) {
          ranges.back().second = s.end;
        } else {
          ranges.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      // Mirror image of kMergedWithPrevious: walk from the end.
      bool previous_match = false;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !ranges.empty()) {
          ranges.back().first = it->start;
        } else {
          ranges.emplace_back(it->start, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(ranges.begin(), ranges.end());
      break;
    }
  }
  std::erase_if(ranges, [](const auto& r) { return r.first == r.second; });
  return ranges;
}

}  // namespace tessera::tokenizer
