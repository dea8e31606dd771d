// The parameters of the backend ops that take only plain pointers and sizes (kernels/backend.h
// lists every op). C++17, so that the CUDA kernels (kernels/cuda/*.cu, compiled as C++17 by nvcc)
// take the very structs the Backend interface does. Every pointer is in the memory of the backend
// that runs the op.
#pragma once

#include <cstdint>

namespace tessera::kernels {

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · weight  (LlamaRMSNorm in f32). x and y may alias.
struct RmsNormParams {
  const float* x = nullptr;       // [rows, dim]
  const float* weight = nullptr;  // [dim]
  int64_t rows = 0;
  int64_t dim = 0;
  float eps = 1e-6f;
  float* y = nullptr;  // [rows, dim]
};

enum class RopeStyle : uint8_t {
  kNeox,         // rotate_half (HF Llama): pairs (i, i + rot_dim/2)
  kInterleaved,  // GPT-J / ggml "normal": pairs (2i, 2i + 1)
};

// Rotary embedding in place, θ_i = positions[t] · inv_freq[i] for i < rot_dim/2; dims past rot_dim
// untouched. For a pair (a, b): a' = a·cos θ − b·sin θ, b' = b·cos θ + a·sin θ.
struct RopeParams {
  float* x = nullptr;  // [tokens, heads, head_dim]
  int64_t tokens = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
  int64_t rot_dim = 0;
  const int32_t* positions = nullptr;  // [tokens]
  const float* inv_freq = nullptr;     // [rot_dim / 2]
  RopeStyle style = RopeStyle::kNeox;
};

// out[i] = silu(gate[i]) · up[i], silu(g) = g / (1 + e^−g). out may alias gate.
struct SiluMulParams {
  const float* gate = nullptr;  // [n]
  const float* up = nullptr;    // [n]
  int64_t n = 0;
  float* out = nullptr;  // [n]
};

// x[i] += y[i]  (the residual connection)
struct AddParams {
  float* x = nullptr;        // [n]
  const float* y = nullptr;  // [n]
  int64_t n = 0;
};

// Writes new keys and values into the paged cache: row i goes to slot slots[i] (= block · block_size
// + offset) of k_cache / v_cache, each laid out [num_blocks · block_size, kv_dim].
struct KvWriteParams {
  float* k_cache = nullptr;
  float* v_cache = nullptr;
  const float* k = nullptr;        // [n, kv_dim]
  const float* v = nullptr;        // [n, kv_dim]
  const int32_t* slots = nullptr;  // [n]
  int64_t n = 0;
  int64_t kv_dim = 0;  // n_kv_heads · head_dim
};

// Attention for one sequence, returning output and per-row log-sum-exp (natural log) of the
// scaled scores, so that partial results over disjoint key sets can be merged:
//   out = Σ_j softmax(s)_j v_j,  s_j = scale · q·k_j,  lse = log Σ_j exp(s_j)
// Keys come either from a contiguous buffer or from a paged cache (block_table != nullptr).
// Query i sits at absolute position q_pos0 + i; with causal = true it sees keys whose absolute
// position (k_pos0 + j) is <= its own. A query row that sees no key gets out = 0, lse = −inf.
// GQA: query head h reads kv head h / (n_heads / n_kv_heads).
struct AttentionParams {
  const float* q = nullptr;  // [num_q, n_heads, head_dim]
  int64_t num_q = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  // Contiguous keys/values: [num_kv, n_kv_heads, head_dim] each.
  // Paged: k/v point to the cache base, laid out [num_blocks, block_size, n_kv_heads, head_dim], and
  // key j lives in block block_table[j / block_size], slot j % block_size.
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t num_kv = 0;
  const int32_t* block_table = nullptr;  // [ceil(num_kv / block_size)] or nullptr
  int64_t block_size = 0;
  int64_t q_pos0 = 0;
  int64_t k_pos0 = 0;
  bool causal = true;
  float scale = 1.0f;
  float* out = nullptr;  // [num_q, n_heads, head_dim]
  float* lse = nullptr;  // [num_q, n_heads], optional (nullptr: not written)
};

// MoE routing per token: p = softmax(logits[t, :]); the k largest (ties: lower index first), in
// descending order, renormalized to sum 1 when `renormalize`.
struct MoeRouteParams {
  float* logits = nullptr;  // [tokens, experts]; overwritten by the softmax
  int64_t tokens = 0;
  int64_t experts = 0;
  int64_t k = 1;
  bool renormalize = true;
  int32_t* ids = nullptr;    // [tokens, k]
  float* weights = nullptr;  // [tokens, k]
};

// dst[i, :] = src[rows[i], :]
struct GatherRowsParams {
  const float* src = nullptr;     // [*, dim]
  const int32_t* rows = nullptr;  // [n]
  int64_t n = 0;
  int64_t dim = 0;
  float* dst = nullptr;  // [n, dim]
};

// dst[rows[i], :] += scales[i] · src[i, :], in order of i (rows may repeat).
struct ScatterAddRowsParams {
  const float* src = nullptr;     // [n, dim]
  const int32_t* rows = nullptr;  // [n]
  const float* scales = nullptr;  // [n]
  int64_t n = 0;
  int64_t dim = 0;
  float* dst = nullptr;  // [*, dim]
};

// out[t, :] += sigmoid(gate[t]) · x[t, :]  (Qwen2-MoE's gated shared expert)
struct SigmoidGateAddParams {
  const float* x = nullptr;     // [tokens, dim]
  const float* gate = nullptr;  // [tokens]
  int64_t tokens = 0;
  int64_t dim = 0;
  float* out = nullptr;  // [tokens, dim]
};

}  // namespace tessera::kernels
