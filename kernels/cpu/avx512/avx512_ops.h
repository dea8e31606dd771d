// Ops of the avx512 table whose code is compiled with avx512 flags (same contracts as ops.h).
// Only call them when IsaSupported(Isa::kAvx512).
#pragma once

#include <cstdint>

#include "kernels/cpu/ops.h"

namespace tessera::kernels::avx512 {

void Linear(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N, float* y,
            Activations act, CpuWorkspace* ws);
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y);
void SiluMul(const float* gate, const float* up, int64_t n, float* out);
void Softmax(float* x, int64_t rows, int64_t n);
void AttentionWithLse(ThreadPool* pool, const AttentionParams& p);

}  // namespace tessera::kernels::avx512
