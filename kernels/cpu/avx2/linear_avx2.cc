#include "kernels/cpu/avx2/avx2_ops.h"
#include "kernels/cpu/avx2/vec_avx2.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/simd/linear_simd.h"
#include "kernels/cpu/simd/quant_x86.h"

namespace tessera::kernels::avx2 {
namespace {

// 6×16 register tile: 12 accumulator registers, 2 for the b row, 1 for the broadcast a.
constexpr LinearKernels kKernels{
    .skinny = simd::Skinny<V>,
    .max_skinny_m = 4,
    .mr = 6,
    .nr = 16,
    .kc = 256,
    .mc = 120,
    .nc = 2048,
    .pack_a = simd::PackA<V, 6>,
    .pack_b = simd::QuantX86<V>::PackB<16>,
    .micro = simd::Micro<V, 6, 2>,
    .quant_rows = simd::QuantX86<V>::Rows,
    .quantize = simd::QuantX86<V>::Quantize,
    .quant_skinny = simd::QuantX86<V>::SkinnyF32,
};

}  // namespace

void Linear(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N, float* y,
            Activations act, CpuWorkspace* ws) {
  LinearDriver(kKernels, pool, x, M, K, w, w_dtype, N, y, act, *ws);
}

}  // namespace tessera::kernels::avx2
