// Qwen2MoeForCausalLM and Qwen3MoeForCausalLM.
//   MoE layers: w = softmax(gate(x)); top-k; (norm_topk_prob: w /= Σw); y = Σ w_e · expert_e(x)
//   Qwen2-MoE adds y += sigmoid(shared_expert_gate · x) · shared_expert(x).
//   Layers in mlp_only_layers (or off the decoder_sparse_step grid) use a dense MLP of
//   intermediate_size. Qwen3-MoE normalizes q and k per head (handled by LoadAttention).
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/llm/models/families.h"

namespace tessera::llm {

absl::StatusOr<LayerWeights> LoadQwenMoeLayer(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer) {
  const std::string p = LayerPrefix(layer);
  TS_ASSIGN_OR_RETURN(LayerWeights l, LoadNormsAndAttention(c, ckpt, layer));
  const std::string m = p + "mlp.";
  if (!c.IsMoeLayer(layer)) {
    TS_ASSIGN_OR_RETURN(
        l.mlp, LoadMlp(ckpt, m, "gate_proj", "up_proj", "down_proj", c.intermediate_size, c.hidden_size, false));
    return l;
  }
  MoeWeights moe;
  moe.top_k = c.num_experts_per_tok;
  moe.renormalize = c.norm_topk_prob;
  TS_ASSIGN_OR_RETURN(moe.router, LoadLinear(ckpt, m + "gate", c.num_experts, c.hidden_size, false));
  for (int64_t e = 0; e < c.num_experts; ++e) {
    TS_ASSIGN_OR_RETURN(MlpWeights expert, LoadMlp(ckpt, absl::StrCat(m, "experts.", e, "."), "gate_proj", "up_proj",
                                                   "down_proj", c.ExpertWidth(), c.hidden_size, false));
    moe.experts.push_back(std::move(expert));
  }
  if (c.architecture == Architecture::kQwen2Moe && c.shared_expert_intermediate_size > 0) {
    TS_ASSIGN_OR_RETURN(moe.shared, LoadMlp(ckpt, m + "shared_expert.", "gate_proj", "up_proj", "down_proj",
                                            c.shared_expert_intermediate_size, c.hidden_size, false));
    TS_ASSIGN_OR_RETURN(moe.shared_gate, LoadLinear(ckpt, m + "shared_expert_gate", 1, c.hidden_size, false));
  }
  l.moe = std::move(moe);
  return l;
}

}  // namespace tessera::llm
