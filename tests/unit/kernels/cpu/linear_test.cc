// Linear (y = x · wᵀ) on every ISA against a double-precision brute force.
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels_test_util.h"

namespace tessera::kernels::testing {
namespace {

// Weights stored in `dt` plus the exact values they decode to.
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<double> values;
};

Weights MakeWeights(const std::vector<float>& w, DType dt) {
  Weights out;
  out.bytes.resize(w.size() * DTypeSize(dt));
  out.values.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    if (dt == DType::kF32) {
      std::memcpy(&out.bytes[4 * i], &w[i], 4);
      out.values[i] = w[i];
    } else {
      const uint16_t h = dt == DType::kBF16 ? F32ToBf16(w[i]) : F32ToF16(w[i]);
      std::memcpy(&out.bytes[2 * i], &h, 2);
      out.values[i] = dt == DType::kBF16 ? DecodeBf16(h) : DecodeF16(h);
    }
  }
  return out;
}

struct Shape {
  int64_t M, K, N;
};

class LinearTest : public IsaTest {
 protected:
  // Runs one case and compares with Σ_k x[m,k]·w[n,k] in double.
  // Tolerance: an f32 sum of K products in any order (blocked, several accumulators, FMA) is within
  // γ = (K + 2)·2^−24 of Σ|x·w| (the standard forward error bound); integer inputs must be exact.
  void Check(Shape s, DType dt, bool integers, ThreadPool* pool) {
    SCOPED_TRACE(::testing::Message() << "M=" << s.M << " K=" << s.K << " N=" << s.N << " " << DTypeName(dt)
                                      << (integers ? " integers" : "") << (pool ? " pool" : ""));
    const uint32_t seed = static_cast<uint32_t>(s.M * 7919 + s.K * 131 + s.N);
    const auto x = integers ? RandomInts(s.M * s.K, -3, 3, seed) : RandomFloats(s.M * s.K, -1, 1, seed);
    const auto wf = integers ? RandomInts(s.N * s.K, -3, 3, seed + 1) : RandomFloats(s.N * s.K, -1, 1, seed + 1);
    const Weights w = MakeWeights(wf, dt);
    std::vector<double> want(s.M * s.N), tol(s.M * s.N);
    for (int64_t m = 0; m < s.M; ++m) {
      for (int64_t n = 0; n < s.N; ++n) {
        double sum = 0;
        double mag = 0;
        for (int64_t k = 0; k < s.K; ++k) {
          const double p = double{x[m * s.K + k]} * w.values[n * s.K + k];
          sum += p;
          mag += std::fabs(p);
        }
        want[m * s.N + n] = sum;
        tol[m * s.N + n] = integers ? 0.0 : (s.K + 2) * kF32Eps * mag;
      }
    }
    Guarded y(s.M * s.N);
    ops().linear(pool, x.data(), s.M, s.K, w.bytes.data(), dt, s.N, y.data(), Activations::kInt8, workspace());
    EXPECT_TRUE(AllClose(y, want, tol));
  }
};

constexpr DType kDtypes[] = {DType::kF32, DType::kBF16, DType::kF16};

TEST_P(LinearTest, RaggedShapes) {
  ThreadPool pool(2);
  for (int64_t M : {1, 2, 3, 4, 5, 7, 65}) {
    for (int64_t K : {1, 8, 31, 300}) {
      for (int64_t N : {1, 13, 40}) {
        for (DType dt : kDtypes) Check({M, K, N}, dt, false, (M + K + N) % 2 ? &pool : nullptr);
      }
    }
  }
}

// Several K, M and N cache blocks, and both ways of splitting the work between threads.
TEST_P(LinearTest, MultiBlockShapes) {
  ThreadPool pool(2);
  for (Shape s : {Shape{130, 600, 70}, Shape{7, 9, 2100}, Shape{200, 520, 33}, Shape{1, 1030, 513}}) {
    for (DType dt : kDtypes) {
      Check(s, dt, false, nullptr);
      Check(s, dt, false, &pool);
    }
  }
}

// Small-integer inputs: every product and partial sum is exact in f32, so the result must be too.
TEST_P(LinearTest, ExactOnIntegers) {
  ThreadPool pool(2);
  for (Shape s : {Shape{65, 300, 47}, Shape{1, 1000, 33}, Shape{3, 257, 19}, Shape{130, 520, 100}}) {
    for (DType dt : kDtypes) Check(s, dt, true, &pool);
  }
}

TESSERA_INSTANTIATE_ISA_TEST(LinearTest);

}  // namespace
}  // namespace tessera::kernels::testing
