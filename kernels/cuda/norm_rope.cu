// RmsNorm (one block per row, f32 sum of squares reduced across the block) and rotary embedding
// (one thread per (token, head, pair)).
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kernel_math.cuh"
#include "kernels/cuda/launch_config.cuh"

namespace tessera::kernels::gpu {
namespace {

// blockDim.x: a multiple of kWarpSize, at most kBlockThreads (RowThreads).
__global__ void RmsNormKernel(RmsNormParams a) {
  __shared__ float warp_sums[kBlockThreads / kWarpSize];
  __shared__ float row_sum;
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int warps = static_cast<int>(blockDim.x) / kWarpSize;
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const float* x = a.x + r * a.dim;
    float* y = a.y + r * a.dim;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < a.dim; i += blockDim.x) ss += x[i] * x[i];
    ss = WarpSum(ss);
    if (lane == 0) warp_sums[warp] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
      float total = 0.0f;
      for (int w = 0; w < warps; ++w) total += warp_sums[w];
      row_sum = total;
    }
    __syncthreads();
    // Every read of this row is done (the sum needed all of it), so y may alias x.
    const float inv = RmsInvScale(row_sum, a.dim, a.eps);
    for (int64_t i = threadIdx.x; i < a.dim; i += blockDim.x) y[i] = x[i] * inv * a.weight[i];
    __syncthreads();  // warp_sums and row_sum are reused by the next row
  }
}

__global__ void RopeKernel(RopeParams a) {
  const int64_t half = a.rot_dim / 2;
  const int64_t total = a.tokens * a.heads * half;
  for (int64_t idx = GlobalThread(); idx < total; idx += GridThreads()) {
    const int64_t i = idx % half;
    const int64_t token_head = idx / half;
    const int64_t t = token_head / a.heads;
    const float theta = RopeAngle(a.positions[t], a.inv_freq[i]);
    const float c = cosf(theta);
    const float s = sinf(theta);
    float* v = a.x + token_head * a.head_dim;
    const PairOffsets o = RopePairOffsets(a.style == RopeStyle::kInterleaved, i, a.rot_dim);
    RotatePair(v[o.a], v[o.b], c, s, &v[o.a], &v[o.b]);
  }
}

}  // namespace

cudaError_t LaunchRmsNorm(const RmsNormParams& a, cudaStream_t stream) {
  if (a.rows <= 0 || a.dim <= 0) return cudaSuccess;
  RmsNormKernel<<<RowBlocks(a.rows), RowThreads(a.dim), 0, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t LaunchRope(const RopeParams& a, cudaStream_t stream) {
  const int64_t total = a.tokens * a.heads * (a.rot_dim / 2);
  if (total <= 0) return cudaSuccess;
  const LaunchGrid g = GridFor(total);
  RopeKernel<<<g.blocks, g.threads, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace tessera::kernels::gpu
