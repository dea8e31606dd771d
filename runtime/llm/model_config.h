// Hyper-parameters of a decoder-only transformer, as read from a Hugging Face config.json
// (runtime/loader/hf_config.h) or GGUF metadata. One struct for every supported family; fields that
// a family does not use keep their defaults.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessera::llm {

enum class Architecture {
  kLlama,     // LlamaForCausalLM
  kMixtral,   // MixtralForCausalLM: every layer MoE, softmax → top-k → renormalize
  kQwen2Moe,  // Qwen2MoeForCausalLM: q/k/v bias, shared expert with sigmoid gate
  kQwen3Moe,  // Qwen3MoeForCausalLM: q/k RMSNorm per head, explicit head_dim
};

enum class RopeScaling { kNone, kLinear, kLlama3 };

struct RopeConfig {
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::kNone;
  double factor = 1.0;                              // linear and llama3
  double low_freq_factor = 1.0;                     // llama3
  double high_freq_factor = 4.0;                    // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
  double partial_rotary_factor = 1.0;               // rot_dim = head_dim * factor
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_name;  // as written in config.json, e.g. "LlamaForCausalLM"

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // dense MLP width (and Mixtral's expert width)
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // bias on q/k/v/o (Llama option); Qwen2-MoE: q/k/v always
  bool attention_out_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;  // Qwen3-MoE

  // Mixture of experts (0 experts = dense).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;            // expert width (Qwen); Mixtral uses intermediate_size
  int64_t shared_expert_intermediate_size = 0;  // Qwen2-MoE; 0 = no shared expert
  bool norm_topk_prob = true;                   // renormalize the top-k weights to sum to 1
  int64_t decoder_sparse_step = 1;              // Qwen: layer i is MoE iff (i+1) % step == 0
  std::vector<int64_t> mlp_only_layers;         // Qwen: these layers stay dense

  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;
  int64_t pad_token_id = -1;

  // Whether `layer` uses the MoE block (Qwen rule; Mixtral has step 1 and no dense layers).
  bool IsMoeLayer(int64_t layer) const {
    if (num_experts <= 0) return false;
    for (int64_t l : mlp_only_layers) {
      if (l == layer) return false;
    }
    return (layer + 1) % (decoder_sparse_step > 0 ? decoder_sparse_step : 1) == 0;
  }
  int64_t ExpertWidth() const { return moe_intermediate_size > 0 ? moe_intermediate_size : intermediate_size; }
};

// Defaults for sampling from generation_config.json (absent fields keep these values).
struct GenerationDefaults {
  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;
  bool do_sample = false;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  int64_t max_new_tokens = -1;
};

}  // namespace tessera::llm
