// CudaBackend: the Backend (kernels/backend.h) of one NVIDIA GPU.
//
// Memory is device memory (cudaMalloc). Every weight matrix, whatever its DType (f32, f16, bf16 or a
// GGUF block type), is dequantized on the host once by PrepareWeight and kept as one bf16 device
// copy [rows, cols], which both Linear and Embedding read; Linear casts the f32 activations to bf16
// and multiplies with cuBLASLt in f32 accumulation (WeightUse::activations is therefore ignored:
// the numerics are bf16·bf16 → f32 for every dtype). Every other op is one of our kernels
// (cuda_ops.h). Each ExecContext is a CUDA stream with its own cuBLASLt handle, workspace and
// scratch; the first CUDA or cuBLAS error on a context is kept (sticky: a device error is fatal for
// it) and returned by CopyToHost and Synchronize, naming the failing call, file and line.
//
// Needs compute capability 8.0 or newer (bf16 tensor-core GEMMs).
//
//   TS_ASSIGN_OR_RETURN(std::unique_ptr<Backend> gpu, CreateCudaBackend(/*device_index=*/0, /*num_threads=*/2));
//   TS_ASSIGN_OR_RETURN(std::unique_ptr<ExecContext> ctx, gpu->CreateContext());
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace tessera::kernels {

// The backend of CUDA device `device_index`, with a host ThreadPool of `num_threads` threads
// (<= 0: all hardware threads) for host_pool() and weight preparation. FAILED_PRECONDITION when the
// machine has no usable CUDA device ("no CUDA device"), when the index is out of range ("cuda:N
// requested but only M devices") or when the device is older than compute capability 8.0; never
// crashes without a driver.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(int device_index, int num_threads);

}  // namespace tessera::kernels
