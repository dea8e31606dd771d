// AttentionWithLse on every ISA: against a double-precision brute force, paged vs contiguous,
// causal offsets, GQA, and the log-sum-exp merge of two key halves.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels_test_util.h"

namespace tessera::kernels::testing {
namespace {

struct Case {
  int64_t num_q, n_heads, n_kv_heads, head_dim, num_kv, q_pos0, k_pos0;
  bool causal;
};

struct Inputs {
  std::vector<float> q, k, v;  // contiguous: q [num_q, H, D], k/v [num_kv, Hkv, D]
};

Inputs MakeInputs(const Case& c, uint32_t seed) {
  return {RandomFloats(c.num_q * c.n_heads * c.head_dim, -1, 1, seed),
          RandomFloats(c.num_kv * c.n_kv_heads * c.head_dim, -1, 1, seed + 1),
          RandomFloats(c.num_kv * c.n_kv_heads * c.head_dim, -1, 1, seed + 2)};
}

AttentionParams Params(const Case& c, const Inputs& in, float* out, float* lse) {
  AttentionParams p;
  p.q = in.q.data();
  p.num_q = c.num_q;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.k = in.k.data();
  p.v = in.v.data();
  p.num_kv = c.num_kv;
  p.q_pos0 = c.q_pos0;
  p.k_pos0 = c.k_pos0;
  p.causal = c.causal;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.out = out;
  p.lse = lse;
  return p;
}

// Brute force in double: out[i,h] = Σ_j softmax(s)_j v[j, h/g], s_j = scale·q·k_j over visible j.
void Reference(const Case& c, const Inputs& in, std::vector<double>* out, std::vector<double>* lse) {
  const int64_t D = c.head_dim;
  const int64_t group = c.n_heads / c.n_kv_heads;
  const double scale = 1.0f / std::sqrt(static_cast<float>(D));
  out->assign(c.num_q * c.n_heads * D, 0.0);
  lse->assign(c.num_q * c.n_heads, -INFINITY);
  for (int64_t i = 0; i < c.num_q; ++i) {
    for (int64_t h = 0; h < c.n_heads; ++h) {
      const int64_t kvh = h / group;
      std::vector<double> s;
      for (int64_t j = 0; j < c.num_kv; ++j) {
        if (c.causal && c.k_pos0 + j > c.q_pos0 + i) break;
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) {
          dot += double{in.q[(i * c.n_heads + h) * D + d]} * in.k[(j * c.n_kv_heads + kvh) * D + d];
        }
        s.push_back(scale * dot);
      }
      if (s.empty()) continue;
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double sj : s) sum += std::exp(sj - mx);
      for (size_t j = 0; j < s.size(); ++j) {
        const double pj = std::exp(s[j] - mx) / sum;
        for (int64_t d = 0; d < D; ++d) {
          (*out)[(i * c.n_heads + h) * D + d] += pj * in.v[(j * c.n_kv_heads + kvh) * D + d];
        }
      }
      (*lse)[i * c.n_heads + h] = mx + std::log(sum);
    }
  }
}

// Scores have |s| <= scale·D (inputs in [−1, 1]); an f32 dot of D terms is off by at most
// γ_D·scale·D, which moves each softmax weight by about that relative amount, so out (a convex
// combination of |v| <= 1) and lse are both within a small multiple of it.
double Tolerance(const Case& c) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  return 4 * (c.head_dim + 16) * kF32Eps * (1 + scale * c.head_dim);
}

class AttentionTest : public IsaTest {
 protected:
  void CheckAgainstReference(const Case& c, ThreadPool* pool) {
    SCOPED_TRACE(::testing::Message() << "num_q=" << c.num_q << " H=" << c.n_heads << "/" << c.n_kv_heads
                                      << " D=" << c.head_dim << " num_kv=" << c.num_kv << " q_pos0=" << c.q_pos0
                                      << " k_pos0=" << c.k_pos0 << " causal=" << c.causal);
    const Inputs in = MakeInputs(c, static_cast<uint32_t>(c.num_kv * 31 + c.head_dim));
    std::vector<double> want_out, want_lse;
    Reference(c, in, &want_out, &want_lse);
    Guarded out(want_out.size()), lse(want_lse.size());
    ops().attention_with_lse(pool, Params(c, in, out.data(), lse.data()));
    const double tol = Tolerance(c);
    const bool some_see_none = std::any_of(want_lse.begin(), want_lse.end(), [](double l) { return std::isinf(l); });
    EXPECT_TRUE(AllClose(out, want_out, std::vector<double>(want_out.size(), tol)));
    std::vector<double> lse_tol(want_lse.size());
    for (size_t i = 0; i < lse_tol.size(); ++i) lse_tol[i] = tol * (1 + std::fabs(want_lse[i]));
    EXPECT_TRUE(AllClose(lse, want_lse, lse_tol, /*allow_zero=*/some_see_none));
  }
};

const Case kCases[] = {
    // decode: one query at the last position, GQA 4:1
    {1, 8, 2, 64, 37, 36, 0, true},
    // prefill chunk of 5 queries after 30 cached keys, GQA 2:1, odd head_dim
    {5, 4, 2, 20, 35, 30, 0, true},
    // keys start after the first queries: queries 0..1 see no key (out 0, lse −inf)
    {6, 2, 1, 3, 9, 8, 10, true},
    // non-causal (cross attention), MHA, more keys than one tile
    {3, 2, 2, 16, 100, 0, 0, false},
    // full prefill, square causal mask
    {17, 2, 2, 8, 17, 0, 0, true},
    // one key
    {2, 1, 1, 33, 1, 0, 0, false},
    // long context over many key tiles, head_dim 128 and 32 (register-resident rows, AttendRowsFixed)
    {2, 4, 1, 128, 300, 298, 0, true},
    {3, 6, 3, 32, 77, 74, 0, true},
};

TEST_P(AttentionTest, MatchesReference) {
  ThreadPool pool(2);
  for (const Case& c : kCases) {
    CheckAgainstReference(c, nullptr);
    CheckAgainstReference(c, &pool);
  }
}

TEST_P(AttentionTest, NoKeysGivesZeroAndMinusInf) {
  const Case c{2, 2, 1, 8, 0, 0, 0, false};
  const Inputs in = MakeInputs(c, 1);
  Guarded out(c.num_q * c.n_heads * c.head_dim), lse(c.num_q * c.n_heads);
  ops().attention_with_lse(nullptr, Params(c, in, out.data(), lse.data()));
  EXPECT_TRUE(AllClose(out, std::vector<double>(out.size(), 0.0), std::vector<double>(out.size(), 0.0), true));
  EXPECT_TRUE(AllClose(lse, std::vector<double>(lse.size(), -INFINITY), std::vector<double>(lse.size(), 0.0), true));
}

// The same keys through a shuffled block table give bit-identical results.
TEST_P(AttentionTest, PagedEqualsContiguous) {
  ThreadPool pool(2);
  for (const Case& c : kCases) {
    for (int64_t block_size : {1, 4, 16}) {
      SCOPED_TRACE(::testing::Message() << "num_kv=" << c.num_kv << " block_size=" << block_size);
      const Inputs in = MakeInputs(c, 7);
      const int64_t row = c.n_kv_heads * c.head_dim;
      const int64_t blocks = (c.num_kv + block_size - 1) / block_size;
      // Physical blocks in reverse-shuffled order, with one unused block first.
      std::vector<int32_t> table(blocks);
      std::iota(table.begin(), table.end(), 1);
      std::shuffle(table.begin(), table.end(), std::mt19937(3));
      std::vector<float> kc((blocks + 1) * block_size * row, NAN), vc((blocks + 1) * block_size * row, NAN);
      for (int64_t j = 0; j < c.num_kv; ++j) {
        const int64_t slot = table[j / block_size] * block_size + j % block_size;
        std::copy_n(in.k.begin() + j * row, row, kc.begin() + slot * row);
        std::copy_n(in.v.begin() + j * row, row, vc.begin() + slot * row);
      }
      Guarded out(c.num_q * c.n_heads * c.head_dim), lse(c.num_q * c.n_heads);
      Guarded paged_out(out.size()), paged_lse(lse.size());
      ops().attention_with_lse(&pool, Params(c, in, out.data(), lse.data()));
      AttentionParams p = Params(c, in, paged_out.data(), paged_lse.data());
      p.k = kc.data();
      p.v = vc.data();
      p.block_table = table.data();
      p.block_size = block_size;
      ops().attention_with_lse(&pool, p);
      EXPECT_TRUE(AllClose(paged_out, std::vector<double>(out.data(), out.data() + out.size()),
                           std::vector<double>(out.size(), 0.0)));
      EXPECT_TRUE(AllClose(paged_lse, std::vector<double>(lse.data(), lse.data() + lse.size()),
                           std::vector<double>(lse.size(), 0.0), true));
    }
  }
}

// Attention over keys [0, s) and [s, n) merged by log-sum-exp equals attention over [0, n):
//   lse = log(e^lse1 + e^lse2), out = e^(lse1 − lse)·out1 + e^(lse2 − lse)·out2.
TEST_P(AttentionTest, LseMergeOfTwoHalves) {
  for (const Case& c : kCases) {
    if (c.num_kv < 2) continue;
    SCOPED_TRACE(::testing::Message() << "num_kv=" << c.num_kv << " causal=" << c.causal);
    const Inputs in = MakeInputs(c, 11);
    const int64_t split = c.num_kv / 2 + 1;
    const int64_t n_out = c.num_q * c.n_heads * c.head_dim;
    const int64_t n_lse = c.num_q * c.n_heads;
    Guarded full(n_out), full_lse(n_lse), a(n_out), a_lse(n_lse), b(n_out), b_lse(n_lse);
    ops().attention_with_lse(nullptr, Params(c, in, full.data(), full_lse.data()));
    AttentionParams pa = Params(c, in, a.data(), a_lse.data());
    pa.num_kv = split;
    ops().attention_with_lse(nullptr, pa);
    AttentionParams pb = Params(c, in, b.data(), b_lse.data());
    const int64_t row = c.n_kv_heads * c.head_dim;
    pb.k = in.k.data() + split * row;
    pb.v = in.v.data() + split * row;
    pb.num_kv = c.num_kv - split;
    pb.k_pos0 = c.k_pos0 + split;
    ops().attention_with_lse(nullptr, pb);
    std::vector<double> merged(n_out), merged_lse(n_lse);
    for (int64_t r = 0; r < n_lse; ++r) {
      const double l1 = a_lse[r], l2 = b_lse[r];
      const double l = std::max(l1, l2) + std::log1p(std::exp(-std::fabs(l1 - l2)));
      merged_lse[r] = std::isinf(l1) && std::isinf(l2) ? -INFINITY : (std::isinf(l1) ? l2 : (std::isinf(l2) ? l1 : l));
      const double w1 = std::isinf(l1) ? 0 : std::exp(l1 - merged_lse[r]);
      const double w2 = std::isinf(l2) ? 0 : std::exp(l2 - merged_lse[r]);
      for (int64_t d = 0; d < c.head_dim; ++d) {
        merged[r * c.head_dim + d] = w1 * a[r * c.head_dim + d] + w2 * b[r * c.head_dim + d];
      }
    }
    const double tol = Tolerance(c);
    std::vector<double> lse_tol(n_lse);
    for (int64_t r = 0; r < n_lse; ++r) lse_tol[r] = tol * (1 + std::fabs(merged_lse[r]));
    EXPECT_TRUE(AllClose(full, merged, std::vector<double>(n_out, tol)));
    EXPECT_TRUE(AllClose(full_lse, merged_lse, lse_tol, true));
  }
}

TESSERA_INSTANTIATE_ISA_TEST(AttentionTest);

}  // namespace
}  // namespace tessera::kernels::testing
