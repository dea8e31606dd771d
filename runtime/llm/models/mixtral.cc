// MixtralForCausalLM: every layer is a sparse MoE block
//   router = gate(x); w = softmax(router); top-k; w /= sum(w_topk); y = Σ w_e · w2(silu(w1 x) ⊙ w3 x)
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/llm/models/families.h"

namespace tessera::llm {

absl::StatusOr<LayerWeights> LoadMixtralLayer(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer) {
  const std::string p = LayerPrefix(layer);
  TS_ASSIGN_OR_RETURN(LayerWeights l, LoadNormsAndAttention(c, ckpt, layer));
  MoeWeights moe;
  moe.top_k = c.num_experts_per_tok;
  moe.renormalize = true;
  const std::string m = p + "block_sparse_moe.";
  TS_ASSIGN_OR_RETURN(moe.router, LoadLinear(ckpt, m + "gate", c.num_experts, c.hidden_size, false));
  for (int64_t e = 0; e < c.num_experts; ++e) {
    TS_ASSIGN_OR_RETURN(MlpWeights expert, LoadMlp(ckpt, absl::StrCat(m, "experts.", e, "."), "w1", "w3", "w2",
                                                   c.ExpertWidth(), c.hidden_size, false));
    moe.experts.push_back(std::move(expert));
  }
  l.moe = std::move(moe);
  return l;
}

}  // namespace tessera::llm
