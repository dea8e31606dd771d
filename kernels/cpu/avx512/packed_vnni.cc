// LinearPacked's kernels (see packed_linear.h for the weight layout): per group of four blocks and
// row of x, vpdpbusd sums unsigned weight bytes times signed activation bytes four at a time into
// 16 int32 lanes, lane l belonging to block l / 4 (Q4_1) or, per 64-byte half, block l / 8 (Q8_0),
// so the lanes are scaled per block in one FMA with the block scales spread over them. Q8_0's
// signed weights enter as |w| with the sign moved onto x. Integer sums are exact (at most
// 4·255·127 per lane and instruction); only the f32 scaling and summing round.
#include "kernels/cpu/avx512/packed_vnni.h"

#include <cstring>
#include <vector>

#include "kernels/cpu/avx512/vec_avx512.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/simd/quant_x86.h"

namespace tessera::kernels::avx512 {
namespace {

float HorizontalSum(__m128 v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_movehdup_ps(v));
  return _mm_cvtss_f32(v);
}

__m128 LoadHalves(const uint8_t* p) { return _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }

// y[m, n] for m < kM, n in [n0, n1): for each row of w, a 16-lane (acc) and a 4-lane (accm)
// accumulator per row of x start at zero, add_group(group bytes, g, acc, accm) adds each group g,
// and the lanes of both are summed into y.
template <int kM, class AddGroup>
[[gnu::always_inline]] inline void OverRows(const PackedLinear& w, int64_t n0, int64_t n1, float* y, int64_t ldy,
                                            AddGroup&& add_group) {
  const int64_t group_bytes = PackedGroupBytes(w.dtype);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = w.data.data() + n * w.row_bytes;
    __m512 acc[kM];
    __m128 accm[kM];
    for (int m = 0; m < kM; ++m) {
      acc[m] = _mm512_setzero_ps();
      accm[m] = _mm_setzero_ps();
    }
    for (int64_t g = 0; g < w.groups; ++g) add_group(row + g * group_bytes, g, acc, accm);
    for (int m = 0; m < kM; ++m) y[m * ldy + n] = _mm512_reduce_add_ps(acc[m]) + HorizontalSum(accm[m]);
  }
}

template <int kM>
void RowsQ41(const PackedLinear& w, const PackedXGroup* xg, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const int64_t G = w.groups;
  const __m512i low4 = _mm512_set1_epi8(15);
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  OverRows<kM>(
      w, n0, n1, y,
      ldy, [&](const uint8_t* grp, int64_t g, __m512(&acc)[kM], __m128(&accm)[kM]) __attribute__((always_inline)) {
        const __m512i v = _mm512_loadu_si512(grp);
        const __m512i lo = _mm512_and_si512(v, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        const __m128 dw = LoadHalves(grp + 64);
        const __m128 mw = LoadHalves(grp + 72);
#pragma GCC unroll 4
        for (int m = 0; m < kM; ++m) {
          const PackedXGroup& x = xg[m * G + g];
          __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(x.q));
          p = _mm512_dpbusd_epi32(p, hi, _mm512_loadu_si512(x.q + 64));
          const __m128 scale = _mm_mul_ps(dw, _mm_loadu_ps(x.d));
          accm[m] = _mm_fmadd_ps(mw, _mm_loadu_ps(x.s), accm[m]);
          acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(scale)),
                                   acc[m]);
        }
      });
}

template <int kM>
void RowsQ80(const PackedLinear& w, const PackedXGroup* xg, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const int64_t G = w.groups;
  const __m512i spread0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i spread1 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m512i zero = _mm512_setzero_si512();
  OverRows<kM>(
      w, n0, n1, y,
      ldy, [&](const uint8_t* grp, int64_t g, __m512(&acc)[kM], __m128(&)[kM]) __attribute__((always_inline)) {
        const __m512i w0 = _mm512_loadu_si512(grp);
        const __m512i w1 = _mm512_loadu_si512(grp + 64);
        const __m512i a0 = _mm512_abs_epi8(w0);
        const __m512i a1 = _mm512_abs_epi8(w1);
        const __mmask64 neg0 = _mm512_movepi8_mask(w0);
        const __mmask64 neg1 = _mm512_movepi8_mask(w1);
        const __m128 dw = LoadHalves(grp + 128);
#pragma GCC unroll 4
        for (int m = 0; m < kM; ++m) {
          const PackedXGroup& x = xg[m * G + g];
          const __m512i x0 = _mm512_loadu_si512(x.q);
          const __m512i x1 = _mm512_loadu_si512(x.q + 64);
          const __m512i p0 = _mm512_dpbusd_epi32(zero, a0, _mm512_mask_sub_epi8(x0, neg0, zero, x0));
          const __m512i p1 = _mm512_dpbusd_epi32(zero, a1, _mm512_mask_sub_epi8(x1, neg1, zero, x1));
          const __m512 scale = _mm512_castps128_ps512(_mm_mul_ps(dw, _mm_loadu_ps(x.d)));
          acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(spread0, scale), acc[m]);
          acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(spread1, scale), acc[m]);
        }
      });
}

// 16 bytes → 16 floats, unsigned or signed.
__m512 U8ToF32(__m128i b) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)); }
__m512 S8ToF32(__m128i b) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)); }

// f32 activations: per block j of a group, t = Σ q·x over its 32 elements in 16 lanes, then
// acc += d_j·t; Q4_1's m_j multiplies the block's Σx (sums) in a 4-lane accumulator.

// acc[m] += d · (w_lo · x[0, 16) + w_hi · x[16, 32)) for the block's 32 elements at xb + m·stride.
template <int kM>
[[gnu::always_inline]] inline void AddBlockF32(__m512 w_lo, __m512 w_hi, float d, const float* xb, int64_t stride,
                                               __m512 (&acc)[kM]) {
  const __m512 dv = _mm512_set1_ps(d);
#pragma GCC unroll 4
  for (int m = 0; m < kM; ++m) {
    const float* xm = xb + m * stride;
    const __m512 t = _mm512_fmadd_ps(w_hi, _mm512_loadu_ps(xm + 16), _mm512_mul_ps(w_lo, _mm512_loadu_ps(xm)));
    acc[m] = _mm512_fmadd_ps(t, dv, acc[m]);
  }
}
template <int kM>
void RowsF32Q41(const PackedLinear& w, const float* x, const float* sums, int64_t n0, int64_t n1, float* y,
                int64_t ldy) {
  const int64_t G = w.groups;
  const __m128i low4 = _mm_set1_epi8(15);
  OverRows<kM>(
      w, n0, n1, y,
      ldy, [&](const uint8_t* grp, int64_t g, __m512(&acc)[kM], __m128(&accm)[kM]) __attribute__((always_inline)) {
        alignas(16) float d[4];
        _mm_store_ps(d, LoadHalves(grp + 64));
        const __m128 mw = LoadHalves(grp + 72);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(grp + 16 * j));
          AddBlockF32<kM>(U8ToF32(_mm_and_si128(b, low4)), U8ToF32(_mm_and_si128(_mm_srli_epi16(b, 4), low4)), d[j],
                          x + g * 128 + 32 * j, G * 128, acc);
        }
        for (int m = 0; m < kM; ++m) accm[m] = _mm_fmadd_ps(mw, _mm_loadu_ps(sums + m * G * 4 + g * 4), accm[m]);
      });
}

template <int kM>
void RowsF32Q80(const PackedLinear& w, const float* x, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const int64_t G = w.groups;
  OverRows<kM>(
      w, n0, n1, y,
      ldy, [&](const uint8_t* grp, int64_t g, __m512(&acc)[kM], __m128(&)[kM]) __attribute__((always_inline)) {
        alignas(16) float d[4];
        _mm_store_ps(d, LoadHalves(grp + 128));
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          AddBlockF32<kM>(S8ToF32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(grp + 32 * j))),
                          S8ToF32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(grp + 32 * j + 16))), d[j],
                          x + g * 128 + 32 * j, G * 128, acc);
        }
      });
}

template <int kM>
void RowsM(const PackedLinear& w, const PackedXGroup* xg, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  if (w.dtype == DType::kQ4_1) {
    RowsQ41<kM>(w, xg, n0, n1, y, ldy);
  } else {
    RowsQ80<kM>(w, xg, n0, n1, y, ldy);
  }
}

}  // namespace

void PackActivations(const PackedLinear& w, const float* x, Q8Block* blocks, PackedXGroup* xg) {
  const int64_t nb = w.k / 32;
  simd::QuantX86<V>::Quantize(x, w.k, w.dtype, blocks);
  const bool q41 = w.dtype == DType::kQ4_1;
  for (int64_t g = 0; g < w.groups; ++g) {
    PackedXGroup& out = xg[g];
    std::memset(&out, 0, sizeof(out));
    for (int64_t j = 0; j < 4 && 4 * g + j < nb; ++j) {
      const Q8Block& b = blocks[4 * g + j];
      if (q41) {
        std::memcpy(out.q + 16 * j, b.q, 16);
        std::memcpy(out.q + 64 + 16 * j, b.q + 16, 16);
      } else {
        std::memcpy(out.q + 32 * j, b.q, 32);
      }
      out.d[j] = b.d;
      out.s[j] = b.s;
    }
  }
}

void PackedRows(const PackedLinear& w, const PackedXGroup* xg, int64_t M, int64_t n0, int64_t n1, float* y,
                int64_t ldy) {
  WithRowCount(M, [&](auto m) { RowsM<decltype(m)::value>(w, xg, n0, n1, y, ldy); });
}

void PackedRowsF32(const PackedLinear& w, const float* x, const float* sums, int64_t M, int64_t n0, int64_t n1,
                   float* y, int64_t ldy) {
  WithRowCount(M, [&](auto m) {
    constexpr int kM = decltype(m)::value;
    if (w.dtype == DType::kQ4_1) {
      RowsF32Q41<kM>(w, x, sums, n0, n1, y, ldy);
    } else {
      RowsF32Q80<kM>(w, x, n0, n1, y, ldy);
    }
  });
}

}  // namespace tessera::kernels::avx512
