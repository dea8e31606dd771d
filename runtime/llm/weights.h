// Weight handles of a transformer, pointing into the mmapped checkpoint, and their prepared forms on
// the model's backend.
//
// The loaders (models/) fill in what the file holds: large matrices stay where the loader mapped
// them (f32/bf16/f16 or GGUF blocks, row-major [out, in] as nn.Linear stores them); vectors (norm
// weights, biases) are converted to f32 host copies. PrepareWeights then hands every matrix to the
// backend (kernels::Backend::PrepareWeight picks its layout) and copies every vector to it; the
// forward pass only reads the prepared forms.
//
//   TS_ASSIGN_OR_RETURN(LinearWeight q, LoadLinear(ckpt, prefix + "q_proj", n_heads * head_dim, hidden,
//                                                  /*bias=*/true));
//   ...
//   TS_RETURN_IF_ERROR(PrepareWeights(weights, *backend, *ctx, Activations::kInt8));
//   ApplyLinear(exec, x, tokens, q, y);   // y[tokens, out] = x[tokens, in] · Wᵀ + b
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "kernels/dtype.h"
#include "runtime/llm/scratch.h"
#include "runtime/loader/safetensors.h"

namespace tessera::llm {

// The backend and context a forward pass runs on, and its activation buffers.
struct Exec {
  kernels::Backend* backend = nullptr;
  kernels::ExecContext* ctx = nullptr;
  Scratch* scratch = nullptr;
};

struct LinearWeight {
  const void* data = nullptr;  // [out, in] in `dtype`, inside the checkpoint mapping
  kernels::DType dtype = kernels::DType::kF32;
  int64_t out = 0;
  int64_t in = 0;
  std::vector<float> bias;  // [out] or empty (host; the prepared weight holds the backend's copy)
  // The backend's form of this matrix (bias included), made by PrepareWeights. Shared when one
  // matrix serves twice (a tied embedding and lm_head).
  std::shared_ptr<const kernels::PreparedWeight> prepared;
};

// A 1-D f32 weight (a norm's scale): the host copy the loader made, and the backend's copy.
struct VectorWeight {
  std::vector<float> host;       // [n]
  kernels::DeviceBuffer device;  // [n] f32, set by PrepareWeights
  bool empty() const { return host.empty(); }
  const float* data() const { return device.as<const float>(); }
};

// The [out, in] matrix `name + ".weight"` (and `name + ".bias"` when `bias`), shape-checked.
absl::StatusOr<LinearWeight> LoadLinear(loader::Checkpoint& ckpt, const std::string& name, int64_t out, int64_t in,
                                        bool bias);
// A 1-D tensor of length n converted to f32.
absl::StatusOr<std::vector<float>> LoadVector(loader::Checkpoint& ckpt, const std::string& name, int64_t n);

// y[tokens, out] = x[tokens, in] · Wᵀ (+ bias). x, y: backend memory.
void ApplyLinear(const Exec& exec, const float* x, int64_t tokens, const LinearWeight& w, float* y);
// ApplyLinear of each ws[i] into ys[i], all on the same x, as one backend call (the CPU backend
// quantizes x once and shares one pass over its pool when the weights are packed alike).
void ApplyLinears(const Exec& exec, const float* x, int64_t tokens, std::span<const LinearWeight* const> ws,
                  std::span<float* const> ys);

struct MlpWeights {   // SwiGLU MLP: down(silu(gate(x)) * up(x))
  LinearWeight gate;  // [width, hidden]
  LinearWeight up;    // [width, hidden]
  LinearWeight down;  // [hidden, width]
};

struct MoeWeights {
  LinearWeight router;  // [num_experts, hidden]
  std::vector<MlpWeights> experts;
  int64_t top_k = 1;
  bool renormalize = true;                  // top-k weights rescaled to sum to 1
  std::optional<MlpWeights> shared;         // Qwen2-MoE shared expert
  std::optional<LinearWeight> shared_gate;  // [1, hidden]; shared output × sigmoid(gate · x)
};

struct AttentionWeights {
  LinearWeight q, k, v, o;
  VectorWeight q_norm, k_norm;  // [head_dim] each (Qwen3), or empty
};

struct LayerWeights {
  VectorWeight input_norm;           // [hidden]
  VectorWeight post_attention_norm;  // [hidden]
  AttentionWeights attn;
  std::optional<MlpWeights> mlp;  // exactly one of mlp / moe is set
  std::optional<MoeWeights> moe;
};

struct ModelWeights {
  LinearWeight embed;    // [vocab, hidden]
  LinearWeight lm_head;  // [vocab, hidden] (the embedding when tied)
  VectorWeight final_norm;
  std::vector<LayerWeights> layers;
};

// Prepares every matrix on `backend` (checking Supports first: an unsupported dtype or shape is
// INVALID_ARGUMENT naming the tensor's role) with activations `act`, and copies every vector to it.
// Where a prepared matrix no longer reads its original (a packed CPU copy, a device copy), the
// original's resident pages are given back (the mapping stays). RESOURCE_EXHAUSTED when the weights
// do not fit in the device's memory.
absl::Status PrepareWeights(ModelWeights& w, kernels::Backend& backend, kernels::ExecContext& ctx,
                            kernels::Activations act);

// Bytes the prepared weights take: each distinct PreparedWeight's resident bytes plus its original
// where ops still read that in place, and the backend copies of the vectors.
int64_t PreparedWeightBytes(const ModelWeights& w);

}  // namespace tessera::llm
