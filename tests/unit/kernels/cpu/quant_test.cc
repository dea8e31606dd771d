// Block-quantized weights: dequantization against the `gguf` package's decoder (fixtures made by
// tools/make_quant_fixtures.py), and Linear on quantized weights, per ISA, against double-precision
// brute forces over the dequantized weights (the quantized arithmetic, and the float product).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/packed_linear.h"
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

// Rows of x quantized per 32 as ops.h states it, written out independently of the kernels:
// amax = max|x|, d = amax/127, q = round_half_even(x·(127/amax)) in f32; for the types whose ggml dot
// product takes block_q8_0 / block_q8_1, d and s = d·Σq rounded to f16.
struct QuantizedX {
  std::vector<double> q;          // [M·K] integers
  std::vector<double> d, s, sum;  // [M·K/32]: scale, its s term, Σq
};
QuantizedX QuantizeForTest(const std::vector<float>& x, DType dt) {
  const bool f16 =
      dt == DType::kQ8_0 || dt == DType::kQ4_0 || dt == DType::kQ4_1 || dt == DType::kQ5_0 || dt == DType::kQ5_1;
  auto to_f16 = [](float v) { return DecodeF16(F32ToF16(v)); };
  QuantizedX out;
  out.q.resize(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t k = b; k < b + 32; ++k) amax = std::max(amax, std::fabs(x[k]));
    const float d = amax / 127.0f;
    const float id = amax != 0 ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (size_t k = b; k < b + 32; ++k) {
      out.q[k] = std::nearbyint(x[k] * id);
      sum += static_cast<int>(out.q[k]);
    }
    const float s = d * static_cast<float>(sum);
    out.d.push_back(f16 ? to_f16(d) : d);
    out.s.push_back(f16 ? to_f16(s) : s);
    out.sum.push_back(sum);
  }
  return out;
}

class QuantLinearTest : public IsaTest {
 protected:
  // Compares Linear with two brute forces in double over the dequantized weights w:
  //  (1) the quantized arithmetic itself, Σ_k w_k·d_b·q_k + m_b·(s_b − d_b·Σq_b) (the second term
  //      only where m_b multiplies s, Q4_1 / Q5_1; for the K-quants s is d·Σq up to f32 rounding),
  //      with QuantizeForTest's d, q, s. Tolerance: f32 rounding of the kernels' sums of d·q·x̂ and
  //      m·s, (K + 8)·2^−24·Σ_k (|w_k| + 2·|m_b|)·(|x_k| + d_b). One integer off by one in one
  //      product is d·|w_k|, far above that.
  //  (2) the float product Σ_k x_k·w_k, within the quantization error ops.h states:
  //      Σ_k |w_k|·|x_k − d_b·q_k| + |m_b|·|s_b − d_b·Σq_b|, plus the tolerance of (1).
  // With `exact_activations` every block of x holds integers with max |x| = 127, so d = 1, q = x and
  // only the f16 rounding of s remains.
  // With `packed`, the product is LinearPacked on PackForLinear's copy of the weights instead.
  void Check(Shape s, DType dt, bool exact_activations, ThreadPool* pool, bool packed = false) {
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
    const QuantizedX xq = QuantizeForTest(x, dt);
    const bool min_times_s = dt == DType::kQ4_1 || dt == DType::kQ5_1;

    std::vector<double> want_q(s.M * s.N), tol_q(s.M * s.N), want(s.M * s.N), tol(s.M * s.N);
    for (int64_t m = 0; m < s.M; ++m) {
      for (int64_t n = 0; n < s.N; ++n) {
        const float* wr = w.data() + n * s.K;
        double sum_q = 0, sum = 0, qerr = 0, fmag = 0;
        for (int64_t b = 0; b < s.K; b += 32) {
          const int64_t blk = (m * s.K + b) / 32;
          const double d = xq.d[blk];
          const int64_t bs = DTypeBlockSize(dt);
          const uint8_t* wblock = wq.data() + n * row_bytes + DTypeRowBytes(dt, b / bs * bs);
          const double mb = MinBound(dt, wblock);
          for (int64_t k = b; k < b + 32; ++k) {
            const double xk = x[m * s.K + k];
            const double xhat = d * xq.q[m * s.K + k];
            sum_q += double{wr[k]} * xhat;
            sum += double{wr[k]} * xk;
            qerr += std::fabs(double{wr[k]}) * std::fabs(xk - xhat);
            fmag += (std::fabs(double{wr[k]}) + 2 * mb) * (std::fabs(xk) + d);
          }
          if (min_times_s) {
            const double m_signed = DecodeF16(static_cast<uint16_t>(wblock[2] | wblock[3] << 8));
            sum_q += m_signed * (xq.s[blk] - d * xq.sum[blk]);
            qerr += mb * std::fabs(xq.s[blk] - d * xq.sum[blk]);
          }
        }
        want_q[m * s.N + n] = sum_q;
        tol_q[m * s.N + n] = (s.K + 8) * kF32Eps * fmag;
        want[m * s.N + n] = sum;
        tol[m * s.N + n] = qerr + tol_q[m * s.N + n];
      }
    }
    Guarded y(s.M * s.N);
    if (packed) {
      const auto pw = PackForLinear(wq.data(), dt, s.N, s.K);
      ASSERT_NE(pw, nullptr);
      LinearPacked(pool, x.data(), s.M, *pw, y.data());
    } else {
      ops().linear(pool, x.data(), s.M, s.K, wq.data(), dt, s.N, y.data(), Activations::kInt8, workspace());
    }
    EXPECT_TRUE(AllClose(y, want_q, tol_q)) << "against the quantized arithmetic";
    EXPECT_TRUE(AllClose(y, want, tol)) << "against the float product";
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

// The packed layout (AVX-512 VNNI) for Q4_1 and Q8_0: the same two brute forces, with K not a
// multiple of the four-block group (padding), M beyond four rows (several passes over each tile),
// and integer-valued activations so that a wrong lane or block shows exactly. The other types have
// no packed layout.
TEST_P(QuantLinearTest, PackedMatchesTheQuantizedArithmetic) {
  if (GetParam() != Isa::kAvx512 || !PackedLinearAvailable()) {
    GTEST_SKIP() << "the packed kernel is AVX-512 VNNI, with the avx512 ISA active";
  }
  ThreadPool pool(2);
  for (DType dt : {DType::kQ4_1, DType::kQ8_0}) {
    for (Shape s : {Shape{1, 32, 1}, Shape{1, 576, 13}, Shape{2, 96, 40}, Shape{3, 1536, 37}, Shape{4, 160, 70},
                    Shape{9, 576, 33}, Shape{64, 1024, 40}}) {
      Check(s, dt, false, nullptr, /*packed=*/true);
      Check(s, dt, false, &pool, /*packed=*/true);
      Check(s, dt, true, &pool, /*packed=*/true);
    }
  }
  for (DType dt : kQuantTypes) {
    if (dt != DType::kQ4_1 && dt != DType::kQ8_0) {
      std::vector<uint8_t> w(DTypeRowBytes(dt, 256) * 2);
      EXPECT_EQ(PackForLinear(w.data(), dt, 2, 256), nullptr) << DTypeName(dt);
    }
  }
}

// LinearPackedMany splits the rows of several matrices between the threads together: every
// output must be what the GGUF-layout kernels give for its matrix alone (the same integer block
// dots and scales, or the same f32 products, summed in another order: within 2^−17 of Σ|x·w|), for
// matrices of different heights, rows of x in one and in several passes, int8 and f32 activations,
// with and without a pool.
TEST_P(QuantLinearTest, PackedManyMatchesEachMatrixAlone) {
  if (GetParam() != Isa::kAvx512 || !PackedLinearAvailable()) {
    GTEST_SKIP() << "the packed kernel is AVX-512 VNNI, with the avx512 ISA active";
  }
  ThreadPool pool(2);
  const int64_t K = 576;
  for (DType dt : {DType::kQ4_1, DType::kQ8_0}) {
    std::vector<std::vector<uint8_t>> wq;
    std::vector<std::unique_ptr<PackedLinear>> packed;
    std::vector<const PackedLinear*> ws;
    for (int64_t n : {576, 3, 192, 1000}) {
      wq.push_back(RandomQuantRows(dt, n, K, static_cast<uint32_t>(n)));
      packed.push_back(PackForLinear(wq.back().data(), dt, n, K));
      ASSERT_NE(packed.back(), nullptr);
      ws.push_back(packed.back().get());
    }
    for (int64_t M : {1, 3, 6}) {
      const std::vector<float> x = RandomFloats(M * K, -1, 1, static_cast<uint32_t>(M));
      for (Activations act : {Activations::kInt8, Activations::kF32}) {
        for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
          SCOPED_TRACE(::testing::Message()
                       << DTypeName(dt) << " M=" << M << " " << ActivationsName(act) << (p ? " pool" : ""));
          std::vector<Guarded> many;
          std::vector<float*> ys;
          for (const PackedLinear* w : ws) many.emplace_back(M * w->n);
          for (Guarded& g : many) ys.push_back(g.data());
          LinearPackedMany(p, x.data(), M, ws, ys, act);
          for (size_t i = 0; i < ws.size(); ++i) {
            const int64_t N = ws[i]->n;
            std::vector<float> alone(M * N), w(K);
            ops().linear(nullptr, x.data(), M, K, wq[i].data(), dt, N, alone.data(), act, workspace());
            std::vector<double> want(M * N), tol(M * N);
            for (int64_t n = 0; n < N; ++n) {
              DequantizeRow(dt, wq[i].data() + n * DTypeRowBytes(dt, K), K, w.data());
              for (int64_t m = 0; m < M; ++m) {
                double mag = 0;
                for (int64_t k = 0; k < K; ++k) mag += std::fabs(double{x[m * K + k]} * w[k]);
                want[m * N + n] = alone[m * N + n];
                tol[m * N + n] = mag / (1 << 17);
              }
            }
            EXPECT_TRUE(AllClose(many[i], want, tol)) << "matrix " << i;
          }
        }
      }
    }
  }
}

// Activations::kF32: y = x·dequant(w)ᵀ against a double brute force over the dequantized weights
// (DequantizeRow, itself checked against gguf above), within f32 rounding of the dot product,
// (K + 2)·2^−24·Σ_k |x_k·w_k|. The int8 path's error (about 2^−8 of that sum) is far outside it, so
// routing any shape to the int8 kernels fails. Skinny rows (M <= 4), the GEMM (M > 4, several K
// blocks, both ways of splitting threads), pool and no pool.
TEST_P(QuantLinearTest, F32ActivationsGiveTheFloatProduct) {
  ThreadPool pool(2);
  for (DType dt : kQuantTypes) {
    const int64_t bs = DTypeBlockSize(dt);
    for (Shape s : {Shape{1, bs, 1}, Shape{1, 3 * bs, 40}, Shape{2, 1024, 13}, Shape{3, 512, 37}, Shape{4, 1024, 70},
                    Shape{1, 576, 33}, Shape{4, 160, 9}, Shape{5, bs, 13}, Shape{64, 3 * bs, 40}, Shape{130, 1024, 70},
                    Shape{7, 512, 600}}) {
      if (s.K % bs != 0) continue;
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        SCOPED_TRACE(::testing::Message()
                     << "M=" << s.M << " K=" << s.K << " N=" << s.N << " " << DTypeName(dt) << (p ? " pool" : ""));
        const uint32_t seed = static_cast<uint32_t>(s.M * 31 + s.K * 7 + s.N + static_cast<int>(dt) * 101);
        const std::vector<float> x = RandomFloats(s.M * s.K, -1, 1, seed);
        const auto wq = RandomQuantRows(dt, s.N, s.K, seed + 1);
        const int64_t row_bytes = DTypeRowBytes(dt, s.K);
        std::vector<float> w(s.K);
        std::vector<double> want(s.M * s.N), tol(s.M * s.N);
        for (int64_t n = 0; n < s.N; ++n) {
          DequantizeRow(dt, wq.data() + n * row_bytes, s.K, w.data());
          for (int64_t m = 0; m < s.M; ++m) {
            double sum = 0, mag = 0;
            for (int64_t k = 0; k < s.K; ++k) {
              sum += double{x[m * s.K + k]} * w[k];
              mag += std::fabs(double{x[m * s.K + k]} * w[k]);
            }
            want[m * s.N + n] = sum;
            tol[m * s.N + n] = (s.K + 2) * kF32Eps * mag;
          }
        }
        Guarded y(s.M * s.N);
        ops().linear(p, x.data(), s.M, s.K, wq.data(), dt, s.N, y.data(), Activations::kF32, workspace());
        EXPECT_TRUE(AllClose(y, want, tol));
        // The packed copy (Q4_1, Q8_0 on AVX-512 VNNI), which the avx512 table's users get.
        if (GetParam() == Isa::kAvx512 && PackedLinearAvailable()) {
          if (const auto pw = PackForLinear(wq.data(), dt, s.N, s.K)) {
            Guarded yp(s.M * s.N);
            LinearPacked(p, x.data(), s.M, *pw, yp.data(), Activations::kF32);
            EXPECT_TRUE(AllClose(yp, want, tol)) << "packed";
          }
        }
      }
    }
  }
}

// Activations that quantize without error (d = 1, q = x): only f32 rounding and the f16 rounding of
// s are left, so integer-path mistakes of even one unit in one product would show.
TEST_P(QuantLinearTest, ExactActivations) {
  ThreadPool pool(2);
  for (DType dt : kQuantTypes) {
    for (int64_t M : {1, 2, 3, 4, 9}) Check({M, 1024, 37}, dt, true, &pool);
  }
}

// Activations at rounding edges: halves (x·127/amax = k + 0.5; ties go to even), a block of zeros,
// tiny and large scales (d below the f16 range, f16-subnormal d, d and s in the thousands).
std::vector<float> EdgeActivations() {
  std::vector<float> x = RandomFloats(32 * 64, -3, 3, 11);
  for (int i = 0; i < 32; ++i) x[32 + i] = 0.0f;
  for (int i = 0; i < 32; ++i) x[64 + i] = (static_cast<float>(i) - 15.5f) / 16.0f;
  x[64 + 31] = 1.0f;
  for (int i = 0; i < 32; ++i) x[96 + i] *= 1e-6f;
  for (int i = 0; i < 32; ++i) x[128 + i] *= 1e3f;
  for (int i = 0; i < 32; ++i) x[160 + i] *= 1e-4f;
  return x;
}

// QuantizeActivations (the scalar statement) against QuantizeForTest, bit for bit.
TEST(QuantActivations, MatchesSpecification) {
  const std::vector<float> x = EdgeActivations();
  for (DType dt : kQuantTypes) {
    SCOPED_TRACE(DTypeName(dt));
    const QuantizedX want = QuantizeForTest(x, dt);
    std::vector<Q8Block> got(x.size() / 32);
    QuantizeActivations(x.data(), static_cast<int64_t>(x.size()), dt, got.data());
    for (size_t b = 0; b < got.size(); ++b) {
      ASSERT_EQ(got[b].d, want.d[b]) << "block " << b;
      ASSERT_EQ(got[b].s, want.s[b]) << "block " << b;
      for (int i = 0; i < 32; ++i) ASSERT_EQ(got[b].q[i], want.q[32 * b + i]) << "block " << b << " element " << i;
    }
  }
}

// Each ISA's quantization, bit for bit, read through Linear with weights that pick single values:
// Q8_0 rows with d = 1 and one q = 1 give y[n] = d·q_n exactly; Q4_1 rows with d = 0 and m = 1 in
// block n only give y[n] = s_n exactly.
TEST_P(QuantLinearTest, ActivationsQuantizedLikeSpecification) {
  const std::vector<float> x = EdgeActivations();
  const int64_t K = static_cast<int64_t>(x.size());
  const int64_t nb = K / 32;
  std::vector<uint8_t> one_hot(K * DTypeRowBytes(DType::kQ8_0, K), 0);
  for (int64_t n = 0; n < K; ++n) {
    uint8_t* blk = one_hot.data() + n * DTypeRowBytes(DType::kQ8_0, K) + (n / 32) * 34;
    blk[1] = 0x3c;  // f16 1.0
    blk[2 + n % 32] = 1;
  }
  std::vector<uint8_t> mins(nb * DTypeRowBytes(DType::kQ4_1, K), 0);
  for (int64_t n = 0; n < nb; ++n) mins[n * DTypeRowBytes(DType::kQ4_1, K) + n * 20 + 3] = 0x3c;  // m = 1.0
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    Guarded y(K);
    ops().linear(&pool, x.data(), 1, K, one_hot.data(), DType::kQ8_0, K, y.data(), Activations::kInt8, workspace());
    const QuantizedX q8 = QuantizeForTest(x, DType::kQ8_0);
    for (int64_t n = 0; n < K; ++n) ASSERT_EQ(y[n], q8.d[n / 32] * q8.q[n]) << "element " << n;
    Guarded ys(nb);
    ops().linear(&pool, x.data(), 1, K, mins.data(), DType::kQ4_1, nb, ys.data(), Activations::kInt8, workspace());
    const QuantizedX q81 = QuantizeForTest(x, DType::kQ4_1);
    for (int64_t n = 0; n < nb; ++n) ASSERT_EQ(ys[n], q81.s[n]) << "block " << n;
  }
}

TESSERA_INSTANTIATE_ISA_TEST(QuantLinearTest);

}  // namespace
}  // namespace tessera::kernels::testing
