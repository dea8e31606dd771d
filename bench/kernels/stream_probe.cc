#include "bench/kernels/stream_probe.h"

#include <vector>

namespace tessera::bench {
namespace {

// Portable fallback: 8 independent accumulators so the adds do not serialize.
float StreamSumScalar(const float* x, int64_t n) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) s[j] += x[i + j];
  }
  for (; i < n; ++i) s[0] += x[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

}  // namespace

float StreamSum(kernels::ThreadPool* pool, const float* x, int64_t n) {
  const bool avx2 = __builtin_cpu_supports("avx2");
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  std::vector<float> partial(threads, 0.0f);
  auto slice = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = n * t / threads;
      const int64_t e = n * (t + 1) / threads;
      partial[t] = avx2 ? StreamSumAvx2(x + b, e - b) : StreamSumScalar(x + b, e - b);
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(threads, slice, 1);
  } else {
    slice(0, threads);
  }
  float s = 0;
  for (float p : partial) s += p;
  return s;
}

}  // namespace tessera::bench
