// Sequence-parallel attention over real MPI processes (run under mpirun -np 2 / -np 4; see
// CMakeLists.txt), against a brute-force f64 reference that every rank computes itself.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/parallel/mpi_comm.h"
#include "runtime/parallel/sp_attention.h"
#include "tests/unit/runtime/parallel/sp_reference.h"

namespace tessera::parallel {
namespace {

Communicator* g_comm = nullptr;

struct MpiCase {
  int64_t tokens, heads, kv_heads, head_dim;
  bool causal;
  SpAlgorithm algorithm;
};

class MpiSpTest : public ::testing::TestWithParam<MpiCase> {};

TEST_P(MpiSpTest, MatchesF64Reference) {
  const MpiCase c = GetParam();
  Communicator& comm = *g_comm;
  const int r = comm.rank();
  const int64_t H = c.heads, Hkv = c.kv_heads, D = c.head_dim, S = c.tokens;
  const auto q = testing::RandomTensor(S * H * D, 21);
  const auto k = testing::RandomTensor(S * Hkv * D, 22);
  const auto v = testing::RandomTensor(S * Hkv * D, 23);
  auto layout = SpLayout::Make({.total_tokens = S, .world = comm.size(), .causal = c.causal});
  ASSERT_TRUE(layout.ok());
  const int64_t L = layout->local_tokens;
  std::vector<float> lq(L * H * D), lk(L * Hkv * D), lv(L * Hkv * D), lo(L * H * D);
  layout->ScatterRows(q.data(), H * D, r, lq.data());
  layout->ScatterRows(k.data(), Hkv * D, r, lk.data());
  layout->ScatterRows(v.data(), Hkv * D, r, lv.data());
  const auto pos = layout->Positions(r);
  auto sp = SequenceParallelAttention::Create(&comm, {.n_heads = H, .n_kv_heads = Hkv, .head_dim = D});
  ASSERT_TRUE(sp.ok());
  absl::Status s = (*sp)->Prefill(
      *layout, {.q = lq.data(), .k = lk.data(), .v = lv.data(), .positions = pos.data(), .out = lo.data()},
      c.algorithm);
  ASSERT_TRUE(s.ok()) << s;

  std::vector<int64_t> all(S);
  std::iota(all.begin(), all.end(), 0);
  std::vector<double> ref_out, ref_lse;
  testing::ReferenceAttention(q.data(), S, all, k.data(), v.data(), S, all, H, Hkv, D, 1.0 / std::sqrt(double(D)),
                              c.causal, &ref_out, &ref_lse);
  double max_err = 0, norm = 0;
  for (int64_t i = 0; i < L; ++i) {
    const int64_t p = layout->Position(r, i);
    if (p >= S) continue;
    for (int64_t e = 0; e < H * D; ++e) {
      max_err = std::max(max_err, std::fabs(double{lo[i * H * D + e]} - ref_out[p * H * D + e]));
      norm += double{lo[i * H * D + e]} * lo[i * H * D + e];
    }
  }
  EXPECT_GT(norm, 0);
  EXPECT_LE(max_err, 1e-5) << "rank " << r;
  // Byte totals over the job equal the closed form (causal TokenRing: 1.5·N(N−1) query units).
  float sent[3] = {float((*sp)->last_stats().BytesSent(SpDirection::kQuery)),
                   float((*sp)->last_stats().BytesSent(SpDirection::kOutput)),
                   float((*sp)->last_stats().BytesSent(SpDirection::kKv))};
  ASSERT_TRUE(comm.AllreduceSum(sent, 3).ok());
  const int N = comm.size();
  if (c.causal && S % (2 * N) == 0) {
    const double unit = double(S / (2 * N)) * H * D * 4;
    if (c.algorithm == SpAlgorithm::kTokenRing) {
      EXPECT_EQ(sent[0], float(1.5 * N * (N - 1) * unit));
    } else {
      EXPECT_EQ(sent[2], float(4.0 * (N - 1) * N * unit * Hkv / H));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, MpiSpTest,
                         ::testing::Values(MpiCase{64, 4, 4, 16, true, SpAlgorithm::kTokenRing},
                                           MpiCase{64, 4, 4, 16, true, SpAlgorithm::kRing},
                                           MpiCase{61, 4, 2, 16, true, SpAlgorithm::kTokenRing},
                                           MpiCase{61, 4, 1, 16, true, SpAlgorithm::kRing},
                                           MpiCase{50, 4, 4, 8, false, SpAlgorithm::kTokenRing},
                                           MpiCase{50, 4, 2, 8, false, SpAlgorithm::kRing}),
                         [](const ::testing::TestParamInfo<MpiCase>& info) {
                           const MpiCase& c = info.param;
                           return absl::StrFormat("%s_S%d_Hkv%d_%s", SpAlgorithmName(c.algorithm), c.tokens, c.kv_heads,
                                                  c.causal ? "causal" : "full");
                         });

TEST(MpiSpDecode, ShardedCache) {
  Communicator& comm = *g_comm;
  const int N = comm.size(), r = comm.rank();
  const int64_t H = 4, Hkv = 2, D = 8, T = 40;
  const auto k = testing::RandomTensor(T * Hkv * D, 31);
  const auto v = testing::RandomTensor(T * Hkv * D, 32);
  const auto q = testing::RandomTensor(H * D, 33);
  const int64_t b0 = T * r / N, b1 = T * (r + 1) / N;
  std::vector<SpKvShard> shards = {
      {.k = k.data() + b0 * Hkv * D, .v = v.data() + b0 * Hkv * D, .num_kv = b1 - b0, .k_pos0 = b0}};
  auto sp = SequenceParallelAttention::Create(&comm, {.n_heads = H, .n_kv_heads = Hkv, .head_dim = D});
  ASSERT_TRUE(sp.ok());
  std::vector<float> out(H * D);
  ASSERT_TRUE((*sp)
                  ->Decode({.root = 0,
                            .q = q.data(),
                            .num_q = 1,
                            .q_pos0 = T - 1,
                            .shards = shards,
                            .out = out.data(),
                            .broadcast_output = true})
                  .ok());
  std::vector<int64_t> kpos(T), qpos = {T - 1};
  std::iota(kpos.begin(), kpos.end(), 0);
  std::vector<double> ref, lse;
  testing::ReferenceAttention(q.data(), 1, qpos, k.data(), v.data(), T, kpos, H, Hkv, D, 1.0 / std::sqrt(double(D)),
                              true, &ref, &lse);
  for (int64_t i = 0; i < H * D; ++i) EXPECT_NEAR(out[i], ref[i], 1e-5) << "rank " << r;
}

TEST(MpiComm, ErrorCarriesTheCall) {
  int x = 0;
  auto bad = g_comm->Isend(&x, sizeof x, g_comm->size(), Channel::kQuery);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("MPI_Isend(peer="), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace tessera::parallel

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto env = tessera::parallel::MpiEnvironment::Init(&argc, &argv);
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", env.status().ToString().c_str());
    return 1;
  }
  auto comm = tessera::parallel::MpiComm::CreateWorld();
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", comm.status().ToString().c_str());
    return 1;
  }
  tessera::parallel::g_comm = comm->get();
  // Only rank 0 prints results; every rank's failures still set its exit code.
  if ((*comm)->rank() != 0) {
    delete ::testing::UnitTest::GetInstance()->listeners().Release(
        ::testing::UnitTest::GetInstance()->listeners().default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  // Combine the verdicts so that every rank exits with the same code.
  float failed = rc != 0 ? 1.0f : 0.0f;
  if (!(*comm)->AllreduceSum(&failed, 1).ok()) failed = 1;
  comm->reset();
  env->reset();
  return failed > 0 ? 1 : 0;
}
