// Weight handles of a transformer, pointing into the mmapped checkpoint.
//
// Large matrices stay where the loader mapped them (f32/bf16/f16, row-major [out, in] as nn.Linear
// stores them); only vectors (norm weights, biases) are converted to f32 copies at load time.
//
//   TS_ASSIGN_OR_RETURN(LinearWeight q, LoadLinear(ckpt, prefix + "q_proj", n_heads * head_dim, hidden,
//                                                  /*bias=*/true));
//   ApplyLinear(pool, x, tokens, q, y);   // y[tokens, out] = x[tokens, in] · Wᵀ + b
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/packed_linear.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"
#include "runtime/loader/safetensors.h"

namespace tessera::llm {

struct LinearWeight {
  const void* data = nullptr;  // [out, in] in `dtype`, inside the checkpoint mapping
  kernels::DType dtype = kernels::DType::kF32;
  int64_t out = 0;
  int64_t in = 0;
  std::vector<float> bias;  // [out] or empty
  // How a quantized dtype meets the activations (kernels::Linear); float dtypes ignore it.
  kernels::Activations activations = kernels::Activations::kInt8;
  // A copy of data rearranged for the CPU's SIMD dot products (kernels::PackForLinear), used
  // instead of data when set.
  std::shared_ptr<const kernels::PackedLinear> packed;
};

// The [out, in] matrix `name + ".weight"` (and `name + ".bias"` when `bias`), shape-checked.
absl::StatusOr<LinearWeight> LoadLinear(loader::Checkpoint& ckpt, const std::string& name, int64_t out, int64_t in,
                                        bool bias);
// A 1-D tensor of length n converted to f32.
absl::StatusOr<std::vector<float>> LoadVector(loader::Checkpoint& ckpt, const std::string& name, int64_t n);

// y[tokens, out] = x[tokens, in] · Wᵀ (+ bias).
void ApplyLinear(kernels::ThreadPool* pool, const float* x, int64_t tokens, const LinearWeight& w, float* y);
// ApplyLinear of each ws[i] into ys[i], all on the same x: one kernel call (x quantized once, one
// pass over the pool) when they are packed alike, else one call each.
void ApplyLinears(kernels::ThreadPool* pool, const float* x, int64_t tokens, std::span<const LinearWeight* const> ws,
                  std::span<float* const> ys);

// Row `id` of an [rows, dim] matrix in any weight dtype, converted to f32: out[dim].
void GatherRow(const LinearWeight& table, int64_t id, float* out);

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
  std::vector<float> q_norm, k_norm;  // [head_dim] each (Qwen3), or empty
};

struct LayerWeights {
  std::vector<float> input_norm;           // [hidden]
  std::vector<float> post_attention_norm;  // [hidden]
  AttentionWeights attn;
  std::optional<MlpWeights> mlp;  // exactly one of mlp / moe is set
  std::optional<MoeWeights> moe;
};

struct ModelWeights {
  LinearWeight embed;    // [vocab, hidden]
  LinearWeight lm_head;  // [vocab, hidden] (the embedding when tied)
  std::vector<float> final_norm;
  std::vector<LayerWeights> layers;
};

// Sets LinearWeight::activations of every matrix that Linear multiplies (all but the embedding
// table, which is only gathered), and packs those the CPU has a faster layout for
// (LinearWeight::packed); with int8 activations it gives back the resident pages of their mapped
// originals. The weights must point into a file mapping (loader::Checkpoint, loader::GgufFile).
void PrepareLinears(ModelWeights& w, kernels::Activations act);

}  // namespace tessera::llm
