// The CUDA kernels' per-element math (kernel_math.cuh) run on the host: no GPU needed.
#include "kernels/cuda/kernel_math.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/dtype.h"

namespace tessera::kernels::gpu {
namespace {

TEST(KernelMathTest, Bf16MatchesDtypeConversions) {
  std::vector<float> values = {0.0f,
                               -0.0f,
                               1.0f,
                               -1.5f,
                               1.00390625f,  // halfway between two bf16: rounds to even
                               1.01171875f,  // halfway, rounds up to even
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::quiet_NaN(),
                               std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::lowest()};
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) values.push_back(BitsToF32(static_cast<uint32_t>(rng())));
  for (const float f : values) {
    const uint16_t ours = F32ToBf16Bits(f);
    ASSERT_EQ(ours, F32ToBf16(f)) << "f32 bits 0x" << std::hex << F32ToBits(f);
    const float back = Bf16BitsToF32(ours);
    const float ref = Bf16ToF32(F32ToBf16(f));
    ASSERT_EQ(F32ToBits(back), F32ToBits(ref));
  }
}

TEST(KernelMathTest, ElementwiseAgainstDoubles) {
  for (const float g : {-20.0f, -3.5f, -1.0f, -0.25f, 0.0f, 0.5f, 2.0f, 7.75f, 30.0f}) {
    const double sig = 1.0 / (1.0 + std::exp(-static_cast<double>(g)));
    EXPECT_NEAR(Sigmoid(g), sig, 1e-6 * sig + 1e-7) << g;
    EXPECT_NEAR(Silu(g), g * sig, 1e-6 * std::fabs(g * sig) + 1e-7) << g;
  }
  // x = [3, 4]: mean(x²) = 12.5
  EXPECT_NEAR(RmsInvScale(25.0f, 2, 0.0f), 1.0 / std::sqrt(12.5), 1e-7);
  EXPECT_NEAR(RmsInvScale(25.0f, 2, 1e-2f), 1.0 / std::sqrt(12.51), 1e-7);
}

TEST(KernelMathTest, RopePairsAndRotation) {
  // rot_dim 8: neox pairs (i, i + 4), interleaved (2i, 2i + 1).
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(RopePairOffsets(false, i, 8).a, i);
    EXPECT_EQ(RopePairOffsets(false, i, 8).b, i + 4);
    EXPECT_EQ(RopePairOffsets(true, i, 8).a, 2 * i);
    EXPECT_EQ(RopePairOffsets(true, i, 8).b, 2 * i + 1);
  }
  EXPECT_EQ(RopeAngle(7, 0.5f), 3.5f);
  const float theta = RopeAngle(123, 0.01f);
  float a2;
  float b2;
  RotatePair(2.0f, -3.0f, std::cos(theta), std::sin(theta), &a2, &b2);
  const double t = static_cast<double>(theta);
  EXPECT_NEAR(a2, 2.0 * std::cos(t) + 3.0 * std::sin(t), 1e-6);
  EXPECT_NEAR(b2, -3.0 * std::cos(t) + 2.0 * std::sin(t), 1e-6);
  // A rotation keeps the pair's norm.
  EXPECT_NEAR(a2 * a2 + b2 * b2, 13.0, 1e-5);
}

TEST(KernelMathTest, VisibleKeysAndSlots) {
  // 10 keys at positions 5..14.
  EXPECT_EQ(VisibleKeys(false, 10, 0, 5, 0), 10);
  EXPECT_EQ(VisibleKeys(true, 10, 0, 5, 0), 0);   // position 0 precedes every key
  EXPECT_EQ(VisibleKeys(true, 10, 0, 5, 4), 0);   // position 4
  EXPECT_EQ(VisibleKeys(true, 10, 0, 5, 5), 1);   // position 5 sees key 0
  EXPECT_EQ(VisibleKeys(true, 10, 10, 5, 2), 8);  // position 12 sees keys 0..7
  EXPECT_EQ(VisibleKeys(true, 10, 30, 5, 0), 10);
  EXPECT_EQ(KvSlot(nullptr, 16, 37), 37);
  const int32_t table[] = {4, 0, 9};
  EXPECT_EQ(KvSlot(table, 16, 0), 64);
  EXPECT_EQ(KvSlot(table, 16, 15), 79);
  EXPECT_EQ(KvSlot(table, 16, 16), 0);
  EXPECT_EQ(KvSlot(table, 16, 37), 9 * 16 + 5);
}

// Scores split over `parts` strided partials (the kernel's warps), each an online softmax, merged
// as AttentionKernel merges them; against a double-precision softmax.
TEST(KernelMathTest, OnlineSoftmaxPartialsMergeToTheSoftmax) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (const int n : {0, 1, 3, 7, 64, 301}) {
    for (const int parts : {1, 2, 4}) {
      std::vector<float> s(n);
      std::vector<float> v(n);
      for (int j = 0; j < n; ++j) {
        s[j] = normal(rng);
        v[j] = normal(rng);
      }
      std::vector<SoftmaxState> st(parts);
      std::vector<float> acc(parts, 0.0f);
      for (int j = 0; j < n; ++j) {
        const int w = j % parts;
        float rescale;
        float weight;
        OnlineSoftmaxAdd(&st[w], s[j], &rescale, &weight);
        acc[w] = acc[w] * rescale + weight * v[j];
      }
      float m_total = -INFINITY;
      for (const SoftmaxState& p : st) m_total = std::fmax(m_total, p.m);
      float l_total = 0.0f;
      float o = 0.0f;
      for (int w = 0; w < parts; ++w) {
        l_total += st[w].l * PartialWeight(st[w].m, m_total);
        o += acc[w] * PartialWeight(st[w].m, m_total);
      }
      const float out = l_total > 0.0f ? o * (1.0f / l_total) : 0.0f;
      const float lse = LogSumExp(m_total, l_total);
      if (n == 0) {
        EXPECT_EQ(out, 0.0f);
        EXPECT_EQ(lse, -INFINITY);
        continue;
      }
      double mx = -INFINITY;
      for (const float x : s) mx = std::max(mx, static_cast<double>(x));
      double sum = 0.0;
      double dot = 0.0;
      for (int j = 0; j < n; ++j) {
        const double e = std::exp(s[j] - mx);
        sum += e;
        dot += e * v[j];
      }
      const double ref_out = dot / sum;
      const double ref_lse = mx + std::log(sum);
      EXPECT_NEAR(out, ref_out, 1e-5 + 1e-5 * std::fabs(ref_out)) << "n " << n << " parts " << parts;
      EXPECT_NEAR(lse, ref_lse, 1e-5 + 1e-6 * std::fabs(ref_lse)) << "n " << n << " parts " << parts;
    }
  }
}

// Reference top-k: a stable sort on (value descending), NaN last.
std::vector<int32_t> SortedIndices(const std::vector<float>& p) {
  std::vector<int32_t> idx(p.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) {
    if (std::isnan(p[a]) || std::isnan(p[b])) return !std::isnan(p[a]) && std::isnan(p[b]);
    return p[a] > p[b];
  });
  return idx;
}

TEST(KernelMathTest, SoftmaxAndTopKRows) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> small(-3, 3);  // many ties
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + trial % 17;
    const int k = 1 + trial % n;
    std::vector<float> logits(n);
    for (float& x : logits) x = static_cast<float>(small(rng));
    std::vector<float> p = logits;
    SoftmaxRow(p.data(), n);
    double mx = -INFINITY;
    for (const float x : logits) mx = std::max(mx, static_cast<double>(x));
    double sum = 0.0;
    for (const float x : logits) sum += std::exp(x - mx);
    for (int i = 0; i < n; ++i) ASSERT_NEAR(p[i], std::exp(logits[i] - mx) / sum, 1e-6);

    for (const bool renormalize : {false, true}) {
      std::vector<int32_t> ids(k, -7);
      std::vector<float> weights(k, -7.0f);
      TopKRow(p.data(), n, k, renormalize, ids.data(), weights.data());
      const std::vector<int32_t> ref = SortedIndices(p);
      float picked = 0.0f;
      for (int j = 0; j < k; ++j) picked += p[ref[j]];
      for (int j = 0; j < k; ++j) {
        ASSERT_EQ(ids[j], ref[j]) << "trial " << trial << " pick " << j;
        ASSERT_EQ(weights[j], renormalize ? p[ref[j]] / picked : p[ref[j]]) << "trial " << trial << " pick " << j;
      }
    }
  }
}

TEST(KernelMathTest, TopKRanksNanLast) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> p = {nan, 0.25f, nan, 0.5f, 0.25f};
  std::vector<int32_t> ids(5);
  std::vector<float> weights(5);
  TopKRow(p.data(), 5, 5, false, ids.data(), weights.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{3, 1, 4, 0, 2}));
  EXPECT_EQ(weights[0], 0.5f);
  EXPECT_TRUE(std::isnan(weights[3]));
}

}  // namespace
}  // namespace tessera::kernels::gpu
