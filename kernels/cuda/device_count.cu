#include <cuda_runtime.h>

#include "kernels/cuda/device_count.h"

namespace tessera::kernels {

int CudaDeviceCount() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later runtime calls do not report it
    return 0;
  }
  return count;
}

}  // namespace tessera::kernels
