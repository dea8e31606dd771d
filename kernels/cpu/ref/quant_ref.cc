// Scalar statement of the quantized-weight dot products of Linear (see linear_driver.h): each
// 32-element sub-block of a weight row is written as
//     w[i] = d · c[i / 16] · q[i] + m       (q, c small integers; d, m floats; m = 0 except for
//                                            Q4_1, Q5_1 and the K-quants' mins)
// and multiplied with 32 int8 activations x[i] ≈ dx · qx[i], s ≈ dx · Σ qx (Q8Block):
//     Σ w[i]·x[i] ≈ d · dx · Σ_h c[h] · Σ_{i in half h} q[i]·qx[i]  +  m · s
// The SIMD versions compute the same integer sums.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels::ref {
namespace {

struct Sub32 {
  int q[32];
  int c[2];
  float d;
  float m;
};

float Half(const uint8_t* p) { return F16ToF32(static_cast<uint16_t>(p[0] | p[1] << 8)); }

// Sub-block j (32 elements) of the quantized row `w`.
void GetSub32(DType dt, const uint8_t* w, int64_t j, Sub32* s) {
  s->c[0] = s->c[1] = 1;
  s->m = 0.0f;
  if (dt == DType::kQ8_0) {
    const uint8_t* b = w + j * 34;
    s->d = Half(b);
    for (int i = 0; i < 32; ++i) s->q[i] = static_cast<int8_t>(b[2 + i]);
    return;
  }
  if (dt == DType::kQ4_0 || dt == DType::kQ4_1 || dt == DType::kQ5_0 || dt == DType::kQ5_1) {
    const int64_t bytes = DTypeBlockBytes(dt);
    const uint8_t* b = w + j * bytes;
    const bool has_min = dt == DType::kQ4_1 || dt == DType::kQ5_1;
    const bool five = dt == DType::kQ5_0 || dt == DType::kQ5_1;
    s->d = Half(b);
    const uint8_t* qh = b + (has_min ? 4 : 2);
    const uint8_t* qs = qh + (five ? 4 : 0);
    uint32_t h = 0;
    if (five) h = qh[0] | qh[1] << 8 | qh[2] << 16 | static_cast<uint32_t>(qh[3]) << 24;
    for (int i = 0; i < 16; ++i) {
      s->q[i] = (qs[i] & 15) | static_cast<int>((h >> i) & 1) << 4;
      s->q[i + 16] = (qs[i] >> 4) | static_cast<int>((h >> (i + 16)) & 1) << 4;
    }
    if (has_min) {
      s->m = Half(b + 2);
    } else {
      for (int& q : s->q) q -= five ? 16 : 8;  // signed, as ggml's q8_0 dot products take them
    }
    return;
  }
  const uint8_t* b = w + (j / 8) * DTypeBlockBytes(dt);
  const int sub = static_cast<int>(j % 8);
  if (dt == DType::kQ6_K) {
    // Sub-block of 32 `sub` = half h, quarter r: elements 32r + l (l < 32) of the half.
    const int h = sub / 4, r = sub % 4;
    const uint8_t* ql = b + 64 * h + (r % 2) * 32;
    const uint8_t* qh = b + 128 + 32 * h;
    for (int l = 0; l < 32; ++l) {
      const int lo = r < 2 ? ql[l] & 15 : ql[l] >> 4;
      s->q[l] = (lo | ((qh[l] >> (2 * r)) & 3) << 4) - 32;
    }
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    s->c[0] = sc[2 * sub];
    s->c[1] = sc[2 * sub + 1];
    s->d = Half(b + 208);
    return;
  }
  // Q4_K / Q5_K.
  const bool five = dt == DType::kQ5_K;
  const uint8_t* sc = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + (five ? 48 : 16) + 32 * (sub / 2);
  int scale, min;
  if (sub < 4) {
    scale = sc[sub] & 63;
    min = sc[sub + 4] & 63;
  } else {
    scale = (sc[sub + 4] & 15) | (sc[sub - 4] >> 6) << 4;
    min = (sc[sub + 4] >> 4) | (sc[sub] >> 6) << 4;
  }
  for (int l = 0; l < 32; ++l) {
    s->q[l] = sub % 2 == 0 ? qs[l] & 15 : qs[l] >> 4;
    if (five) s->q[l] |= ((qh[l] >> sub) & 1) << 4;
  }
  s->c[0] = s->c[1] = scale;
  s->d = Half(b);
  s->m = -Half(b + 2) * static_cast<float>(min);
}

}  // namespace

void QuantRows(DType dt, const Q8Block* xq, int64_t M, int64_t K, const uint8_t* w, int64_t row_bytes, int64_t n0,
               int64_t n1, float* y, int64_t ldy) {
  const int64_t nb = K / 32;
  Sub32 s;
  std::vector<float> acc(M);
  for (int64_t n = n0; n < n1; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j < nb; ++j) {
      GetSub32(dt, w + n * row_bytes, j, &s);
      for (int64_t m = 0; m < M; ++m) {
        const Q8Block& x = xq[m * nb + j];
        int32_t dot = 0;
        for (int h = 0; h < 2; ++h) {
          int32_t part = 0;
          for (int i = 16 * h; i < 16 * h + 16; ++i) part += s.q[i] * x.q[i];
          dot += s.c[h] * part;
        }
        acc[m] += s.d * x.d * static_cast<float>(dot) + s.m * x.s;
      }
    }
    for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = acc[m];
  }
}

}  // namespace tessera::kernels::ref
