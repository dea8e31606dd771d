#include "kernels/cpu/attention_driver.h"
#include "kernels/cpu/avx512/avx512_ops.h"
#include "kernels/cpu/avx512/vec_avx512.h"
#include "kernels/cpu/simd/attention_simd.h"

namespace tessera::kernels::avx512 {

void AttentionWithLse(ThreadPool* pool, const AttentionParams& p) { RunAttention(pool, p, simd::AttendRows<V>); }

}  // namespace tessera::kernels::avx512
