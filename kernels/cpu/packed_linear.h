// Quantized weight matrices rearranged once, at load, for AVX-512 VNNI integer dot products.
//
// The GGUF block layouts interleave each block's scales with its quants, so a SIMD dot product
// spends most of its instructions unpacking one 32-element block at a time. PackForLinear copies a
// Q4_1 or Q8_0 matrix into groups of four blocks per row whose quants are contiguous and whose
// scales follow them; the kernel (avx512/packed_vnni.cc) then multiplies four blocks with a few
// 512-bit instructions (vpdpbusd) per row of x. The arithmetic is the int8 path's
// (Activations::kInt8): the same q8_1 / q8_0 activation blocks, the same exact integer block dot
// products, scaled and summed in f32 (in another order). With Activations::kF32 and a few rows of
// x, the same groups are widened to f32 in registers and multiplied with x as it is (the result
// of Linear(..., Activations::kF32) up to the order of the f32 sums); more rows of x go to
// Linear's f32 GEMM on the original weights.
//
// Row layout, G = ceil(K/128) groups of four blocks (blocks past K/32 are zero: d = m = 0, q = 0):
//   Q4_1: [64 B: nibbles of blocks 4g..4g+3, 16 B each][8 B: d, 4 × f16][8 B: m, 4 × f16]  (80 B)
//   Q8_0: [128 B: int8 quants of blocks 4g..4g+3, 32 B each][8 B: d, 4 × f16]               (136 B)
//
//   auto packed = PackForLinear(w, DType::kQ4_1, N, K);   // nullptr: use Linear on w
//   if (packed) LinearPacked(pool, x, M, *packed, y); else Linear(pool, x, M, K, w, DType::kQ4_1, N, y);
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/workspace.h"
#include "kernels/dtype.h"

namespace tessera::kernels {

struct PackedLinear {
  DType dtype = DType::kQ4_1;      // of the original weights
  int64_t n = 0;                   // rows (outputs)
  int64_t k = 0;                   // columns (inputs)
  int64_t groups = 0;              // groups of four blocks per row
  int64_t row_bytes = 0;           // groups · group bytes
  std::vector<uint8_t> data;       // n · row_bytes
  const void* original = nullptr;  // the weights packed (they must outlive this copy)
};

// Bytes of one group of four blocks in a packed row of `dt` (Q4_1: 80, Q8_0: 136), 0 for types
// without a packed layout.
int64_t PackedGroupBytes(DType dt);

// Whether the CPU runs the packed kernel (AVX-512 with VNNI) and the active ISA is AVX-512.
bool PackedLinearAvailable();

// The packed copy of w ([N, K] of `dt`, as Linear takes it), or nullptr when `dt` has no packed
// layout or PackedLinearAvailable() is false. Requires LinearSupports(dt, K).
std::unique_ptr<PackedLinear> PackForLinear(const void* w, DType dt, int64_t N, int64_t K);

// y[M, N] = x[M, K] · wᵀ as Linear(..., act) on the original weights gives it (up to the order of
// the f32 sums). Requires PackedLinearAvailable().
// `workspace`: as for Linear (nullptr: one local to the call).
void LinearPacked(ThreadPool* pool, const float* x, int64_t M, const PackedLinear& w, float* y,
                  Activations act = Activations::kInt8, CpuWorkspace* workspace = nullptr);

// Whether LinearPackedMany may take a and b together: the same dtype and k.
inline bool PackedAlike(const PackedLinear& a, const PackedLinear& b) { return a.dtype == b.dtype && a.k == b.k; }

// ys[i][M, ws[i]->n] = x[M, K] · ws[i]ᵀ for matrices that are all PackedAlike, as one pass over the
// pool: x is quantized (or padded) once and the threads share out the rows of all the matrices
// together (one synchronisation instead of one per matrix). Each ys[i] has row stride ws[i]->n.
void LinearPackedMany(ThreadPool* pool, const float* x, int64_t M, std::span<const PackedLinear* const> ws,
                      std::span<float* const> ys, Activations act = Activations::kInt8,
                      CpuWorkspace* workspace = nullptr);

}  // namespace tessera::kernels
