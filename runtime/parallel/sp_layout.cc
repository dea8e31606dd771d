#include "runtime/parallel/sp_layout.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace tessera::parallel {

absl::StatusOr<SpLayout> SpLayout::Make(const Options& options) {
  if (options.world < 1) return absl::InvalidArgumentError(absl::StrFormat("SpLayout: world %d < 1", options.world));
  if (options.total_tokens < 1 || options.total_tokens > (int64_t{1} << 31) - 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("SpLayout: total_tokens %d out of range [1, 2^31)", options.total_tokens));
  }
  if (options.chunk_multiple < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("SpLayout: chunk_multiple %d < 1", options.chunk_multiple));
  }
  SpLayout l;
  l.total_tokens = options.total_tokens;
  l.world = options.world;
  l.causal = options.causal;
  const int64_t parts = options.causal ? 2 * int64_t{options.world} : options.world;
  const int64_t m = options.chunk_multiple;
  l.chunk = ((options.total_tokens + parts - 1) / parts + m - 1) / m * m;
  l.padded_tokens = l.chunk * parts;
  l.local_tokens = options.causal ? 2 * l.chunk : l.chunk;
  return l;
}

std::vector<SpLayout::Segment> SpLayout::Segments(int rank) const {
  if (!causal) return {Segment{0, rank * chunk, chunk}};
  return {Segment{0, rank * chunk, chunk}, Segment{chunk, (2 * int64_t{world} - 1 - rank) * chunk, chunk}};
}

int64_t SpLayout::Position(int rank, int64_t row) const {
  for (const Segment& s : Segments(rank)) {
    if (row >= s.local_begin && row < s.local_begin + s.length) return s.pos_begin + (row - s.local_begin);
  }
  return -1;
}

int64_t SpLayout::ValidCount(int64_t pos_begin, int64_t length) const {
  return std::clamp<int64_t>(total_tokens - pos_begin, 0, length);
}

std::vector<int32_t> SpLayout::Positions(int rank) const {
  std::vector<int32_t> pos(local_tokens);
  for (const Segment& s : Segments(rank)) {
    for (int64_t i = 0; i < s.length; ++i) pos[s.local_begin + i] = static_cast<int32_t>(s.pos_begin + i);
  }
  return pos;
}

void SpLayout::ScatterRows(const float* full, int64_t row_floats, int rank, float* local) const {
  for (const Segment& s : Segments(rank)) {
    const int64_t valid = ValidCount(s.pos_begin, s.length);
    std::memcpy(local + s.local_begin * row_floats, full + s.pos_begin * row_floats,
                sizeof(float) * valid * row_floats);
    std::memset(local + (s.local_begin + valid) * row_floats, 0, sizeof(float) * (s.length - valid) * row_floats);
  }
}

void SpLayout::GatherRows(const float* local, int64_t row_floats, int rank, float* full) const {
  for (const Segment& s : Segments(rank)) {
    const int64_t valid = ValidCount(s.pos_begin, s.length);
    std::memcpy(full + s.pos_begin * row_floats, local + s.local_begin * row_floats,
                sizeof(float) * valid * row_floats);
  }
}

}  // namespace tessera::parallel
