// SpLayout: which tokens of a sequence each sequence-parallel rank holds.
//
// Causal ("zigzag", as in ring-flash-attention and TokenRing): the sequence, padded to a multiple
// of 2N tokens, is cut into 2N chunks c_0 … c_{2N-1} of `chunk` tokens; rank r holds c_r followed by
// c_{2N-1-r}, so every rank has the same amount of causal work. Non-causal: the sequence is padded
// to a multiple of N and rank r holds the contiguous chunk r. Padding tokens sit at absolute
// positions >= total_tokens; they are never attended to, and their output rows are zero.
//
//   TS_ASSIGN_OR_RETURN(SpLayout layout, SpLayout::Make({.total_tokens = 1000, .world = 4, .causal = true}));
//   // layout.local_tokens == 2 * layout.chunk == 250; rank 1 holds positions [125,250) and [750,875).
//   layout.ScatterRows(full_q, row_floats, /*rank=*/1, local_q);
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::parallel {

struct SpLayout {
  struct Options {
    int64_t total_tokens = 0;  // real tokens S (> 0)
    int world = 1;             // ranks N
    bool causal = true;        // zigzag when true, contiguous otherwise
    // Chunks hold a multiple of this many tokens (the KV cache's block size, so that every chunk
    // starts on a block boundary and a block belongs to one rank).
    int64_t chunk_multiple = 1;
  };
  static absl::StatusOr<SpLayout> Make(const Options& options);

  // One contiguous run of a rank's local rows: rows [local_begin, local_begin + length) hold
  // absolute positions [pos_begin, pos_begin + length).
  struct Segment {
    int64_t local_begin = 0;
    int64_t pos_begin = 0;
    int64_t length = 0;
  };

  int64_t total_tokens = 0;   // S
  int64_t padded_tokens = 0;  // S rounded up to a multiple of 2N (causal) or N
  int world = 1;
  bool causal = true;
  int64_t chunk = 0;         // tokens per chunk: padded/(2N) (causal) or padded/N
  int64_t local_tokens = 0;  // rows per rank: 2·chunk (causal) or chunk

  // Rank r's segments in local-row order (two for causal, one otherwise).
  std::vector<Segment> Segments(int rank) const;
  // Absolute position of `rank`'s local row `row`.
  int64_t Position(int rank, int64_t row) const;
  // Number of real (non-padding) positions in [pos_begin, pos_begin + length).
  int64_t ValidCount(int64_t pos_begin, int64_t length) const;
  // Positions of every local row of `rank`, as the model would pass them: [local_tokens].
  std::vector<int32_t> Positions(int rank) const;

  // Copies rank r's rows out of a full-sequence tensor full: [total_tokens, row_floats] into
  // local: [local_tokens, row_floats]; padding rows become 0.
  void ScatterRows(const float* full, int64_t row_floats, int rank, float* local) const;
  // The inverse: writes rank r's real rows of local into full.
  void GatherRows(const float* local, int64_t row_floats, int rank, float* full) const;
};

}  // namespace tessera::parallel
