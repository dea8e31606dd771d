// The AVX-512 VNNI kernel behind LinearPacked (packed_linear.h), compiled with -mavx512vnni.
// Only call it when PackedLinearAvailable().
#pragma once

#include <cstdint>

#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/packed_linear.h"

namespace tessera::kernels::avx512 {

// Activations of one row of x for one group of four weight blocks:
//   Q4_1: q = [first 16 q of blocks 0..3][last 16 q of blocks 0..3] (the order of the nibbles:
//         low nibbles are a block's first 16 elements), d and s of the four q8_1 blocks;
//   Q8_0: q = the four q8_0 blocks' 32 q each, in order; d; s unused.
// Blocks past K/32 are zero.
struct PackedXGroup {
  int8_t q[128];
  float d[4];
  float s[4];
};

// xg[0, w.groups) ← row x[0, w.k) quantized as Linear's int8 path quantizes it for w.dtype.
// blocks: [w.k / 32] scratch for the row's int8 blocks.
void PackActivations(const PackedLinear& w, const float* x, Q8Block* blocks, PackedXGroup* xg);

// y[m, n] = Σ_g dot(group g of row n, xg[m·w.groups + g]) for m < M <= 4, n in [n0, n1); y: row
// stride ldy.
void PackedRows(const PackedLinear& w, const PackedXGroup* xg, int64_t M, int64_t n0, int64_t n1, float* y,
                int64_t ldy);

// Activations::kF32: y[m, n] = Σ_k x[m, k] · dequant(row n)[k] for m < M <= 4, n in [n0, n1).
// x: [M, w.groups · 128] f32, zero past w.k; sums: [M, w.groups · 4], each 32-element block's sum
// of x (the term a Q4_1 block's m multiplies). y: row stride ldy.
void PackedRowsF32(const PackedLinear& w, const float* x, const float* sums, int64_t M, int64_t n0, int64_t n1,
                   float* y, int64_t ldy);

}  // namespace tessera::kernels::avx512
