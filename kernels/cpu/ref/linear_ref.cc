#include <cstring>

#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels::ref {
namespace {

float WeightAt(const void* w, DType dt, int64_t i) {
  switch (dt) {
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(w)[i]);
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(w)[i]);
    case DType::kF32:
      break;
  }
  return static_cast<const float*>(w)[i];
}

}  // namespace

// y[m, n] = Σ_k x[m, k] · w[n, k], one f32 accumulator per output, parallel over n.
void Linear(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N, float* y) {
  auto cols = [&](int64_t n0, int64_t n1) {
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = n0; n < n1; ++n) {
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc += x[m * K + k] * WeightAt(w, w_dtype, n * K + k);
        y[m * N + n] = acc;
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(N, cols, 16);
  } else {
    cols(0, N);
  }
}

}  // namespace tessera::kernels::ref
