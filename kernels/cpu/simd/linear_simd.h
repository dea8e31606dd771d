// Inner kernels of Linear (y[M,N] = x[M,K] · w[N,K]ᵀ) over a vector type V, for LinearKernels
// (see linear_driver.h for the contracts and simd/README.md for V).
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

namespace tessera::kernels::simd {

// W::kWidth consecutive weights from w (of dtype D) as f32.
template <class V, DType D>
typename V::Reg LoadWeights(const void* w, int64_t i) {
  if constexpr (D == DType::kF32) {
    return V::Load(static_cast<const float*>(w) + i);
  } else if constexpr (D == DType::kBF16) {
    return V::LoadBf16(static_cast<const uint16_t*>(w) + i);
  } else {
    return V::LoadF16(static_cast<const uint16_t*>(w) + i);
  }
}

template <class V, DType D>
float WeightAt(const void* w, int64_t i) {
  if constexpr (D == DType::kF32) {
    return static_cast<const float*>(w)[i];
  } else if constexpr (D == DType::kBF16) {
    return V::Bf16(static_cast<const uint16_t*>(w)[i]);
  } else {
    return V::F16(static_cast<const uint16_t*>(w)[i]);
  }
}

// y[m, n + r] = x[m, :] · w[n + r, :] for m < kM, r < kR: each weight row is read once and used for
// all kM inputs. kU independent accumulators per (m, r) pair cover the FMA latency, so that the
// loop keeps up with memory even when kM · kR is small.
template <class V, DType D, int kM, int kR, int kU>
void SkinnyTile(const float* x, int64_t K, const void* w, int64_t n, float* y, int64_t ldy) {
  constexpr int64_t W = V::kWidth;
  constexpr int64_t kEsize = D == DType::kF32 ? 4 : 2;
  typename V::Reg acc[kU][kM][kR];
#pragma GCC unroll 16
  for (int u = 0; u < kU; ++u) {
#pragma GCC unroll 16
    for (int m = 0; m < kM; ++m) {
#pragma GCC unroll 16
      for (int r = 0; r < kR; ++r) acc[u][m][r] = V::Zero();
    }
  }
  // Rows are only a few KiB long, and hardware prefetchers stop at 4 KiB page boundaries, so each
  // new row would start cold: prefetch the next tile's rows at the same column, a line at a time.
  constexpr int64_t kStep = kU * W;
  constexpr int64_t kStepBytes = kStep * kEsize;
  static_assert(64 % kStepBytes == 0 || kStepBytes % 64 == 0);
  const char* next = static_cast<const char*>(w) + (n + kR) * K * kEsize;
  int64_t k = 0;
  for (; k + kStep <= K; k += kStep) {
    if ((k * kEsize) % 64 == 0) {
#pragma GCC unroll 16
      for (int r = 0; r < kR; ++r) {
#pragma GCC unroll 4
        for (int64_t b = 0; b < kStepBytes; b += 64) V::Prefetch(next + (r * K + k) * kEsize + b);
      }
    }
#pragma GCC unroll 16
    for (int u = 0; u < kU; ++u) {
      typename V::Reg wv[kR];
#pragma GCC unroll 16
      for (int r = 0; r < kR; ++r) wv[r] = LoadWeights<V, D>(w, (n + r) * K + k + u * W);
#pragma GCC unroll 16
      for (int m = 0; m < kM; ++m) {
        const auto xv = V::Load(x + m * K + k + u * W);
#pragma GCC unroll 16
        for (int r = 0; r < kR; ++r) acc[u][m][r] = V::Fma(xv, wv[r], acc[u][m][r]);
      }
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < kM; ++m) {
#pragma GCC unroll 16
    for (int r = 0; r < kR; ++r) {
      auto sum = acc[0][m][r];
#pragma GCC unroll 16
      for (int u = 1; u < kU; ++u) sum = V::Add(sum, acc[u][m][r]);
      float s = V::ReduceAdd(sum);
      for (int64_t kk = k; kk < K; ++kk) s += x[m * K + kk] * WeightAt<V, D>(w, (n + r) * K + kk);
      y[m * ldy + n + r] = s;
    }
  }
}

// Rows [n0, n1) in tiles of kR rows with 8 accumulators, then one row at a time.
template <class V, DType D, int kM>
void SkinnyRows(const float* x, int64_t K, const void* w, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  constexpr int kR = kM <= 2 ? 4 : 2;
  constexpr int kU = kM == 1 ? 2 : 1;
  int64_t n = n0;
  for (; n + kR <= n1; n += kR) SkinnyTile<V, D, kM, kR, kU>(x, K, w, n, y, ldy);
  for (; n < n1; ++n) SkinnyTile<V, D, kM, 1, 2>(x, K, w, n, y, ldy);
}

template <class V, DType D>
void SkinnyDtype(const float* x, int64_t M, int64_t K, const void* w, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  switch (M) {
    case 1:
      return SkinnyRows<V, D, 1>(x, K, w, n0, n1, y, ldy);
    case 2:
      return SkinnyRows<V, D, 2>(x, K, w, n0, n1, y, ldy);
    case 3:
      return SkinnyRows<V, D, 3>(x, K, w, n0, n1, y, ldy);
    default:
      return SkinnyRows<V, D, 4>(x, K, w, n0, n1, y, ldy);
  }
}

// LinearKernels::skinny for M <= 4.
template <class V>
void Skinny(const float* x, int64_t M, int64_t K, const void* w, DType dt, int64_t n0, int64_t n1, float* y,
            int64_t ldy) {
  switch (dt) {
    case DType::kF32:
      return SkinnyDtype<V, DType::kF32>(x, M, K, w, n0, n1, y, ldy);
    case DType::kBF16:
      return SkinnyDtype<V, DType::kBF16>(x, M, K, w, n0, n1, y, ldy);
    case DType::kF16:
      return SkinnyDtype<V, DType::kF16>(x, M, K, w, n0, n1, y, ldy);
    default:  // quantized types take LinearKernels::quant_rows
      return;
  }
}

// LinearKernels::pack_a: dst[p][kk][i] = x[p·kMr + i, kk], zero rows past m.
template <class V, int kMr>
void PackA(const float* x, int64_t ldx, int64_t m, int64_t kc, float* dst) {
  for (int64_t p = 0; p < m; p += kMr, dst += kMr * kc) {
    for (int i = 0; i < kMr; ++i) {
      if (p + i < m) {
        const float* row = x + (p + i) * ldx;
        for (int64_t kk = 0; kk < kc; ++kk) dst[kk * kMr + i] = row[kk];
      } else {
        for (int64_t kk = 0; kk < kc; ++kk) dst[kk * kMr + i] = 0.0f;
      }
    }
  }
}

template <class V, DType D, int kNr>
void PackBDtype(const void* w, int64_t ldw, int64_t n, int64_t kc, float* dst) {
  for (int64_t p = 0; p < n; p += kNr, dst += kNr * kc) {
    for (int j = 0; j < kNr; ++j) {
      if (p + j < n) {
        const int64_t row = (p + j) * ldw;
        for (int64_t kk = 0; kk < kc; ++kk) dst[kk * kNr + j] = WeightAt<V, D>(w, row + kk);
      } else {
        for (int64_t kk = 0; kk < kc; ++kk) dst[kk * kNr + j] = 0.0f;
      }
    }
  }
}

// LinearKernels::pack_b: dst[p][kk][j] = f32(w[p·kNr + j, kk]), zero rows past n.
template <class V, int kNr>
void PackB(const void* w, DType dt, int64_t ldw, int64_t n, int64_t kc, float* dst) {
  switch (dt) {
    case DType::kF32:
      return PackBDtype<V, DType::kF32, kNr>(w, ldw, n, kc, dst);
    case DType::kBF16:
      return PackBDtype<V, DType::kBF16, kNr>(w, ldw, n, kc, dst);
    case DType::kF16:
      return PackBDtype<V, DType::kF16, kNr>(w, ldw, n, kc, dst);
    default:  // quantized types never reach the GEMM (LinearDriver)
      return;
  }
}

// LinearKernels::micro with kMr × (kNv · kWidth) accumulators held in registers:
//   acc[i][:] += a[kk][i] · b[kk][:]  for kk < kc (one broadcast and kNv FMAs per i and kk).
template <class V, int kMr, int kNv>
void Micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  constexpr int64_t W = V::kWidth;
  constexpr int64_t kNr = kNv * W;
  typename V::Reg acc[kMr][kNv];
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kNv; ++j) acc[i][j] = V::Zero();
  }
  for (int64_t kk = 0; kk < kc; ++kk, a += kMr, b += kNr) {
    typename V::Reg bv[kNv];
#pragma GCC unroll 16
    for (int j = 0; j < kNv; ++j) bv[j] = V::Load(b + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < kMr; ++i) {
      const auto av = V::Broadcast(a + i);
#pragma GCC unroll 16
      for (int j = 0; j < kNv; ++j) acc[i][j] = V::Fma(av, bv[j], acc[i][j]);
    }
  }
  if (m == kMr && n == kNr) {
#pragma GCC unroll 16
    for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 16
      for (int j = 0; j < kNv; ++j) {
        float* cp = c + i * ldc + j * W;
        V::Store(cp, accumulate ? V::Add(V::Load(cp), acc[i][j]) : acc[i][j]);
      }
    }
    return;
  }
  // Edge tile: spill to a local tile and copy the valid m × n corner.
  alignas(64) float tile[kMr * kNr];
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kNv; ++j) V::Store(tile + i * kNr + j * W, acc[i][j]);
  }
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0.0f) + tile[i * kNr + j];
  }
}

}  // namespace tessera::kernels::simd
