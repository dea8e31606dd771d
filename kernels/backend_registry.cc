#include "kernels/backend_registry.h"

#include "absl/strings/str_cat.h"
#include "kernels/cpu/cpu_backend.h"

#if TESSERA_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace tessera::kernels {

bool CudaBackendBuilt() { return TESSERA_CUDA != 0; }

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options) {
  if (options.device.is_cpu()) {
    absl::StatusOr<std::unique_ptr<CpuBackend>> cpu = CpuBackend::Create({.num_threads = options.num_threads});
    if (!cpu.ok()) return cpu.status();
    return std::unique_ptr<Backend>(std::move(*cpu));
  }
#if TESSERA_CUDA
  return CreateCudaBackend(options.device.index, options.num_threads);
#else
  return absl::FailedPreconditionError(absl::StrCat(
      "device ", options.device.ToString(), ": this build has no CUDA backend (configured with TESSERA_CUDA=OFF)"));
#endif
}

}  // namespace tessera::kernels
