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

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/kernels/bench_common.h"
#include "kernels/cpu/ops.h"

namespace tessera::bench {
namespace {

using kernels::DType;

constexpr DType kTypes[] = {DType::kQ4_1, DType::kQ6_K, DType::kQ8_0, DType::kQ4_0,
                            DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ5_K};

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

void BM_Matvec(benchmark::State& state, DType dt, int64_t N, int64_t K, int threads, bool cold) {
  RunMatvec(state, Weights(dt, N, K, 3), dt, N, K, threads, cold);
}

void BM_Linear(benchmark::State& state, DType dt, int64_t M, int64_t S, int threads) {
  const auto x = Random(M * S, 4);
  const auto w = Weights(dt, S, S, 5);
  std::vector<float> y(M * S);
  kernels::CpuWorkspace ws;  // kept across iterations, as the backend keeps it across steps
  for (auto _ : state) {
    kernels::Linear(Pool(threads), x.data(), M, S, w.data(), dt, S, y.data(), kernels::Activations::kInt8, &ws);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(2.0 * M * S * S / 1e9, benchmark::Counter::kIsIterationInvariantRate);
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

// qmatvec/… against the probe at the same thread count; qlinear/… against f32 weights of the same shape.
std::string Baseline(const std::string& name) {
  const std::string tsuffix = name.substr(name.rfind('/'));
  if (name.rfind("qmatvec/", 0) == 0) return "stream_probe" + tsuffix;
  if (name.rfind("qlinear/", 0) == 0) {
    const std::string shape = name.substr(0, name.rfind('/'));
    return "linear/f32" + shape.substr(shape.rfind('/')) + tsuffix;
  }
  return "";
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  return tessera::bench::RunBenchmarks(argc, argv, "", tessera::bench::RegisterAll, tessera::bench::Baseline);
}
