// Shared (ISA-independent) blocking and threading for Linear, y[M,N] = x[M,K] · w[N,K]ᵀ.
//
// An ISA provides the inner kernels in a LinearKernels table; LinearDriver does the rest:
//  * M <= max_skinny_m (decode): each thread streams a contiguous range of weight rows once,
//    computing all M outputs of each row (memory-bound).
//  * larger M (prefill): a blocked GEMM. For each block of kc columns of K, w is packed into
//    nr-wide panels (bf16/f16 → f32 while packing), x into mr-tall panels, and the micro-kernel
//    computes mr×nr tiles of y from them in registers. Threads split N (or M when N is small).
//    Cache levels: micro-panel of b (kc·nr floats) in L1, block of a (mc·kc) in L2, panel of b
//    (kc·nc) in L3.
//  * quantized weights (dtype.h) with Activations::kInt8, every M: the rows of x are quantized to
//    Q8Blocks once and quant_rows computes integer block dot products (llama.cpp's
//    ggml_vec_dot_<type>_q8_<0|1>), threads over N. Each thread walks its rows in tiles that stay in
//    L1 and runs every group of up to kQuantRowsMaxM rows of x over a tile before moving on.
//  * quantized weights with Activations::kF32: M <= max_skinny_m takes quant_skinny (each weight
//    block dequantized in registers, times the f32 rows of x); larger M the GEMM above, pack_b
//    dequantizing whole blocks (kc is then a multiple of the block size).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>

#include "kernels/cpu/ops.h"

namespace tessera::kernels {

// 32 activations quantized to int8, x[i] ≈ d·q[i], and s ≈ d·Σq (the term that a weight block's
// offset or min multiplies). For the weight types whose llama.cpp dot product takes block_q8_0 or
// block_q8_1 activations (Q8_0, Q4_0, Q5_0 → q8_0; Q4_1, Q5_1 → q8_1) this is that block exactly:
//     amax = max|x|,  d = amax / 127,  q = round_half_even(x · (127 / amax))  (0 when amax = 0),
//     d and s = d·Σq each rounded to f16 (stored here widened back to f32).
// The K-quants use the same q and d and s in f32 (llama.cpp quantizes them per 256 into block_q8_K
// instead; per 32 is at least as accurate).
struct Q8Block {
  float d;
  float s;
  int8_t q[32];
};

// Whether Q8Block::d and ::s are rounded to f16 for weights of `w_dtype` (see Q8Block).
constexpr bool Q8ScalesAreF16(DType w_dtype) {
  return w_dtype == DType::kQ8_0 || w_dtype == DType::kQ4_0 || w_dtype == DType::kQ4_1 || w_dtype == DType::kQ5_0 ||
         w_dtype == DType::kQ5_1;
}

// xq[b] for b < K/32 from x[0, K), for multiplying weights of `w_dtype`; K a multiple of 32. The
// scalar statement of LinearKernels::quantize: every ISA's version gives the same bits.
void QuantizeActivations(const float* x, int64_t K, DType w_dtype, Q8Block* xq);

// The most rows of x that one LinearKernels::quant_rows call takes.
inline constexpr int64_t kQuantRowsMaxM = 4;

// Calls f(std::integral_constant<int, M>{}) for 1 <= M <= kQuantRowsMaxM, so that kernels take the
// row count as a template argument.
template <class F>
void WithRowCount(int64_t M, F&& f) {
  static_assert(kQuantRowsMaxM == 4);
  switch (M) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    default:
      return f(std::integral_constant<int, 4>{});
  }
}

// Runs row(m) for every row m < M of x (quantizing or padding activations), over the pool when
// M > 1, in chunks of at least 16 Ki elements.
template <class F>
void ForEachXRow(ThreadPool* pool, int64_t M, int64_t K, F&& row) {
  auto rows = [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) row(m);
  };
  if (pool != nullptr && M > 1) {
    pool->ParallelFor(M, rows, std::max<int64_t>(1, 16384 / K));
  } else {
    rows(0, M);
  }
}

// The int8 paths' schedule over the rows of one or more weight matrices (heights[i] rows of
// row_bytes each, all multiplied with the same M rows of x): each matrix's rows in tiles of about
// 16 KiB (L1), each tile run against all rows of x kQuantRowsMaxM at a time, so that a prefill
// reads every weight block from memory once: rows_of(i, m, t0, t1) computes rows
// [m, m + kQuantRowsMaxM) of matrix i's output for its rows [t0, t1). The pool shares out the rows
// of all matrices together, at least 64 KiB of weights per claimed chunk so that claiming costs
// nothing in comparison.
template <class F>
void ForEachRowTile(ThreadPool* pool, int64_t M, std::span<const int64_t> heights, int64_t row_bytes, F&& rows_of) {
  const int64_t tile = std::max<int64_t>(1, 16384 / row_bytes);
  const int64_t grain = std::max<int64_t>(1, 65536 / row_bytes);
  int64_t total = 0;
  for (int64_t h : heights) total += h;
  auto rows = [&](int64_t r0, int64_t r1) {
    int64_t offset = 0;  // of matrix i's first row among all rows
    for (size_t i = 0; i < heights.size() && offset < r1; offset += heights[i], ++i) {
      const int64_t n0 = std::max<int64_t>(r0 - offset, 0);
      const int64_t n1 = std::min<int64_t>(r1 - offset, heights[i]);
      for (int64_t t0 = n0; t0 < n1; t0 += tile) {
        const int64_t t1 = std::min(n1, t0 + tile);
        for (int64_t m = 0; m < M; m += kQuantRowsMaxM) rows_of(i, m, t0, t1);
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(total, rows, M <= kQuantRowsMaxM ? grain : std::min(grain, tile));
  } else {
    rows(0, total);
  }
}

struct LinearKernels {
  // y[m, n] = Σ_k x[m, k] · w[n, k] for m < M, n in [n0, n1). x: [M, K]; w: [N, K] of `dt`;
  // y: row stride ldy. M <= max_skinny_m.
  void (*skinny)(const float* x, int64_t M, int64_t K, const void* w, DType dt, int64_t n0, int64_t n1, float* y,
                 int64_t ldy);
  int64_t max_skinny_m;
  // Register tile of the micro-kernel and cache blocking (kc: K block, mc: M block, nc: N block).
  int64_t mr, nr, kc, mc, nc;
  // dst[p][kk][i] = x[p·mr + i, kk] for i < mr (0 past m rows), kk < kc: ceil(m/mr) panels of kc·mr.
  // x: row stride ldx.
  void (*pack_a)(const float* x, int64_t ldx, int64_t m, int64_t kc, float* dst);
  // dst[p][kk][j] = f32(w[p·nr + j, kk]) for j < nr (0 past n rows), kk < kc: ceil(n/nr) panels.
  // w points at the first element of the block; ldw is its row stride in elements. For a quantized
  // dt, w is at a block boundary and kc, ldw are multiples of the block size.
  void (*pack_b)(const void* w, DType dt, int64_t ldw, int64_t n, int64_t kc, float* dst);
  // c[i, j] (+)= Σ_kk a[kk][i] · b[kk][j] for i < m <= mr, j < n <= nr; c: row stride ldc.
  // Adds to c when `accumulate`, else overwrites it. a, b are 64-byte-aligned packed panels.
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m, int64_t n,
                bool accumulate);
  // Quantized w: y[m, n] = Σ_b dot(block b of w row n, xq[m·(K/32) + b]) for m < M, n in [n0, n1).
  // xq: [M, K/32]; w: N rows of row_bytes bytes of `dt` blocks; y: row stride ldy.
  // 1 <= M <= kQuantRowsMaxM.
  void (*quant_rows)(DType dt, const Q8Block* xq, int64_t M, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0,
                     int64_t n1, float* y, int64_t ldy);
  // QuantizeActivations, bit for bit.
  void (*quantize)(const float* x, int64_t K, DType w_dtype, Q8Block* xq);
  // Quantized w, f32 x: y[m, n] = Σ_k x[m, k] · dequant(w)[n, k] for m < M <= max_skinny_m, n in
  // [n0, n1). x: [M, K]; w: N rows of row_bytes bytes of `dt` blocks; y: row stride ldy.
  void (*quant_skinny)(DType dt, const float* x, int64_t M, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0,
                       int64_t n1, float* y, int64_t ldy);
};

// Scratch (quantized activations, GEMM panels) comes from `ws`.
void LinearDriver(const LinearKernels& kern, ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w,
                  DType w_dtype, int64_t N, float* y, Activations act, CpuWorkspace& ws);

}  // namespace tessera::kernels
