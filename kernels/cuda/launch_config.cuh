// Launch shapes shared by the .cu files: every grid is derived from the tensor shapes; the only
// constants are our own choices (threads per block, a cap on grid size met by grid-stride loops)
// and the warp width, which the CUDA programming model fixes at 32 on every NVIDIA GPU.
//
//   LaunchGrid g = GridFor(n);
//   MyKernel<<<g.blocks, g.threads, 0, stream>>>(...);   // with a GridStride loop inside
#pragma once

#include <cstdint>

namespace tessera::kernels::gpu {

inline constexpr int kWarpSize = 32;
// Threads per block of the 1-D elementwise kernels.
inline constexpr int kBlockThreads = 256;
// Grids stop growing here; the kernels' grid-stride loops cover the rest.
inline constexpr int64_t kMaxGridBlocks = int64_t{1} << 20;

struct LaunchGrid {
  unsigned blocks;
  unsigned threads;
};

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A 1-D grid of kBlockThreads-thread blocks covering n items (n > 0).
inline LaunchGrid GridFor(int64_t n) {
  const int64_t blocks = CeilDiv(n, kBlockThreads);
  return {static_cast<unsigned>(blocks < kMaxGridBlocks ? blocks : kMaxGridBlocks),
          static_cast<unsigned>(kBlockThreads)};
}

// Threads for a kernel with one block per row of `width` items: width rounded up to whole warps,
// at most kBlockThreads.
inline unsigned RowThreads(int64_t width) {
  const int64_t t = CeilDiv(width, kWarpSize) * kWarpSize;
  return static_cast<unsigned>(t < kBlockThreads ? t : kBlockThreads);
}

// Blocks for a grid-stride loop over `rows` rows, one block per row up to kMaxGridBlocks.
inline unsigned RowBlocks(int64_t rows) { return static_cast<unsigned>(rows < kMaxGridBlocks ? rows : kMaxGridBlocks); }

#if defined(__CUDACC__)
// First index and stride of a grid-stride loop over a 1-D grid.
__device__ inline int64_t GlobalThread() { return int64_t{blockIdx.x} * blockDim.x + threadIdx.x; }
__device__ inline int64_t GridThreads() { return int64_t{gridDim.x} * blockDim.x; }

// Σ v over the 32 lanes of a warp, the result in every lane (the whole warp must be active).
__device__ inline float WarpSum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
#endif

}  // namespace tessera::kernels::gpu
