// bench_kernels: CPU kernel throughput against the machine's own yardsticks, in one run.
//   stream_probe/tT          read bandwidth of a vectorized sum over 512 MiB (GB/s)
//   matvec/DT/NxK/tT         Linear with M = 1 (decode), weight bytes read per second (GB/s),
//                            weights cold in cache (rotating over 512 MiB of copies)
//   linear/DT/S/tT           Linear with M = N = K = S (prefill), GFLOP/s
//   sgemm/S/tT               OpenBLAS cblas_sgemm on the same problem, GFLOP/s
// T is the thread count; the counters GB and GFLOP are per second. After the usual output a summary prints matvec /
// probe and linear / sgemm ratios (medians when run with --benchmark_repetitions).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/kernels/stream_probe.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops.h"

#if TESSERA_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace tessera::bench {
namespace {

using kernels::DType;
using kernels::ThreadPool;

constexpr int kThreadCounts[] = {1, 2};

ThreadPool* Pool(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return p.get();
}

std::vector<float> Random(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Weights [N, K] stored as `dt`.
std::vector<uint8_t> Weights(int64_t n, DType dt, uint32_t seed) {
  const auto f = Random(n, seed);
  std::vector<uint8_t> out(n * kernels::DTypeSize(dt));
  for (int64_t i = 0; i < n; ++i) {
    if (dt == DType::kF32) {
      reinterpret_cast<float*>(out.data())[i] = f[i];
    } else {
      reinterpret_cast<uint16_t*>(out.data())[i] =
          dt == DType::kBF16 ? kernels::F32ToBf16(f[i]) : kernels::F32ToF16(f[i]);
    }
  }
  return out;
}

void BM_StreamProbe(benchmark::State& state, int threads) {
  const int64_t n = int64_t{512} << 20 >> 2;  // 512 MiB of f32, 16× the L3
  const auto x = Random(n, 1);
  for (auto _ : state) benchmark::DoNotOptimize(StreamSum(Pool(threads), x.data(), n));
  state.counters["GB"] = benchmark::Counter(4.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// Cycles through enough copies of the weights (>= 512 MiB, like the probe) that every call reads
// them from DRAM, as decode does with the weights of a whole model.
void BM_Matvec(benchmark::State& state, DType dt, int64_t N, int64_t K, int threads) {
  const auto x = Random(K, 2);
  const int64_t bytes_per_copy = N * K * kernels::DTypeSize(dt);
  const int64_t copies = ((int64_t{512} << 20) + bytes_per_copy - 1) / bytes_per_copy;
  const std::vector<std::vector<uint8_t>> w(copies, Weights(N * K, dt, 3));
  std::vector<float> y(N);
  int64_t next = 0;
  for (auto _ : state) {
    kernels::Linear(Pool(threads), x.data(), 1, K, w[next].data(), dt, N, y.data());
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::ClobberMemory();
  }
  const double bytes = static_cast<double>(N * K * kernels::DTypeSize(dt));
  state.counters["GB"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Linear(benchmark::State& state, DType dt, int64_t S, int threads) {
  const auto x = Random(S * S, 4);
  const auto w = Weights(S * S, dt, 5);
  std::vector<float> y(S * S);
  for (auto _ : state) {
    kernels::Linear(Pool(threads), x.data(), S, S, w.data(), dt, S, y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(2.0 * S * S * S / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

#if TESSERA_BENCH_OPENBLAS
// y = x · wᵀ, exactly what Linear computes.
void BM_Sgemm(benchmark::State& state, int64_t S, int threads) {
  const auto x = Random(S * S, 4);
  const auto w = Random(S * S, 5);
  std::vector<float> y(S * S);
  openblas_set_num_threads(threads);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, S, 1.0f, x.data(), S, w.data(), S, 0.0f, y.data(), S);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(2.0 * S * S * S / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
#endif

std::string Name(const char* fmt, auto... args) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), fmt, args...);
  return buf;
}

void RegisterAll() {
  for (int t : kThreadCounts) {
    benchmark::RegisterBenchmark(Name("stream_probe/t%d", t).c_str(), BM_StreamProbe, t)->UseRealTime();
  }
  for (auto [N, K] : {std::pair<int64_t, int64_t>{4096, 4096}, {8192, 2048}}) {
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      for (int t : kThreadCounts) {
        benchmark::RegisterBenchmark(Name("matvec/%s/%ldx%ld/t%d", kernels::DTypeName(dt).data(), N, K, t).c_str(),
                                     BM_Matvec, dt, N, K, t)
            ->UseRealTime();
      }
    }
  }
  for (int64_t S : {512, 1024, 2048}) {
    for (int t : kThreadCounts) {
#if TESSERA_BENCH_OPENBLAS
      benchmark::RegisterBenchmark(Name("sgemm/%ld/t%d", S, t).c_str(), BM_Sgemm, S, t)->UseRealTime();
#endif
      for (DType dt : {DType::kF32, DType::kBF16}) {
        benchmark::RegisterBenchmark(Name("linear/%s/%ld/t%d", kernels::DTypeName(dt).data(), S, t).c_str(), BM_Linear,
                                     dt, S, t)
            ->UseRealTime();
      }
    }
  }
}

// Console output as usual, plus each run's headline counter kept for the summary (the median
// aggregate replaces single runs when there are repetitions).
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      std::string name = run.run_name.function_name;  // without the /real_time and aggregate suffixes
      for (const char* key : {"GB", "GFLOP"}) {
        auto it = run.counters.find(key);
        if (it == run.counters.end()) continue;
        if (run.run_type == Run::RT_Aggregate || !values_.count(name)) values_[name] = it->second.value;
      }
    }
  }

  void PrintSummary() const {
    std::printf("\nSummary (kernels ISA: %s)\n", std::string(kernels::IsaName(kernels::ActiveIsa())).c_str());
    std::printf("%-28s %10s %10s %8s\n", "case", "ours", "baseline", "ratio");
    for (const auto& [name, value] : values_) {
      std::string base;
      const std::string tsuffix = name.substr(name.rfind('/'));
      if (name.rfind("matvec/", 0) == 0) base = "stream_probe" + tsuffix;
      if (name.rfind("linear/", 0) == 0) {
        const std::string size = name.substr(0, name.rfind('/'));
        base = "sgemm" + size.substr(size.rfind('/')) + tsuffix;
      }
      auto it = values_.find(base);
      if (base.empty() || it == values_.end()) continue;
      const char* unit = name.rfind("matvec/", 0) == 0 ? "GB/s" : "GFLOP/s";
      std::printf("%-28s %10.2f %10.2f %8.2f  (%s vs %s)\n", name.c_str(), value, it->second, value / it->second, unit,
                  base.c_str());
    }
  }

 private:
  std::map<std::string, double> values_;
};

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("kernels ISA: %s (TESSERA_CPU_ISA overrides)\n",
              std::string(tessera::kernels::IsaName(tessera::kernels::ActiveIsa())).c_str());
#if TESSERA_BENCH_OPENBLAS
  std::printf("OpenBLAS: %s, core %s (OPENBLAS_CORETYPE overrides)\n", openblas_get_config(), openblas_get_corename());
#endif
  tessera::bench::RegisterAll();
  tessera::bench::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
