// CUDA device discovery that is safe on machines without a GPU or driver.
//
//   if (tessera::kernels::CudaDeviceCount() == 0) { /* CPU only */ }
#pragma once

namespace tessera::kernels {

// Number of visible CUDA devices; 0 when the runtime reports any error (no driver, no device,
// driver older than the runtime). Never aborts.
int CudaDeviceCount();

}  // namespace tessera::kernels
