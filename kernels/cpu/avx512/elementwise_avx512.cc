#include "kernels/cpu/avx512/avx512_ops.h"
#include "kernels/cpu/avx512/vec_avx512.h"
#include "kernels/cpu/simd/elementwise_simd.h"

namespace tessera::kernels::avx512 {

void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  simd::RmsNorm<V>(x, weight, rows, dim, eps, y);
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) { simd::SiluMul<V>(gate, up, n, out); }

void Softmax(float* x, int64_t rows, int64_t n) { simd::Softmax<V>(x, rows, n); }

}  // namespace tessera::kernels::avx512
