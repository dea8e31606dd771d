// AttentionWithLse row kernel over a vector type V (see simd/README.md and attention_driver.h).
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/cpu/attention_driver.h"

namespace tessera::kernels::simd {

// Σ a[d] · b[d], d < n.
template <class V>
float Dot(const float* a, const float* b, int64_t n) {
  constexpr int64_t W = V::kWidth;
  auto s0 = V::Zero();
  auto s1 = V::Zero();
  int64_t d = 0;
  for (; d + 2 * W <= n; d += 2 * W) {
    s0 = V::Fma(V::Load(a + d), V::Load(b + d), s0);
    s1 = V::Fma(V::Load(a + d + W), V::Load(b + d + W), s1);
  }
  for (; d + W <= n; d += W) s0 = V::Fma(V::Load(a + d), V::Load(b + d), s0);
  float s = V::ReduceAdd(V::Add(s0, s1));
  for (; d < n; ++d) s += a[d] * b[d];
  return s;
}

// y = alpha · y + beta · x, n elements.
template <class V>
void ScaleAdd(float alpha, float* y, float beta, const float* x, int64_t n) {
  constexpr int64_t W = V::kWidth;
  const auto va = V::Set1(alpha);
  const auto vb = V::Set1(beta);
  int64_t d = 0;
  for (; d + W <= n; d += W) V::Store(y + d, V::Fma(vb, V::Load(x + d), V::Mul(va, V::Load(y + d))));
  for (; d < n; ++d) y[d] = alpha * y[d] + beta * x[d];
}

// Online softmax over tiles of kTile keys: scores of a tile first, then one rescale of the running
// output by exp(m_old − m_new) per tile instead of per key:
//   m = max s_j, l = Σ exp(s_j − m), out = Σ exp(s_j − m) v_j / l, lse = m + log l.
template <class V>
void AttendRows(const AttentionParams& p, int64_t begin, int64_t end) {
  constexpr int64_t kTile = 32;
  const int64_t hd = p.head_dim;
  const int64_t group = p.n_heads / p.n_kv_heads;
  float s[kTile];
  for (int64_t r = begin; r < end; ++r) {
    const int64_t qi = r / p.n_heads;
    const int64_t kvh = (r % p.n_heads) / group;
    const float* q = p.q + r * hd;
    float* o = p.out + r * hd;
    for (int64_t d = 0; d < hd; ++d) o[d] = 0.0f;
    float m = -INFINITY;
    float l = 0.0f;
    const int64_t n_keys = VisibleKeys(p, qi);
    for (int64_t j0 = 0; j0 < n_keys; j0 += kTile) {
      const int64_t jn = n_keys - j0 < kTile ? n_keys - j0 : kTile;
      float tile_max = -INFINITY;
      for (int64_t t = 0; t < jn; ++t) {
        s[t] = p.scale * Dot<V>(q, p.k + KvOffset(p, j0 + t, kvh), hd);
        tile_max = fmaxf(tile_max, s[t]);
      }
      if (tile_max > m) {
        const float alpha = expf(m - tile_max);  // 0 on the first tile (m = −inf)
        l *= alpha;
        ScaleAdd<V>(alpha, o, 0.0f, o, hd);
        m = tile_max;
      }
      for (int64_t t = 0; t < jn; ++t) {
        const float e = expf(s[t] - m);
        l += e;
        ScaleAdd<V>(1.0f, o, e, p.v + KvOffset(p, j0 + t, kvh), hd);
      }
    }
    if (n_keys > 0) ScaleAdd<V>(1.0f / l, o, 0.0f, o, hd);
    if (p.lse != nullptr) p.lse[r] = n_keys > 0 ? m + logf(l) : -INFINITY;
  }
}

}  // namespace tessera::kernels::simd
