#include "kernels/cpu/cpu_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/packed_linear.h"

namespace tessera::kernels {
namespace {

// The CPU's execution context: ops run at once on the backend's pool, with this context's scratch.
class CpuContext final : public ExecContext {
 public:
  explicit CpuContext(ThreadPool* pool) : pool_(pool) {}
  ThreadPool* pool() const { return pool_; }
  CpuWorkspace* workspace() { return &workspace_; }

 private:
  ThreadPool* pool_;
  CpuWorkspace workspace_;
};

ThreadPool* PoolOf(ExecContext& ctx) { return static_cast<CpuContext&>(ctx).pool(); }
CpuWorkspace* WorkspaceOf(ExecContext& ctx) { return static_cast<CpuContext&>(ctx).workspace(); }

class CpuWeight final : public PreparedWeight {
 public:
  CpuWeight(const WeightView& view, const WeightUse& use) : PreparedWeight(view, use) {}
  int64_t resident_bytes() const override {
    return (packed ? static_cast<int64_t>(packed->data.size()) : 0) + static_cast<int64_t>(bias.size() * sizeof(float));
  }
  // With int8 activations a packed weight's original is not read again (f32 prompt rows still go to
  // the GEMM on it), unless rows are gathered from it.
  bool reads_original() const override {
    return packed == nullptr || use().activations != Activations::kInt8 || use().gather;
  }
  std::unique_ptr<PackedLinear> packed;  // set: Linear reads this instead of the original
  std::vector<float> bias;               // [rows] or empty
};

const CpuWeight& AsCpu(const PreparedWeight* w) { return *static_cast<const CpuWeight*>(w); }

void AddBias(const CpuWeight& w, int64_t m, float* y) {
  if (w.bias.empty()) return;
  const int64_t n = w.rows();
  for (int64_t t = 0; t < m; ++t) {
    float* row = y + t * n;
    for (int64_t j = 0; j < n; ++j) row[j] += w.bias[j];
  }
}

// Row `id` of a [rows, dim] table in any weight dtype, as f32.
void GatherRow(const WeightView& table, int64_t id, float* out) {
  const int64_t dim = table.cols;
  switch (table.dtype) {
    case DType::kF32:
      std::memcpy(out, static_cast<const float*>(table.data) + id * dim, dim * sizeof(float));
      break;
    case DType::kBF16: {
      const uint16_t* row = static_cast<const uint16_t*>(table.data) + id * dim;
      for (int64_t i = 0; i < dim; ++i) out[i] = Bf16ToF32(row[i]);
      break;
    }
    case DType::kF16: {
      const uint16_t* row = static_cast<const uint16_t*>(table.data) + id * dim;
      for (int64_t i = 0; i < dim; ++i) out[i] = F16ToF32(row[i]);
      break;
    }
    default:  // block-quantized rows
      DequantizeRow(table.dtype, static_cast<const uint8_t*>(table.data) + id * DTypeRowBytes(table.dtype, dim), dim,
                    out);
      break;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const Options& options) {
  const Isa isa = options.isa.value_or(ActiveIsa());
  if (!IsaSupported(isa)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cpu backend: ISA ", std::string(IsaName(isa)), " is not supported by this CPU"));
  }
  return std::unique_ptr<CpuBackend>(new CpuBackend(options, &OpsFor(isa)));
}

CpuBackend::CpuBackend(const Options& options, const OpTable* ops)
    : options_(options),
      ops_(ops),
      name_(absl::StrCat("cpu-", std::string(IsaName(ops->isa)))),
      pool_(std::make_unique<ThreadPool>(options.num_threads)) {}

CpuBackend::~CpuBackend() = default;

std::string CpuBackend::Describe() const {
  const bool packs = options_.pack_weights && ops_->isa == Isa::kAvx512 && PackedLinearAvailable();
  return absl::StrCat("cpu: ", std::string(IsaName(ops_->isa)), " kernels, ", pool_->num_threads(), " threads",
                      packs ? ", Q4_1/Q8_0 weights packed for AVX-512 VNNI" : "");
}

bool CpuBackend::Supports(const OpDesc& op) const {
  switch (op.op) {
    case OpKind::kLinear:
    case OpKind::kEmbedding:
      return op.rows >= 0 && LinearSupports(op.dtype, op.cols);
    case OpKind::kAttention:
    case OpKind::kRope:
      return op.head_dim > 0 && op.head_dim % 2 == 0;
    default:
      return true;
  }
}

absl::StatusOr<std::unique_ptr<ExecContext>> CpuBackend::CreateContext() {
  return std::unique_ptr<ExecContext>(new CpuContext(pool_.get()));
}

absl::StatusOr<DeviceBuffer> CpuBackend::Allocate(size_t bytes) {
  constexpr size_t kAlign = 64;
  // More than the machine's memory can never succeed: refuse it here rather than ask the allocator
  // (which may overcommit, or under a sanitizer abort).
  static const size_t physical =
      static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (bytes > physical) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cpu backend: ", bytes, " bytes requested, more than the machine's ", physical, " bytes of memory"));
  }
  const size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cpu backend: cannot allocate ", bytes, " bytes of host memory"));
  }
  allocated_.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  return DeviceBuffer(this, p, bytes);
}

void CpuBackend::Free(void* data, size_t bytes) {
  std::free(data);
  allocated_.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
}

void CpuBackend::CopyToDevice(ExecContext&, void* dst, const void* src, size_t bytes) {
  if (dst != src && bytes > 0) std::memcpy(dst, src, bytes);
}

absl::Status CpuBackend::CopyToHost(ExecContext&, void* dst, const void* src, size_t bytes) {
  if (dst != src && bytes > 0) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

void CpuBackend::Memset(ExecContext&, void* dst, int value, size_t bytes) { std::memset(dst, value, bytes); }

absl::StatusOr<std::unique_ptr<PreparedWeight>> CpuBackend::PrepareWeight(const WeightView& w, const WeightUse& use) {
  if (w.data == nullptr || w.rows < 0 || !LinearSupports(w.dtype, w.cols)) {
    return absl::InvalidArgumentError(absl::StrCat("cpu backend: cannot take a [", w.rows, ", ", w.cols, "] ",
                                                   std::string(DTypeName(w.dtype)), " weight"));
  }
  auto p = std::make_unique<CpuWeight>(w, use);
  if (use.bias != nullptr) p->bias.assign(use.bias, use.bias + w.rows);
  if (use.linear && options_.pack_weights && ops_->isa == Isa::kAvx512) {
    p->packed = PackForLinear(w.data, w.dtype, w.rows, w.cols);
  }
  return std::unique_ptr<PreparedWeight>(std::move(p));
}

void CpuBackend::Linear(ExecContext& ctx, const LinearParams& p) {
  ThreadPool* pool = PoolOf(ctx);
  CpuWorkspace* scratch = WorkspaceOf(ctx);
  const auto& ws = p.weights;
  // Packed alike (same dtype and cols) and multiplied alike: one kernel call, x quantized once.
  bool together = !ws.empty();
  for (const PreparedWeight* w : ws) {
    const CpuWeight& cw = AsCpu(w);
    together = together && cw.packed != nullptr && PackedAlike(*cw.packed, *AsCpu(ws[0]).packed) &&
               w->use().activations == ws[0]->use().activations;
  }
  if (together) {
    absl::InlinedVector<const PackedLinear*, 4> packed;
    for (const PreparedWeight* w : ws) packed.push_back(AsCpu(w).packed.get());
    LinearPackedMany(pool, p.x, p.m, packed, p.outputs, ws[0]->use().activations, scratch);
  } else {
    for (size_t i = 0; i < ws.size(); ++i) {
      const CpuWeight& w = AsCpu(ws[i]);
      if (w.packed != nullptr) {
        LinearPacked(pool, p.x, p.m, *w.packed, p.outputs[i], w.use().activations, scratch);
      } else {
        ops_->linear(pool, p.x, p.m, w.cols(), w.original().data, w.dtype(), w.rows(), p.outputs[i],
                     w.use().activations, scratch);
      }
    }
  }
  for (size_t i = 0; i < ws.size(); ++i) AddBias(AsCpu(ws[i]), p.m, p.outputs[i]);
}

void CpuBackend::Embedding(ExecContext&, const EmbeddingParams& p) {
  const WeightView& table = p.table->original();
  for (int64_t i = 0; i < p.n; ++i) GatherRow(table, p.ids[i], p.out + i * table.cols);
}

void CpuBackend::RmsNorm(ExecContext&, const RmsNormParams& p) {
  ops_->rms_norm(p.x, p.weight, p.rows, p.dim, p.eps, p.y);
}

void CpuBackend::Rope(ExecContext&, const RopeParams& p) {
  auto* fn = p.style == RopeStyle::kNeox ? ops_->rope_neox : ops_->rope_interleaved;
  fn(p.x, p.tokens, p.heads, p.head_dim, p.rot_dim, p.positions, p.inv_freq);
}

void CpuBackend::SiluMul(ExecContext&, const SiluMulParams& p) { ops_->silu_mul(p.gate, p.up, p.n, p.out); }

void CpuBackend::Add(ExecContext&, const AddParams& p) { ops_->add(p.x, p.y, p.n); }

void CpuBackend::KvWrite(ExecContext&, const KvWriteParams& p) {
  const size_t row_bytes = sizeof(float) * p.kv_dim;
  for (int64_t i = 0; i < p.n; ++i) {
    const int64_t slot = p.slots[i];
    std::memcpy(p.k_cache + slot * p.kv_dim, p.k + i * p.kv_dim, row_bytes);
    std::memcpy(p.v_cache + slot * p.kv_dim, p.v + i * p.kv_dim, row_bytes);
  }
}

void CpuBackend::Attention(ExecContext& ctx, const AttentionBatchParams& p) {
  ThreadPool* pool = PoolOf(ctx);
  const auto& seqs = p.sequences;
  const auto count = static_cast<int64_t>(seqs.size());
  int64_t rows = 0;
  for (const AttentionParams& s : seqs) rows += s.num_q;
  // Many short sequences (decode): one sequence per task. Few long ones: split inside each.
  if (pool != nullptr && count >= pool->num_threads() && rows <= 4 * count) {
    pool->ParallelFor(count, [&](int64_t b, int64_t e) {
      for (int64_t s = b; s < e; ++s) ops_->attention_with_lse(nullptr, seqs[s]);
    });
  } else {
    for (const AttentionParams& s : seqs) ops_->attention_with_lse(pool, s);
  }
}

void CpuBackend::MoeRoute(ExecContext&, const MoeRouteParams& p) {
  ops_->softmax(p.logits, p.tokens, p.experts);
  for (int64_t t = 0; t < p.tokens; ++t) {
    int32_t* ids = p.ids + t * p.k;
    float* w = p.weights + t * p.k;
    ops_->top_k(p.logits + t * p.experts, p.experts, p.k, ids, w);
    if (!p.renormalize) continue;
    float sum = 0;
    for (int64_t j = 0; j < p.k; ++j) sum += w[j];
    for (int64_t j = 0; j < p.k; ++j) w[j] /= sum;
  }
}

void CpuBackend::GatherRows(ExecContext&, const GatherRowsParams& p) {
  for (int64_t i = 0; i < p.n; ++i) std::memcpy(p.dst + i * p.dim, p.src + p.rows[i] * p.dim, sizeof(float) * p.dim);
}

void CpuBackend::ScatterAddRows(ExecContext&, const ScatterAddRowsParams& p) {
  for (int64_t i = 0; i < p.n; ++i) {
    float* dst = p.dst + p.rows[i] * p.dim;
    const float* src = p.src + i * p.dim;
    const float g = p.scales[i];
    for (int64_t h = 0; h < p.dim; ++h) dst[h] += g * src[h];
  }
}

void CpuBackend::SigmoidGateAdd(ExecContext&, const SigmoidGateAddParams& p) {
  for (int64_t t = 0; t < p.tokens; ++t) {
    const float g = 1.0f / (1.0f + std::exp(-p.gate[t]));
    for (int64_t h = 0; h < p.dim; ++h) p.out[t * p.dim + h] += g * p.x[t * p.dim + h];
  }
}

}  // namespace tessera::kernels
