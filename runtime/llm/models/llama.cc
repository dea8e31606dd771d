// LlamaForCausalLM (also the attention and dense-MLP loaders every family reuses).
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/llm/models/families.h"

namespace tessera::llm {

std::string LayerPrefix(int64_t layer) { return absl::StrCat("model.layers.", layer, "."); }

absl::StatusOr<AttentionWeights> LoadAttention(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer) {
  const std::string p = LayerPrefix(layer) + "self_attn.";
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  AttentionWeights a;
  TS_ASSIGN_OR_RETURN(a.q, LoadLinear(ckpt, p + "q_proj", q_dim, c.hidden_size, c.attention_bias));
  TS_ASSIGN_OR_RETURN(a.k, LoadLinear(ckpt, p + "k_proj", kv_dim, c.hidden_size, c.attention_bias));
  TS_ASSIGN_OR_RETURN(a.v, LoadLinear(ckpt, p + "v_proj", kv_dim, c.hidden_size, c.attention_bias));
  TS_ASSIGN_OR_RETURN(a.o, LoadLinear(ckpt, p + "o_proj", c.hidden_size, q_dim, c.attention_out_bias));
  if (c.qk_norm) {
    TS_ASSIGN_OR_RETURN(a.q_norm.host, LoadVector(ckpt, p + "q_norm.weight", c.head_dim));
    TS_ASSIGN_OR_RETURN(a.k_norm.host, LoadVector(ckpt, p + "k_norm.weight", c.head_dim));
  }
  return a;
}

absl::StatusOr<LayerWeights> LoadNormsAndAttention(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer) {
  const std::string p = LayerPrefix(layer);
  LayerWeights l;
  TS_ASSIGN_OR_RETURN(l.input_norm.host, LoadVector(ckpt, p + "input_layernorm.weight", c.hidden_size));
  TS_ASSIGN_OR_RETURN(l.post_attention_norm.host,
                      LoadVector(ckpt, p + "post_attention_layernorm.weight", c.hidden_size));
  TS_ASSIGN_OR_RETURN(l.attn, LoadAttention(c, ckpt, layer));
  return l;
}

absl::StatusOr<MlpWeights> LoadMlp(loader::Checkpoint& ckpt, const std::string& prefix, const char* gate,
                                   const char* up, const char* down, int64_t width, int64_t hidden, bool bias) {
  MlpWeights m;
  TS_ASSIGN_OR_RETURN(m.gate, LoadLinear(ckpt, prefix + gate, width, hidden, bias));
  TS_ASSIGN_OR_RETURN(m.up, LoadLinear(ckpt, prefix + up, width, hidden, bias));
  TS_ASSIGN_OR_RETURN(m.down, LoadLinear(ckpt, prefix + down, hidden, width, bias));
  return m;
}

absl::StatusOr<LayerWeights> LoadLlamaLayer(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer) {
  const std::string p = LayerPrefix(layer);
  TS_ASSIGN_OR_RETURN(LayerWeights l, LoadNormsAndAttention(c, ckpt, layer));
  TS_ASSIGN_OR_RETURN(l.mlp, LoadMlp(ckpt, p + "mlp.", "gate_proj", "up_proj", "down_proj", c.intermediate_size,
                                     c.hidden_size, c.mlp_bias));
  return l;
}

absl::StatusOr<ModelWeights> LoadModelWeights(const ModelConfig& c, loader::Checkpoint& ckpt) {
  ModelWeights w;
  TS_ASSIGN_OR_RETURN(w.embed, LoadLinear(ckpt, "model.embed_tokens", c.vocab_size, c.hidden_size, false));
  TS_ASSIGN_OR_RETURN(w.final_norm.host, LoadVector(ckpt, "model.norm.weight", c.hidden_size));
  if (c.tie_word_embeddings && !ckpt.Has("lm_head.weight")) {
    w.lm_head = w.embed;
  } else {
    TS_ASSIGN_OR_RETURN(w.lm_head, LoadLinear(ckpt, "lm_head", c.vocab_size, c.hidden_size, false));
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    absl::StatusOr<LayerWeights> layer;
    switch (c.architecture) {
      case Architecture::kLlama:
        layer = LoadLlamaLayer(c, ckpt, i);
        break;
      case Architecture::kMixtral:
        layer = LoadMixtralLayer(c, ckpt, i);
        break;
      case Architecture::kQwen2Moe:
      case Architecture::kQwen3Moe:
        layer = LoadQwenMoeLayer(c, ckpt, i);
        break;
    }
    if (!layer.ok()) return layer.status();
    w.layers.push_back(*std::move(layer));
  }
  return w;
}

}  // namespace tessera::llm
