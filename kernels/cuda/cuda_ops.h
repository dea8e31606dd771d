// Launchers of our own CUDA kernels (kernels/cuda/*.cu), called by CudaBackend (cuda_backend.cc).
//
// C++17, so that both nvcc (the .cu files, CUDA_STANDARD 17) and g++ (cuda_backend.cc, C++20)
// compile it; backend.h (C++20: std::span) cannot be included here, so each op's arguments are a
// plain struct mirroring the backend.h Params of the same name, field for field, with the formula
// stated there. Every pointer is device memory. Each launcher enqueues its kernel on `stream` and
// returns the launch error (cudaGetLastError; errors raised while the kernel runs surface at the
// next synchronization), or cudaSuccess without launching when there is no work. Launch shapes are
// derived from the tensor shapes only; per-element math lives in kernel_math.cuh.
//
//   gpu::RmsNormArgs a{.x = x, .weight = w, .rows = tokens, .dim = hidden, .eps = 1e-6f, .y = y};
//   cudaError_t err = gpu::LaunchRmsNorm(a, stream);
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tessera::kernels::gpu {

// Largest head_dim the attention and rope kernels take (AttentionKernel keeps head_dim / 32 values
// per lane in registers).
inline constexpr int64_t kMaxHeadDim = 256;

// y[i] = bf16(x[i]) (round to nearest even; the bits of dtype.h's F32ToBf16).  x: [n], y: [n]
cudaError_t LaunchF32ToBf16(const float* x, int64_t n, uint16_t* y, cudaStream_t stream);

// y[i, j] += bias[j].  y: [m, n], bias: [n]
cudaError_t LaunchAddBias(float* y, int64_t m, int64_t n, const float* bias, cudaStream_t stream);

// out[i, :] = f32(table[ids[i], :])
struct EmbeddingArgs {
  const uint16_t* table = nullptr;  // bf16 [vocab, dim]
  int64_t dim = 0;
  const int32_t* ids = nullptr;  // [n]
  int64_t n = 0;
  float* out = nullptr;  // [n, dim]
};
cudaError_t LaunchEmbedding(const EmbeddingArgs& a, cudaStream_t stream);

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · weight. x and y may alias.
struct RmsNormArgs {
  const float* x = nullptr;       // [rows, dim]
  const float* weight = nullptr;  // [dim]
  int64_t rows = 0;
  int64_t dim = 0;
  float eps = 1e-6f;
  float* y = nullptr;  // [rows, dim]
};
cudaError_t LaunchRmsNorm(const RmsNormArgs& a, cudaStream_t stream);

// Rotary embedding in place, θ_i = positions[t] · inv_freq[i] for i < rot_dim/2; pairs (i, i +
// rot_dim/2) (neox) or (2i, 2i + 1) (interleaved); a' = a·cos θ − b·sin θ, b' = b·cos θ + a·sin θ.
struct RopeArgs {
  float* x = nullptr;  // [tokens, heads, head_dim]
  int64_t tokens = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
  int64_t rot_dim = 0;
  const int32_t* positions = nullptr;  // [tokens]
  const float* inv_freq = nullptr;     // [rot_dim / 2]
  bool interleaved = false;            // RopeStyle::kInterleaved
};
cudaError_t LaunchRope(const RopeArgs& a, cudaStream_t stream);

// out[i] = silu(gate[i]) · up[i]. out may alias gate.
struct SiluMulArgs {
  const float* gate = nullptr;  // [n]
  const float* up = nullptr;    // [n]
  int64_t n = 0;
  float* out = nullptr;  // [n]
};
cudaError_t LaunchSiluMul(const SiluMulArgs& a, cudaStream_t stream);

// x[i] += y[i]
struct AddArgs {
  float* x = nullptr;        // [n]
  const float* y = nullptr;  // [n]
  int64_t n = 0;
};
cudaError_t LaunchAdd(const AddArgs& a, cudaStream_t stream);

// k_cache[slots[i], :] = k[i, :], v_cache[slots[i], :] = v[i, :]. A negative slot is skipped.
struct KvWriteArgs {
  float* k_cache = nullptr;  // [num_blocks · block_size, kv_dim]
  float* v_cache = nullptr;
  const float* k = nullptr;        // [n, kv_dim]
  const float* v = nullptr;        // [n, kv_dim]
  const int32_t* slots = nullptr;  // [n]
  int64_t n = 0;
  int64_t kv_dim = 0;
};
cudaError_t LaunchKvWrite(const KvWriteArgs& a, cudaStream_t stream);

// Attention of one sequence (backend.h AttentionParams, all of its contract):
//   out = Σ_j softmax(s)_j v_j,  s_j = scale · q·k_j,  lse = log Σ_j exp(s_j)
// query i at position q_pos0 + i sees key j iff !causal or k_pos0 + j <= q_pos0 + i; a row that sees
// no key gets out = 0, lse = −inf. GQA: head h reads kv head h / (n_heads / n_kv_heads).
// Requires head_dim <= kMaxHeadDim.
struct AttentionArgs {
  const float* q = nullptr;  // [num_q, n_heads, head_dim]
  int64_t num_q = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  // Contiguous: [num_kv, n_kv_heads, head_dim]; paged: [num_blocks, block_size, n_kv_heads, head_dim].
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t num_kv = 0;
  const int32_t* block_table = nullptr;  // [ceil(num_kv / block_size)] or nullptr (contiguous)
  int64_t block_size = 0;
  int64_t q_pos0 = 0;
  int64_t k_pos0 = 0;
  bool causal = true;
  float scale = 1.0f;
  float* out = nullptr;  // [num_q, n_heads, head_dim]
  float* lse = nullptr;  // [num_q, n_heads] or nullptr
};
cudaError_t LaunchAttention(const AttentionArgs& a, cudaStream_t stream);

// Per token: p = softmax(logits[t, :]) (written back to logits); the k largest (ties: lower index
// first) in descending order, divided by their sum when `renormalize`.
struct MoeRouteArgs {
  float* logits = nullptr;  // [tokens, experts]
  int64_t tokens = 0;
  int64_t experts = 0;
  int64_t k = 1;
  bool renormalize = true;
  int32_t* ids = nullptr;    // [tokens, k]
  float* weights = nullptr;  // [tokens, k]
};
cudaError_t LaunchMoeRoute(const MoeRouteArgs& a, cudaStream_t stream);

// dst[i, :] = src[rows[i], :]
struct GatherRowsArgs {
  const float* src = nullptr;     // [*, dim]
  const int32_t* rows = nullptr;  // [n]
  int64_t n = 0;
  int64_t dim = 0;
  float* dst = nullptr;  // [n, dim]
};
cudaError_t LaunchGatherRows(const GatherRowsArgs& a, cudaStream_t stream);

// dst[rows[i], :] += scales[i] · src[i, :], in order of i (rows may repeat): one thread per column
// walks i sequentially, so the sums are deterministic and rounded in the documented order.
struct ScatterAddRowsArgs {
  const float* src = nullptr;     // [n, dim]
  const int32_t* rows = nullptr;  // [n]
  const float* scales = nullptr;  // [n]
  int64_t n = 0;
  int64_t dim = 0;
  float* dst = nullptr;  // [*, dim]
};
cudaError_t LaunchScatterAddRows(const ScatterAddRowsArgs& a, cudaStream_t stream);

// out[t, :] += sigmoid(gate[t]) · x[t, :]
struct SigmoidGateAddArgs {
  const float* x = nullptr;     // [tokens, dim]
  const float* gate = nullptr;  // [tokens]
  int64_t tokens = 0;
  int64_t dim = 0;
  float* out = nullptr;  // [tokens, dim]
};
cudaError_t LaunchSigmoidGateAdd(const SigmoidGateAddArgs& a, cudaStream_t stream);

}  // namespace tessera::kernels::gpu
