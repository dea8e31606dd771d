// Makes the Backend for a Device: the CPU backend, or the CUDA backend where it was built and a GPU
// is present. A device that cannot be had is an error at start-up, never a silent fallback.
//
//   TS_ASSIGN_OR_RETURN(kernels::Device dev, kernels::ParseDevice(flag));
//   TS_ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend,
//                       kernels::CreateBackend({.device = dev, .num_threads = 2}));
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace tessera::kernels {

struct BackendOptions {
  Device device = Device::Cpu();
  int num_threads = 0;  // the host thread pool; 0: all hardware threads
};

// FAILED_PRECONDITION when the device is a GPU and this build has no CUDA backend or the machine no
// such GPU (the message says which, and how many devices there are).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options);

// Whether this build includes the CUDA backend (it may still find no GPU at run time).
bool CudaBackendBuilt();
// CUDA devices this process can use: 0 without the CUDA backend, a driver or a GPU.
int CudaDevicesVisible();
// OK when `device` can be had here; FAILED_PRECONDITION naming what is missing otherwise. Cheap
// (no backend is made): for start-up checks before any server starts.
absl::Status CheckDeviceAvailable(const Device& device);

// The name of `device` as the machine knows it: "cuda:3" for cuda:0 of a process started with
// CUDA_VISIBLE_DEVICES=3 (a numeric list; UUIDs and unset leave the name as it is), for metrics that
// must tell the GPUs of a node apart.
std::string PhysicalDeviceName(const Device& device);

// Help of the --device flag that tesserad, tessera-worker and tessera-generate share.
inline constexpr char kDeviceFlagHelp[] =
    "where the model runs: cpu, cuda (= cuda:0) or cuda:N. On cuda every weight is held as bf16 on the GPU "
    "(GGUF weights are dequantized at load; quantized GPU kernels are not built yet)";

}  // namespace tessera::kernels
