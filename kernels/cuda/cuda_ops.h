// Launchers of our own CUDA kernels (kernels/cuda/*.cu), called by CudaBackend (cuda_backend.cc).
//
// C++17, so that both nvcc (the .cu files, CUDA_STANDARD 17) and g++ (cuda_backend.cc, C++20)
// compile it; the launchers take backend.h's own Params structs (kernels/op_params.h, C++17), whose
// comments state each formula; only Embedding has its own arguments (the bf16 table, not a
// PreparedWeight). Every pointer is device memory. Each launcher enqueues its kernel on `stream` and
// returns the launch error (cudaGetLastError; errors raised while the kernel runs surface at the
// next synchronization), or cudaSuccess without launching when there is no work. Launch shapes are
// derived from the tensor shapes only; per-element math lives in kernel_math.cuh.
//
//   gpu::RmsNormParams a{.x = x, .weight = w, .rows = tokens, .dim = hidden, .eps = 1e-6f, .y = y};
//   cudaError_t err = gpu::LaunchRmsNorm(a, stream);
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/op_params.h"

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
cudaError_t LaunchRmsNorm(const RmsNormParams& a, cudaStream_t stream);

// Rotary embedding in place, θ_i = positions[t] · inv_freq[i] for i < rot_dim/2; pairs (i, i +
// rot_dim/2) (neox) or (2i, 2i + 1) (interleaved); a' = a·cos θ − b·sin θ, b' = b·cos θ + a·sin θ.
cudaError_t LaunchRope(const RopeParams& a, cudaStream_t stream);

// out[i] = silu(gate[i]) · up[i]. out may alias gate.
cudaError_t LaunchSiluMul(const SiluMulParams& a, cudaStream_t stream);

// x[i] += y[i]
cudaError_t LaunchAdd(const AddParams& a, cudaStream_t stream);

// k_cache[slots[i], :] = k[i, :], v_cache[slots[i], :] = v[i, :]. A negative slot is skipped.
cudaError_t LaunchKvWrite(const KvWriteParams& a, cudaStream_t stream);

// Attention of one sequence (backend.h AttentionParams, all of its contract):
//   out = Σ_j softmax(s)_j v_j,  s_j = scale · q·k_j,  lse = log Σ_j exp(s_j)
// query i at position q_pos0 + i sees key j iff !causal or k_pos0 + j <= q_pos0 + i; a row that sees
// no key gets out = 0, lse = −inf. GQA: head h reads kv head h / (n_heads / n_kv_heads).
// Requires head_dim <= kMaxHeadDim.
cudaError_t LaunchAttention(const AttentionParams& a, cudaStream_t stream);

// Per token: p = softmax(logits[t, :]) (written back to logits); the k largest (ties: lower index
// first) in descending order, divided by their sum when `renormalize`.
cudaError_t LaunchMoeRoute(const MoeRouteParams& a, cudaStream_t stream);

// dst[i, :] = src[rows[i], :]
cudaError_t LaunchGatherRows(const GatherRowsParams& a, cudaStream_t stream);

// dst[rows[i], :] += scales[i] · src[i, :], in order of i (rows may repeat): one thread per column
// walks i sequentially, so the sums are deterministic and rounded in the documented order.
cudaError_t LaunchScatterAddRows(const ScatterAddRowsParams& a, cudaStream_t stream);

// out[t, :] += sigmoid(gate[t]) · x[t, :]
cudaError_t LaunchSigmoidGateAdd(const SigmoidGateAddParams& a, cudaStream_t stream);

}  // namespace tessera::kernels::gpu
