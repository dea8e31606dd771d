#include <cmath>

#include "kernels/cpu/attention_driver.h"
#include "kernels/cpu/ref/ref_ops.h"

namespace tessera::kernels::ref {
namespace {

// One (query, head) row at a time with the online softmax: running max m, running sum
// l = Σ exp(s_j − m), and out = Σ exp(s_j − m) v_j, all rescaled by exp(m_old − m_new) when m grows.
void AttendRows(const AttentionParams& p, int64_t begin, int64_t end) {
  const int64_t hd = p.head_dim;
  const int64_t group = p.n_heads / p.n_kv_heads;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t qi = r / p.n_heads;
    const int64_t kvh = (r % p.n_heads) / group;
    const float* q = p.q + r * hd;
    float* o = p.out + r * hd;
    for (int64_t d = 0; d < hd; ++d) o[d] = 0.0f;
    float m = -INFINITY;
    float l = 0.0f;
    const int64_t n_keys = VisibleKeys(p, qi);
    for (int64_t j = 0; j < n_keys; ++j) {
      const int64_t off = KvOffset(p, j, kvh);
      float s = 0.0f;
      for (int64_t d = 0; d < hd; ++d) s += q[d] * p.k[off + d];
      s *= p.scale;
      if (s > m) {
        const float alpha = std::exp(m - s);
        for (int64_t d = 0; d < hd; ++d) o[d] *= alpha;
        l *= alpha;
        m = s;
      }
      const float e = std::exp(s - m);
      l += e;
      for (int64_t d = 0; d < hd; ++d) o[d] += e * p.v[off + d];
    }
    if (n_keys > 0) {
      const float inv = 1.0f / l;
      for (int64_t d = 0; d < hd; ++d) o[d] *= inv;
    }
    if (p.lse != nullptr) p.lse[r] = n_keys > 0 ? m + std::log(l) : -INFINITY;
  }
}

}  // namespace

void AttentionWithLse(ThreadPool* pool, const AttentionParams& p) { RunAttention(pool, p, AttendRows); }

}  // namespace tessera::kernels::ref
