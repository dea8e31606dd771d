// Every op of every Backend against a double-precision brute force written here, over shapes with
// odd sizes, GQA groups, paged KV with ragged lengths and every weight dtype.
//
// Backends: the CPU backend at each ISA (the scalar one is the reference the others must agree
// with, and is itself held to the brute force), and CUDA where this build has it and a GPU exists.
// A backend that is absent is SKIPPED with the reason; with TESSERA_REQUIRE_GPU=1 (scripts/gpu-check)
// an absent CUDA backend FAILS instead, so a GPU run cannot pass by skipping.
//
// Every output buffer is followed by sentinel floats that must survive the op (writes past the end).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/backend_registry.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/dtype.h"
#include "tests/unit/kernels/cpu/kernels_test_util.h"

namespace tessera::kernels {
namespace {

using testing::RandomFloats;

constexpr size_t kGuard = 32;
constexpr uint32_t kSentinelBits = testing::Guarded::kSentinelBits;  // a NaN no kernel produces

float Sentinel() {
  float f;
  std::memcpy(&f, &kSentinelBits, 4);
  return f;
}

bool IsSentinel(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits == kSentinelBits;
}

// How closely a backend must match the brute force. The CPU computes in f32; the CUDA backend
// multiplies bf16 copies of weights and activations (f32 accumulation), so its matmuls carry
// bf16 rounding: |error| <= 2·2^−8 · Σ|x·w| at worst.
struct Tolerance {
  double linear_rel;     // × Σ_k |x_k·w_k|
  double elementwise;    // relative + absolute, f32 elementwise ops
  double attention_abs;  // out and lse
  double embedding_rel;  // × |value|
};

struct Target {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<Backend>>()> make;
  Tolerance tol;
};

Tolerance F32Tol() { return {.linear_rel = 2e-5, .elementwise = 2e-6, .attention_abs = 2e-5, .embedding_rel = 0}; }

std::vector<Target> Targets() {
  auto cpu = [](Isa isa) {
    return [isa]() -> absl::StatusOr<std::unique_ptr<Backend>> {
      if (!IsaSupported(isa)) {
        return absl::UnavailableError(std::string(IsaName(isa)) + " is not supported by this CPU");
      }
      auto b = CpuBackend::Create({.num_threads = 2, .isa = isa});
      if (!b.ok()) return b.status();
      return std::unique_ptr<Backend>(std::move(*b));
    };
  };
  return {
      {"cpu_scalar", cpu(Isa::kScalar), F32Tol()},
      {"cpu_avx2", cpu(Isa::kAvx2), F32Tol()},
      {"cpu_avx512", cpu(Isa::kAvx512), F32Tol()},
      {"cuda",
       []() -> absl::StatusOr<std::unique_ptr<Backend>> {
         if (!CudaBackendBuilt()) return absl::UnavailableError("this build has no CUDA backend (TESSERA_CUDA=OFF)");
         auto b = CreateBackend({.device = Device::Cuda(0), .num_threads = 2});
         if (!b.ok()) return absl::UnavailableError(std::string(b.status().message()));
         return b;
       },
       {.linear_rel = 1.6e-2, .elementwise = 2e-6, .attention_abs = 1e-4, .embedding_rel = 1.0 / 256}},
  };
}

void PrintTo(const Target& t, std::ostream* os) { *os << t.name; }

class BackendConsistencyTest : public ::testing::TestWithParam<Target> {
 protected:
  void SetUp() override {
    auto b = GetParam().make();
    if (!b.ok()) {
      const bool require_gpu = std::getenv("TESSERA_REQUIRE_GPU") != nullptr &&
                               std::string(std::getenv("TESSERA_REQUIRE_GPU")) == "1" && GetParam().name == "cuda";
      if (require_gpu) FAIL() << "TESSERA_REQUIRE_GPU=1 and the cuda backend is absent: " << b.status();
      GTEST_SKIP() << GetParam().name << ": " << b.status().message();
    }
    backend_ = std::move(*b);
    auto ctx = backend_->CreateContext();
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    ctx_ = std::move(*ctx);
  }

  const Tolerance& tol() const { return GetParam().tol; }

  // Device copy of host data, with kGuard sentinel elements after it.
  template <class T>
  DeviceBuffer Upload(const std::vector<T>& host) {
    std::vector<T> padded(host);
    if constexpr (std::is_same_v<T, float>) padded.resize(host.size() + kGuard, Sentinel());
    auto buf = backend_->Allocate(padded.size() * sizeof(T));
    EXPECT_TRUE(buf.ok()) << buf.status();
    backend_->CopyToDevice(*ctx_, buf->data(), padded.data(), padded.size() * sizeof(T));
    return std::move(*buf);
  }
  // An output of n floats (NaN, so unwritten elements fail) followed by sentinels.
  DeviceBuffer Output(size_t n) {
    std::vector<float> init(n, std::nanf(""));
    return Upload(init);
  }
  // The n floats of buf; fails the test if the guard after them was overwritten.
  std::vector<float> Download(const DeviceBuffer& buf, size_t n) {
    std::vector<float> host(n + kGuard);
    absl::Status s = backend_->CopyToHost(*ctx_, host.data(), buf.data(), host.size() * sizeof(float));
    EXPECT_TRUE(s.ok()) << s;
    for (size_t i = n; i < host.size(); ++i) {
      if (!IsSentinel(host[i])) {
        ADD_FAILURE() << "write past the end of the output, at guard float " << i - n;
        break;
      }
    }
    host.resize(n);
    return host;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ExecContext> ctx_;
};

// Checks |got − want| <= tol elementwise; prints the first mismatches; both norms must be > 0.
void ExpectClose(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& tol,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  double gn = 0, wn = 0;
  std::string msg;
  for (size_t i = 0; i < want.size(); ++i) {
    gn += std::isfinite(got[i]) ? double(got[i]) * got[i] : 0;
    wn += std::isfinite(want[i]) ? want[i] * want[i] : 0;
    const bool ok = (std::isinf(want[i]) && got[i] == want[i]) || std::fabs(got[i] - want[i]) <= tol[i];
    if (!ok && bad++ < 5) {
      msg += "\n  [" + std::to_string(i) + "] found " + std::to_string(got[i]) + " expected " +
             std::to_string(want[i]) + " tol " + std::to_string(tol[i]);
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << want.size() << " mismatches" << msg;
  EXPECT_GT(gn, 0) << what << ": output norm is zero";
  EXPECT_GT(wn, 0) << what << ": reference norm is zero";
}

// Byte offsets of the f16 scales in one block of `t` (the rest of a block is any bits).
std::vector<int> HalfOffsets(DType t) {
  switch (t) {
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ5_0:
      return {0};
    case DType::kQ4_1:
    case DType::kQ5_1:
    case DType::kQ4_K:
    case DType::kQ5_K:
      return {0, 2};
    case DType::kQ6_K:
      return {208};
    default:
      return {};
  }
}

// rows × cols weights of `t` as raw bytes: random floats, or random blocks with f16 scales in
// [−2^−4, 2^−4].
std::vector<uint8_t> RandomWeights(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(rows * DTypeRowBytes(t, cols));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  if (t == DType::kF32) {
    for (size_t i = 0; i < out.size(); i += 4) {
      const float f = dist(rng);
      std::memcpy(&out[i], &f, 4);
    }
    return out;
  }
  if (t == DType::kBF16 || t == DType::kF16) {
    for (size_t i = 0; i < out.size(); i += 2) {
      const uint16_t h = t == DType::kBF16 ? F32ToBf16(dist(rng)) : F32ToF16(dist(rng));
      std::memcpy(&out[i], &h, 2);
    }
    return out;
  }
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(-0.0625f, 0.0625f);
  for (size_t off = 0; off < out.size(); off += DTypeBlockBytes(t)) {
    for (int h : HalfOffsets(t)) {
      const uint16_t v = F32ToF16(scale(rng));
      out[off + h] = static_cast<uint8_t>(v);
      out[off + h + 1] = static_cast<uint8_t>(v >> 8);
    }
  }
  return out;
}

std::vector<double> Dequantized(DType t, const std::vector<uint8_t>& w, int64_t rows, int64_t cols) {
  std::vector<float> row(cols);
  std::vector<double> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(t, w.data() + r * DTypeRowBytes(t, cols), cols, row.data());
    std::copy(row.begin(), row.end(), out.begin() + r * cols);
  }
  return out;
}

TEST_P(BackendConsistencyTest, LinearEveryDTypeAgainstDequantizedBruteForce) {
  for (DType dt : kAllDTypes) {
    const int64_t K = DTypeIsQuantized(dt) ? 512 : 97;  // odd where the dtype allows
    for (const int64_t M : {1, 5, 37}) {
      for (Activations act : {Activations::kF32, Activations::kInt8}) {
        if (act == Activations::kInt8 && !DTypeIsQuantized(dt)) continue;
        // Three matrices of different heights on one x (as q/k/v), the second with a bias.
        const std::vector<int64_t> heights = {67, 13, 40};
        std::vector<std::vector<uint8_t>> raw;
        std::vector<std::unique_ptr<PreparedWeight>> prepared;
        const std::vector<float> bias = RandomFloats(heights[1], -1, 1, 7);
        for (size_t i = 0; i < heights.size(); ++i) {
          ASSERT_TRUE(backend_->Supports({.op = OpKind::kLinear, .dtype = dt, .rows = heights[i], .cols = K}));
          raw.push_back(RandomWeights(dt, heights[i], K, 100 + i));
          auto p = backend_->PrepareWeight({.data = raw.back().data(), .dtype = dt, .rows = heights[i], .cols = K},
                                           {.activations = act, .bias = i == 1 ? bias.data() : nullptr});
          ASSERT_TRUE(p.ok()) << p.status();
          prepared.push_back(std::move(*p));
        }
        const std::vector<float> x = RandomFloats(M * K, -1, 1, 3);
        DeviceBuffer xd = Upload(x);
        std::vector<DeviceBuffer> ys;
        std::vector<float*> outs;
        std::vector<const PreparedWeight*> ws;
        for (size_t i = 0; i < heights.size(); ++i) {
          ys.push_back(Output(M * heights[i]));
          outs.push_back(ys.back().as<float>());
          ws.push_back(prepared[i].get());
        }
        backend_->Linear(*ctx_, {.x = xd.as<float>(), .m = M, .weights = ws, .outputs = outs});
        for (size_t i = 0; i < heights.size(); ++i) {
          const int64_t N = heights[i];
          const std::vector<double> w = Dequantized(dt, raw[i], N, K);
          std::vector<double> want(M * N), tolv(M * N);
          for (int64_t m = 0; m < M; ++m) {
            for (int64_t n = 0; n < N; ++n) {
              double sum = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                sum += double(x[m * K + k]) * w[n * K + k];
                mag += std::fabs(double(x[m * K + k]) * w[n * K + k]);
              }
              want[m * N + n] = sum + (i == 1 ? bias[n] : 0.0);
              // int8 activations: each x is off by up to ~0.56·d, d = max|x_block|/127 (ops.h).
              const double rel = act == Activations::kInt8 ? std::max(tol().linear_rel, 1.0 / 100) : tol().linear_rel;
              tolv[m * N + n] = rel * mag + 1e-6;
            }
          }
          ExpectClose(Download(ys[i], M * N), want, tolv,
                      std::string(DTypeName(dt)) + " M=" + std::to_string(M) + " matrix " + std::to_string(i) +
                          " act=" + std::string(ActivationsName(act)));
        }
      }
    }
  }
}

TEST_P(BackendConsistencyTest, EmbeddingEveryDType) {
  for (DType dt : kAllDTypes) {
    const int64_t vocab = 50, dim = 256;
    ASSERT_TRUE(backend_->Supports({.op = OpKind::kEmbedding, .dtype = dt, .rows = vocab, .cols = dim}));
    const std::vector<uint8_t> raw = RandomWeights(dt, vocab, dim, 9);
    auto table = backend_->PrepareWeight({.data = raw.data(), .dtype = dt, .rows = vocab, .cols = dim},
                                         {.linear = false, .gather = true});
    ASSERT_TRUE(table.ok()) << table.status();
    const std::vector<int32_t> ids = {49, 0, 7, 7, 23};
    DeviceBuffer idd = Upload(ids);
    DeviceBuffer out = Output(ids.size() * dim);
    backend_->Embedding(
        *ctx_, {.table = table->get(), .ids = idd.as<int32_t>(), .n = int64_t(ids.size()), .out = out.as<float>()});
    const std::vector<double> w = Dequantized(dt, raw, vocab, dim);
    std::vector<double> want, tolv;
    for (int32_t id : ids) {
      for (int64_t d = 0; d < dim; ++d) {
        want.push_back(w[id * dim + d]);
        tolv.push_back(tol().embedding_rel * std::fabs(w[id * dim + d]));
      }
    }
    ExpectClose(Download(out, ids.size() * dim), want, tolv, std::string(DTypeName(dt)));
  }
}

TEST_P(BackendConsistencyTest, RmsNormOddWidthAndInPlace) {
  const int64_t rows = 5, dim = 97;
  const float eps = 1e-5f;
  const std::vector<float> x = RandomFloats(rows * dim, -3, 3, 1), g = RandomFloats(dim, 0.5, 1.5, 2);
  std::vector<double> want(rows * dim), tolv(rows * dim);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t d = 0; d < dim; ++d) ss += double(x[r * dim + d]) * x[r * dim + d];
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int64_t d = 0; d < dim; ++d) {
      want[r * dim + d] = x[r * dim + d] * inv * g[d];
      tolv[r * dim + d] = tol().elementwise * (1 + std::fabs(want[r * dim + d]));
    }
  }
  DeviceBuffer xd = Upload(x), gd = Upload(g), y = Output(rows * dim);
  backend_->RmsNorm(
      *ctx_, {.x = xd.as<float>(), .weight = gd.as<float>(), .rows = rows, .dim = dim, .eps = eps, .y = y.as<float>()});
  ExpectClose(Download(y, rows * dim), want, tolv, "out of place");
  backend_->RmsNorm(
      *ctx_,
      {.x = xd.as<float>(), .weight = gd.as<float>(), .rows = rows, .dim = dim, .eps = eps, .y = xd.as<float>()});
  ExpectClose(Download(xd, rows * dim), want, tolv, "in place");
}

TEST_P(BackendConsistencyTest, RopeBothStylesWithPartialRotation) {
  const int64_t tokens = 7, heads = 6, hd = 64, rot = 32;
  std::vector<int32_t> pos = {0, 1, 2, 17, 511, 2047, 4000};
  std::vector<float> inv_freq(rot / 2);
  for (int64_t i = 0; i < rot / 2; ++i) inv_freq[i] = float(std::pow(10000.0, -2.0 * i / rot));
  for (RopeStyle style : {RopeStyle::kNeox, RopeStyle::kInterleaved}) {
    const std::vector<float> x = RandomFloats(tokens * heads * hd, -1, 1, 5);
    std::vector<double> want(x.begin(), x.end()), tolv(x.size(), 2e-5);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t i = 0; i < rot / 2; ++i) {
        const float theta = float(pos[t]) * inv_freq[i];  // the f32 angle, as documented
        const double c = std::cos(double(theta)), s = std::sin(double(theta));
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t base = (t * heads + h) * hd;
          const int64_t a = style == RopeStyle::kNeox ? base + i : base + 2 * i;
          const int64_t b = style == RopeStyle::kNeox ? base + i + rot / 2 : base + 2 * i + 1;
          want[a] = x[a] * c - x[b] * s;
          want[b] = x[b] * c + x[a] * s;
        }
      }
    }
    DeviceBuffer xd = Upload(x), pd = Upload(pos), fd = Upload(inv_freq);
    backend_->Rope(*ctx_, {.x = xd.as<float>(),
                           .tokens = tokens,
                           .heads = heads,
                           .head_dim = hd,
                           .rot_dim = rot,
                           .positions = pd.as<int32_t>(),
                           .inv_freq = fd.as<float>(),
                           .style = style});
    ExpectClose(Download(xd, x.size()), want, tolv, style == RopeStyle::kNeox ? "neox" : "interleaved");
  }
}

TEST_P(BackendConsistencyTest, SiluMulAddAndSigmoidGate) {
  const int64_t n = 1001;
  const std::vector<float> g = RandomFloats(n, -8, 8, 1), u = RandomFloats(n, -2, 2, 2);
  std::vector<double> want(n), tolv(n);
  for (int64_t i = 0; i < n; ++i) {
    want[i] = g[i] / (1 + std::exp(-double(g[i]))) * u[i];
    tolv[i] = tol().elementwise * 4 * (1 + std::fabs(want[i]));
  }
  DeviceBuffer gd = Upload(g), ud = Upload(u), out = Output(n);
  backend_->SiluMul(*ctx_, {.gate = gd.as<float>(), .up = ud.as<float>(), .n = n, .out = out.as<float>()});
  ExpectClose(Download(out, n), want, tolv, "silu_mul");

  backend_->Add(*ctx_, {.x = gd.as<float>(), .y = ud.as<float>(), .n = n});
  std::vector<double> sum(n), exact(n, 0.0);
  for (int64_t i = 0; i < n; ++i) sum[i] = double(g[i] + u[i]);  // f32 addition, exactly as rounded
  ExpectClose(Download(gd, n), sum, exact, "add");

  const int64_t tokens = 3, dim = 333;
  const std::vector<float> x = RandomFloats(tokens * dim, -1, 1, 3), gate = {-2.0f, 0.0f, 3.5f},
                           base = RandomFloats(tokens * dim, -1, 1, 4);
  DeviceBuffer xd = Upload(x), gt = Upload(gate), od = Upload(base);
  backend_->SigmoidGateAdd(
      *ctx_, {.x = xd.as<float>(), .gate = gt.as<float>(), .tokens = tokens, .dim = dim, .out = od.as<float>()});
  std::vector<double> gated(tokens * dim), tolg(tokens * dim);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t d = 0; d < dim; ++d) {
      gated[t * dim + d] = base[t * dim + d] + x[t * dim + d] / (1 + std::exp(-double(gate[t])));
      tolg[t * dim + d] = 4 * tol().elementwise;
    }
  }
  ExpectClose(Download(od, tokens * dim), gated, tolg, "sigmoid_gate_add");
}

TEST_P(BackendConsistencyTest, KvWriteGatherAndScatterRows) {
  const int64_t slots_total = 40, kv_dim = 24, n = 5;
  const std::vector<float> k = RandomFloats(n * kv_dim, -1, 1, 1), v = RandomFloats(n * kv_dim, -1, 1, 2);
  const std::vector<int32_t> slots = {39, 0, 17, 16, 5};
  DeviceBuffer kc = Output(slots_total * kv_dim), vc = Output(slots_total * kv_dim);
  DeviceBuffer kd = Upload(k), vd = Upload(v), sd = Upload(slots);
  backend_->KvWrite(*ctx_, {.k_cache = kc.as<float>(),
                            .v_cache = vc.as<float>(),
                            .k = kd.as<float>(),
                            .v = vd.as<float>(),
                            .slots = sd.as<int32_t>(),
                            .n = n,
                            .kv_dim = kv_dim});
  const std::vector<float> kh = Download(kc, slots_total * kv_dim), vh = Download(vc, slots_total * kv_dim);
  for (int64_t s = 0; s < slots_total; ++s) {
    const auto it = std::find(slots.begin(), slots.end(), s);
    for (int64_t d = 0; d < kv_dim; ++d) {
      if (it == slots.end()) {
        ASSERT_TRUE(std::isnan(kh[s * kv_dim + d]) && std::isnan(vh[s * kv_dim + d])) << "slot " << s << " written";
      } else {
        const int64_t i = it - slots.begin();
        ASSERT_EQ(kh[s * kv_dim + d], k[i * kv_dim + d]);
        ASSERT_EQ(vh[s * kv_dim + d], v[i * kv_dim + d]);
      }
    }
  }

  const int64_t dim = 77;
  const std::vector<float> src = RandomFloats(6 * dim, -1, 1, 3);
  const std::vector<int32_t> rows = {5, 2, 2, 0};
  DeviceBuffer srcd = Upload(src), rd = Upload(rows), gathered = Output(rows.size() * dim);
  backend_->GatherRows(*ctx_, {.src = srcd.as<float>(),
                               .rows = rd.as<int32_t>(),
                               .n = int64_t(rows.size()),
                               .dim = dim,
                               .dst = gathered.as<float>()});
  std::vector<double> want, zero(rows.size() * dim, 0.0);
  for (int32_t r : rows) want.insert(want.end(), src.begin() + r * dim, src.begin() + (r + 1) * dim);
  ExpectClose(Download(gathered, rows.size() * dim), want, zero, "gather_rows");

  // Rows repeat: row 2 gets two contributions, added in order of i.
  const std::vector<float> add = RandomFloats(rows.size() * dim, -1, 1, 4), scales = {0.5f, -1.0f, 0.25f, 2.0f};
  DeviceBuffer addd = Upload(add), scd = Upload(scales);
  backend_->ScatterAddRows(*ctx_, {.src = addd.as<float>(),
                                   .rows = rd.as<int32_t>(),
                                   .scales = scd.as<float>(),
                                   .n = int64_t(rows.size()),
                                   .dim = dim,
                                   .dst = srcd.as<float>()});
  std::vector<float> expect(src);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t d = 0; d < dim; ++d) expect[rows[i] * dim + d] += scales[i] * add[i * dim + d];
  }
  std::vector<double> expect_d(expect.begin(), expect.end()), tols(expect.size(), 4 * tol().elementwise);
  ExpectClose(Download(srcd, src.size()), expect_d, tols, "scatter_add_rows");
}

TEST_P(BackendConsistencyTest, MoeRouteSoftmaxTopKRenormalize) {
  const int64_t tokens = 9, experts = 12, k = 3;
  for (bool renorm : {true, false}) {
    const std::vector<float> logits = RandomFloats(tokens * experts, -4, 4, renorm ? 1 : 2);
    DeviceBuffer ld = Upload(logits), wd = Output(tokens * k);
    auto ids = backend_->Allocate(tokens * k * sizeof(int32_t));
    ASSERT_TRUE(ids.ok());
    backend_->MoeRoute(*ctx_, {.logits = ld.as<float>(),
                               .tokens = tokens,
                               .experts = experts,
                               .k = k,
                               .renormalize = renorm,
                               .ids = ids->as<int32_t>(),
                               .weights = wd.as<float>()});
    std::vector<int32_t> got_ids(tokens * k);
    ASSERT_TRUE(backend_->CopyToHost(*ctx_, got_ids.data(), ids->data(), got_ids.size() * 4).ok());
    std::vector<double> want(tokens * k), tolv(tokens * k, 4 * tol().elementwise);
    for (int64_t t = 0; t < tokens; ++t) {
      std::vector<double> p(experts);
      double mx = -1e30, z = 0;
      for (int64_t e = 0; e < experts; ++e) mx = std::max(mx, double(logits[t * experts + e]));
      for (int64_t e = 0; e < experts; ++e) z += p[e] = std::exp(logits[t * experts + e] - mx);
      std::vector<int32_t> order(experts);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
      double top = 0;
      for (int64_t j = 0; j < k; ++j) top += p[order[j]] / z;
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_EQ(got_ids[t * k + j], order[j]) << "token " << t << " rank " << j;
        want[t * k + j] = p[order[j]] / z / (renorm ? top : 1.0);
      }
    }
    ExpectClose(Download(wd, tokens * k), want, tolv, renorm ? "renormalized" : "raw");
  }
}

// Brute-force attention of one sequence in double, keys read through the block table.
void BruteAttention(const AttentionParams& p, const std::vector<float>& q, const std::vector<float>& kc,
                    const std::vector<float>& vc, const std::vector<int32_t>* table, std::vector<double>& out,
                    std::vector<double>& lse) {
  const int64_t group = p.n_heads / p.n_kv_heads;
  out.assign(p.num_q * p.n_heads * p.head_dim, 0.0);
  lse.assign(p.num_q * p.n_heads, -INFINITY);
  auto key_at = [&](int64_t j) {
    return table ? ((*table)[j / p.block_size] * p.block_size + j % p.block_size) * p.n_kv_heads * p.head_dim
                 : j * p.n_kv_heads * p.head_dim;
  };
  for (int64_t i = 0; i < p.num_q; ++i) {
    for (int64_t h = 0; h < p.n_heads; ++h) {
      const int64_t kvh = h / group;
      std::vector<double> s;
      std::vector<int64_t> js;
      for (int64_t j = 0; j < p.num_kv; ++j) {
        if (p.causal && p.k_pos0 + j > p.q_pos0 + i) continue;
        double dot = 0;
        for (int64_t d = 0; d < p.head_dim; ++d) {
          dot += double(q[(i * p.n_heads + h) * p.head_dim + d]) * kc[key_at(j) + kvh * p.head_dim + d];
        }
        s.push_back(dot * p.scale);
        js.push_back(j);
      }
      if (s.empty()) continue;
      const double mx = *std::max_element(s.begin(), s.end());
      double z = 0;
      for (double x : s) z += std::exp(x - mx);
      lse[i * p.n_heads + h] = mx + std::log(z);
      for (size_t a = 0; a < s.size(); ++a) {
        const double w = std::exp(s[a] - mx) / z;
        for (int64_t d = 0; d < p.head_dim; ++d) {
          out[(i * p.n_heads + h) * p.head_dim + d] += w * vc[key_at(js[a]) + kvh * p.head_dim + d];
        }
      }
    }
  }
}

TEST_P(BackendConsistencyTest, AttentionPagedRaggedGqaAndContiguous) {
  const int64_t nh = 6, nkv = 2, hd = 64, bs = 16, num_blocks = 12;
  ASSERT_TRUE(backend_->Supports({.op = OpKind::kAttention, .head_dim = hd}));
  const std::vector<float> kc = RandomFloats(num_blocks * bs * nkv * hd, -1, 1, 1);
  const std::vector<float> vc = RandomFloats(num_blocks * bs * nkv * hd, -1, 1, 2);
  DeviceBuffer kd = Upload(kc), vd = Upload(vc);
  // (start_pos, new tokens, blocks): a prefill, a decode step, a later prefill chunk; shuffled tables.
  struct Seq {
    int64_t start, num_q;
    std::vector<int32_t> table;
  };
  const std::vector<Seq> seqs = {{0, 17, {3, 9}}, {30, 1, {11, 0}}, {5, 9, {7}}};
  std::vector<DeviceBuffer> qs, outs, lses, tables;
  std::vector<std::vector<float>> qh;
  std::vector<AttentionParams> params;
  for (size_t s = 0; s < seqs.size(); ++s) {
    qh.push_back(RandomFloats(seqs[s].num_q * nh * hd, -1, 1, 10 + s));
    qs.push_back(Upload(qh.back()));
    outs.push_back(Output(seqs[s].num_q * nh * hd));
    lses.push_back(Output(seqs[s].num_q * nh));
    tables.push_back(Upload(seqs[s].table));
    params.push_back({.q = qs.back().as<float>(),
                      .num_q = seqs[s].num_q,
                      .n_heads = nh,
                      .n_kv_heads = nkv,
                      .head_dim = hd,
                      .k = kd.as<float>(),
                      .v = vd.as<float>(),
                      .num_kv = seqs[s].start + seqs[s].num_q,
                      .block_table = tables.back().as<int32_t>(),
                      .block_size = bs,
                      .q_pos0 = seqs[s].start,
                      .k_pos0 = 0,
                      .causal = true,
                      .scale = 0.125f,
                      .out = outs.back().as<float>(),
                      .lse = lses.back().as<float>()});
  }
  backend_->Attention(*ctx_, {.sequences = params});
  for (size_t s = 0; s < seqs.size(); ++s) {
    std::vector<double> out, lse;
    BruteAttention(params[s], qh[s], kc, vc, &seqs[s].table, out, lse);
    ExpectClose(Download(outs[s], out.size()), out, std::vector<double>(out.size(), tol().attention_abs),
                "paged out, sequence " + std::to_string(s));
    ExpectClose(Download(lses[s], lse.size()), lse, std::vector<double>(lse.size(), tol().attention_abs),
                "paged lse, sequence " + std::to_string(s));
  }

  // Contiguous keys starting at position 8, causal: the first query rows see no key (out 0, lse −inf).
  const int64_t num_q = 4, num_kv = 10;
  const std::vector<float> q = RandomFloats(num_q * nh * hd, -1, 1, 20);
  const std::vector<float> kk = RandomFloats(num_kv * nkv * hd, -1, 1, 21),
                           vv = RandomFloats(num_kv * nkv * hd, -1, 1, 22);
  DeviceBuffer qd = Upload(q), kkd = Upload(kk), vvd = Upload(vv), od = Output(num_q * nh * hd),
               ld = Output(num_q * nh);
  const AttentionParams p{.q = qd.as<float>(),
                          .num_q = num_q,
                          .n_heads = nh,
                          .n_kv_heads = nkv,
                          .head_dim = hd,
                          .k = kkd.as<float>(),
                          .v = vvd.as<float>(),
                          .num_kv = num_kv,
                          .q_pos0 = 6,
                          .k_pos0 = 8,
                          .causal = true,
                          .scale = 0.125f,
                          .out = od.as<float>(),
                          .lse = ld.as<float>()};
  backend_->Attention(*ctx_, {.sequences = {&p, 1}});
  std::vector<double> out, lse;
  BruteAttention(p, q, kk, vv, nullptr, out, lse);
  ExpectClose(Download(od, out.size()), out, std::vector<double>(out.size(), tol().attention_abs), "contiguous out");
  ExpectClose(Download(ld, lse.size()), lse, std::vector<double>(lse.size(), tol().attention_abs), "contiguous lse");
}

TEST_P(BackendConsistencyTest, RejectsWhatItCannotRun) {
  EXPECT_FALSE(backend_->Supports({.op = OpKind::kLinear, .dtype = DType::kQ4_K, .rows = 8, .cols = 100}))
      << "K-quant rows are whole blocks of 256";
  const std::vector<uint8_t> raw(64);
  auto bad = backend_->PrepareWeight({.data = raw.data(), .dtype = DType::kQ4_0, .rows = 1, .cols = 33}, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  auto huge = backend_->Allocate(size_t{1} << 60);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendConsistencyTest, ::testing::ValuesIn(Targets()),
                         [](const ::testing::TestParamInfo<Target>& info) { return info.param.name; });

}  // namespace
}  // namespace tessera::kernels
