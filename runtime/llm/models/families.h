// Per-family weight layouts. Every supported architecture shares the pre-norm decoder block
// (RMSNorm → attention → residual → RMSNorm → MLP or MoE → residual); the families differ only in
// tensor names, biases, q/k norms and the feed-forward block, so each family is a loader that fills
// the common LayerWeights. One file per family: llama.cc, mixtral.cc, qwen_moe.cc.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/llm/model_config.h"
#include "runtime/llm/weights.h"
#include "runtime/loader/safetensors.h"

namespace tessera::llm {

// "model.layers.<i>."
std::string LayerPrefix(int64_t layer);

// self_attn.{q,k,v,o}_proj (+ biases as the config says, + q_norm/k_norm for Qwen3).
absl::StatusOr<AttentionWeights> LoadAttention(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer);
// A layer with its two norms and attention loaded; the caller adds the MLP or MoE block.
absl::StatusOr<LayerWeights> LoadNormsAndAttention(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer);
// A SwiGLU MLP with the given tensor names under `prefix`.
absl::StatusOr<MlpWeights> LoadMlp(loader::Checkpoint& ckpt, const std::string& prefix, const char* gate,
                                   const char* up, const char* down, int64_t width, int64_t hidden, bool bias);

absl::StatusOr<LayerWeights> LoadLlamaLayer(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer);
absl::StatusOr<LayerWeights> LoadMixtralLayer(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer);
absl::StatusOr<LayerWeights> LoadQwenMoeLayer(const ModelConfig& c, loader::Checkpoint& ckpt, int64_t layer);

// Embedding, final norm, lm_head and every layer, by the config's architecture.
absl::StatusOr<ModelWeights> LoadModelWeights(const ModelConfig& c, loader::Checkpoint& ckpt);

}  // namespace tessera::llm
