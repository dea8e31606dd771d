// Block-quantized weights: dequantization against the `gguf` package's decoder (fixtures made by
// tools/make_quant_fixtures.py), and Linear on quantized weights, per ISA, against a
// double-precision brute force over the dequantized weights.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/dtype.h"
#include "kernels_test_util.h"

namespace tessera::kernels::testing {
namespace {

constexpr DType kQuantTypes[] = {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
                                 DType::kQ5_1, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Geometry as ggml defines it (GGML_QUANT_SIZES in gguf-py), written out independently of dtype.h.
TEST(QuantDType, Geometry) {
  struct Row {
    DType t;
    int64_t block, bytes;
    const char* name;
  };
  for (Row r :
       {Row{DType::kF32, 1, 4, "f32"}, Row{DType::kBF16, 1, 2, "bf16"}, Row{DType::kF16, 1, 2, "f16"},
        Row{DType::kQ8_0, 32, 34, "q8_0"}, Row{DType::kQ4_0, 32, 18, "q4_0"}, Row{DType::kQ4_1, 32, 20, "q4_1"},
        Row{DType::kQ5_0, 32, 22, "q5_0"}, Row{DType::kQ5_1, 32, 24, "q5_1"}, Row{DType::kQ4_K, 256, 144, "q4_k"},
        Row{DType::kQ5_K, 256, 176, "q5_k"}, Row{DType::kQ6_K, 256, 210, "q6_k"}}) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(DTypeBlockSize(r.t), r.block);
    EXPECT_EQ(DTypeBlockBytes(r.t), r.bytes);
    EXPECT_EQ(DTypeName(r.t), r.name);
    EXPECT_EQ(DTypeIsQuantized(r.t), r.block > 1);
    EXPECT_EQ(DTypeRowBytes(r.t, 4096), 4096 / r.block * r.bytes);
    EXPECT_TRUE(DTypeRowValid(r.t, 0));
    EXPECT_TRUE(DTypeRowValid(r.t, 3 * r.block));
    EXPECT_EQ(DTypeRowValid(r.t, 3 * r.block + 1), r.block == 1);
    EXPECT_EQ(LinearSupports(r.t, 2 * r.block + 16), r.block == 1 || r.block == 16);
    EXPECT_EQ(DTypeSize(r.t), r.block == 1 ? r.bytes : 0);
  }
  EXPECT_EQ(std::size(kAllDTypes), 11u);
}

// Every type decodes to exactly the floats gguf.quants.dequantize gives (same f32 operations in
// the same order: d·q + m, (d·sc)·q − dmin·m, (d·sc)·(q − 32)), whole rows and block by block.
TEST(QuantDType, DequantizeMatchesGguf) {
  for (DType t : kQuantTypes) {
    const std::string base = "tests/fixtures/quant/" + std::string(DTypeName(t));
    SCOPED_TRACE(base);
    const auto blocks = ReadFile(base + ".blocks");
    const auto f32 = ReadFile(base + ".f32");
    ASSERT_FALSE(blocks.empty()) << "missing fixture (run from the repo root)";
    const int64_t n = static_cast<int64_t>(f32.size() / 4);
    ASSERT_EQ(n, 4096);
    ASSERT_EQ(static_cast<int64_t>(blocks.size()), DTypeRowBytes(t, n));
    std::vector<float> want(n);
    std::memcpy(want.data(), f32.data(), f32.size());

    std::vector<float> got(n + 1, -12345.0f);
    DequantizeRow(t, blocks.data(), n, got.data());
    EXPECT_EQ(got[n], -12345.0f) << "wrote past n";
    std::vector<float> by_block(n);
    const int64_t bs = DTypeBlockSize(t);
    for (int64_t i = 0; i < n; i += bs) {
      DequantizeRow(t, blocks.data() + DTypeRowBytes(t, i), bs, by_block.data() + i);
    }
    int bad = 0;
    double norm = 0;
    for (int64_t i = 0; i < n; ++i) {
      norm += double{want[i]} * want[i];
      if ((got[i] != want[i] || by_block[i] != want[i]) && bad++ < 5) {
        ADD_FAILURE() << "[" << i << "] got " << got[i] << " / " << by_block[i] << ", gguf " << want[i];
      }
    }
    EXPECT_EQ(bad, 0);
    EXPECT_GT(norm, 0);
  }
}

TEST(QuantDType, DequantizeFloatTypes) {
  const float v[3] = {1.5f, -0.25f, 3e-5f};
  uint16_t h[3], b[3];
  for (int i = 0; i < 3; ++i) {
    h[i] = F32ToF16(v[i]);
    b[i] = F32ToBf16(v[i]);
  }
  float out[3];
  DequantizeRow(DType::kF32, v, 3, out);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], v[i]);
  DequantizeRow(DType::kF16, h, 3, out);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], DecodeF16(h[i]));
  DequantizeRow(DType::kBF16, b, 3, out);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], DecodeBf16(b[i]));
}

// ---- Linear ----

// Byte offsets of the f16 fields of one block and the bound |m| <= MinBound on the offset term that
// the kernels add separately from d·q (see ops.h): Q4_0 −8d, Q5_0 −16d, Q4_1/Q5_1 m, K-quants
// dmin·m_j with m_j < 64; Q8_0 and Q6_K have none (signed q).
struct Layout {
  std::vector<int> halves;
};
Layout LayoutOf(DType t) {
  switch (t) {
    case DType::kQ4_1:
    case DType::kQ5_1:
    case DType::kQ4_K:
    case DType::kQ5_K:
      return {{0, 2}};
    case DType::kQ6_K:
      return {{208}};
    default:
      return {{0}};
  }
}
double MinBound(DType t, const uint8_t* block) {
  auto half = [&](int off) { return std::fabs(DecodeF16(static_cast<uint16_t>(block[off] | block[off + 1] << 8))); };
  switch (t) {
    case DType::kQ4_0:
      return 8 * half(0);
    case DType::kQ5_0:
      return 16 * half(0);
    case DType::kQ4_1:
    case DType::kQ5_1:
      return half(2);
    case DType::kQ4_K:
    case DType::kQ5_K:
      return 63 * half(2);
    default:
      return 0;
  }
}

// n_rows rows of K elements of random blocks with finite f16 scales in [−2^−4, 2^−4].
std::vector<uint8_t> RandomQuantRows(DType t, int64_t n_rows, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n_rows * DTypeRowBytes(t, K));
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> dist(-0.0625f, 0.0625f);
  for (size_t off = 0; off < out.size(); off += DTypeBlockBytes(t)) {
    for (int h : LayoutOf(t).halves) {
      const uint16_t v = F32ToF16(dist(rng));
      out[off + h] = static_cast<uint8_t>(v);
      out[off + h + 1] = static_cast<uint8_t>(v >> 8);
    }
  }
  return out;
}

struct Shape {
  int64_t M, K, N;
};

class QuantLinearTest : public IsaTest {
 protected:
  // Compares Linear with Σ_k x[m,k]·w[n,k] in double over the dequantized weights.
  // Tolerance per output:
  //  * M > kLinearQuantizedActivationMaxM (f32 GEMM over dequantized blocks): (K + 2)·2^−24·Σ|x·w|,
  //    the forward error bound of an f32 sum of K products in any order.
  //  * smaller M (activations quantized per 32: d = amax/127, |x − d·q| <= d/2): the quantization
  //    term Σ_b (d_b/2)·Σ_{k in b}|w_k| (× 1.001 for the rounding of 1/d), plus f32 rounding of the
  //    sums of d·q·x̂ and m·s, bounded by (K + 8)·2^−24·Σ_k (|w_k| + 2·|m_b|)·(|x_k| + d_b).
  //    With `exact_activations` every block of x holds integers with max |x| = 127, so d = 1 and
  //    the quantization term is zero.
  void Check(Shape s, DType dt, bool exact_activations, ThreadPool* pool) {
    SCOPED_TRACE(::testing::Message() << "M=" << s.M << " K=" << s.K << " N=" << s.N << " " << DTypeName(dt)
                                      << (exact_activations ? " exact-activations" : "") << (pool ? " pool" : ""));
    const uint32_t seed = static_cast<uint32_t>(s.M * 7919 + s.K * 131 + s.N + static_cast<int>(dt) * 1000003);
    std::vector<float> x =
        exact_activations ? RandomInts(s.M * s.K, -127, 127, seed) : RandomFloats(s.M * s.K, -1, 1, seed);
    if (exact_activations) {
      for (int64_t i = 0; i < s.M * s.K; i += 32) x[i + (i / 32) % 32] = (i / 32) % 2 ? 127.0f : -127.0f;
    }
    const auto wq = RandomQuantRows(dt, s.N, s.K, seed + 1);
    const int64_t row_bytes = DTypeRowBytes(dt, s.K);
    std::vector<float> w(s.N * s.K);
    for (int64_t n = 0; n < s.N; ++n) DequantizeRow(dt, wq.data() + n * row_bytes, s.K, w.data() + n * s.K);

    const bool quantized_x = s.M <= kLinearQuantizedActivationMaxM;
    std::vector<double> want(s.M * s.N), tol(s.M * s.N);
    for (int64_t m = 0; m < s.M; ++m) {
      const float* xr = x.data() + m * s.K;
      for (int64_t n = 0; n < s.N; ++n) {
        const float* wr = w.data() + n * s.K;
        double sum = 0, mag = 0, qerr = 0, fmag = 0;
        for (int64_t b = 0; b < s.K; b += 32) {
          double amax = 0, wabs = 0;
          for (int64_t k = b; k < b + 32; ++k) amax = std::max(amax, std::fabs(double{xr[k]}));
          const double d = amax / 127;
          const int64_t bs = DTypeBlockSize(dt);
          const double mb = MinBound(dt, wq.data() + n * row_bytes + DTypeRowBytes(dt, b / bs * bs));
          for (int64_t k = b; k < b + 32; ++k) {
            const double p = double{xr[k]} * wr[k];
            sum += p;
            mag += std::fabs(p);
            wabs += std::fabs(double{wr[k]});
            fmag += (std::fabs(double{wr[k]}) + 2 * mb) * (std::fabs(double{xr[k]}) + d);
          }
          qerr += d / 2 * wabs;
        }
        want[m * s.N + n] = sum;
        tol[m * s.N + n] = quantized_x ? 1.001 * qerr * (exact_activations ? 0.0 : 1.0) + (s.K + 8) * kF32Eps * fmag
                                       : (s.K + 2) * kF32Eps * mag;
      }
    }
    Guarded y(s.M * s.N);
    ops().linear(pool, x.data(), s.M, s.K, wq.data(), dt, s.N, y.data());
    EXPECT_TRUE(AllClose(y, want, tol));
  }
};

TEST_P(QuantLinearTest, RaggedShapes) {
  ThreadPool pool(2);
  for (DType dt : kQuantTypes) {
    const int64_t bs = DTypeBlockSize(dt);
    for (int64_t M : {1, 2, 3, 4, 5, 7, 64}) {
      for (int64_t K : {bs, 3 * bs, 10 * bs}) {
        for (int64_t N : {1, 13, 40}) Check({M, K, N}, dt, false, (M + K + N) % 2 ? &pool : nullptr);
      }
    }
  }
}

// Several K/M/N cache blocks of the GEMM and both of its ways of splitting work between threads;
// long matvec rows split over threads.
TEST_P(QuantLinearTest, MultiBlockShapes) {
  ThreadPool pool(2);
  for (DType dt : kQuantTypes) {
    for (Shape s : {Shape{130, 1024, 70}, Shape{7, 512, 600}, Shape{1, 2048, 513}, Shape{2, 1280, 97}}) {
      Check(s, dt, false, nullptr);
      Check(s, dt, false, &pool);
    }
  }
}

// Activations that quantize without error: only f32 rounding is left, so integer-path mistakes of
// even one unit in one product would show.
TEST_P(QuantLinearTest, ExactActivations) {
  ThreadPool pool(2);
  for (DType dt : kQuantTypes) {
    for (int64_t M : {1, 2, 3, 4}) Check({M, 1024, 37}, dt, true, &pool);
  }
}

TESSERA_INSTANTIATE_ISA_TEST(QuantLinearTest);

}  // namespace
}  // namespace tessera::kernels::testing
