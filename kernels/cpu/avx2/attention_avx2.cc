#include "kernels/cpu/attention_driver.h"
#include "kernels/cpu/avx2/avx2_ops.h"
#include "kernels/cpu/avx2/vec_avx2.h"
#include "kernels/cpu/simd/attention_simd.h"

namespace tessera::kernels::avx2 {

void AttentionWithLse(ThreadPool* pool, const AttentionParams& p) { RunAttention(pool, p, simd::AttendRows<V>); }

}  // namespace tessera::kernels::avx2
