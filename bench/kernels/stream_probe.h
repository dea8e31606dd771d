// Streaming-read probe: the read bandwidth a well-vectorized loop gets from this machine, the
// yardstick for the memory-bound matvec.
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace tessera::bench {

// Σ x[i] for i < n, each thread summing one contiguous slice; AVX2 when the CPU has it.
float StreamSum(kernels::ThreadPool* pool, const float* x, int64_t n);

// Slice sum with 8-lane AVX2 loads into 4 independent accumulators (stream_probe_avx2.cc).
float StreamSumAvx2(const float* x, int64_t n);

}  // namespace tessera::bench
