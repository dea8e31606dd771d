// Integer dot products of quantized weight rows with int8-quantized activations (LinearKernels::
// quant_rows, see linear_driver.h and ref/quant_ref.cc for the arithmetic), in 256-bit AVX2
// integer instructions. Instantiated over the ISA's vector type V by avx2/ and avx512/ files (the
// AVX-512 build runs these same 256-bit kernels, with its own flags); see simd/README.md.
//
// Per 32-element sub-block the weights are unpacked to 32 bytes q, then
//   unsigned q (0..63):  p = madd(maddubs(q, qx), c)    int16 pairs of q·qx, × c, summed in int32
//   signed q (Q8_0, Q4_0 − 8, Q5_0 − 16, Q6_K − 32): the same with |q| and sign(qx, q)
// where c is 1 or the sub-block's integer scale per half of 16. No overflow: a maddubs pair is at
// most 2·63·127 = 16002 (2·128·127 = 32512 for Q8_0) < 2^15, and × c (|c| <= 128) fits in int32.
// The 8 int32 lanes are converted to f32 and accumulated as acc += p · (d·dx), and the block's
// min adds m·s (Q8Block::s ≈ dx·Σqx) to a scalar. Quantize is QuantizeActivations in 256-bit
// vectors (same operations in the same f32 rounding, so the same bits).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/simd/linear_simd.h"

namespace tessera::kernels::simd {

template <class V>
struct QuantX86 {
  static float Half(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return V::F16(h);
  }

  static __m256i Load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

  // 16 bytes of nibbles → 32 bytes: low nibbles first, then high nibbles.
  static __m256i Nibbles(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(t, _mm256_set1_epi8(15));
  }

  // Byte i = 16 if bit i of the little-endian u32 at p is set, else 0.
  static __m256i HighBits(const uint8_t* p) {
    uint32_t qh;
    std::memcpy(&qh, p, 4);
    const __m256i bcast = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(qh)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bcast, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(16));
  }

  // 8 int32: Σ of pairs of q·qx with q unsigned (< 128), qx signed.
  static __m256i DotU(__m256i q, __m256i qx) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, qx), _mm256_set1_epi16(1));
  }
  // The same with each int16 pair sum scaled by c16 (16 lanes) before the pairwise add.
  static __m256i DotUScaled(__m256i q, __m256i qx, __m256i c16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, qx), c16);
  }
  // Signed q: |q|·sign(qx, q) = q·qx term by term.
  static __m256i DotS(__m256i q, __m256i qx) { return DotU(_mm256_sign_epi8(q, q), _mm256_sign_epi8(qx, q)); }
  static __m256i DotSScaled(__m256i q, __m256i qx, __m256i c16) {
    return DotUScaled(_mm256_sign_epi8(q, q), _mm256_sign_epi8(qx, q), c16);
  }

  static __m256 Fma(__m256i p, float scale, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
  }

  static float ReduceAdd(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  // The 8 bytes of lo, hi (little-endian) → 8 floats.
  static __m256 U8x8(uint32_t lo, uint32_t hi) {
    const __m128i v = _mm_insert_epi32(_mm_cvtsi32_si128(static_cast<int>(lo)), static_cast<int>(hi), 1);
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
  }
  // The floats at p, p + sizeof(Q8Block), ... (8 consecutive blocks' d or s).
  static __m256 Gather8(const float* p) {
    constexpr int kStride = sizeof(Q8Block) / sizeof(float);
    return _mm256_i32gather_ps(
        p, _mm256_setr_epi32(0, kStride, 2 * kStride, 3 * kStride, 4 * kStride, 5 * kStride, 6 * kStride, 7 * kStride),
        4);
  }

  // Q4_K / Q5_K: the 8 six-bit scales (sc) and mins (mn) of a super-block from its 12 scale bytes at
  // p, one byte each, as little-endian u32 pairs: word 0 for sub-blocks 0–3, word 1 for 4–7.
  static void KScalesMins(const uint8_t* p, uint32_t (&sc)[2], uint32_t (&mn)[2]) {
    uint32_t sw[3];
    std::memcpy(sw, p, 12);
    sc[0] = sw[0] & 0x3f3f3f3fu;
    mn[0] = sw[1] & 0x3f3f3f3fu;
    sc[1] = (sw[2] & 0x0f0f0f0fu) | ((sw[0] >> 6) & 0x03030303u) << 4;
    mn[1] = ((sw[2] >> 4) & 0x0f0f0f0fu) | ((sw[1] >> 6) & 0x03030303u) << 4;
  }

  // Q4_K / Q5_K: the quants of sub-blocks 2g and 2g + 1 (32 bytes each) from the super-block's
  // quants at qs; for Q5_K, qh holds the high bits not yet used and is shifted past this pair.
  template <bool kFive>
  static void KQuants(const uint8_t* qs, int g, __m256i& qh, __m256i (&q)[2]) {
    const __m256i raw = Load32(qs + 32 * g);
    q[0] = _mm256_and_si256(raw, _mm256_set1_epi8(15));
    q[1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(15));
    if constexpr (kFive) {
      const __m256i one = _mm256_set1_epi8(1);
      q[0] = _mm256_or_si256(q[0], _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
      q[1] = _mm256_or_si256(q[1], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
      qh = _mm256_srli_epi16(qh, 2);
    }
  }

  // Q6_K: the quants − 32 of sub-blocks 4h .. 4h + 3 (32 bytes each) of the super-block at blk.
  static void Q6Quants(const uint8_t* blk, int h, __m256i (&q)[4]) {
    const __m256i ql0 = Load32(blk + 64 * h);
    const __m256i ql1 = Load32(blk + 64 * h + 32);
    const __m256i qh = Load32(blk + 128 + 32 * h);
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i lo[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                           _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * r), _mm256_set1_epi8(3));
      q[r] = _mm256_sub_epi8(_mm256_or_si256(lo[r], _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
    }
  }

  // One 32-element block of Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 at blk against xq[m·nb] for m < kM.
  // Q4_1 / Q5_1: dm = (d, m); one multiply by (dx, s) gives both the block scale d·dx and the min
  // term m·s, which accumulates in lane 1 of accm. The others have signed q (q − 8, q − 16 for
  // Q4_0 / Q5_0), so the whole block is one integer dot product times d·dx, as in ggml.
  template <DType D, int kM>
  static void SmallBlock(const uint8_t* blk, const Q8Block* xq, int64_t nb, __m256 (&acc)[kM], __m128 (&accm)[kM]) {
    constexpr bool kMin = D == DType::kQ4_1 || D == DType::kQ5_1;
    constexpr bool kFive = D == DType::kQ5_0 || D == DType::kQ5_1;
    uint32_t fields;
    __m256i q;
    if constexpr (kMin) {
      std::memcpy(&fields, blk, 4);
    } else {
      uint16_t d16;
      std::memcpy(&d16, blk, 2);
      fields = d16;
    }
    const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(fields)));
    if constexpr (D == DType::kQ8_0) {
      q = Load32(blk + 2);
    } else {
      const uint8_t* qs = blk + (kMin ? 4 : 2) + (kFive ? 4 : 0);
      q = Nibbles(qs);
      if constexpr (kFive) q = _mm256_or_si256(q, HighBits(blk + (kMin ? 4 : 2)));
      if constexpr (!kMin) q = _mm256_sub_epi8(q, _mm256_set1_epi8(kFive ? 16 : 8));
    }
#pragma GCC unroll 4
    for (int m = 0; m < kM; ++m) {
      const Q8Block& x = xq[m * nb];
      const __m256i qx = Load32(x.q);
      const __m256i p = kMin ? DotU(q, qx) : DotS(q, qx);
      if constexpr (kMin) {
        const __m128 prod = _mm_mul_ps(dm, _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(&x.d))));
        acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcastss_ps(prod), acc[m]);
        accm[m] = _mm_add_ps(accm[m], prod);
      } else {
        const __m128 prod = _mm_mul_ss(dm, _mm_load_ss(&x.d));
        acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcastss_ps(prod), acc[m]);
      }
    }
  }

  // One weight row against kM activation rows: out[m] = Σ_b dot(row block b, xq[m·nb + b]).
  // Two accumulators per m (even and odd 32-blocks) to hide the FMA latency.
  template <DType D, int kM>
  static void Row(const uint8_t* w, const Q8Block* xq, int64_t nb, float* out) {
    __m256 acc[2][kM];
    float tail[kM];  // offsets / mins, added after the reduction
    for (int m = 0; m < kM; ++m) {
      acc[0][m] = acc[1][m] = _mm256_setzero_ps();
      tail[m] = 0.0f;
    }
    if constexpr (D == DType::kQ8_0 || D == DType::kQ4_0 || D == DType::kQ4_1 || D == DType::kQ5_0 ||
                  D == DType::kQ5_1) {
      constexpr int64_t kBytes = DTypeBlockBytes(D);
      __m128 accm[2][kM];
      for (int m = 0; m < kM; ++m) accm[0][m] = accm[1][m] = _mm_setzero_ps();
      int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        SmallBlock<D, kM>(w + b * kBytes, xq + b, nb, acc[0], accm[0]);
        SmallBlock<D, kM>(w + (b + 1) * kBytes, xq + b + 1, nb, acc[1], accm[1]);
      }
      if (b < nb) SmallBlock<D, kM>(w + b * kBytes, xq + b, nb, acc[0], accm[0]);
      for (int m = 0; m < kM; ++m) {
        const __m128 sum = _mm_add_ps(accm[0][m], accm[1][m]);
        tail[m] = _mm_cvtss_f32(_mm_movehdup_ps(sum));
      }
    } else if constexpr (D == DType::kQ4_K || D == DType::kQ5_K) {
      constexpr bool kFive = D == DType::kQ5_K;
      __m256 accmv[kM];
      for (int m = 0; m < kM; ++m) accmv[m] = _mm256_setzero_ps();
      constexpr int64_t kBytes = DTypeBlockBytes(D);
      for (int64_t sb = 0; sb < nb / 8; ++sb) {
        const uint8_t* blk = w + sb * kBytes;
        const float d = Half(blk);
        const float dmin = Half(blk + 2);
        uint32_t sc[2], mn[2];
        KScalesMins(blk + 4, sc, mn);
        // Per activation row: scale[j] = d·sc_j·dx_j for the 8 sub-blocks, and the mins term
        // −dmin·Σ_j m_j·s_j accumulated as a vector.
        const __m256 scf = _mm256_mul_ps(_mm256_set1_ps(d), U8x8(sc[0], sc[1]));
        const __m256 mnf = _mm256_mul_ps(_mm256_set1_ps(-dmin), U8x8(mn[0], mn[1]));
        alignas(32) float scale[kM][8];
        for (int m = 0; m < kM; ++m) {
          const Q8Block* x = xq + m * nb + sb * 8;
          accmv[m] = _mm256_fmadd_ps(mnf, Gather8(&x->s), accmv[m]);
          _mm256_store_ps(scale[m], _mm256_mul_ps(scf, Gather8(&x->d)));
        }
        const uint8_t* qs = blk + (kFive ? 48 : 16);
        __m256i qh = _mm256_setzero_si256();
        if constexpr (kFive) qh = Load32(blk + 16);
        for (int g = 0; g < 4; ++g) {
          __m256i q[2];
          KQuants<kFive>(qs, g, qh, q);
#pragma GCC unroll 2
          for (int h = 0; h < 2; ++h) {
            const int j = 2 * g + h;
            for (int m = 0; m < kM; ++m) {
              const Q8Block& x = xq[m * nb + sb * 8 + j];
              acc[h][m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DotU(q[h], Load32(x.q))),
                                          _mm256_broadcast_ss(&scale[m][j]), acc[h][m]);
            }
          }
        }
      }
      for (int m = 0; m < kM; ++m) tail[m] = ReduceAdd(accmv[m]);
    } else {
      static_assert(D == DType::kQ6_K);
      for (int64_t sb = 0; sb < nb / 8; ++sb) {
        const uint8_t* blk = w + sb * 210;
        alignas(32) int16_t sc[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(sc),
                           _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192))));
        const float d = Half(blk + 208);
        for (int h = 0; h < 2; ++h) {
          __m256i qr[4];
          Q6Quants(blk, h, qr);
#pragma GCC unroll 4
          for (int r = 0; r < 4; ++r) {
            const __m256i q = qr[r];
            const int sub = 4 * h + r;  // 32-element sub-block within the super-block
            const __m256i c16 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(sc[2 * sub])),
                                                        _mm_set1_epi16(sc[2 * sub + 1]), 1);  // [c_a ×8, c_b ×8]
            for (int m = 0; m < kM; ++m) {
              const Q8Block& x = xq[m * nb + sb * 8 + sub];
              acc[r & 1][m] = Fma(DotSScaled(q, Load32(x.q), c16), d * x.d, acc[r & 1][m]);
            }
          }
        }
      }
    }
    for (int m = 0; m < kM; ++m) out[m] = ReduceAdd(_mm256_add_ps(acc[0][m], acc[1][m])) + tail[m];
  }

  // LinearKernels::quantize (QuantizeActivations).
  static void Quantize(const float* x, int64_t K, DType w_dtype, Q8Block* xq) {
    const bool f16 = Q8ScalesAreF16(w_dtype);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < K / 32; ++b, x += 32) {
      __m256 v[4];
      __m256 amax = _mm256_setzero_ps();
      for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
      }
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float max_abs = _mm_cvtss_f32(m4);
      const float d = max_abs / 127.0f;
      const __m256 id = _mm256_set1_ps(max_abs != 0.0f ? 127.0f / max_abs : 0.0f);
      // cvtps_epi32 rounds in the MXCSR mode, half to even by default, as lrint does.
      __m256i q[4];
      for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));
      const __m256i sum8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum8), _mm256_extracti128_si256(sum8, 1));
      s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
      const float s = d * static_cast<float>(_mm_cvtsi128_si32(s4));
      // int32 → int8 in order: the packs work per 128-bit lane, the permute puts the lanes back.
      const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);
      const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
      const __m256i q8 =
          _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(xq[b].q), q8);
      xq[b].d = f16 ? _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT)) : d;
      xq[b].s = f16 ? _cvtsh_ss(_cvtss_sh(s, _MM_FROUND_TO_NEAREST_INT)) : s;
    }
  }

  template <DType D, int kM>
  static void RowsM(const Q8Block* xq, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0, int64_t n1, float* y,
                    int64_t ldy) {
    float out[kM];
    for (int64_t n = n0; n < n1; ++n) {
      Row<D, kM>(w + n * row_bytes, xq, K / 32, out);
      for (int m = 0; m < kM; ++m) y[m * ldy + n] = out[m];
    }
  }

  template <DType D>
  static void RowsD(const Q8Block* xq, int64_t M, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0,
                    int64_t n1, float* y, int64_t ldy) {
    WithRowCount(M, [&](auto m) { RowsM<D, decltype(m)::value>(xq, K, w, row_bytes, n0, n1, y, ldy); });
  }

  // Calls f(std::integral_constant<DType, dt>{}) for a quantized dt; returns false for the others.
  template <class F>
  static bool WithQuantType(DType dt, F&& f) {
    switch (dt) {
      case DType::kQ8_0:
        return f(std::integral_constant<DType, DType::kQ8_0>{}), true;
      case DType::kQ4_0:
        return f(std::integral_constant<DType, DType::kQ4_0>{}), true;
      case DType::kQ4_1:
        return f(std::integral_constant<DType, DType::kQ4_1>{}), true;
      case DType::kQ5_0:
        return f(std::integral_constant<DType, DType::kQ5_0>{}), true;
      case DType::kQ5_1:
        return f(std::integral_constant<DType, DType::kQ5_1>{}), true;
      case DType::kQ4_K:
        return f(std::integral_constant<DType, DType::kQ4_K>{}), true;
      case DType::kQ5_K:
        return f(std::integral_constant<DType, DType::kQ5_K>{}), true;
      case DType::kQ6_K:
        return f(std::integral_constant<DType, DType::kQ6_K>{}), true;
      default:
        return false;
    }
  }

  // LinearKernels::quant_rows.
  static void Rows(DType dt, const Q8Block* xq, int64_t M, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0,
                   int64_t n1, float* y, int64_t ldy) {
    WithQuantType(dt, [&](auto d) { RowsD<decltype(d)::value>(xq, M, K, w, row_bytes, n0, n1, y, ldy); });
  }

  // ---- f32 activations (Activations::kF32): weight blocks dequantized, then f32 FMAs ----

  // 32 int8 (signed or unsigned) → out[0..32) = f32(q)·scale + offset.
  template <bool kSigned>
  static void Expand32(__m256i q, __m256 scale, __m256 offset, float* out) {
    const __m128i lo = _mm256_castsi256_si128(q);
    const __m128i hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m256i v = kSigned ? _mm256_cvtepi8_epi32(parts[i]) : _mm256_cvtepu8_epi32(parts[i]);
      _mm256_storeu_ps(out + 8 * i, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v), scale), offset));
    }
  }

  // The block of `D` at blk → out[0, block size): the values DequantizeRow gives (up to the
  // rounding of d·q + m, which the compiler may fuse).
  template <DType D>
  static void DecodeBlock(const uint8_t* blk, float* out) {
    if constexpr (D == DType::kQ8_0) {
      Expand32<true>(Load32(blk + 2), _mm256_set1_ps(Half(blk)), _mm256_setzero_ps(), out);
    } else if constexpr (D == DType::kQ4_0 || D == DType::kQ4_1 || D == DType::kQ5_0 || D == DType::kQ5_1) {
      constexpr bool kMin = D == DType::kQ4_1 || D == DType::kQ5_1;
      constexpr bool kFive = D == DType::kQ5_0 || D == DType::kQ5_1;
      const float d = Half(blk);
      __m256i q = Nibbles(blk + (kMin ? 4 : 2) + (kFive ? 4 : 0));
      if constexpr (kFive) q = _mm256_or_si256(q, HighBits(blk + (kMin ? 4 : 2)));
      if constexpr (kMin) {
        Expand32<false>(q, _mm256_set1_ps(d), _mm256_set1_ps(Half(blk + 2)), out);
      } else {
        q = _mm256_sub_epi8(q, _mm256_set1_epi8(kFive ? 16 : 8));
        Expand32<true>(q, _mm256_set1_ps(d), _mm256_setzero_ps(), out);
      }
    } else if constexpr (D == DType::kQ4_K || D == DType::kQ5_K) {
      constexpr bool kFive = D == DType::kQ5_K;
      const float d = Half(blk);
      const float dmin = Half(blk + 2);
      uint32_t sc[2], mn[2];
      KScalesMins(blk + 4, sc, mn);
      uint8_t scb[8], mnb[8];
      std::memcpy(scb, sc, 8);
      std::memcpy(mnb, mn, 8);
      const uint8_t* qs = blk + (kFive ? 48 : 16);
      __m256i qh = kFive ? Load32(blk + 16) : _mm256_setzero_si256();
      for (int g = 0; g < 4; ++g) {
        __m256i q[2];
        KQuants<kFive>(qs, g, qh, q);
        for (int h = 0; h < 2; ++h) {
          const int j = 2 * g + h;
          Expand32<false>(q[h], _mm256_set1_ps(d * static_cast<float>(scb[j])),
                          _mm256_set1_ps(-(dmin * static_cast<float>(mnb[j]))), out + 32 * j);
        }
      }
    } else {
      static_assert(D == DType::kQ6_K);
      const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
      const float d = Half(blk + 208);
      for (int h = 0; h < 2; ++h) {
        __m256i qr[4];
        Q6Quants(blk, h, qr);
        for (int r = 0; r < 4; ++r) {
          const __m256i q = qr[r];
          const int sub = 4 * h + r;
          // Two sub-blocks of 16 with their own scales: expand each half separately.
          alignas(32) float tmp[32];
          Expand32<true>(q, _mm256_set1_ps(d * static_cast<float>(sc[2 * sub])), _mm256_setzero_ps(), tmp);
          std::memcpy(out + 32 * sub, tmp, 16 * sizeof(float));
          Expand32<true>(q, _mm256_set1_ps(d * static_cast<float>(sc[2 * sub + 1])), _mm256_setzero_ps(), tmp);
          std::memcpy(out + 32 * sub + 16, tmp + 16, 16 * sizeof(float));
        }
      }
    }
  }

  template <DType D, int kNr>
  static void PackBD(const void* w, int64_t ldw, int64_t n, int64_t kc, float* dst) {
    constexpr int64_t kBs = DTypeBlockSize(D);
    constexpr int64_t kBytes = DTypeBlockBytes(D);
    const int64_t row_bytes = ldw / kBs * kBytes;
    alignas(32) float block[kBs];
    for (int64_t p = 0; p < n; p += kNr, dst += kNr * kc) {
      for (int j = 0; j < kNr; ++j) {
        if (p + j < n) {
          const uint8_t* row = static_cast<const uint8_t*>(w) + (p + j) * row_bytes;
          for (int64_t k0 = 0; k0 < kc; k0 += kBs) {
            DecodeBlock<D>(row + k0 / kBs * kBytes, block);
            float* d = dst + k0 * kNr + j;
            for (int64_t i = 0; i < kBs; ++i) d[i * kNr] = block[i];
          }
        } else {
          for (int64_t kk = 0; kk < kc; ++kk) dst[kk * kNr + j] = 0.0f;
        }
      }
    }
  }

  // LinearKernels::pack_b: the quantized types here, the float types in simd::PackB.
  template <int kNr>
  static void PackB(const void* w, DType dt, int64_t ldw, int64_t n, int64_t kc, float* dst) {
    if (!WithQuantType(dt, [&](auto d) { PackBD<decltype(d)::value, kNr>(w, ldw, n, kc, dst); })) {
      simd::PackB<V, kNr>(w, dt, ldw, n, kc, dst);
    }
  }

  // One weight row against kM rows of x: out[m] = Σ_k x[m, k] · dequant(w)[k]. Each block is decoded
  // into an L1 buffer and read back by the FMAs; two accumulators per row of x.
  template <DType D, int kM>
  static void SkinnyRowF32(const uint8_t* w, const float* x, int64_t K, float* out) {
    constexpr int64_t kBs = DTypeBlockSize(D);
    constexpr int64_t kBytes = DTypeBlockBytes(D);
    alignas(32) float blk[kBs];
    __m256 acc[2][kM];
    for (int m = 0; m < kM; ++m) acc[0][m] = acc[1][m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / kBs; ++b) {
      DecodeBlock<D>(w + b * kBytes, blk);
      const float* xb = x + b * kBs;
#pragma GCC unroll 4
      for (int64_t i = 0; i < kBs; i += 16) {
        const __m256 w0 = _mm256_load_ps(blk + i);
        const __m256 w1 = _mm256_load_ps(blk + i + 8);
#pragma GCC unroll 4
        for (int m = 0; m < kM; ++m) {
          acc[0][m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xb + m * K + i), acc[0][m]);
          acc[1][m] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xb + m * K + i + 8), acc[1][m]);
        }
      }
    }
    for (int m = 0; m < kM; ++m) out[m] = ReduceAdd(_mm256_add_ps(acc[0][m], acc[1][m]));
  }

  template <DType D, int kM>
  static void SkinnyF32M(const float* x, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0, int64_t n1,
                         float* y, int64_t ldy) {
    float out[kM];
    for (int64_t n = n0; n < n1; ++n) {
      SkinnyRowF32<D, kM>(w + n * row_bytes, x, K, out);
      for (int m = 0; m < kM; ++m) y[m * ldy + n] = out[m];
    }
  }

  // LinearKernels::quant_skinny (1 <= M <= 4).
  static void SkinnyF32(DType dt, const float* x, int64_t M, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0,
                        int64_t n1, float* y, int64_t ldy) {
    WithQuantType(dt, [&](auto d) {
      WithRowCount(
          M, [&](auto m) { SkinnyF32M<decltype(d)::value, decltype(m)::value>(x, K, w, row_bytes, n0, n1, y, ldy); });
    });
  }
};

}  // namespace tessera::kernels::simd
