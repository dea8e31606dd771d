#include "runtime/parallel/sp_merge.h"

#include <cmath>

namespace tessera::parallel {

float StableSigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}

// logsigmoid(x) = −log(1 + exp(−x)) = min(x, 0) − log1p(exp(−|x|)).
float StableLogSigmoid(float x) { return std::fmin(x, 0.0f) - std::log1p(std::exp(-std::fabs(x))); }

void MergePartial(float* o, float* l, const float* ob, const float* lb, int64_t rows, int64_t heads, int64_t head_dim) {
  const int64_t n = rows * heads;
  for (int64_t i = 0; i < n; ++i) {
    const float lbi = lb[i];
    float* oi = o + i * head_dim;
    const float* obi = ob + i * head_dim;
    if (lbi == -INFINITY) continue;
    if (l[i] == -INFINITY) {
      for (int64_t d = 0; d < head_dim; ++d) oi[d] = obi[d];
      l[i] = lbi;
      continue;
    }
    const float w = StableSigmoid(lbi - l[i]);
    for (int64_t d = 0; d < head_dim; ++d) oi[d] -= w * (oi[d] - obi[d]);
    l[i] -= StableLogSigmoid(l[i] - lbi);
  }
}

}  // namespace tessera::parallel
