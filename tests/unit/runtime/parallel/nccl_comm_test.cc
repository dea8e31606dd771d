// NcclComm on device buffers. Skips without a CUDA device (with TESSERA_REQUIRE_GPU=1, as
// scripts/gpu-check sets it, that is a failure). Runs as one process (an MPI singleton) or under
// mpirun with one GPU per rank (scripts/gpu-check does, where the machine has several GPUs). Every
// value differs per rank and per element, so a transfer that drops, repeats or misplaces data fails
// even with one rank, where an allreduce must leave 1 Mi distinct values exactly as they were.
#include "runtime/parallel/nccl_comm.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/parallel/mpi_comm.h"

namespace tessera::parallel {
namespace {

class NcclCommTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NcclComm::DeviceCount() == 0) {
      const char* require = std::getenv("TESSERA_REQUIRE_GPU");
      if (require != nullptr && std::string(require) == "1") FAIL() << "TESSERA_REQUIRE_GPU=1 and no CUDA device";
      GTEST_SKIP() << "no CUDA device";
    }
    static std::unique_ptr<MpiEnvironment> env;
    static std::unique_ptr<Communicator> mpi;
    if (env == nullptr) {
      auto e = MpiEnvironment::Init(nullptr, nullptr);
      ASSERT_TRUE(e.ok()) << e.status();
      env = std::move(*e);
      auto m = MpiComm::CreateWorld();
      ASSERT_TRUE(m.ok()) << m.status();
      mpi = std::move(*m);
    }
    auto n = NcclComm::Create({.bootstrap = mpi.get()});
    ASSERT_TRUE(n.ok()) << n.status();
    nccl_ = std::move(*n);
  }
  std::unique_ptr<Communicator> nccl_;
};

// Element i of rank r holds (r + 1)·(i mod 1021) + i/1021, all integers below 2^24 (exact in f32);
// the sum over N ranks is N(N+1)/2·(i mod 1021) + N·(i/1021).
TEST_F(NcclCommTest, AllreduceOfDistinctValuesIsExact) {
  const int N = nccl_->size(), r = nccl_->rank();
  const size_t n = size_t{1} << 20;
  std::vector<float> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = float((r + 1) * (i % 1021) + i / 1021);
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(d, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_TRUE(nccl_->AllreduceSum(d, n).ok());
  std::vector<float> got(n);
  ASSERT_EQ(cudaMemcpy(got.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(d);
  int bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const double want = double(N) * (N + 1) / 2 * double(i % 1021) + double(N) * double(i / 1021);
    if (got[i] != want && bad++ < 5) ADD_FAILURE() << "[" << i << "] found " << got[i] << " expected " << want;
  }
  EXPECT_EQ(bad, 0) << "of " << n << " elements, rank " << r << " of " << N;
}

TEST_F(NcclCommTest, AllreduceAndRingExchangeOnTwoChannels) {
  const int N = nccl_->size(), r = nccl_->rank();
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 4 * sizeof(float)), cudaSuccess);
  const std::vector<float> h = {1.0f, 2.0f, float(r), -3.0f};
  ASSERT_EQ(cudaMemcpy(d, h.data(), sizeof(float) * 4, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_TRUE(nccl_->AllreduceSum(d, 4).ok());
  std::vector<float> got(4);
  ASSERT_EQ(cudaMemcpy(got.data(), d, sizeof(float) * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(got[0], float(N));
  EXPECT_EQ(got[2], float(N * (N - 1) / 2));
  // Query one way round the ring, output the other, concurrently.
  float *q_send, *q_recv, *o_send, *o_recv;
  ASSERT_EQ(cudaMalloc(&q_send, 64), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&q_recv, 64), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&o_send, 64), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&o_recv, 64), cudaSuccess);
  std::vector<float> mine(16, float(r));
  cudaMemcpy(q_send, mine.data(), 64, cudaMemcpyHostToDevice);
  cudaMemcpy(o_send, mine.data(), 64, cudaMemcpyHostToDevice);
  const int prev = (r - 1 + N) % N, next = (r + 1) % N;
  auto a = nccl_->Isend(q_send, 64, prev, Channel::kQuery);
  auto b = nccl_->Irecv(q_recv, 64, next, Channel::kQuery);
  auto c = nccl_->Isend(o_send, 64, next, Channel::kOutput);
  auto e = nccl_->Irecv(o_recv, 64, prev, Channel::kOutput);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && e.ok());
  ASSERT_TRUE(a->Wait().ok() && b->Wait().ok() && c->Wait().ok() && e->Wait().ok());
  std::vector<float> gq(16), go(16);
  cudaMemcpy(gq.data(), q_recv, 64, cudaMemcpyDeviceToHost);
  cudaMemcpy(go.data(), o_recv, 64, cudaMemcpyDeviceToHost);
  EXPECT_EQ(gq[5], float(next));
  EXPECT_EQ(go[5], float(prev));
  for (float* p : {d, q_send, q_recv, o_send, o_recv}) cudaFree(p);
}

}  // namespace
}  // namespace tessera::parallel
