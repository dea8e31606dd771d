// AttentionWithLse row kernel over a vector type V (see simd/README.md and attention_driver.h).
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/cpu/attention_driver.h"
#include "kernels/cpu/simd/vec_math.h"

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
// Any head_dim; AttendRows takes AttendRowsFixed where head_dim is a small multiple of the width.
template <class V>
void AttendRowsGeneric(const AttentionParams& p, int64_t begin, int64_t end) {
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

// Walks keys 0, 1, 2, ... of kv head `kvh`, giving each one's offset (KvOffset) without a division
// per key in the paged layout.
class KeyCursor {
 public:
  KeyCursor(const AttentionParams& p, int64_t kvh) : p_(p), kvh_(kvh) {}
  int64_t Next() {
    int64_t slot = j_;
    if (p_.block_table != nullptr) {
      slot = int64_t{p_.block_table[block_]} * p_.block_size + in_block_;
      if (++in_block_ == p_.block_size) {
        in_block_ = 0;
        ++block_;
      }
    }
    ++j_;
    return (slot * p_.n_kv_heads + kvh_) * p_.head_dim;
  }

 private:
  const AttentionParams& p_;
  int64_t kvh_;
  int64_t j_ = 0, block_ = 0, in_block_ = 0;
};

// AttendRowsGeneric for head_dim = kNv · V::kWidth: the query (times scale) and the running output
// stay in kNv registers each, the exponentials of a tile are computed kWidth at a time (Exp, about
// 1 ulp), and keys are walked with a KeyCursor.
template <class V, int kNv>
void AttendRowsFixed(const AttentionParams& p, int64_t begin, int64_t end) {
  using Reg = typename V::Reg;
  constexpr int64_t W = V::kWidth;
  constexpr int64_t kTile = 2 * W;
  const int64_t group = p.n_heads / p.n_kv_heads;
  alignas(64) float s[kTile];
  int64_t offs[kTile];
  for (int64_t r = begin; r < end; ++r) {
    const int64_t qi = r / p.n_heads;
    const int64_t kvh = (r % p.n_heads) / group;
    const float* q = p.q + r * kNv * W;
    Reg qv[kNv], ov[kNv];
#pragma GCC unroll 16
    for (int i = 0; i < kNv; ++i) {
      qv[i] = V::Mul(V::Load(q + i * W), V::Set1(p.scale));
      ov[i] = V::Zero();
    }
    float m = -INFINITY;
    float l = 0.0f;
    const int64_t n_keys = VisibleKeys(p, qi);
    KeyCursor keys(p, kvh);
    for (int64_t j0 = 0; j0 < n_keys; j0 += kTile) {
      const int64_t jn = n_keys - j0 < kTile ? n_keys - j0 : kTile;
      for (int64_t t = 0; t < jn; ++t) {
        offs[t] = keys.Next();
        const float* k = p.k + offs[t];
        Reg acc = V::Mul(qv[0], V::Load(k));
#pragma GCC unroll 16
        for (int i = 1; i < kNv; ++i) acc = V::Fma(qv[i], V::Load(k + i * W), acc);
        s[t] = V::ReduceAdd(acc);
      }
      for (int64_t t = jn; t < kTile; ++t) s[t] = -INFINITY;
      const float tile_max = V::ReduceMax(V::Max(V::Load(s), V::Load(s + W)));
      if (tile_max > m) {
        const float alpha = expf(m - tile_max);  // 0 on the first tile (m = −inf)
        l *= alpha;
#pragma GCC unroll 16
        for (int i = 0; i < kNv; ++i) ov[i] = V::Mul(ov[i], V::Set1(alpha));
        m = tile_max;
      }
      // Keys past jn give Exp(−87) ≈ 1.6e−38 each, nothing next to the tile's largest term, 1.
      const Reg e0 = Exp<V>(V::Sub(V::Load(s), V::Set1(m)));
      const Reg e1 = Exp<V>(V::Sub(V::Load(s + W), V::Set1(m)));
      V::Store(s, e0);
      V::Store(s + W, e1);
      l += V::ReduceAdd(V::Add(e0, e1));
      for (int64_t t = 0; t < jn; ++t) {
        const float* v = p.v + offs[t];
        const Reg e = V::Set1(s[t]);
#pragma GCC unroll 16
        for (int i = 0; i < kNv; ++i) ov[i] = V::Fma(e, V::Load(v + i * W), ov[i]);
      }
    }
    float* o = p.out + r * kNv * W;
    const Reg inv = V::Set1(n_keys > 0 ? 1.0f / l : 0.0f);
#pragma GCC unroll 16
    for (int i = 0; i < kNv; ++i) V::Store(o + i * W, V::Mul(ov[i], inv));
    if (p.lse != nullptr) p.lse[r] = n_keys > 0 ? m + logf(l) : -INFINITY;
  }
}

template <class V>
void AttendRows(const AttentionParams& p, int64_t begin, int64_t end) {
  if (p.head_dim % V::kWidth == 0) {
    switch (p.head_dim / V::kWidth) {
      case 1:
        return AttendRowsFixed<V, 1>(p, begin, end);
      case 2:
        return AttendRowsFixed<V, 2>(p, begin, end);
      case 4:
        return AttendRowsFixed<V, 4>(p, begin, end);
      case 8:
        return AttendRowsFixed<V, 8>(p, begin, end);
      case 16:
        return AttendRowsFixed<V, 16>(p, begin, end);
      default:
        break;
    }
  }
  AttendRowsGeneric<V>(p, begin, end);
}

}  // namespace tessera::kernels::simd
