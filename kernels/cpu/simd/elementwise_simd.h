// RmsNorm, SiluMul and Softmax over a vector type V (see simd/README.md). Same contracts as ops.h.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/cpu/simd/vec_math.h"

namespace tessera::kernels::simd {

// y = x · rsqrt(mean(x²) + eps) · weight per row; x, y: [rows, dim] (may alias), weight: [dim].
template <class V>
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  constexpr int64_t W = V::kWidth;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    auto s0 = V::Zero();
    auto s1 = V::Zero();
    int64_t i = 0;
    for (; i + 2 * W <= dim; i += 2 * W) {
      const auto a = V::Load(xr + i);
      const auto b = V::Load(xr + i + W);
      s0 = V::Fma(a, a, s0);
      s1 = V::Fma(b, b, s1);
    }
    for (; i + W <= dim; i += W) {
      const auto a = V::Load(xr + i);
      s0 = V::Fma(a, a, s0);
    }
    float ss = V::ReduceAdd(V::Add(s0, s1));
    for (; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
    const auto vinv = V::Set1(inv);
    i = 0;
    for (; i + W <= dim; i += W) V::Store(yr + i, V::Mul(V::Mul(V::Load(xr + i), vinv), V::Load(weight + i)));
    for (; i < dim; ++i) yr[i] = xr[i] * inv * weight[i];
  }
}

// out = gate · up / (1 + exp(−gate)); n elements; out may alias gate or up.
template <class V>
void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  constexpr int64_t W = V::kWidth;
  const auto one = V::Set1(1.0f);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const auto g = V::Load(gate + i);
    const auto e = Exp<V>(V::Sub(V::Zero(), g));
    V::Store(out + i, V::Div(V::Mul(g, V::Load(up + i)), V::Add(one, e)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

// x = exp(x − max x) / Σ exp(x − max x) per row; x: [rows, n].
template <class V>
void Softmax(float* x, int64_t rows, int64_t n) {
  constexpr int64_t W = V::kWidth;
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * n;
    auto vmax = V::Set1(-INFINITY);
    int64_t i = 0;
    for (; i + W <= n; i += W) vmax = V::Max(vmax, V::Load(xr + i));
    float mx = V::ReduceMax(vmax);
    for (; i < n; ++i) mx = fmaxf(mx, xr[i]);
    const auto vm = V::Set1(mx);
    auto vsum = V::Zero();
    i = 0;
    for (; i + W <= n; i += W) {
      const auto e = Exp<V>(V::Sub(V::Load(xr + i), vm));
      V::Store(xr + i, e);
      vsum = V::Add(vsum, e);
    }
    float sum = V::ReduceAdd(vsum);
    for (; i < n; ++i) {
      xr[i] = expf(xr[i] - mx);
      sum += xr[i];
    }
    const float inv = 1.0f / sum;
    const auto vinv = V::Set1(inv);
    i = 0;
    for (; i + W <= n; i += W) V::Store(xr + i, V::Mul(V::Load(xr + i), vinv));
    for (; i < n; ++i) xr[i] *= inv;
  }
}

}  // namespace tessera::kernels::simd
