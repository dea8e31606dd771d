// Test helpers: seeded inputs and a brute-force f64 attention reference over the full sequence.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace tessera::parallel::testing {

inline std::vector<float> RandomTensor(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(gen);
  return x;
}

// out[i,h,:] = Σ_j softmax_j(scale·q_i·k_j) v_j over keys j visible to query i, in f64:
//   visible: kpos[j] <= qpos[i] when causal, else all; lse[i,h] = log Σ_j exp(scale·q_i·k_j).
// q: [nq, H, D]; k, v: [nk, Hkv, D]; out: [nq, H, D]; lse: [nq, H].
inline void ReferenceAttention(const float* q, int64_t nq, const std::vector<int64_t>& qpos, const float* k,
                               const float* v, int64_t nk, const std::vector<int64_t>& kpos, int64_t H, int64_t Hkv,
                               int64_t D, double scale, bool causal, std::vector<double>* out,
                               std::vector<double>* lse) {
  out->assign(nq * H * D, 0.0);
  lse->assign(nq * H, -std::numeric_limits<double>::infinity());
  std::vector<double> s(nk);
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kh = h / (H / Hkv);
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < nk; ++j) {
        if (causal && kpos[j] > qpos[i]) {
          s[j] = -std::numeric_limits<double>::infinity();
          continue;
        }
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += double{q[(i * H + h) * D + d]} * double{k[(j * Hkv + kh) * D + d]};
        s[j] = scale * dot;
        m = std::max(m, s[j]);
      }
      if (m == -std::numeric_limits<double>::infinity()) continue;
      double l = 0;
      for (int64_t j = 0; j < nk; ++j) {
        if (s[j] == -std::numeric_limits<double>::infinity()) continue;
        const double e = std::exp(s[j] - m);
        l += e;
        for (int64_t d = 0; d < D; ++d) (*out)[(i * H + h) * D + d] += e * double{v[(j * Hkv + kh) * D + d]};
      }
      for (int64_t d = 0; d < D; ++d) (*out)[(i * H + h) * D + d] /= l;
      (*lse)[i * H + h] = m + std::log(l);
    }
  }
}

}  // namespace tessera::parallel::testing
