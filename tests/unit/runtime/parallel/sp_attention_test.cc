// Sequence-parallel attention over LocalComm ranks against a brute-force f64 single-pass reference,
// and the per-rank byte counts against the closed forms of seeds.md §1.7.
#include "runtime/parallel/sp_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <tuple>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/parallel/local_comm.h"
#include "runtime/parallel/sp_calibrate.h"
#include "runtime/parallel/sp_replay.h"
#include "tests/unit/runtime/parallel/sp_reference.h"

namespace tessera::parallel {
namespace {

using testing::RandomTensor;
using testing::ReferenceAttention;

struct Case {
  int world;
  int64_t tokens;
  int64_t heads;
  int64_t kv_heads;
  int64_t head_dim;
  bool causal;
  SpAlgorithm algorithm;
  int64_t chunk_multiple = 1;
};

std::string CaseName(const Case& c) {
  return absl::StrFormat("%s_N%d_S%d_H%d_Hkv%d_%s_m%d", SpAlgorithmName(c.algorithm), c.world, c.tokens, c.heads,
                         c.kv_heads, c.causal ? "causal" : "full", c.chunk_multiple);
}

struct RunResult {
  std::vector<float> out;  // [S, H, D]
  std::vector<float> lse;  // [S, H]
  std::vector<SpStats> stats;
  SpLayout layout;
};

// Runs one prefill with every rank on its own thread and gathers the full-sequence result.
RunResult RunPrefill(const Case& c, const std::vector<float>& q, const std::vector<float>& k,
                     const std::vector<float>& v) {
  RunResult res;
  auto layout = SpLayout::Make(
      {.total_tokens = c.tokens, .world = c.world, .causal = c.causal, .chunk_multiple = c.chunk_multiple});
  EXPECT_TRUE(layout.ok()) << layout.status();
  res.layout = *layout;
  auto group = LocalCommGroup::Create({.size = c.world, .timeout = absl::Seconds(60)});
  EXPECT_TRUE(group.ok()) << group.status();
  const int64_t H = c.heads, Hkv = c.kv_heads, D = c.head_dim;
  res.out.assign(c.tokens * H * D, NAN);
  res.lse.assign(c.tokens * H, NAN);
  res.stats.resize(c.world);
  absl::Status s = (*group)->RunOnAllRanks([&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    const int64_t L = layout->local_tokens;
    std::vector<float> lq(L * H * D), lk(L * Hkv * D), lv(L * Hkv * D), lo(L * H * D), ll(L * H);
    layout->ScatterRows(q.data(), H * D, r, lq.data());
    layout->ScatterRows(k.data(), Hkv * D, r, lk.data());
    layout->ScatterRows(v.data(), Hkv * D, r, lv.data());
    const std::vector<int32_t> pos = layout->Positions(r);
    TS_ASSIGN_OR_RETURN(auto sp,
                        SequenceParallelAttention::Create(&comm, {.n_heads = H, .n_kv_heads = Hkv, .head_dim = D}));
    TS_RETURN_IF_ERROR(sp->Prefill(
        *layout,
        {.q = lq.data(), .k = lk.data(), .v = lv.data(), .positions = pos.data(), .out = lo.data(), .lse = ll.data()},
        c.algorithm));
    layout->GatherRows(lo.data(), H * D, r, res.out.data());
    layout->GatherRows(ll.data(), H, r, res.lse.data());
    res.stats[r] = sp->last_stats();
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return res;
}

class SpAttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(SpAttentionTest, MatchesF64SinglePass) {
  const Case c = GetParam();
  const int64_t H = c.heads, Hkv = c.kv_heads, D = c.head_dim, S = c.tokens;
  const auto q = RandomTensor(S * H * D, 1);
  const auto k = RandomTensor(S * Hkv * D, 2);
  const auto v = RandomTensor(S * Hkv * D, 3);
  RunResult got = RunPrefill(c, q, k, v);

  std::vector<int64_t> pos(S);
  std::iota(pos.begin(), pos.end(), 0);
  std::vector<double> ref_out, ref_lse;
  ReferenceAttention(q.data(), S, pos, k.data(), v.data(), S, pos, H, Hkv, D, 1.0 / std::sqrt(double(D)), c.causal,
                     &ref_out, &ref_lse);
  double ref_norm = 0, got_norm = 0, max_err = 0;
  int shown = 0;
  for (size_t i = 0; i < ref_out.size(); ++i) {
    ref_norm += ref_out[i] * ref_out[i];
    got_norm += double{got.out[i]} * got.out[i];
    const double err = std::fabs(got.out[i] - ref_out[i]);
    max_err = std::max(max_err, std::isnan(err) ? INFINITY : err);
    if (!(err <= 1e-5) && shown++ < 5) {
      ADD_FAILURE() << "out[" << i << "] (token " << i / (H * D) << "): found " << got.out[i] << ", expected "
                    << ref_out[i] << ", tol 1e-5";
    }
  }
  EXPECT_GT(ref_norm, 0);
  EXPECT_GT(got_norm, 0);
  EXPECT_LE(max_err, 1e-5);
  for (size_t i = 0; i < ref_lse.size(); ++i) {
    ASSERT_NEAR(got.lse[i], ref_lse[i], 1e-5 * std::max(1.0, std::fabs(ref_lse[i]))) << "lse[" << i << "]";
  }
  // Every rank did the same amount of non-local work per step (zigzag load balance): the flops of
  // steps 1..N−1 are equal across ranks when the length divides evenly.
  if (c.tokens % (2 * c.world * c.chunk_multiple) == 0) {
    for (int s = 1; s < c.world; ++s) {
      for (int r = 1; r < c.world; ++r) EXPECT_EQ(got.stats[r].flops[s], got.stats[0].flops[s]) << "step " << s;
    }
  }
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (SpAlgorithm a : {SpAlgorithm::kTokenRing, SpAlgorithm::kRing}) {
    for (int n : {2, 3, 4, 8}) {
      for (bool causal : {true, false}) {
        // One length that divides 2N and one that does not (padding).
        cases.push_back({n, 4 * n * 8, 4, 4, 16, causal, a});
        cases.push_back({n, 4 * n * 8 + 5, 4, 2, 16, causal, a});
      }
      cases.push_back({n, 2 * n * 6 + 1, 8, 2, 8, true, a});  // GQA 4
    }
    cases.push_back({4, 5, 2, 1, 8, true, a});    // fewer tokens than chunks: whole chunks of padding
    cases.push_back({1, 33, 4, 4, 16, true, a});  // a single rank
    // Block-aligned chunks (the model's layout): padding up to whole blocks, several chunks empty.
    cases.push_back({4, 37, 4, 2, 8, true, a, 16});
    cases.push_back({2, 3, 4, 2, 8, true, a, 16});
    cases.push_back({3, 100, 4, 4, 8, false, a, 16});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(All, SpAttentionTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return CaseName(info.param); });

// ---- Byte accounting against seeds.md §1.7 ------------------------------------------------------

class SpBytesTest : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(SpBytesTest, MatchesClosedForm) {
  const auto [N, causal] = GetParam();
  const int64_t H = 4, D = 8;
  const int64_t S = 2 * N * 3;  // divisible by 2N, so no padding
  for (int64_t Hkv : {4, 2, 1}) {
    const auto q = RandomTensor(S * H * D, 4);
    const auto k = RandomTensor(S * Hkv * D, 5);
    const auto v = RandomTensor(S * Hkv * D, 6);
    const RunResult tr = RunPrefill({N, S, H, Hkv, D, causal, SpAlgorithm::kTokenRing}, q, k, v);
    const RunResult ring = RunPrefill({N, S, H, Hkv, D, causal, SpAlgorithm::kRing}, q, k, v);
    // Units: causal: a half-chunk S/(2N) tokens; non-causal: a chunk S/N tokens.
    const int64_t tokens_per_unit = causal ? S / (2 * N) : S / N;
    const int64_t q_unit = tokens_per_unit * H * D * 4;
    const int64_t out_unit = tokens_per_unit * H * (D + 1) * 4;  // out + f32 lse
    const int64_t kv_unit = tokens_per_unit * Hkv * D * 4;
    int64_t q_total = 0, out_total = 0;
    for (int r = 0; r < N; ++r) {
      int64_t q_units, out_units, kv_units;
      if (causal) {
        q_units = r == 0 ? N - 1 : 2 * N - 1 - r;
        out_units = r == 0 ? 2 * (N - 1) : 2 * N - 2 - r;
        kv_units = 4 * (N - 1);
      } else {
        q_units = N - 1;
        out_units = N - 1;
        kv_units = 2 * (N - 1);
      }
      const SpStats& t = tr.stats[r];
      EXPECT_EQ(t.BytesSent(SpDirection::kQuery), q_units * q_unit) << "rank " << r << " Hkv " << Hkv;
      EXPECT_EQ(t.BytesSent(SpDirection::kOutput), out_units * out_unit) << "rank " << r;
      EXPECT_EQ(t.BytesSent(SpDirection::kKv), 0);
      EXPECT_EQ(ring.stats[r].BytesSent(SpDirection::kKv), kv_units * kv_unit) << "rank " << r;
      EXPECT_EQ(ring.stats[r].BytesSent(SpDirection::kQuery) + ring.stats[r].BytesSent(SpDirection::kOutput), 0);
      q_total += t.BytesSent(SpDirection::kQuery);
      out_total += t.BytesSent(SpDirection::kOutput);
      // Per step: the query message r → r−1 at step s is full (2 units) iff r ≥ 1 and r + s < N.
      for (const SpTransfer& x : t.transfers) {
        if (!x.is_send || x.direction != SpDirection::kQuery || !causal) continue;
        const bool full = r >= 1 && r + x.step < N;
        EXPECT_EQ(x.bytes(), (full ? 2 : 1) * q_unit) << "rank " << r << " step " << x.step;
        EXPECT_EQ(x.peer, (r - 1 + N) % N);
      }
    }
    // Mean over ranks: 1.5(N−1) units each way for causal TokenRing.
    if (causal) {
      EXPECT_EQ(2 * q_total, 3 * N * (N - 1) * q_unit);
      EXPECT_EQ(2 * out_total, 3 * N * (N - 1) * out_unit);
    }
    // Every byte sent is received.
    int64_t sent = 0, recvd = 0;
    for (const auto* run : {&tr, &ring}) {
      for (const SpStats& st : run->stats) {
        for (SpDirection d : {SpDirection::kQuery, SpDirection::kOutput, SpDirection::kKv}) {
          sent += st.BytesSent(d);
          recvd += st.BytesReceived(d);
        }
      }
    }
    EXPECT_EQ(sent, recvd);
  }
}

INSTANTIATE_TEST_SUITE_P(All, SpBytesTest,
                         ::testing::Combine(::testing::Values(2, 3, 4, 8), ::testing::Values(true, false)));

// ---- Decode (pass-Q) ----------------------------------------------------------------------------

class SpDecodeTest : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(SpDecodeTest, ShardedCacheMatchesF64) {
  const auto [N, broadcast] = GetParam();
  const int64_t H = 4, Hkv = 2, D = 16, T = 57, nq = 3;
  const int root = N - 1;
  const auto k = RandomTensor(T * Hkv * D, 7);
  const auto v = RandomTensor(T * Hkv * D, 8);
  const auto q = RandomTensor(nq * H * D, 9);
  // Keys are sharded unevenly: rank r holds contiguous runs; rank 0's run sits in a paged cache with
  // a scrambled block table. The queries are the last nq positions (their keys are in the cache).
  const int64_t q_pos0 = T - nq;
  std::vector<int64_t> bounds = {0};
  for (int r = 1; r < N; ++r) bounds.push_back(T * r / N + (r % 2));
  bounds.push_back(T);
  const int64_t block = 4;
  const int64_t n0 = bounds[1] - bounds[0];
  const int64_t nblocks = (n0 + block - 1) / block;
  std::vector<int32_t> table(nblocks);
  for (int64_t b = 0; b < nblocks; ++b) table[b] = static_cast<int32_t>(nblocks + 1 - b);  // reversed, offset
  std::vector<float> paged_k((nblocks + 2) * block * Hkv * D, 1e6f), paged_v((nblocks + 2) * block * Hkv * D, 1e6f);
  for (int64_t j = 0; j < n0; ++j) {
    const int64_t slot = table[j / block] * block + j % block;
    std::copy_n(k.data() + j * Hkv * D, Hkv * D, paged_k.data() + slot * Hkv * D);
    std::copy_n(v.data() + j * Hkv * D, Hkv * D, paged_v.data() + slot * Hkv * D);
  }
  std::vector<int64_t> kpos(T);
  std::iota(kpos.begin(), kpos.end(), 0);
  std::vector<int64_t> qpos(nq);
  std::iota(qpos.begin(), qpos.end(), q_pos0);
  std::vector<double> ref_out, ref_lse;
  ReferenceAttention(q.data(), nq, qpos, k.data(), v.data(), T, kpos, H, Hkv, D, 1.0 / std::sqrt(double(D)), true,
                     &ref_out, &ref_lse);

  auto group = LocalCommGroup::Create({.size = N, .timeout = absl::Seconds(60)});
  ASSERT_TRUE(group.ok());
  std::vector<std::vector<float>> outs(N, std::vector<float>(nq * H * D, NAN));
  std::vector<SpStats> stats(N);
  absl::Status s = (*group)->RunOnAllRanks([&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    TS_ASSIGN_OR_RETURN(auto sp,
                        SequenceParallelAttention::Create(&comm, {.n_heads = H, .n_kv_heads = Hkv, .head_dim = D}));
    std::vector<SpKvShard> shards;
    if (r == 0) {
      shards.push_back({.k = paged_k.data(),
                        .v = paged_v.data(),
                        .num_kv = n0,
                        .k_pos0 = 0,
                        .block_table = table.data(),
                        .block_size = block});
    } else {
      // Two shards on this rank, to exercise the local merge.
      const int64_t b0 = bounds[r], b1 = bounds[r + 1], mid = (b0 + b1) / 2;
      shards.push_back({.k = k.data() + b0 * Hkv * D, .v = v.data() + b0 * Hkv * D, .num_kv = mid - b0, .k_pos0 = b0});
      shards.push_back(
          {.k = k.data() + mid * Hkv * D, .v = v.data() + mid * Hkv * D, .num_kv = b1 - mid, .k_pos0 = mid});
    }
    std::vector<float> lse(nq * H);
    TS_RETURN_IF_ERROR(sp->Decode({.root = root,
                                   .q = r == root ? q.data() : nullptr,
                                   .num_q = nq,
                                   .q_pos0 = q_pos0,
                                   .shards = shards,
                                   .out = outs[r].data(),
                                   .lse = lse.data(),
                                   .broadcast_output = broadcast}));
    stats[r] = sp->last_stats();
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  for (int r = 0; r < N; ++r) {
    if (r != root && !broadcast) continue;
    for (size_t i = 0; i < ref_out.size(); ++i) ASSERT_NEAR(outs[r][i], ref_out[i], 1e-5) << "rank " << r << " i " << i;
  }
  // Bytes: the root sends its queries to every other rank; each returns one out + lse.
  EXPECT_EQ(stats[root].BytesSent(SpDirection::kQuery), (N - 1) * nq * H * D * 4);
  EXPECT_EQ(stats[root].BytesReceived(SpDirection::kOutput), (N - 1) * nq * H * (D + 1) * 4);
  for (int r = 0; r < N; ++r) {
    if (r == root) continue;
    EXPECT_EQ(stats[r].BytesSent(SpDirection::kOutput), nq * H * (D + 1) * 4);
    EXPECT_EQ(stats[r].BytesSent(SpDirection::kQuery), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(All, SpDecodeTest, ::testing::Combine(::testing::Values(1, 2, 3, 4, 8), ::testing::Bool()));

// ---- Validation, policy, replay -----------------------------------------------------------------

TEST(SpAttention, RejectsBadInput) {
  auto group = LocalCommGroup::Create({.size = 1});
  ASSERT_TRUE(group.ok());
  Communicator* comm = (*group)->comm(0);
  EXPECT_FALSE(SequenceParallelAttention::Create(comm, {.n_heads = 6, .n_kv_heads = 4, .head_dim = 8}).ok());
  EXPECT_FALSE(SequenceParallelAttention::Create(comm, {.n_heads = 0, .n_kv_heads = 1, .head_dim = 8}).ok());
  auto sp = SequenceParallelAttention::Create(comm, {.n_heads = 2, .n_kv_heads = 1, .head_dim = 4});
  ASSERT_TRUE(sp.ok());
  auto layout = SpLayout::Make({.total_tokens = 4, .world = 1});
  ASSERT_TRUE(layout.ok());
  std::vector<float> q(4 * 8), kv(4 * 4), out(4 * 8);
  std::vector<int32_t> pos = {0, 1, 3, 2};
  absl::Status s = (*sp)->Prefill(
      *layout, {.q = q.data(), .k = kv.data(), .v = kv.data(), .positions = pos.data(), .out = out.data()});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("positions[2]"), std::string::npos) << s;
  s = (*sp)->Prefill(*layout, {.q = q.data(), .k = nullptr, .v = kv.data(), .out = out.data()});
  EXPECT_NE(s.message().find("k is null"), std::string::npos) << s;
  auto wrong = SpLayout::Make({.total_tokens = 4, .world = 2});
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE((*sp)->Prefill(*wrong, {.q = q.data(), .k = kv.data(), .v = kv.data(), .out = out.data()}).ok());
  EXPECT_FALSE(SpLayout::Make({.total_tokens = 0, .world = 2}).ok());
  EXPECT_FALSE(SpLayout::Make({.total_tokens = 5, .world = 0}).ok());
  EXPECT_FALSE((*sp)->Decode({.root = 3, .num_q = 1}).ok());
}

TEST(SpPolicy, PicksByHeadsBandwidthAndMode) {
  SpPolicy p{.link_bytes_per_second = 12e9, .attention_flops_per_second = 80e12};
  // MHA, communication-bound Ring (seeds.md §1.7: 6000 tokens per rank on A10 PCIe): pass-Q.
  SpShape mha{.n_heads = 32, .n_kv_heads = 32, .head_dim = 128, .tokens_per_rank = 6000, .world = 4, .causal = true};
  p.element_bytes = 2;
  p.topology = SpTopology::kMesh;
  auto d = ChooseAlgorithm(p, mha);
  EXPECT_EQ(d.algorithm, SpAlgorithm::kTokenRing);
  EXPECT_LT(d.token_ring_cost, d.ring_cost);
  // GQA 8: K+V is a quarter of Q; pass-KV.
  SpShape gqa = mha;
  gqa.n_kv_heads = 4;
  EXPECT_EQ(ChooseAlgorithm(p, gqa).algorithm, SpAlgorithm::kRing);
  // Forced modes.
  p.mode = SpPolicy::Mode::kRing;
  EXPECT_EQ(ChooseAlgorithm(p, mha).algorithm, SpAlgorithm::kRing);
  p.mode = SpPolicy::Mode::kTokenRing;
  EXPECT_EQ(ChooseAlgorithm(p, gqa).algorithm, SpAlgorithm::kTokenRing);
  // Unknown bandwidth: by bytes on the busiest link; on a full mesh H = 2·H_kv is the crossover.
  SpPolicy bytes_only{.topology = SpTopology::kMesh};
  SpShape g2 = mha;
  g2.n_kv_heads = 16;
  EXPECT_EQ(ChooseAlgorithm(bytes_only, mha).algorithm, SpAlgorithm::kTokenRing);
  EXPECT_EQ(ChooseAlgorithm(bytes_only, gqa).algorithm, SpAlgorithm::kRing);
  EXPECT_EQ(ChooseAlgorithm(bytes_only, g2).algorithm, SpAlgorithm::kRing);
}

SpStats Synthetic(int rank, int world, std::vector<double> compute) {
  SpStats s;
  s.rank = rank;
  s.world = world;
  s.compute_seconds = std::move(compute);
  s.wait_seconds.assign(s.compute_seconds.size(), 0);
  s.flops.assign(s.compute_seconds.size(), 0);
  return s;
}

TEST(SpReplay, HandComputedTwoRankRing) {
  // Two ranks, steps {0, 1, tail}: at step 0 each sends 1e9 bytes to the other; 1 s compute per step.
  std::vector<SpStats> st = {Synthetic(0, 2, {1, 1, 0}), Synthetic(1, 2, {1, 1, 0})};
  for (int r = 0; r < 2; ++r) {
    st[r].transfers.push_back({0, 1 - r, SpDirection::kKv, true, 250'000'000, 0});
    st[r].transfers.push_back({0, 1 - r, SpDirection::kKv, false, 250'000'000, 0});
  }
  auto fast = ReplaySchedule(st, {.link_bytes_per_second = 1e9});
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_DOUBLE_EQ(fast->layer_seconds, 2.0);  // transfer (1 s) hidden under step-0 compute
  EXPECT_DOUBLE_EQ(fast->exposed_seconds, 0.0);
  auto slow = ReplaySchedule(st, {.link_bytes_per_second = 0.25e9});
  ASSERT_TRUE(slow.ok());
  EXPECT_DOUBLE_EQ(slow->layer_seconds, 5.0);  // 4 s transfer, then 1 s compute
  EXPECT_DOUBLE_EQ(slow->exposed_seconds, 3.0);
  // fp16 on the wire halves the transfer.
  auto half = ReplaySchedule(st, {.link_bytes_per_second = 0.25e9, .element_bytes = 2});
  ASSERT_TRUE(half.ok());
  EXPECT_DOUBLE_EQ(half->layer_seconds, 3.0);
}

TEST(SpReplay, RealScheduleReplaysWithoutDeadlock) {
  for (SpAlgorithm a : {SpAlgorithm::kTokenRing, SpAlgorithm::kRing}) {
    const int N = 4;
    const int64_t S = 64, H = 4, D = 8;
    const RunResult res = RunPrefill({N, S, H, H, D, true, a}, RandomTensor(S * H * D, 1), RandomTensor(S * H * D, 2),
                                     RandomTensor(S * H * D, 3));
    for (SpTopology topo : {SpTopology::kRing, SpTopology::kMesh}) {
      // With a near-infinite link the layer takes exactly the busiest rank's compute.
      auto r = ReplaySchedule(res.stats,
                              {.link_bytes_per_second = 1e30, .topology = topo, .attention_flops_per_second = 1e9});
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_NEAR(r->exposed_seconds, 0.0, 1e-12);
      // With a slow link the layer is at least the busiest rank's bytes over one link.
      auto slow = ReplaySchedule(res.stats,
                                 {.link_bytes_per_second = 1e3, .topology = topo, .attention_flops_per_second = 1e9});
      ASSERT_TRUE(slow.ok());
      int64_t max_sent = 0;
      for (const auto& st : res.stats) {
        max_sent = std::max(max_sent, st.BytesSent(a == SpAlgorithm::kRing ? SpDirection::kKv : SpDirection::kQuery));
      }
      EXPECT_GE(slow->layer_seconds, max_sent / 1e3 * (1 - 1e-9));
    }
  }
}

}  // namespace
}  // namespace tessera::parallel

namespace tessera::parallel {
namespace {

// Calibration is collective and gives every rank rank 0's figures, so all ranks choose alike.
TEST(SpCalibrate, EveryRankGetsTheSameFigures) {
  auto group = LocalCommGroup::Create({.size = 3, .timeout = absl::Seconds(60)});
  ASSERT_TRUE(group.ok());
  std::vector<SpCalibration> got(3);
  absl::Status s = (*group)->RunOnAllRanks([&](Communicator& comm) -> absl::Status {
    TS_ASSIGN_OR_RETURN(
        got[comm.rank()],
        CalibrateSp(&comm, {.n_heads = 4, .n_kv_heads = 2, .head_dim = 16, .message_bytes = 1 << 16}, nullptr));
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GT(got[0].link_bytes_per_second, 0);
  EXPECT_GT(got[0].attention_flops_per_second, 0);
  for (int r = 1; r < 3; ++r) {
    EXPECT_EQ(got[r].link_bytes_per_second, got[0].link_bytes_per_second);
    EXPECT_EQ(got[r].attention_flops_per_second, got[0].attention_flops_per_second);
  }
  auto one = LocalCommGroup::Create({.size = 1});
  ASSERT_TRUE(one.ok());
  auto alone = CalibrateSp((*one)->comm(0), {.n_heads = 4, .n_kv_heads = 4, .head_dim = 8}, nullptr);
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(alone->link_bytes_per_second, 0);  // no link to measure
  EXPECT_FALSE(CalibrateSp((*one)->comm(0), {.n_heads = 3, .n_kv_heads = 2, .head_dim = 8}, nullptr).ok());
}

}  // namespace
}  // namespace tessera::parallel
