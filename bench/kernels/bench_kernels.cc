// bench_kernels: CPU kernel throughput against the machine's own yardsticks, in one run.
//   stream_probe/tT          read bandwidth of a vectorized sum over 512 MiB (GB/s)
//   matvec/DT/NxK/tT         Linear with M = 1 (decode), weight bytes read per second (GB/s),
//                            weights cold in cache (rotating over 512 MiB of copies)
//   linear/DT/S/tT           Linear with M = N = K = S (prefill), GFLOP/s
//   sgemm/S/tT               OpenBLAS cblas_sgemm on the same problem, GFLOP/s
// T is the thread count; the counters GB and GFLOP are per second. After the usual output a summary prints matvec /
// probe and linear / sgemm ratios (medians when run with --benchmark_repetitions).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/kernels/bench_common.h"
#include "kernels/cpu/ops.h"

#if TESSERA_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace tessera::bench {
namespace {

using kernels::DType;

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

void BM_Matvec(benchmark::State& state, DType dt, int64_t N, int64_t K, int threads) {
  RunMatvec(state, Weights(N * K, dt, 3), dt, N, K, threads, /*cold=*/true);
}

void BM_Linear(benchmark::State& state, DType dt, int64_t S, int threads) {
  const auto x = Random(S * S, 4);
  const auto w = Weights(S * S, dt, 5);
  std::vector<float> y(S * S);
  kernels::CpuWorkspace ws;  // kept across iterations, as the backend keeps it across steps
  for (auto _ : state) {
    kernels::Linear(Pool(threads), x.data(), S, S, w.data(), dt, S, y.data(), kernels::Activations::kInt8, &ws);
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

// matvec/… against the probe at the same thread count; linear/… against sgemm of the same size.
std::string Baseline(const std::string& name) {
  const std::string tsuffix = name.substr(name.rfind('/'));
  if (name.rfind("matvec/", 0) == 0) return "stream_probe" + tsuffix;
  if (name.rfind("linear/", 0) == 0) {
    const std::string size = name.substr(0, name.rfind('/'));
    return "sgemm" + size.substr(size.rfind('/')) + tsuffix;
  }
  return "";
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  std::string banner;
#if TESSERA_BENCH_OPENBLAS
  banner = std::string("OpenBLAS: ") + openblas_get_config() + ", core " + openblas_get_corename() +
           " (OPENBLAS_CORETYPE overrides)";
#endif
  return tessera::bench::RunBenchmarks(argc, argv, banner, tessera::bench::RegisterAll, tessera::bench::Baseline);
}
