// CudaBackend against double-precision brute force. Without a GPU only the creation errors run; every
// other case skips with "no CUDA device". The cross-backend consistency test covers every op; this
// one checks the backend's own plumbing: creation, memory, the cuBLASLt layout, a reduction kernel
// and attention's masking and merging.
#include "kernels/cuda/cuda_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/device_count.h"
#include "kernels/dtype.h"

namespace tessera::kernels {
namespace {

using ::testing::HasSubstr;

TEST(CreateCudaBackendTest, NoDeviceIsFailedPrecondition) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "a CUDA device is present";
  const absl::StatusOr<std::unique_ptr<Backend>> backend = CreateCudaBackend(0, 1);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(backend.status().message(), HasSubstr("no CUDA device"));
}

TEST(CreateCudaBackendTest, IndexOutOfRangeIsFailedPrecondition) {
  const int count = CudaDeviceCount();
  if (count == 0) GTEST_SKIP() << "no CUDA device";
  for (const int index : {count, -1}) {
    const absl::StatusOr<std::unique_ptr<Backend>> backend = CreateCudaBackend(index, 1);
    ASSERT_FALSE(backend.ok()) << index;
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(backend.status().message(), HasSubstr("requested but only"));
  }
}

// Fills guard floats after each output to catch writes past its end.
constexpr float kSentinel = 3.25e38f;
constexpr int64_t kGuard = 64;

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
    absl::StatusOr<std::unique_ptr<Backend>> backend = CreateCudaBackend(0, 2);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
    absl::StatusOr<std::unique_ptr<ExecContext>> ctx = backend_->CreateContext();
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    ctx_ = *std::move(ctx);
  }

  template <class T>
  DeviceBuffer Upload(const std::vector<T>& host) {
    absl::StatusOr<DeviceBuffer> buf = backend_->Allocate(std::max<size_t>(host.size() * sizeof(T), 1));
    EXPECT_TRUE(buf.ok()) << buf.status();
    if (!buf.ok()) return {};
    backend_->CopyToDevice(*ctx_, buf->data(), host.data(), host.size() * sizeof(T));
    return *std::move(buf);
  }

  // An output of n floats followed by kGuard sentinels.
  DeviceBuffer Output(int64_t n) { return Upload(std::vector<float>(n + kGuard, kSentinel)); }

  template <class T>
  std::vector<T> Download(const void* device, int64_t n) {
    std::vector<T> host(n);
    const absl::Status s = backend_->CopyToHost(*ctx_, host.data(), device, n * sizeof(T));
    EXPECT_TRUE(s.ok()) << s;
    return host;
  }

  // The n values of an Output, after checking its guard.
  std::vector<float> Result(const DeviceBuffer& out, int64_t n) {
    std::vector<float> all = Download<float>(out.data(), n + kGuard);
    for (int64_t i = n; i < n + kGuard; ++i) EXPECT_EQ(all[i], kSentinel) << "write past the end at " << i - n;
    all.resize(n);
    return all;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ExecContext> ctx_;  // destroyed before backend_
};

TEST_F(CudaBackendTest, Identity) {
  EXPECT_EQ(backend_->name(), "cuda");
  EXPECT_EQ(backend_->device(), Device::Cuda(0));
  EXPECT_THAT(backend_->Describe(), HasSubstr("SMs"));
  EXPECT_NE(backend_->host_pool(), nullptr);
  EXPECT_TRUE(backend_->Supports({.op = OpKind::kLinear, .dtype = DType::kQ4_K, .rows = 8, .cols = 512}));
  EXPECT_FALSE(backend_->Supports({.op = OpKind::kLinear, .dtype = DType::kQ4_K, .rows = 8, .cols = 100}));
  EXPECT_TRUE(backend_->Supports({.op = OpKind::kAttention, .head_dim = 256}));
  EXPECT_FALSE(backend_->Supports({.op = OpKind::kAttention, .head_dim = 512}));
  EXPECT_FALSE(backend_->Supports({.op = OpKind::kRope, .head_dim = 63}));
}

TEST_F(CudaBackendTest, AllocateCopyRoundTrip) {
  const int64_t before = backend_->allocated_bytes();
  std::vector<uint8_t> host(4099);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(i * 31 + 7);
  {
    DeviceBuffer buf = Upload(host);
    EXPECT_EQ(backend_->allocated_bytes(), before + static_cast<int64_t>(host.size()));
    EXPECT_EQ(Download<uint8_t>(buf.data(), host.size()), host);
    backend_->Memset(*ctx_, buf.as<uint8_t>() + 100, 0xab, 50);
    const std::vector<uint8_t> back = Download<uint8_t>(buf.data(), host.size());
    for (size_t i = 0; i < host.size(); ++i) {
      ASSERT_EQ(back[i], i >= 100 && i < 150 ? 0xab : host[i]) << i;
    }
  }
  EXPECT_EQ(backend_->allocated_bytes(), before);
  EXPECT_TRUE(backend_->Synchronize(*ctx_).ok());
}

TEST_F(CudaBackendTest, OutOfMemoryIsResourceExhaustedAndHarmless) {
  const int64_t before = backend_->allocated_bytes();
  const absl::StatusOr<DeviceBuffer> huge = backend_->Allocate(size_t{1} << 52);  // 4 PiB
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
  EXPECT_EQ(backend_->allocated_bytes(), before);
  const std::vector<float> host = {1.0f, 2.0f};
  DeviceBuffer small = Upload(host);
  EXPECT_EQ(Download<float>(small.data(), 2), host);
}

// Integer-valued inputs, exact in bf16, whose products and sums are exact in f32: the result must
// equal the brute force exactly. Two weights in one call (f32 with a bias, Q8_0 with scale 1), one
// output at an odd float offset (4-byte alignment) to exercise the alignment of the cuBLASLt plan.
TEST_F(CudaBackendTest, LinearIsExactOnIntegers) {
  const int64_t m = 3;
  const int64_t k = 64;
  const int64_t n0 = 5;
  const int64_t n1 = 4;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> val(-4, 4);
  std::vector<float> x(m * k);
  for (float& v : x) v = static_cast<float>(val(rng));
  std::vector<float> w0(n0 * k);
  for (float& v : w0) v = static_cast<float>(val(rng));
  std::vector<float> bias0(n0);
  for (float& v : bias0) v = static_cast<float>(val(rng) * 10);
  // Q8_0: per block of 32, f16 d = 1.0 (0x3c00) then 32 int8 q; x = d·q = q.
  std::vector<int8_t> q1(n1 * k);
  for (int8_t& q : q1) q = static_cast<int8_t>(val(rng) * 3);
  std::vector<uint8_t> w1(n1 * DTypeRowBytes(DType::kQ8_0, k));
  for (int64_t b = 0; b < n1 * k / 32; ++b) {
    uint8_t* block = w1.data() + b * 34;
    block[0] = 0x00;
    block[1] = 0x3c;
    std::memcpy(block + 2, q1.data() + b * 32, 32);
  }

  absl::StatusOr<std::unique_ptr<PreparedWeight>> pw0 =
      backend_->PrepareWeight({.data = w0.data(), .dtype = DType::kF32, .rows = n0, .cols = k}, {.bias = bias0.data()});
  ASSERT_TRUE(pw0.ok()) << pw0.status();
  absl::StatusOr<std::unique_ptr<PreparedWeight>> pw1 =
      backend_->PrepareWeight({.data = w1.data(), .dtype = DType::kQ8_0, .rows = n1, .cols = k}, {});
  ASSERT_TRUE(pw1.ok()) << pw1.status();
  EXPECT_EQ((*pw0)->resident_bytes(), n0 * k * 2 + n0 * 4);
  EXPECT_EQ((*pw1)->resident_bytes(), n1 * k * 2);

  DeviceBuffer dx = Upload(x);
  DeviceBuffer y0 = Output(m * n0);
  DeviceBuffer y1 = Output(1 + m * n1);
  const PreparedWeight* weights[] = {pw0->get(), pw1->get()};
  float* outputs[] = {y0.as<float>(), y1.as<float>() + 1};
  backend_->Linear(*ctx_, {.x = dx.as<float>(), .m = m, .weights = weights, .outputs = outputs});
  const std::vector<float> got0 = Result(y0, m * n0);
  const std::vector<float> got1 = Result(y1, 1 + m * n1);

  double norm = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n0; ++j) {
      double ref = bias0[j];
      for (int64_t c = 0; c < k; ++c) ref += static_cast<double>(x[i * k + c]) * w0[j * k + c];
      norm += ref * ref;
      EXPECT_EQ(got0[i * n0 + j], ref) << "y0[" << i << ", " << j << "]";
    }
    for (int64_t j = 0; j < n1; ++j) {
      double ref = 0.0;
      for (int64_t c = 0; c < k; ++c) ref += static_cast<double>(x[i * k + c]) * q1[j * k + c];
      norm += ref * ref;
      EXPECT_EQ(got1[1 + i * n1 + j], ref) << "y1[" << i << ", " << j << "]";
    }
  }
  EXPECT_GT(norm, 0.0);
  EXPECT_EQ(got1[0], kSentinel);  // the float before the offset output
}

TEST_F(CudaBackendTest, RmsNormMatchesDoubles) {
  const int64_t rows = 3;
  const int64_t dim = 300;  // not a multiple of the block width
  const float eps = 1e-5f;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(rows * dim);
  for (float& v : x) v = normal(rng);
  std::vector<float> weight(dim);
  for (float& v : weight) v = normal(rng);
  DeviceBuffer dx = Upload(x);
  DeviceBuffer dw = Upload(weight);
  DeviceBuffer dy = Output(rows * dim);
  backend_->RmsNorm(
      *ctx_,
      {.x = dx.as<float>(), .weight = dw.as<float>(), .rows = rows, .dim = dim, .eps = eps, .y = dy.as<float>()});
  // In place as well (x and y alias).
  backend_->RmsNorm(
      *ctx_,
      {.x = dx.as<float>(), .weight = dw.as<float>(), .rows = rows, .dim = dim, .eps = eps, .y = dx.as<float>()});
  const std::vector<float> got = Result(dy, rows * dim);
  const std::vector<float> in_place = Download<float>(dx.data(), rows * dim);
  double norm = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int64_t i = 0; i < dim; ++i) {
      const double ref = x[r * dim + i] * inv * weight[i];
      norm += ref * ref;
      const double tol = 1e-6 + 1e-5 * std::fabs(ref);
      EXPECT_NEAR(got[r * dim + i], ref, tol) << "row " << r << " i " << i;
      EXPECT_EQ(in_place[r * dim + i], got[r * dim + i]) << "row " << r << " i " << i;
    }
  }
  EXPECT_GT(norm, 0.0);
}

// One sequence's attention in doubles: out [num_q, n_heads, head_dim], lse [num_q, n_heads].
struct AttentionRef {
  std::vector<double> out;
  std::vector<double> lse;
};

AttentionRef BruteForceAttention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                                 const std::vector<int32_t>& block_table, const AttentionParams& p) {
  const int64_t hd = p.head_dim;
  AttentionRef ref{std::vector<double>(p.num_q * p.n_heads * hd, 0.0),
                   std::vector<double>(p.num_q * p.n_heads, -INFINITY)};
  for (int64_t qi = 0; qi < p.num_q; ++qi) {
    for (int64_t h = 0; h < p.n_heads; ++h) {
      const int64_t kvh = h / (p.n_heads / p.n_kv_heads);
      const int64_t row = qi * p.n_heads + h;
      std::vector<double> s;
      std::vector<int64_t> offs;
      for (int64_t j = 0; j < p.num_kv; ++j) {
        if (p.causal && p.k_pos0 + j > p.q_pos0 + qi) continue;
        const int64_t slot =
            block_table.empty() ? j : int64_t{block_table[j / p.block_size]} * p.block_size + j % p.block_size;
        const int64_t off = (slot * p.n_kv_heads + kvh) * hd;
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[row * hd + d]) * k[off + d];
        s.push_back(p.scale * dot);
        offs.push_back(off);
      }
      if (s.empty()) continue;
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0.0;
      for (const double x : s) sum += std::exp(x - mx);
      for (size_t j = 0; j < s.size(); ++j) {
        const double w = std::exp(s[j] - mx) / sum;
        for (int64_t d = 0; d < hd; ++d) ref.out[row * hd + d] += w * v[offs[j] + d];
      }
      ref.lse[row] = mx + std::log(sum);
    }
  }
  return ref;
}

// Three sequences in one batch: contiguous causal prefill (GQA, later rows see more keys), paged
// non-causal with a shuffled block table and a partial last block (no lse), and causal rows that see
// no key at all (out = 0, lse = −inf).
TEST_F(CudaBackendTest, AttentionMatchesDoubles) {
  const int64_t n_heads = 4;
  const int64_t n_kv_heads = 2;
  const int64_t hd = 72;
  struct Case {
    int64_t num_q, num_kv, q_pos0, k_pos0;
    bool causal, paged, lse;
  };
  const Case cases[] = {
      {.num_q = 6, .num_kv = 150, .q_pos0 = 144, .k_pos0 = 0, .causal = true, .paged = false, .lse = true},
      {.num_q = 2, .num_kv = 37, .q_pos0 = 37, .k_pos0 = 0, .causal = false, .paged = true, .lse = false},
      {.num_q = 5, .num_kv = 4, .q_pos0 = 0, .k_pos0 = 3, .causal = true, .paged = false, .lse = true}};
  const int64_t block_size = 16;
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](int64_t n) {
    std::vector<float> r(n);
    for (float& x : r) x = normal(rng);
    return r;
  };

  struct Seq {
    std::vector<float> q, k, v;
    std::vector<int32_t> table;
    DeviceBuffer dq, dk, dv, dtable, dout, dlse;
    AttentionParams p;
  };
  std::vector<Seq> seqs(std::size(cases));
  std::vector<AttentionParams> params;
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    Seq& s = seqs[i];
    int64_t kv_rows = c.num_kv;
    if (c.paged) {
      const int64_t blocks = (c.num_kv + block_size - 1) / block_size;
      const int64_t pool_blocks = blocks + 3;
      for (int64_t b = 0; b < blocks; ++b) s.table.push_back(static_cast<int32_t>((b * 2 + 1) % pool_blocks));
      kv_rows = pool_blocks * block_size;
    }
    s.q = random(c.num_q * n_heads * hd);
    s.k = random(kv_rows * n_kv_heads * hd);
    s.v = random(kv_rows * n_kv_heads * hd);
    s.dq = Upload(s.q);
    s.dk = Upload(s.k);
    s.dv = Upload(s.v);
    if (c.paged) s.dtable = Upload(s.table);
    s.dout = Output(c.num_q * n_heads * hd);
    if (c.lse) s.dlse = Output(c.num_q * n_heads);
    s.p = {.q = s.dq.as<float>(),
           .num_q = c.num_q,
           .n_heads = n_heads,
           .n_kv_heads = n_kv_heads,
           .head_dim = hd,
           .k = s.dk.as<float>(),
           .v = s.dv.as<float>(),
           .num_kv = c.num_kv,
           .block_table = c.paged ? s.dtable.as<int32_t>() : nullptr,
           .block_size = c.paged ? block_size : 0,
           .q_pos0 = c.q_pos0,
           .k_pos0 = c.k_pos0,
           .causal = c.causal,
           .scale = 1.0f / std::sqrt(static_cast<float>(hd)),
           .out = s.dout.as<float>(),
           .lse = c.lse ? s.dlse.as<float>() : nullptr};
    params.push_back(s.p);
  }
  backend_->Attention(*ctx_, {.sequences = params});

  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    const Seq& s = seqs[i];
    const AttentionRef ref = BruteForceAttention(s.q, s.k, s.v, s.table, s.p);
    const std::vector<float> out = Result(s.dout, c.num_q * n_heads * hd);
    double norm = 0.0;
    for (size_t j = 0; j < out.size(); ++j) {
      norm += ref.out[j] * ref.out[j];
      EXPECT_NEAR(out[j], ref.out[j], 2e-5 + 1e-4 * std::fabs(ref.out[j])) << "case " << i << " out[" << j << "]";
    }
    EXPECT_GT(norm, 0.0) << "case " << i;
    if (!c.lse) continue;
    const std::vector<float> lse = Result(s.dlse, c.num_q * n_heads);
    for (size_t j = 0; j < lse.size(); ++j) {
      if (std::isinf(ref.lse[j])) {
        EXPECT_EQ(lse[j], -INFINITY) << "case " << i << " lse[" << j << "]";
      } else {
        EXPECT_NEAR(lse[j], ref.lse[j], 2e-5 + 1e-5 * std::fabs(ref.lse[j])) << "case " << i << " lse[" << j << "]";
      }
    }
  }
  // The third case's first three queries (positions 0..2) precede every key (positions 3..6).
  const std::vector<float> blind = Download<float>(seqs[2].dout.data(), 3 * n_heads * hd);
  for (const float x : blind) EXPECT_EQ(x, 0.0f);
  EXPECT_TRUE(backend_->Synchronize(*ctx_).ok());
}

}  // namespace
}  // namespace tessera::kernels
