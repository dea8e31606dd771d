#include <cstring>
#include <vector>

#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels::ref {
namespace {

float WeightAt(const void* w, DType dt, int64_t i) {
  switch (dt) {
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(w)[i]);
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(w)[i]);
    default:
      break;
  }
  return static_cast<const float*>(w)[i];
}

// Quantized w. kInt8: activations quantized per 32 (QuantizeActivations), integer block dot
// products (QuantRows), the same arithmetic as the SIMD versions. kF32: each weight row dequantized
// (DequantizeRow) and multiplied in f32.
void LinearQuantized(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType dt, int64_t N,
                     float* y, Activations act) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t row_bytes = DTypeRowBytes(dt, K);
  const int64_t nb = K / 32;
  std::vector<Q8Block> xq;
  if (act == Activations::kInt8) {
    xq.resize(M * nb);
    for (int64_t m = 0; m < M; ++m) QuantizeActivations(x + m * K, K, dt, xq.data() + m * nb);
  }
  auto cols = [&](int64_t n0, int64_t n1) {
    if (act == Activations::kInt8) return QuantRows(dt, xq.data(), M, K, wb, row_bytes, n0, n1, y, N);
    std::vector<float> row(K);
    for (int64_t n = n0; n < n1; ++n) {
      DequantizeRow(dt, wb + n * row_bytes, K, row.data());
      for (int64_t m = 0; m < M; ++m) {
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc += x[m * K + k] * row[k];
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

}  // namespace

// y[m, n] = Σ_k x[m, k] · w[n, k], one f32 accumulator per output, parallel over n.
// The reference keeps its temporaries local (it is the readable statement, not the fast path).
void Linear(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N, float* y,
            Activations act, CpuWorkspace*) {
  if (DTypeIsQuantized(w_dtype)) return LinearQuantized(pool, x, M, K, w, w_dtype, N, y, act);
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
