// Elementwise kernels: the f32 → bf16 activation cast and bias add around cuBLASLt, SiluMul, Add,
// SigmoidGateAdd. One grid-stride thread per element.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/kernel_math.cuh"
#include "kernels/cuda/launch_config.cuh"

namespace tessera::kernels::gpu {
namespace {

__global__ void F32ToBf16Kernel(const float* x, int64_t n, uint16_t* y) {
  for (int64_t i = GlobalThread(); i < n; i += GridThreads()) y[i] = F32ToBf16Bits(x[i]);
}

__global__ void AddBiasKernel(float* y, int64_t m, int64_t n, const float* bias) {
  const int64_t total = m * n;
  for (int64_t i = GlobalThread(); i < total; i += GridThreads()) y[i] += bias[i % n];
}

__global__ void SiluMulKernel(SiluMulParams a) {
  for (int64_t i = GlobalThread(); i < a.n; i += GridThreads()) a.out[i] = Silu(a.gate[i]) * a.up[i];
}

__global__ void AddKernel(AddParams a) {
  for (int64_t i = GlobalThread(); i < a.n; i += GridThreads()) a.x[i] += a.y[i];
}

__global__ void SigmoidGateAddKernel(SigmoidGateAddParams a) {
  const int64_t total = a.tokens * a.dim;
  for (int64_t i = GlobalThread(); i < total; i += GridThreads()) {
    a.out[i] += Sigmoid(a.gate[i / a.dim]) * a.x[i];
  }
}

}  // namespace

cudaError_t LaunchF32ToBf16(const float* x, int64_t n, uint16_t* y, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const LaunchGrid g = GridFor(n);
  F32ToBf16Kernel<<<g.blocks, g.threads, 0, stream>>>(x, n, y);
  return cudaGetLastError();
}

cudaError_t LaunchAddBias(float* y, int64_t m, int64_t n, const float* bias, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return cudaSuccess;
  const LaunchGrid g = GridFor(m * n);
  AddBiasKernel<<<g.blocks, g.threads, 0, stream>>>(y, m, n, bias);
  return cudaGetLastError();
}

cudaError_t LaunchSiluMul(const SiluMulParams& a, cudaStream_t stream) {
  if (a.n <= 0) return cudaSuccess;
  const LaunchGrid g = GridFor(a.n);
  SiluMulKernel<<<g.blocks, g.threads, 0, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t LaunchAdd(const AddParams& a, cudaStream_t stream) {
  if (a.n <= 0) return cudaSuccess;
  const LaunchGrid g = GridFor(a.n);
  AddKernel<<<g.blocks, g.threads, 0, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t LaunchSigmoidGateAdd(const SigmoidGateAddParams& a, cudaStream_t stream) {
  if (a.tokens <= 0 || a.dim <= 0) return cudaSuccess;
  const LaunchGrid g = GridFor(a.tokens * a.dim);
  SigmoidGateAddKernel<<<g.blocks, g.threads, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace tessera::kernels::gpu
