// Scalar reference implementations of every op in ops.h (same contracts). They are the fallback
// on CPUs without AVX2, the slots that SIMD tables share where SIMD gains nothing, and the
// readable statement of what each op computes.
#pragma once

#include <cstdint>

#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/ops.h"

namespace tessera::kernels::ref {

void Linear(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N, float* y,
            Activations act, CpuWorkspace* ws);
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y);
void RopeNeox(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim, const int32_t* positions,
              const float* inv_freq);
void RopeInterleaved(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim,
                     const int32_t* positions, const float* inv_freq);
void Add(float* x, const float* y, int64_t n);
void SiluMul(const float* gate, const float* up, int64_t n, float* out);
void Softmax(float* x, int64_t rows, int64_t n);
void TopK(const float* x, int64_t n, int64_t k, int32_t* idx, float* val);
void AttentionWithLse(ThreadPool* pool, const AttentionParams& p);
// LinearKernels::quant_rows (linear_driver.h), scalar.
void QuantRows(DType dt, const Q8Block* xq, int64_t M, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0,
               int64_t n1, float* y, int64_t ldy);

}  // namespace tessera::kernels::ref
