#include "kernels/cpu/avx512/avx512_ops.h"
#include "kernels/cpu/avx512/vec_avx512.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/simd/linear_simd.h"
#include "kernels/cpu/simd/quant_x86.h"

namespace tessera::kernels::avx512 {
namespace {

// 8×32 register tile: 16 accumulator registers, 2 for the b row, 1 for the broadcast a.
constexpr LinearKernels kKernels{
    .skinny = simd::Skinny<V>,
    .max_skinny_m = 4,
    .mr = 8,
    .nr = 32,
    .kc = 256,
    .mc = 128,
    .nc = 2048,
    .pack_a = simd::PackA<V, 8>,
    .pack_b = simd::QuantX86<V>::PackB<32>,
    .micro = simd::Micro<V, 8, 2>,
    .quant_rows = simd::QuantX86<V>::Rows,
    .quantize = simd::QuantX86<V>::Quantize,
    .quant_skinny = simd::QuantX86<V>::SkinnyF32,
};

}  // namespace

void Linear(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N, float* y,
            Activations act, CpuWorkspace* ws) {
  LinearDriver(kKernels, pool, x, M, K, w, w_dtype, N, y, act, *ws);
}

}  // namespace tessera::kernels::avx512
