#include "kernels/backend_registry.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kernels/cpu/cpu_backend.h"

#if TESSERA_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_count.h"
#endif

namespace tessera::kernels {

bool CudaBackendBuilt() { return TESSERA_CUDA != 0; }

int CudaDevicesVisible() {
#if TESSERA_CUDA
  return CudaDeviceCount();
#else
  return 0;
#endif
}

std::string PhysicalDeviceName(const Device& device) {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (device.is_cpu() || visible == nullptr) return device.ToString();
  const std::vector<std::string> ids = absl::StrSplit(visible, ',');
  int physical = 0;
  if (device.index < static_cast<int>(ids.size()) && absl::SimpleAtoi(ids[device.index], &physical) && physical >= 0) {
    return Device::Cuda(physical).ToString();
  }
  return device.ToString();
}

absl::Status CheckDeviceAvailable(const Device& device) {
  if (device.is_cpu()) return absl::OkStatus();
  if (!CudaBackendBuilt()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device ", device.ToString(), ": this build has no CUDA backend (configured with TESSERA_CUDA=OFF)"));
  }
  const int count = CudaDevicesVisible();
  if (count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", device.ToString(),
                     ": no CUDA device is visible (no GPU, no driver, or CUDA_VISIBLE_DEVICES "
                     "hides them); use --device cpu"));
  }
  if (device.index >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", device.ToString(), ": only ", count, " CUDA device(s) visible"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options) {
  if (options.device.is_cpu()) {
    absl::StatusOr<std::unique_ptr<CpuBackend>> cpu = CpuBackend::Create({.num_threads = options.num_threads});
    if (!cpu.ok()) return cpu.status();
    return std::unique_ptr<Backend>(std::move(*cpu));
  }
#if TESSERA_CUDA
  if (absl::Status s = CheckDeviceAvailable(options.device); !s.ok()) return s;
  return CreateCudaBackend(options.device.index, options.num_threads);
#else
  return absl::FailedPreconditionError(absl::StrCat(
      "device ", options.device.ToString(), ": this build has no CUDA backend (configured with TESSERA_CUDA=OFF)"));
#endif
}

}  // namespace tessera::kernels
