// MoE routing: one thread per token row runs kernel_math.cuh's SoftmaxRow and TopKRow (the router's
// few experts make a per-row serial scan cheaper than any cooperative scheme).
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kernel_math.cuh"
#include "kernels/cuda/launch_config.cuh"

namespace tessera::kernels::gpu {
namespace {

__global__ void MoeRouteKernel(MoeRouteParams a) {
  for (int64_t t = GlobalThread(); t < a.tokens; t += GridThreads()) {
    float* p = a.logits + t * a.experts;
    SoftmaxRow(p, a.experts);
    TopKRow(p, a.experts, a.k, a.renormalize, a.ids + t * a.k, a.weights + t * a.k);
  }
}

}  // namespace

cudaError_t LaunchMoeRoute(const MoeRouteParams& a, cudaStream_t stream) {
  if (a.tokens <= 0 || a.experts <= 0 || a.k <= 0) return cudaSuccess;
  const LaunchGrid g = GridFor(a.tokens);
  MoeRouteKernel<<<g.blocks, g.threads, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace tessera::kernels::gpu
