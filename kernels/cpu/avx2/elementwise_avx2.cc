#include "kernels/cpu/avx2/avx2_ops.h"
#include "kernels/cpu/avx2/vec_avx2.h"
#include "kernels/cpu/simd/elementwise_simd.h"

namespace tessera::kernels::avx2 {

void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  simd::RmsNorm<V>(x, weight, rows, dim, eps, y);
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) { simd::SiluMul<V>(gate, up, n, out); }

void Softmax(float* x, int64_t rows, int64_t n) { simd::Softmax<V>(x, rows, n); }

}  // namespace tessera::kernels::avx2
