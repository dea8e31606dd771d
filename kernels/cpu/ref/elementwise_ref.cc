#include <cmath>
#include <utility>

#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels::ref {

// y = x · rsqrt(mean(x²) + eps) · weight, row by row.
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float ss = 0.0f;
    for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * weight[i];
  }
}

// Rotates the pairs (a(i), b(i)) of every head for i < rot_dim/2 by θ_i = pos · inv_freq[i], with
// f32 angles, cos and sin (as HF's f32 cos/sin cache).
template <class Pair>
void RotatePairs(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim, const int32_t* positions,
                 const float* inv_freq, Pair pair) {
  const int64_t half = rot_dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    const auto pos = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      const float theta = pos * inv_freq[i];
      const float c = std::cos(theta);
      const float s = std::sin(theta);
      const auto [a, b] = pair(i, half);
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (t * heads + h) * head_dim;
        const float x1 = v[a];
        const float x2 = v[b];
        v[a] = x1 * c - x2 * s;
        v[b] = x2 * c + x1 * s;
      }
    }
  }
}

// rotate_half: pairs (i, i + rot_dim/2).
void RopeNeox(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim, const int32_t* positions,
              const float* inv_freq) {
  RotatePairs(x, tokens, heads, head_dim, rot_dim, positions, inv_freq, [](int64_t i, int64_t half) {
    return std::pair{i, i + half};
  });
}

// Adjacent pairs (2i, 2i + 1).
void RopeInterleaved(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim,
                     const int32_t* positions, const float* inv_freq) {
  RotatePairs(x, tokens, heads, head_dim, rot_dim, positions, inv_freq, [](int64_t i, int64_t) {
    return std::pair{2 * i, 2 * i + 1};
  });
}

// The loop is simple enough for the compiler to vectorize; every ISA shares it.
void Add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// out = gate / (1 + exp(−gate)) · up.
void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

// x = exp(x − max x) / Σ exp(x − max x), row by row.
void Softmax(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * n;
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, xr[i]);
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      xr[i] = std::exp(xr[i] - mx);
      sum += xr[i];
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; ++i) xr[i] *= inv;
  }
}

}  // namespace tessera::kernels::ref
