#include "bench/kernels/bench_common.h"

#include <memory>
#include <random>

#include "bench/kernels/stream_probe.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops.h"

namespace tessera::bench {

kernels::ThreadPool* Pool(int threads) {
  static std::map<int, std::unique_ptr<kernels::ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<kernels::ThreadPool>(threads);
  return p.get();
}

std::vector<float> Random(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void BM_StreamProbe(benchmark::State& state, int threads) {
  const int64_t n = int64_t{512} << 20 >> 2;
  const auto x = Random(n, 1);
  for (auto _ : state) benchmark::DoNotOptimize(StreamSum(Pool(threads), x.data(), n));
  state.counters["GB"] = benchmark::Counter(4.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void RunMatvec(benchmark::State& state, const std::vector<uint8_t>& weights, kernels::DType dt, int64_t N, int64_t K,
               int threads, bool cold) {
  const auto x = Random(K, 2);
  const int64_t bytes_per_copy = N * kernels::DTypeRowBytes(dt, K);
  const int64_t copies = cold ? ((int64_t{512} << 20) + bytes_per_copy - 1) / bytes_per_copy : 1;
  const std::vector<std::vector<uint8_t>> w(copies, weights);
  std::vector<float> y(N);
  int64_t next = 0;
  kernels::CpuWorkspace ws;  // kept across iterations, as the backend keeps it across steps
  for (auto _ : state) {
    kernels::Linear(Pool(threads), x.data(), 1, K, w[next].data(), dt, N, y.data(), kernels::Activations::kInt8, &ws);
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::ClobberMemory();
  }
  state.counters["GB"] =
      benchmark::Counter(static_cast<double>(bytes_per_copy) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const Run& run : runs) {
    if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
    const std::string name = run.run_name.function_name;  // without /real_time and aggregate suffixes
    for (const char* key : {"GB", "GFLOP"}) {
      auto it = run.counters.find(key);
      if (it == run.counters.end()) continue;
      if (run.run_type == Run::RT_Aggregate || !values_.count(name)) values_[name] = it->second.value;
    }
  }
}

void RatioReporter::PrintSummary() const {
  std::printf("\nSummary (kernels ISA: %s)\n", std::string(kernels::IsaName(kernels::ActiveIsa())).c_str());
  std::printf("%-30s %10s %10s %8s\n", "case", "ours", "baseline", "ratio");
  for (const auto& [name, value] : values_) {
    const std::string base = baseline_(name);
    auto it = values_.find(base);
    if (base.empty() || it == values_.end()) continue;
    const bool bytes = name.find("matvec") != std::string::npos;
    std::printf("%-30s %10.2f %10.2f %8.2f  (%s vs %s)\n", name.c_str(), value, it->second, value / it->second,
                bytes ? "GB/s" : "GFLOP/s", base.c_str());
  }
}

int RunBenchmarks(int argc, char** argv, const std::string& banner, const std::function<void()>& register_all,
                  std::function<std::string(const std::string& name)> baseline) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("kernels ISA: %s (TESSERA_CPU_ISA overrides)\n",
              std::string(kernels::IsaName(kernels::ActiveIsa())).c_str());
  if (!banner.empty()) std::printf("%s\n", banner.c_str());
  register_all();
  RatioReporter reporter(std::move(baseline));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}

}  // namespace tessera::bench
