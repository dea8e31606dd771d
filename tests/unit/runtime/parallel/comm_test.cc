// LocalComm semantics and the LSE merge numerics.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/parallel/local_comm.h"
#include "runtime/parallel/sp_merge.h"
#include "tests/unit/runtime/parallel/sp_reference.h"

namespace tessera::parallel {
namespace {

TEST(LocalComm, PointToPointOrderAndIndependentChannels) {
  auto group = LocalCommGroup::Create({.size = 2, .timeout = absl::Seconds(30)});
  ASSERT_TRUE(group.ok());
  absl::Status s = (*group)->RunOnAllRanks([](Communicator& comm) -> absl::Status {
    if (comm.rank() == 0) {
      int a = 1, b = 2, c = 3;
      TS_ASSIGN_OR_RETURN(CommRequest r1, comm.Isend(&a, sizeof a, 1, Channel::kQuery));
      TS_ASSIGN_OR_RETURN(CommRequest r2, comm.Isend(&b, sizeof b, 1, Channel::kQuery));
      TS_ASSIGN_OR_RETURN(CommRequest r3, comm.Isend(&c, sizeof c, 1, Channel::kOutput));
      TS_RETURN_IF_ERROR(r1.Wait());
      TS_RETURN_IF_ERROR(r2.Wait());
      return r3.Wait();
    }
    int x = 0, y = 0, z = 0;
    // The output-channel message is received first although it was sent last.
    TS_ASSIGN_OR_RETURN(CommRequest rz, comm.Irecv(&z, sizeof z, 0, Channel::kOutput));
    TS_RETURN_IF_ERROR(rz.Wait());
    TS_ASSIGN_OR_RETURN(CommRequest rx, comm.Irecv(&x, sizeof x, 0, Channel::kQuery));
    TS_ASSIGN_OR_RETURN(CommRequest ry, comm.Irecv(&y, sizeof y, 0, Channel::kQuery));
    TS_RETURN_IF_ERROR(rx.Wait());
    TS_RETURN_IF_ERROR(ry.Wait());
    if (x != 1 || y != 2 || z != 3) return absl::InternalError(absl::StrFormat("got %d %d %d", x, y, z));
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
}

TEST(LocalComm, CollectivesAreExact) {
  for (int n : {1, 2, 3, 5}) {
    auto group = LocalCommGroup::Create({.size = n, .timeout = absl::Seconds(30)});
    ASSERT_TRUE(group.ok());
    absl::Status s = (*group)->RunOnAllRanks([n](Communicator& comm) -> absl::Status {
      const int r = comm.rank();
      // Small integers: the f32 sum is exact.
      float x[3] = {float(r), float(2 * r + 1), -1.0f};
      TS_RETURN_IF_ERROR(comm.AllreduceSum(x, 3));
      const float s0 = n * (n - 1) / 2.0f;
      if (x[0] != s0 || x[1] != 2 * s0 + n || x[2] != -n) return absl::InternalError("allreduce");
      int64_t b = r == n - 1 ? 42 : 0;
      TS_RETURN_IF_ERROR(comm.Broadcast(&b, sizeof b, n - 1));
      if (b != 42) return absl::InternalError("broadcast");
      std::vector<int> all(n, -1);
      const int mine = 10 * r;
      TS_RETURN_IF_ERROR(comm.Allgather(&mine, sizeof mine, all.data()));
      for (int i = 0; i < n; ++i) {
        if (all[i] != 10 * i) return absl::InternalError("allgather");
      }
      return comm.Barrier();
    });
    EXPECT_TRUE(s.ok()) << "n=" << n << ": " << s;
  }
}

TEST(LocalComm, ErrorsNameTheCall) {
  auto group = LocalCommGroup::Create({.size = 2, .timeout = absl::Seconds(30)});
  ASSERT_TRUE(group.ok());
  Communicator* c0 = (*group)->comm(0);
  int x = 0;
  auto bad = c0->Isend(&x, sizeof x, 5, Channel::kQuery);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("Isend(peer=5"), std::string::npos) << bad.status();
  // Size mismatch between a send and its receive.
  auto send = c0->Isend(&x, sizeof x, 1, Channel::kKv);
  ASSERT_TRUE(send.ok());
  int64_t y = 0;
  auto recv = (*group)->comm(1)->Irecv(&y, sizeof y, 0, Channel::kKv);
  ASSERT_FALSE(recv.ok());
  EXPECT_NE(recv.status().message().find("Irecv(peer=0, channel=kv, bytes=8)"), std::string::npos) << recv.status();
  EXPECT_FALSE(LocalCommGroup::Create({.size = 0}).ok());
}

TEST(LocalComm, FailingRankBringsTheGroupDown) {
  auto group = LocalCommGroup::Create({.size = 4});  // no timeout: only the abort can unblock
  ASSERT_TRUE(group.ok());
  absl::Status s = (*group)->RunOnAllRanks([](Communicator& comm) -> absl::Status {
    if (comm.rank() == 2) return absl::InvalidArgumentError("rank 2 failed");
    int x;
    // Waits for a message rank 2 never sends.
    TS_ASSIGN_OR_RETURN(CommRequest r, comm.Irecv(&x, sizeof x, 2, Channel::kQuery));
    return r.Wait();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("rank 2"), std::string::npos);
}

TEST(LocalComm, EarlyReturnWithPendingReceivesDoesNotHang) {
  auto group = LocalCommGroup::Create({.size = 3});  // no timeout
  ASSERT_TRUE(group.ok());
  absl::Status s = (*group)->RunOnAllRanks([](Communicator& comm) -> absl::Status {
    int x = 0, y = 0;
    // Every rank posts receives nobody answers; rank 1 then fails while they are pending.
    TS_ASSIGN_OR_RETURN(CommRequest a, comm.Irecv(&x, sizeof x, (comm.rank() + 1) % 3, Channel::kQuery));
    TS_ASSIGN_OR_RETURN(CommRequest b, comm.Irecv(&y, sizeof y, (comm.rank() + 2) % 3, Channel::kOutput));
    if (comm.rank() == 1) return absl::InternalError("rank 1 gives up");
    TS_RETURN_IF_ERROR(a.Wait());
    return b.Wait();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
}

TEST(LocalComm, TimeoutAborts) {
  auto group = LocalCommGroup::Create({.size = 2, .timeout = absl::Milliseconds(50)});
  ASSERT_TRUE(group.ok());
  int x;
  auto r = (*group)->comm(0)->Irecv(&x, sizeof x, 1, Channel::kQuery);
  ASSERT_TRUE(r.ok());
  absl::Status s = r->Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
}

// ---- Merge numerics ---------------------------------------------------------------------------

// f64 log-sum-exp merge with the max trick, as the reference.
void RefMerge(double o, double l, double ob, double lb, double* o_out, double* l_out) {
  const double m = std::max(l, lb);
  if (m == -INFINITY) {
    *o_out = 0;
    *l_out = -INFINITY;
    return;
  }
  const double a = std::exp(l - m), b = std::exp(lb - m);
  *l_out = m + std::log(a + b);
  *o_out = (a * o + b * ob) / (a + b);
}

TEST(SpMerge, ExtremeLseValues) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<double, double>> cases = {
      {0, 0},       {100, 80},    {80, 100},       {-1e30, 1e30}, {1e30, -1e30}, {1e30, 1e30},  {-1e30, -1e30},
      {88.8, 88.7}, {-200, -210}, {1e-30, -1e-30}, {-inf, 5.0},   {5.0, -inf},   {3.0e38, 0.0}, {-3.0e38, -3.0e38}};
  for (const auto& [l, lb] : cases) {
    float o[2] = {0.25f, -1.0f};
    float ls = static_cast<float>(l);
    const float ob[2] = {0.75f, 2.0f};
    const float lbs = static_cast<float>(lb);
    MergePartial(o, &ls, ob, &lbs, 1, 1, 2);
    // The reference sees the f32-rounded inputs; an accumulator at −inf holds o = 0.
    const double l32 = static_cast<float>(l), lb32 = static_cast<float>(lb);
    for (int d = 0; d < 2; ++d) {
      double ro, rl;
      RefMerge(l == -inf ? 0.0 : (d == 0 ? 0.25 : -1.0), l32, d == 0 ? 0.75 : 2.0, lb32, &ro, &rl);
      if (l == -inf) ro = d == 0 ? 0.75 : 2.0;
      ASSERT_TRUE(std::isfinite(o[d])) << "l=" << l << " lb=" << lb;
      EXPECT_NEAR(o[d], ro, 1e-6) << "l=" << l << " lb=" << lb << " d=" << d;
      if (std::isfinite(rl)) {
        EXPECT_NEAR(ls, rl, 1e-6 * std::max(1.0, std::fabs(rl))) << "l=" << l << " lb=" << lb;
      }
    }
  }
  // Both empty: stays empty (no NaN).
  float o = 0, l = -INFINITY;
  const float ob = 0, lb = -INFINITY;
  MergePartial(&o, &l, &ob, &lb, 1, 1, 1);
  EXPECT_EQ(l, -INFINITY);
  EXPECT_EQ(o, 0.0f);
}

TEST(SpMerge, OrderIndependentAndEqualsSinglePass) {
  // Attention over 3 key blocks merged in two orders equals the f64 single pass.
  const int64_t H = 2, D = 8, nk = 30;
  const auto q = testing::RandomTensor(H * D, 11, -3, 3);
  const auto k = testing::RandomTensor(nk * H * D, 12, -3, 3);
  const auto v = testing::RandomTensor(nk * H * D, 13);
  std::vector<int64_t> qpos = {100}, kpos(nk);
  for (int j = 0; j < nk; ++j) kpos[j] = j;
  std::vector<double> ref_o, ref_l;
  testing::ReferenceAttention(q.data(), 1, qpos, k.data(), v.data(), nk, kpos, H, H, D, 1.0, false, &ref_o, &ref_l);
  std::vector<std::vector<double>> po(3), pl(3);
  for (int b = 0; b < 3; ++b) {
    std::vector<int64_t> kp(10);
    for (int j = 0; j < 10; ++j) kp[j] = j;
    testing::ReferenceAttention(q.data(), 1, qpos, k.data() + b * 10 * H * D, v.data() + b * 10 * H * D, 10, kp, H, H,
                                D, 1.0, false, &po[b], &pl[b]);
  }
  for (const std::vector<int>& order : {std::vector<int>{0, 1, 2}, std::vector<int>{2, 0, 1}}) {
    std::vector<float> o(H * D, 0.0f), l(H, -INFINITY);
    for (int b : order) {
      std::vector<float> fo(po[b].begin(), po[b].end()), fl(pl[b].begin(), pl[b].end());
      MergePartial(o.data(), l.data(), fo.data(), fl.data(), 1, H, D);
    }
    for (int i = 0; i < H * D; ++i) EXPECT_NEAR(o[i], ref_o[i], 1e-6);
    for (int h = 0; h < H; ++h) EXPECT_NEAR(l[h], ref_l[h], 1e-5);
  }
}

}  // namespace
}  // namespace tessera::parallel
