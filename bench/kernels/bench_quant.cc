// bench_quant: Linear on block-quantized weights against yardsticks measured in the same run.
//   stream_probe/tT            read bandwidth of a vectorized sum over 512 MiB (GB/s)
//   qmatvec/DT/NxK/tT          Linear with M = 1 on DT weights, weight bytes read per second (GB/s),
//                              weights cold in cache (rotating over >= 512 MiB of copies)
//   qmatvec_l2/DT/NxK/t1       the same with weights that stay in L2 (<= 256 KiB, one copy): the
//                              kernel's compute ceiling
//   qlinear/DT/MxS/tT          Linear with M rows, N = K = S, GFLOP/s (2·M·N·K per call)
//   linear/f32/MxS/tT          the same with f32 weights
// After the usual output a summary prints qmatvec / stream_probe and qlinear / linear-f32 ratios
// (medians when run with --benchmark_repetitions).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/kernels/stream_probe.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops.h"

namespace tessera::bench {
namespace {

using kernels::DType;
using kernels::ThreadPool;

constexpr int kThreadCounts[] = {1, 2};
constexpr DType kTypes[] = {DType::kQ4_1, DType::kQ6_K, DType::kQ8_0, DType::kQ4_0,
                            DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ5_K};

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

// Offsets of the f16 scale fields in one block of `dt` (random bytes there could be inf/NaN).
std::vector<int> HalfOffsets(DType dt) {
  switch (dt) {
    case DType::kQ4_1:
    case DType::kQ5_1:
    case DType::kQ4_K:
    case DType::kQ5_K:
      return {0, 2};
    case DType::kQ6_K:
      return {208};
    default:
      return {0};
  }
}

// n_rows rows of K elements: random quantized fields, scales of about 0.01.
std::vector<uint8_t> QuantWeights(DType dt, int64_t n_rows, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n_rows * kernels::DTypeRowBytes(dt, K));
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  const uint16_t h = kernels::F32ToF16(0.01f);
  for (size_t off = 0; off < out.size(); off += kernels::DTypeBlockBytes(dt)) {
    for (int o : HalfOffsets(dt)) {
      out[off + o] = static_cast<uint8_t>(h);
      out[off + o + 1] = static_cast<uint8_t>(h >> 8);
    }
  }
  return out;
}

std::vector<uint8_t> Weights(DType dt, int64_t n_rows, int64_t K, uint32_t seed) {
  if (kernels::DTypeIsQuantized(dt)) return QuantWeights(dt, n_rows, K, seed);
  const auto f = Random(n_rows * K, seed);
  std::vector<uint8_t> out(f.size() * 4);
  std::memcpy(out.data(), f.data(), out.size());
  return out;
}

void BM_StreamProbe(benchmark::State& state, int threads) {
  const int64_t n = int64_t{512} << 20 >> 2;  // 512 MiB of f32
  const auto x = Random(n, 1);
  for (auto _ : state) benchmark::DoNotOptimize(StreamSum(Pool(threads), x.data(), n));
  state.counters["GB"] = benchmark::Counter(4.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Matvec(benchmark::State& state, DType dt, int64_t N, int64_t K, int threads, bool cold) {
  const auto x = Random(K, 2);
  const int64_t bytes_per_copy = N * kernels::DTypeRowBytes(dt, K);
  const int64_t copies = cold ? ((int64_t{512} << 20) + bytes_per_copy - 1) / bytes_per_copy : 1;
  const std::vector<std::vector<uint8_t>> w(copies, Weights(dt, N, K, 3));
  std::vector<float> y(N);
  int64_t next = 0;
  for (auto _ : state) {
    kernels::Linear(Pool(threads), x.data(), 1, K, w[next].data(), dt, N, y.data());
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::ClobberMemory();
  }
  state.counters["GB"] =
      benchmark::Counter(static_cast<double>(bytes_per_copy) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Linear(benchmark::State& state, DType dt, int64_t M, int64_t S, int threads) {
  const auto x = Random(M * S, 4);
  const auto w = Weights(dt, S, S, 5);
  std::vector<float> y(M * S);
  for (auto _ : state) {
    kernels::Linear(Pool(threads), x.data(), M, S, w.data(), dt, S, y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(2.0 * M * S * S / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

std::string Name(const char* fmt, auto... args) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), fmt, args...);
  return buf;
}

void RegisterAll() {
  for (int t : kThreadCounts) {
    benchmark::RegisterBenchmark(Name("stream_probe/t%d", t).c_str(), BM_StreamProbe, t)->UseRealTime();
  }
  constexpr int64_t kN = 4096, kK = 4096;
  for (DType dt : kTypes) {
    for (int t : kThreadCounts) {
      benchmark::RegisterBenchmark(Name("qmatvec/%s/%ldx%ld/t%d", kernels::DTypeName(dt).data(), kN, kK, t).c_str(),
                                   BM_Matvec, dt, kN, kK, t, true)
          ->UseRealTime();
    }
    const int64_t n_l2 = (256 << 10) / kernels::DTypeRowBytes(dt, 1024);
    benchmark::RegisterBenchmark(Name("qmatvec_l2/%s/%ldx%d/t1", kernels::DTypeName(dt).data(), n_l2, 1024).c_str(),
                                 BM_Matvec, dt, n_l2, 1024, 1, false);
  }
  for (auto [M, S] : {std::pair<int64_t, int64_t>{4, 2048}, {64, 2048}, {512, 1024}}) {
    for (int t : kThreadCounts) {
      for (DType dt : {DType::kF32, DType::kQ4_1, DType::kQ6_K, DType::kQ8_0, DType::kQ4_0}) {
        const char* prefix = dt == DType::kF32 ? "linear" : "qlinear";
        benchmark::RegisterBenchmark(Name("%s/%s/%ldx%ld/t%d", prefix, kernels::DTypeName(dt).data(), M, S, t).c_str(),
                                     BM_Linear, dt, M, S, t)
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
      std::string name = run.run_name.function_name;
      for (const char* key : {"GB", "GFLOP"}) {
        auto it = run.counters.find(key);
        if (it == run.counters.end()) continue;
        if (run.run_type == Run::RT_Aggregate || !values_.count(name)) values_[name] = it->second.value;
      }
    }
  }

  void PrintSummary() const {
    std::printf("\nSummary (kernels ISA: %s)\n", std::string(kernels::IsaName(kernels::ActiveIsa())).c_str());
    std::printf("%-30s %10s %10s %8s\n", "case", "ours", "baseline", "ratio");
    for (const auto& [name, value] : values_) {
      std::string base;
      const std::string tsuffix = name.substr(name.rfind('/'));
      const bool matvec = name.rfind("qmatvec/", 0) == 0;
      if (matvec) base = "stream_probe" + tsuffix;
      if (name.rfind("qlinear/", 0) == 0) {
        const std::string shape = name.substr(0, name.rfind('/'));
        base = "linear/f32" + shape.substr(shape.rfind('/')) + tsuffix;
      }
      auto it = values_.find(base);
      if (base.empty() || it == values_.end()) continue;
      std::printf("%-30s %10.2f %10.2f %8.2f  (%s vs %s)\n", name.c_str(), value, it->second, value / it->second,
                  matvec ? "GB/s" : "GFLOP/s", base.c_str());
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
  tessera::bench::RegisterAll();
  tessera::bench::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
