#include "kernels/cpu/attention_driver.h"

namespace tessera::kernels {

void RunAttention(ThreadPool* pool, const AttentionParams& p, AttendRowsFn attend) {
  const int64_t rows = p.num_q * p.n_heads;
  if (rows <= 0) return;
  if (pool == nullptr) {
    attend(p, 0, rows);
    return;
  }
  // A row costs about 4 · head_dim · visible_keys flops; keep chunks above ~64k flops.
  const int64_t work_per_row = 4 * p.head_dim * (p.num_kv > 0 ? p.num_kv : 1);
  const int64_t grain = work_per_row >= 65536 ? 1 : 65536 / work_per_row;
  pool->ParallelFor(
      rows, [&](int64_t begin, int64_t end) { attend(p, begin, end); }, grain);
}

}  // namespace tessera::kernels
