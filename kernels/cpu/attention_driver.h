// Shared (ISA-independent) parallel loop for AttentionWithLse. Each ISA supplies the kernel that
// attends a range of flattened (query, head) rows; this file splits the rows over the pool.
#pragma once

#include <cstdint>

#include "kernels/cpu/ops.h"

namespace tessera::kernels {

// Computes p.out / p.lse for rows r in [begin, end), r = query_index · n_heads + head.
using AttendRowsFn = void (*)(const AttentionParams& p, int64_t begin, int64_t end);

// Runs `attend` over all num_q · n_heads rows, in parallel when pool is non-null.
void RunAttention(ThreadPool* pool, const AttentionParams& p, AttendRowsFn attend);

// The helpers below are also used by files built with wider ISA flags; always_inline keeps any
// out-of-line copy (which the linker could share between ISAs) from being emitted.

// Number of keys query `qi` sees: keys j with k_pos0 + j <= q_pos0 + qi when causal, else all.
[[gnu::always_inline]] inline int64_t VisibleKeys(const AttentionParams& p, int64_t qi) {
  if (!p.causal) return p.num_kv;
  const int64_t n = p.q_pos0 + qi - p.k_pos0 + 1;
  return n < 0 ? 0 : (n > p.num_kv ? p.num_kv : n);
}

// Offset (in floats) of key/value j of kv head `kvh` from p.k / p.v, for both layouts.
[[gnu::always_inline]] inline int64_t KvOffset(const AttentionParams& p, int64_t j, int64_t kvh) {
  int64_t slot = j;
  if (p.block_table != nullptr) slot = int64_t{p.block_table[j / p.block_size]} * p.block_size + j % p.block_size;
  return (slot * p.n_kv_heads + kvh) * p.head_dim;
}

}  // namespace tessera::kernels
