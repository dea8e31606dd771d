#include "runtime/llm/feed_forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/ops.h"

namespace tessera::llm {

void RunMlp(kernels::ThreadPool* pool, const MlpWeights& w, const float* x, int64_t tokens, float* out) {
  const int64_t width = w.gate.out;
  std::vector<float> gate(tokens * width), up(tokens * width);
  const LinearWeight* gate_up[] = {&w.gate, &w.up};
  float* gate_up_out[] = {gate.data(), up.data()};
  ApplyLinears(pool, x, tokens, gate_up, gate_up_out);
  kernels::SiluMul(gate.data(), up.data(), tokens * width, gate.data());
  ApplyLinear(pool, gate.data(), tokens, w.down, out);
}

void RunMoe(kernels::ThreadPool* pool, const MoeWeights& w, const float* x, int64_t tokens, float* out) {
  const int64_t hidden = w.router.in;
  const int64_t num_experts = w.router.out;
  const int64_t k = w.top_k;

  // Routing: softmax over experts in f32, top-k, optional renormalization.
  std::vector<float> probs(tokens * num_experts);
  ApplyLinear(pool, x, tokens, w.router, probs.data());
  kernels::Softmax(probs.data(), tokens, num_experts);
  std::vector<int32_t> chosen(tokens * k);
  std::vector<float> weight(tokens * k);
  for (int64_t t = 0; t < tokens; ++t) {
    kernels::TopK(probs.data() + t * num_experts, num_experts, k, chosen.data() + t * k, weight.data() + t * k);
    if (w.renormalize) {
      float sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += weight[t * k + j];
      for (int64_t j = 0; j < k; ++j) weight[t * k + j] /= sum;
    }
  }

  // Group (token, weight) pairs by expert.
  std::vector<std::vector<std::pair<int64_t, float>>> routed(num_experts);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < k; ++j) routed[chosen[t * k + j]].emplace_back(t, weight[t * k + j]);
  }

  std::memset(out, 0, sizeof(float) * tokens * hidden);
  std::vector<float> xs, ys;
  for (int64_t e = 0; e < num_experts; ++e) {
    const auto& rows = routed[e];
    if (rows.empty()) continue;
    const int64_t n = static_cast<int64_t>(rows.size());
    xs.resize(n * hidden);
    ys.resize(n * hidden);
    for (int64_t i = 0; i < n; ++i) std::memcpy(&xs[i * hidden], x + rows[i].first * hidden, sizeof(float) * hidden);
    RunMlp(pool, w.experts[e], xs.data(), n, ys.data());
    for (int64_t i = 0; i < n; ++i) {
      float* dst = out + rows[i].first * hidden;
      const float g = rows[i].second;
      for (int64_t h = 0; h < hidden; ++h) dst[h] += g * ys[i * hidden + h];
    }
  }

  if (w.shared) {
    std::vector<float> shared(tokens * hidden), gate(tokens);
    RunMlp(pool, *w.shared, x, tokens, shared.data());
    ApplyLinear(pool, x, tokens, *w.shared_gate, gate.data());
    for (int64_t t = 0; t < tokens; ++t) {
      const float g = 1.0f / (1.0f + std::exp(-gate[t]));
      for (int64_t h = 0; h < hidden; ++h) out[t * hidden + h] += g * shared[t * hidden + h];
    }
  }
}

}  // namespace tessera::llm
