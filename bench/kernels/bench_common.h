// What the kernel benchmarks share: thread pools, random inputs, the streaming-read probe and the
// cold-weights matvec as benchmarks, and a reporter that prints each case's ratio to its
// yardstick measured in the same run.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "kernels/dtype.h"

namespace tessera::bench {

inline constexpr int kThreadCounts[] = {1, 2};

// One pool per thread count, kept for the whole run.
kernels::ThreadPool* Pool(int threads);
// n values uniform in [-1, 1).
std::vector<float> Random(int64_t n, uint32_t seed);

template <typename... Args>
std::string Name(const char* fmt, Args... args) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), fmt, args...);
  return buf;
}

// stream_probe/tT: Σ over 512 MiB of f32 (16× the L3), counter GB (read per second).
void BM_StreamProbe(benchmark::State& state, int threads);

// Linear with M = 1 over `weights` ([N, K] of dt), counter GB (weight bytes per second). cold:
// cycles through enough copies (>= 512 MiB, like the probe) that every call reads them from DRAM,
// as decode does with a whole model; else one copy that stays in cache.
void RunMatvec(benchmark::State& state, const std::vector<uint8_t>& weights, kernels::DType dt, int64_t N, int64_t K,
               int threads, bool cold);

// Console output as usual; then, per case, its headline counter (GB or GFLOP; the median when run
// with --benchmark_repetitions) against the case `baseline(name)` names (none: "").
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  explicit RatioReporter(std::function<std::string(const std::string& name)> baseline)
      : baseline_(std::move(baseline)) {}
  void ReportRuns(const std::vector<Run>& runs) override;
  void PrintSummary() const;

 private:
  std::function<std::string(const std::string&)> baseline_;
  std::map<std::string, double> values_;
};

// Initializes Google Benchmark, prints the active ISA (and `banner`), registers, runs and prints the
// summary. Returns main's exit code.
int RunBenchmarks(int argc, char** argv, const std::string& banner, const std::function<void()>& register_all,
                  std::function<std::string(const std::string& name)> baseline);

}  // namespace tessera::bench
