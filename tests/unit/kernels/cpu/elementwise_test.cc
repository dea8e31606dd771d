// RmsNorm, RopeNeox, SiluMul, Softmax and TopK on every ISA against double-precision brute force.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels_test_util.h"

namespace tessera::kernels::testing {
namespace {

class ElementwiseTest : public IsaTest {};

TEST_P(ElementwiseTest, RmsNorm) {
  const float eps = 1e-5f;
  for (int64_t rows : {1, 3}) {
    for (int64_t dim : {1, 7, 64, 100, 4097}) {
      SCOPED_TRACE(::testing::Message() << "rows=" << rows << " dim=" << dim);
      const auto x = RandomFloats(rows * dim, -2, 2, static_cast<uint32_t>(rows * 10000 + dim));
      const auto weight = RandomFloats(dim, 0.5f, 1.5f, static_cast<uint32_t>(dim));
      std::vector<double> want(rows * dim), tol(rows * dim);
      for (int64_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < dim; ++i) ss += double{x[r * dim + i]} * x[r * dim + i];
        const double inv = 1.0 / std::sqrt(ss / dim + eps);
        for (int64_t i = 0; i < dim; ++i) {
          want[r * dim + i] = x[r * dim + i] * inv * weight[i];
          // Sum of dim squares (γ_dim), halved by the square root, plus a few roundings.
          tol[r * dim + i] = (dim / 2.0 + 6) * kF32Eps * std::fabs(want[r * dim + i]);
        }
      }
      Guarded y(rows * dim);
      ops().rms_norm(x.data(), weight.data(), rows, dim, eps, y.data());
      EXPECT_TRUE(AllClose(y, want, tol));
      // In place (y aliases x).
      Guarded inplace(rows * dim);
      std::copy(x.begin(), x.end(), inplace.data());
      ops().rms_norm(inplace.data(), weight.data(), rows, dim, eps, inplace.data());
      EXPECT_TRUE(AllClose(inplace, want, tol));
    }
  }
}

TEST_P(ElementwiseTest, RopeNeoxRotatesFirstRotDim) {
  const int64_t tokens = 3, heads = 2;
  const std::vector<int32_t> positions = {0, 5, 1000};
  for (auto [head_dim, rot_dim] : {std::pair<int64_t, int64_t>{10, 8}, {64, 64}, {6, 2}}) {
    SCOPED_TRACE(::testing::Message() << "head_dim=" << head_dim << " rot_dim=" << rot_dim);
    const int64_t half = rot_dim / 2;
    std::vector<float> inv_freq(half);
    for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / rot_dim);
    const auto x = RandomFloats(tokens * heads * head_dim, -1, 1, static_cast<uint32_t>(head_dim));
    std::vector<double> want(x.begin(), x.end()), tol(x.size(), 0.0);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = (t * heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const double theta = static_cast<double>(positions[t]) * inv_freq[i];
          const double x1 = x[base + i], x2 = x[base + i + half];
          want[base + i] = x1 * std::cos(theta) - x2 * std::sin(theta);
          want[base + i + half] = x2 * std::cos(theta) + x1 * std::sin(theta);
          // θ is rounded to f32 (error |θ|·2^−24), then cos/sin and the products add a few ulps.
          const double t_err = (std::fabs(theta) + 8) * kF32Eps * (std::fabs(x1) + std::fabs(x2));
          tol[base + i] = tol[base + i + half] = t_err;
        }
      }
    }
    Guarded y(x.size());
    std::copy(x.begin(), x.end(), y.data());
    ops().rope_neox(y.data(), tokens, heads, head_dim, rot_dim, positions.data(), inv_freq.data());
    EXPECT_TRUE(AllClose(y, want, tol));  // dims past rot_dim have tol 0: untouched
  }
}

TEST_P(ElementwiseTest, SiluMul) {
  for (int64_t n : {1, 7, 8, 33, 1000}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n);
    auto gate = RandomFloats(n, -20, 20, static_cast<uint32_t>(n));
    if (n >= 8) {  // saturation on both sides, and zero
      gate[0] = -100.0f;
      gate[1] = 100.0f;
      gate[2] = 0.0f;
    }
    const auto up = RandomFloats(n, -3, 3, static_cast<uint32_t>(n + 1));
    std::vector<double> want(n), tol(n);
    for (int64_t i = 0; i < n; ++i) {
      want[i] = gate[i] / (1.0 + std::exp(-double{gate[i]})) * up[i];
      // exp within a few ulps, then a division and two products; 1e-30 absorbs results below
      // f32's normal range (gate < −87, where the true value is ~1e−36 or less).
      tol[i] = 16 * kF32Eps * std::fabs(want[i]) + 1e-30;
    }
    Guarded out(n);
    ops().silu_mul(gate.data(), up.data(), n, out.data());
    EXPECT_TRUE(AllClose(out, want, tol));
    Guarded inplace(n);  // out aliases gate
    std::copy(gate.begin(), gate.end(), inplace.data());
    ops().silu_mul(inplace.data(), up.data(), n, inplace.data());
    EXPECT_TRUE(AllClose(inplace, want, tol));
  }
}

TEST_P(ElementwiseTest, Softmax) {
  const int64_t rows = 3;
  for (int64_t n : {1, 7, 8, 100, 1001}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n);
    auto x = RandomFloats(rows * n, -10, 10, static_cast<uint32_t>(n));
    x[n] = 1e4f;                          // row 1 has one dominant logit: max subtraction must keep exp finite
    if (n > 2) x[2 * n + 1] = -INFINITY;  // a masked logit
    std::vector<double> want(rows * n), tol(rows * n);
    for (int64_t r = 0; r < rows; ++r) {
      const double mx = *std::max_element(x.begin() + r * n, x.begin() + (r + 1) * n);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += std::exp(x[r * n + i] - mx);
      for (int64_t i = 0; i < n; ++i) {
        want[r * n + i] = std::exp(x[r * n + i] - mx) / sum;
        // exp to a few ulps, sum of n terms (γ_n relative), one division; 1e-37 for underflow.
        tol[r * n + i] = (n + 16) * kF32Eps * want[r * n + i] + 1e-37;
      }
    }
    Guarded y(rows * n);
    std::copy(x.begin(), x.end(), y.data());
    ops().softmax(y.data(), rows, n);
    EXPECT_TRUE(AllClose(y, want, tol));
  }
}

TEST_P(ElementwiseTest, TopKDescendingWithIndexTieBreak) {
  for (int64_t n : {1, 5, 64, 1000}) {
    // Few distinct values, so ties are common.
    const auto x = RandomInts(n, -5, 5, static_cast<uint32_t>(n));
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
    for (int64_t k : {int64_t{1}, std::min<int64_t>(5, n), n}) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k);
      std::vector<int32_t> idx(k + 4, -7);
      std::vector<float> val(k + 4, -7.0f);
      ops().top_k(x.data(), n, k, idx.data(), val.data());
      for (int64_t i = 0; i < k; ++i) {
        EXPECT_EQ(idx[i], order[i]) << "rank " << i;
        EXPECT_EQ(val[i], x[order[i]]) << "rank " << i;
      }
      for (int64_t i = k; i < k + 4; ++i) {
        EXPECT_EQ(idx[i], -7) << "idx written past k";
        EXPECT_EQ(val[i], -7.0f) << "val written past k";
      }
    }
  }
}

TESSERA_INSTANTIATE_ISA_TEST(ElementwiseTest);

}  // namespace
}  // namespace tessera::kernels::testing
