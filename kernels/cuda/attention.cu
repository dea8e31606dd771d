// Attention with log-sum-exp: one thread block per (query row, head), for contiguous or paged keys.
//
// The block's warps split the keys the row sees (warp w takes keys w, w + warps, ...). A warp holds
// the query and its running output in registers, head_dim / 32 values per lane (kDimsPerLane at
// most), computes each score with a warp-wide dot product, and folds it into its own online softmax
// (kernel_math.cuh OnlineSoftmaxAdd: the CPU reference's steps). The warps' partial (m, l, acc) are
// then merged through shared memory under the overall max:
//   M = max_w m_w,  L = Σ_w l_w·e^(m_w − M),  out = Σ_w acc_w·e^(m_w − M) / L,  lse = M + log L,
// with out = 0, lse = −inf when no warp saw a key.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kernel_math.cuh"
#include "kernels/cuda/launch_config.cuh"

namespace tessera::kernels::gpu {
namespace {

constexpr int kDimsPerLane = static_cast<int>(kMaxHeadDim) / kWarpSize;
// Warps per block: up to this many, one per kKeysPerWarp keys of the sequence.
constexpr int kMaxWarps = 4;
constexpr int64_t kKeysPerWarp = 16;

__global__ void AttentionKernel(AttentionParams a) {
  __shared__ float part_m[kMaxWarps];
  __shared__ float part_l[kMaxWarps];
  __shared__ float part_acc[kMaxWarps][kMaxHeadDim];

  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int warps = static_cast<int>(blockDim.x) / kWarpSize;
  const int64_t hd = a.head_dim;
  const int64_t r = blockIdx.x;  // query row · n_heads + head
  const int64_t qi = r / a.n_heads;
  const int64_t kvh = (r % a.n_heads) / (a.n_heads / a.n_kv_heads);

  float q[kDimsPerLane];
  float acc[kDimsPerLane];
#pragma unroll
  for (int c = 0; c < kDimsPerLane; ++c) {
    const int64_t d = lane + int64_t{c} * kWarpSize;
    q[c] = d < hd ? a.q[r * hd + d] : 0.0f;
    acc[c] = 0.0f;
  }

  SoftmaxState st;
  const int64_t n_keys = VisibleKeys(a.causal, a.num_kv, a.q_pos0, a.k_pos0, qi);
  for (int64_t j = warp; j < n_keys; j += warps) {
    const int64_t off = (KvSlot(a.block_table, a.block_size, j) * a.n_kv_heads + kvh) * hd;
    float dot = 0.0f;
#pragma unroll
    for (int c = 0; c < kDimsPerLane; ++c) {
      const int64_t d = lane + int64_t{c} * kWarpSize;
      if (d < hd) dot += q[c] * a.k[off + d];
    }
    const float s = WarpSum(dot) * a.scale;
    float rescale;
    float weight;
    OnlineSoftmaxAdd(&st, s, &rescale, &weight);
#pragma unroll
    for (int c = 0; c < kDimsPerLane; ++c) {
      const int64_t d = lane + int64_t{c} * kWarpSize;
      if (d < hd) acc[c] = acc[c] * rescale + weight * a.v[off + d];
    }
  }

  if (lane == 0) {
    part_m[warp] = st.m;
    part_l[warp] = st.l;
  }
#pragma unroll
  for (int c = 0; c < kDimsPerLane; ++c) {
    const int64_t d = lane + int64_t{c} * kWarpSize;
    if (d < hd) part_acc[warp][d] = acc[c];
  }
  __syncthreads();

  float m_total = -INFINITY;
  for (int w = 0; w < warps; ++w) m_total = fmaxf(m_total, part_m[w]);
  float l_total = 0.0f;
  for (int w = 0; w < warps; ++w) l_total += part_l[w] * PartialWeight(part_m[w], m_total);
  const float inv = l_total > 0.0f ? 1.0f / l_total : 0.0f;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < warps; ++w) o += part_acc[w][d] * PartialWeight(part_m[w], m_total);
    a.out[r * hd + d] = o * inv;
  }
  if (a.lse != nullptr && threadIdx.x == 0) a.lse[r] = LogSumExp(m_total, l_total);
}

}  // namespace

cudaError_t LaunchAttention(const AttentionParams& a, cudaStream_t stream) {
  const int64_t rows = a.num_q * a.n_heads;
  if (rows <= 0 || a.head_dim <= 0) return cudaSuccess;
  if (a.head_dim > kMaxHeadDim || a.n_kv_heads <= 0) return cudaErrorInvalidValue;
  const int64_t by_keys = CeilDiv(a.num_kv > 0 ? a.num_kv : 1, kKeysPerWarp);
  const int warps = static_cast<int>(by_keys < kMaxWarps ? by_keys : kMaxWarps);
  // One block per row: grids take up to 2^31 − 1 blocks in x on every architecture we build for.
  if (rows > int64_t{0x7fffffff}) return cudaErrorInvalidConfiguration;
  AttentionKernel<<<static_cast<unsigned>(rows), static_cast<unsigned>(warps * kWarpSize), 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace tessera::kernels::gpu
