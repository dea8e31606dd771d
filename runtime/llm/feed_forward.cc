#include "runtime/llm/feed_forward.h"

#include <vector>

#include "runtime/base/status_macros.h"

namespace tessera::llm {

absl::Status RunMlp(const Exec& exec, const MlpWeights& w, const float* x, int64_t tokens, float* out) {
  const int64_t width = w.gate.out;
  TS_ASSIGN_OR_RETURN(float* gate, exec.scratch->Get<float>(Scratch::kMlpGate, tokens * width));
  TS_ASSIGN_OR_RETURN(float* up, exec.scratch->Get<float>(Scratch::kMlpUp, tokens * width));
  const LinearWeight* gate_up[] = {&w.gate, &w.up};
  float* gate_up_out[] = {gate, up};
  ApplyLinears(exec, x, tokens, gate_up, gate_up_out);
  exec.backend->SiluMul(*exec.ctx, {.gate = gate, .up = up, .n = tokens * width, .out = gate});
  ApplyLinear(exec, gate, tokens, w.down, out);
  return absl::OkStatus();
}

absl::Status RunMoe(const Exec& exec, const MoeWeights& w, const float* x, int64_t tokens, float* out) {
  kernels::Backend& be = *exec.backend;
  Scratch& sc = *exec.scratch;
  const int64_t hidden = w.router.in;
  const int64_t num_experts = w.router.out;
  const int64_t k = w.top_k;

  // Routing: softmax over experts in f32, top-k, optional renormalization.
  TS_ASSIGN_OR_RETURN(float* probs, sc.Get<float>(Scratch::kMoeProbs, tokens * num_experts));
  TS_ASSIGN_OR_RETURN(int32_t * ids_dev, sc.Get<int32_t>(Scratch::kMoeIds, tokens * k));
  TS_ASSIGN_OR_RETURN(float* weights_dev, sc.Get<float>(Scratch::kMoeWeights, tokens * k));
  ApplyLinear(exec, x, tokens, w.router, probs);
  be.MoeRoute(*exec.ctx, {.logits = probs,
                          .tokens = tokens,
                          .experts = num_experts,
                          .k = k,
                          .renormalize = w.renormalize,
                          .ids = ids_dev,
                          .weights = weights_dev});
  std::vector<int32_t> chosen(tokens * k);
  std::vector<float> weight(tokens * k);
  TS_RETURN_IF_ERROR(be.CopyToHost(*exec.ctx, chosen.data(), ids_dev, sizeof(int32_t) * chosen.size()));
  TS_RETURN_IF_ERROR(be.CopyToHost(*exec.ctx, weight.data(), weights_dev, sizeof(float) * weight.size()));

  // (token, weight) pairs grouped by expert: expert e's are [begin[e], begin[e + 1]).
  std::vector<int64_t> begin(num_experts + 1, 0);
  for (int32_t e : chosen) ++begin[e + 1];
  for (int64_t e = 0; e < num_experts; ++e) begin[e + 1] += begin[e];
  std::vector<int32_t> rows(tokens * k);
  std::vector<float> scales(tokens * k);
  std::vector<int64_t> next(begin.begin(), begin.end() - 1);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < k; ++j) {
      const int64_t at = next[chosen[t * k + j]]++;
      rows[at] = static_cast<int32_t>(t);
      scales[at] = weight[t * k + j];
    }
  }
  TS_ASSIGN_OR_RETURN(int32_t * rows_dev, sc.Get<int32_t>(Scratch::kMoeRows, tokens * k));
  TS_ASSIGN_OR_RETURN(float* scales_dev, sc.Get<float>(Scratch::kMoeScales, tokens * k));
  be.CopyToDevice(*exec.ctx, rows_dev, rows.data(), sizeof(int32_t) * rows.size());
  be.CopyToDevice(*exec.ctx, scales_dev, scales.data(), sizeof(float) * scales.size());

  be.Memset(*exec.ctx, out, 0, sizeof(float) * tokens * hidden);
  for (int64_t e = 0; e < num_experts; ++e) {
    const int64_t n = begin[e + 1] - begin[e];
    if (n == 0) continue;
    TS_ASSIGN_OR_RETURN(float* xs, sc.Get<float>(Scratch::kMoeIn, n * hidden));
    TS_ASSIGN_OR_RETURN(float* ys, sc.Get<float>(Scratch::kMoeOut, n * hidden));
    be.GatherRows(*exec.ctx, {.src = x, .rows = rows_dev + begin[e], .n = n, .dim = hidden, .dst = xs});
    TS_RETURN_IF_ERROR(RunMlp(exec, w.experts[e], xs, n, ys));
    be.ScatterAddRows(
        *exec.ctx,
        {.src = ys, .rows = rows_dev + begin[e], .scales = scales_dev + begin[e], .n = n, .dim = hidden, .dst = out});
  }

  if (w.shared) {
    TS_ASSIGN_OR_RETURN(float* shared, sc.Get<float>(Scratch::kSharedOut, tokens * hidden));
    TS_ASSIGN_OR_RETURN(float* gate, sc.Get<float>(Scratch::kSharedGate, tokens));
    TS_RETURN_IF_ERROR(RunMlp(exec, *w.shared, x, tokens, shared));
    ApplyLinear(exec, x, tokens, *w.shared_gate, gate);
    be.SigmoidGateAdd(*exec.ctx, {.x = shared, .gate = gate, .tokens = tokens, .dim = hidden, .out = out});
  }
  return absl::OkStatus();
}

}  // namespace tessera::llm
