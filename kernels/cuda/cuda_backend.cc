#include "kernels/cuda/cuda_backend.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <compare>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_count.h"
#include "kernels/dtype.h"

namespace tessera::kernels {
namespace {

// ---- Errors -------------------------------------------------------------------------------------

// cuBLAS recommends 32 MiB of workspace on Hopper (less suffices elsewhere); a matmul never uses
// more than this, and its heuristic only picks algorithms that fit.
constexpr size_t kLtWorkspaceBytes = size_t{32} << 20;
// cuBLASLt's strictest (and default) pointer alignment preference.
constexpr uint32_t kLtMaxAlignment = 256;
// Matmul plans cached per context before the cache starts over (each is a few small host objects).
constexpr size_t kMaxMatmulPlans = 1024;
// PrepareWeight dequantizes this many elements per host chunk (16 MiB of f32 + 8 MiB of bf16).
constexpr int64_t kPrepareChunkElems = int64_t{1} << 22;
// Oldest device the backend runs on: bf16 tensor-core GEMMs need compute capability 8.0.
constexpr int kMinComputeMajor = 8;

const char* Basename(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash == nullptr ? path : slash + 1;
}

bool Failed(cudaError_t e) { return e != cudaSuccess; }
bool Failed(cublasStatus_t s) { return s != CUBLAS_STATUS_SUCCESS; }

// "call (file:line): error", RESOURCE_EXHAUSTED for out-of-memory and INTERNAL otherwise. Clears the
// runtime's last-error state, so that a later launch check on this thread does not report it again.
absl::Status CallError(cudaError_t e, const char* call, const char* file, int line) {
  cudaGetLastError();
  const std::string msg = absl::StrFormat("%s (%s:%d): %s", call, Basename(file), line, cudaGetErrorString(e));
  return e == cudaErrorMemoryAllocation ? absl::ResourceExhaustedError(msg) : absl::InternalError(msg);
}

absl::Status CallError(cublasStatus_t s, const char* call, const char* file, int line) {
  const std::string msg = absl::StrFormat("%s (%s:%d): %s", call, Basename(file), line, cublasLtGetStatusString(s));
  return s == CUBLAS_STATUS_ALLOC_FAILED ? absl::ResourceExhaustedError(msg) : absl::InternalError(msg);
}

// Returns the failed call's Status from the enclosing function (which returns Status or StatusOr).
#define TS_CUDA_RETURN_IF_ERROR(call)                                                  \
  do {                                                                                 \
    const auto ts_cuda_rc_ = (call);                                                   \
    if (Failed(ts_cuda_rc_)) return CallError(ts_cuda_rc_, #call, __FILE__, __LINE__); \
  } while (0)

// Records a failed call as the context's sticky error; true when the call succeeded.
#define TS_CUDA_CHECK(ctx, call) (ctx).Check((call), #call, __FILE__, __LINE__)

// For destructors and deleters: log, clear, carry on (never throw).
void LogIfFailed(cudaError_t e, const char* what) noexcept {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  std::fprintf(stderr, "tessera cuda: %s failed: %s\n", what, cudaGetErrorString(e));
}
void LogIfFailed(cublasStatus_t s, const char* what) noexcept {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  std::fprintf(stderr, "tessera cuda: %s failed: %s\n", what, cublasLtGetStatusString(s));
}

// ---- RAII handles -------------------------------------------------------------------------------

struct StreamDeleter {
  void operator()(cudaStream_t s) const noexcept { LogIfFailed(cudaStreamDestroy(s), "cudaStreamDestroy"); }
};
struct LtHandleDeleter {
  void operator()(cublasLtHandle_t h) const noexcept { LogIfFailed(cublasLtDestroy(h), "cublasLtDestroy"); }
};
struct MatmulDescDeleter {
  void operator()(cublasLtMatmulDesc_t d) const noexcept {
    LogIfFailed(cublasLtMatmulDescDestroy(d), "cublasLtMatmulDescDestroy");
  }
};
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayout_t l) const noexcept {
    LogIfFailed(cublasLtMatrixLayoutDestroy(l), "cublasLtMatrixLayoutDestroy");
  }
};
struct PreferenceDeleter {
  void operator()(cublasLtMatmulPreference_t p) const noexcept {
    LogIfFailed(cublasLtMatmulPreferenceDestroy(p), "cublasLtMatmulPreferenceDestroy");
  }
};
using StreamPtr = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter>;
using LtHandlePtr = std::unique_ptr<std::remove_pointer_t<cublasLtHandle_t>, LtHandleDeleter>;
using MatmulDescPtr = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>, MatmulDescDeleter>;
using LayoutPtr = std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>, LayoutDeleter>;
using PreferencePtr = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, PreferenceDeleter>;

// Largest power of two (up to kLtMaxAlignment) that divides the address.
uint32_t Alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t align = kLtMaxAlignment;
  while (align > 1 && address % align != 0) align /= 2;
  return align;
}

// ---- Weights ------------------------------------------------------------------------------------

// One bf16 device copy [rows, cols] (read by Linear and Embedding) and the f32 bias [rows], if any.
class CudaWeight final : public PreparedWeight {
 public:
  CudaWeight(const WeightView& view, const WeightUse& use, DeviceBuffer data, DeviceBuffer bias)
      : PreparedWeight(view, use), data_(std::move(data)), bias_(std::move(bias)) {}

  const uint16_t* data() const { return data_.as<const uint16_t>(); }
  const float* bias() const { return bias_.as<const float>(); }  // nullptr when there is none
  int64_t resident_bytes() const override { return static_cast<int64_t>(data_.bytes() + bias_.bytes()); }
  bool reads_original() const override { return false; }  // PrepareWeight copied it to the device

 private:
  DeviceBuffer data_;  // bf16 [rows, cols]
  DeviceBuffer bias_;  // f32 [rows] or empty
};

// ---- Contexts -----------------------------------------------------------------------------------

// What a cuBLASLt matmul of one shape needs besides its pointers: yᵀ[n, m] = W[n, k] · xᵀ[k, m] in
// column-major terms (see CudaBackend::Linear).
struct MatmulKey {
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  uint32_t align_w = 0;  // pointer alignments the chosen algorithm may rely on
  uint32_t align_x = 0;
  uint32_t align_y = 0;
  auto operator<=>(const MatmulKey&) const = default;
};

struct MatmulPlan {
  MatmulDescPtr desc;
  LayoutPtr w;  // bf16, k × n column-major (W row-major [n, k]), used transposed
  LayoutPtr x;  // bf16, k × m column-major (x row-major [m, k])
  LayoutPtr y;  // f32, n × m column-major (y row-major [m, n])
  cublasLtMatmulAlgo_t algo{};
};

class CudaContext final : public ExecContext {
 public:
  CudaContext(int device, StreamPtr stream, LtHandlePtr lt, DeviceBuffer workspace)
      : device_(device), stream_(std::move(stream)), lt_(std::move(lt)), workspace_(std::move(workspace)) {}

  ~CudaContext() override {
    // Enqueued work may still read the scratch buffers freed below.
    LogIfFailed(cudaSetDevice(device_), "cudaSetDevice");
    LogIfFailed(cudaStreamSynchronize(stream_.get()), "cudaStreamSynchronize");
  }

  cudaStream_t stream() const { return stream_.get(); }
  cublasLtHandle_t lt() const { return lt_.get(); }
  void* workspace() const { return workspace_.data(); }
  size_t workspace_bytes() const { return workspace_.bytes(); }
  DeviceBuffer& activation_scratch() { return activation_scratch_; }
  std::map<MatmulKey, MatmulPlan>& plans() { return plans_; }

  // The first error raised on this context, OK if none.
  const absl::Status& status() const { return status_; }
  void Fail(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
  }
  template <class Rc>
  bool Check(Rc rc, const char* call, const char* file, int line) {
    if (!Failed(rc)) return true;
    Fail(CallError(rc, call, file, line));
    return false;
  }

 private:
  const int device_;
  StreamPtr stream_;
  LtHandlePtr lt_;
  DeviceBuffer workspace_;           // kLtWorkspaceBytes for cuBLASLt
  DeviceBuffer activation_scratch_;  // bf16 copy of Linear's x [m, cols]; grows, never shrinks
  std::map<MatmulKey, MatmulPlan> plans_;
  absl::Status status_;
};

// ---- The backend --------------------------------------------------------------------------------

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int sm_count = 0;
  size_t total_memory = 0;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const DeviceInfo& info, int num_threads)
      : info_(info), pool_(std::make_unique<ThreadPool>(num_threads)) {}

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::Cuda(info_.index); }
  std::string Describe() const override {
    return absl::StrFormat("cuda:%d %s (sm_%d%d, %d SMs, %.1f GiB): bf16 weights, cuBLASLt GEMMs, %d host threads",
                           info_.index, info_.name, info_.compute_major, info_.compute_minor, info_.sm_count,
                           static_cast<double>(info_.total_memory) / (1 << 30), pool_->num_threads());
  }
  bool Supports(const OpDesc& op) const override;
  absl::StatusOr<std::unique_ptr<ExecContext>> CreateContext() override;
  ThreadPool* host_pool() override { return pool_.get(); }

  absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) override;
  int64_t allocated_bytes() const override { return allocated_.load(std::memory_order_relaxed); }
  void CopyToDevice(ExecContext& ctx, void* dst, const void* src, size_t bytes) override;
  absl::Status CopyToHost(ExecContext& ctx, void* dst, const void* src, size_t bytes) override;
  void Memset(ExecContext& ctx, void* dst, int value, size_t bytes) override;
  absl::Status Synchronize(ExecContext& ctx) override;

  absl::StatusOr<std::unique_ptr<PreparedWeight>> PrepareWeight(const WeightView& w, const WeightUse& use) override;

  void Linear(ExecContext& ctx, const LinearParams& p) override;
  void Embedding(ExecContext& ctx, const EmbeddingParams& p) override;
  void RmsNorm(ExecContext& ctx, const RmsNormParams& p) override;
  void Rope(ExecContext& ctx, const RopeParams& p) override;
  void SiluMul(ExecContext& ctx, const SiluMulParams& p) override;
  void Add(ExecContext& ctx, const AddParams& p) override;
  void KvWrite(ExecContext& ctx, const KvWriteParams& p) override;
  void Attention(ExecContext& ctx, const AttentionBatchParams& p) override;
  void MoeRoute(ExecContext& ctx, const MoeRouteParams& p) override;
  void GatherRows(ExecContext& ctx, const GatherRowsParams& p) override;
  void ScatterAddRows(ExecContext& ctx, const ScatterAddRowsParams& p) override;
  void SigmoidGateAdd(ExecContext& ctx, const SigmoidGateAddParams& p) override;

 protected:
  void Free(void* data, size_t bytes) override;

 private:
  // The context, with this backend's device current on the calling thread; nullptr when the context
  // already holds an error (nothing more is enqueued on it) or the device cannot be made current.
  CudaContext* Enter(ExecContext& ctx);
  // Host dequantization of w into `dst` (bf16 [rows, cols], device), in chunks of rows.
  absl::Status UploadAsBf16(const WeightView& w, uint16_t* dst);
  // c's activation scratch, grown to at least `bytes`; nullptr (error recorded) if that fails.
  void* Scratch(CudaContext& c, size_t bytes);
  // The cached (or new) matmul plan for these shapes and pointers; nullptr (error recorded) if none.
  const MatmulPlan* Plan(CudaContext& c, const MatmulKey& key);

  const DeviceInfo info_;
  std::unique_ptr<ThreadPool> pool_;
  std::atomic<int64_t> allocated_{0};
};

CudaContext* CudaBackend::Enter(ExecContext& ctx) {
  auto& c = static_cast<CudaContext&>(ctx);
  if (!c.status().ok()) return nullptr;
  if (!TS_CUDA_CHECK(c, cudaSetDevice(info_.index))) return nullptr;
  return &c;
}

bool CudaBackend::Supports(const OpDesc& op) const {
  switch (op.op) {
    case OpKind::kLinear:
    case OpKind::kEmbedding:
      return op.rows >= 0 && DTypeRowValid(op.dtype, op.cols);
    case OpKind::kAttention:
    case OpKind::kRope:
      return op.head_dim > 0 && op.head_dim <= gpu::kMaxHeadDim && op.head_dim % 2 == 0;
    case OpKind::kRmsNorm:
    case OpKind::kSiluMul:
    case OpKind::kAdd:
    case OpKind::kKvWrite:
    case OpKind::kMoeRoute:
    case OpKind::kGatherRows:
    case OpKind::kScatterAddRows:
    case OpKind::kSigmoidGateAdd:
      return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<ExecContext>> CudaBackend::CreateContext() {
  TS_CUDA_RETURN_IF_ERROR(cudaSetDevice(info_.index));
  cudaStream_t raw_stream = nullptr;
  TS_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&raw_stream, cudaStreamNonBlocking));
  StreamPtr stream(raw_stream);
  cublasLtHandle_t raw_lt = nullptr;
  TS_CUDA_RETURN_IF_ERROR(cublasLtCreate(&raw_lt));
  LtHandlePtr lt(raw_lt);
  absl::StatusOr<DeviceBuffer> workspace = Allocate(kLtWorkspaceBytes);
  if (!workspace.ok()) return workspace.status();
  return std::make_unique<CudaContext>(info_.index, std::move(stream), std::move(lt), *std::move(workspace));
}

// ---- Memory -------------------------------------------------------------------------------------

absl::StatusOr<DeviceBuffer> CudaBackend::Allocate(size_t bytes) {
  if (bytes == 0) return DeviceBuffer(this, nullptr, 0);
  TS_CUDA_RETURN_IF_ERROR(cudaSetDevice(info_.index));
  void* data = nullptr;
  const cudaError_t err = cudaMalloc(&data, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat("cudaMalloc of ", bytes, " bytes on cuda:", info_.index,
                                                     ": out of memory (", allocated_bytes(),
                                                     " bytes held by this backend)"));
  }
  if (err != cudaSuccess) return CallError(err, "cudaMalloc(&data, bytes)", __FILE__, __LINE__);
  allocated_.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  return DeviceBuffer(this, data, bytes);
}

void CudaBackend::Free(void* data, size_t bytes) {
  LogIfFailed(cudaSetDevice(info_.index), "cudaSetDevice");
  LogIfFailed(cudaFree(data), "cudaFree");
  allocated_.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
}

// The caller may reuse `src` once this returns. From pageable memory (the usual case) the driver
// stages the data before cudaMemcpyAsync returns; from any other memory (page-locked, managed) the
// DMA reads `src` later, so that copy is waited for.
void CudaBackend::CopyToDevice(ExecContext& ctx, void* dst, const void* src, size_t bytes) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr || bytes == 0) return;
  cudaPointerAttributes attributes{};
  if (!TS_CUDA_CHECK(*c, cudaPointerGetAttributes(&attributes, src))) return;
  if (!TS_CUDA_CHECK(*c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, c->stream()))) return;
  if (attributes.type != cudaMemoryTypeUnregistered) TS_CUDA_CHECK(*c, cudaStreamSynchronize(c->stream()));
}

absl::Status CudaBackend::CopyToHost(ExecContext& ctx, void* dst, const void* src, size_t bytes) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return static_cast<CudaContext&>(ctx).status();
  if (bytes > 0) TS_CUDA_CHECK(*c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream()));
  TS_CUDA_CHECK(*c, cudaStreamSynchronize(c->stream()));
  return c->status();
}

void CudaBackend::Memset(ExecContext& ctx, void* dst, int value, size_t bytes) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr || bytes == 0) return;
  TS_CUDA_CHECK(*c, cudaMemsetAsync(dst, value, bytes, c->stream()));
}

absl::Status CudaBackend::Synchronize(ExecContext& ctx) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return static_cast<CudaContext&>(ctx).status();
  TS_CUDA_CHECK(*c, cudaStreamSynchronize(c->stream()));
  return c->status();
}

void* CudaBackend::Scratch(CudaContext& c, size_t bytes) {
  DeviceBuffer& scratch = c.activation_scratch();
  if (scratch.bytes() >= bytes) return scratch.data();
  // Kernels enqueued earlier may still read the old buffer.
  if (!TS_CUDA_CHECK(c, cudaStreamSynchronize(c.stream()))) return nullptr;
  scratch.Reset();
  absl::StatusOr<DeviceBuffer> grown = Allocate(bytes);
  if (!grown.ok()) {
    c.Fail(grown.status());
    return nullptr;
  }
  scratch = *std::move(grown);
  return scratch.data();
}

// ---- Weights ------------------------------------------------------------------------------------

absl::Status CudaBackend::UploadAsBf16(const WeightView& w, uint16_t* dst) {
  const int64_t elems = w.rows * w.cols;
  if (elems == 0) return absl::OkStatus();
  TS_CUDA_RETURN_IF_ERROR(cudaSetDevice(info_.index));
  if (w.dtype == DType::kBF16) {
    TS_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(dst, w.data, static_cast<size_t>(elems) * sizeof(uint16_t), cudaMemcpyHostToDevice));
  } else {
    const int64_t cols = w.cols;
    const int64_t row_bytes = DTypeRowBytes(w.dtype, cols);
    const int64_t chunk_rows = std::clamp<int64_t>(kPrepareChunkElems / cols, 1, w.rows);
    std::vector<float> f32(static_cast<size_t>(chunk_rows * cols));
    std::vector<uint16_t> bf16(static_cast<size_t>(chunk_rows * cols));
    const auto* src = static_cast<const uint8_t*>(w.data);
    for (int64_t r0 = 0; r0 < w.rows; r0 += chunk_rows) {
      const int64_t n = std::min(chunk_rows, w.rows - r0);
      pool_->ParallelFor(n, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          float* row = f32.data() + r * cols;
          uint16_t* out = bf16.data() + r * cols;
          DequantizeRow(w.dtype, src + (r0 + r) * row_bytes, cols, row);
          for (int64_t i = 0; i < cols; ++i) out[i] = F32ToBf16(row[i]);
        }
      });
      // Returns once the pageable chunk has been taken, so it may be overwritten next.
      TS_CUDA_RETURN_IF_ERROR(cudaMemcpy(dst + r0 * cols, bf16.data(), static_cast<size_t>(n * cols) * sizeof(uint16_t),
                                         cudaMemcpyHostToDevice));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PreparedWeight>> CudaBackend::PrepareWeight(const WeightView& w, const WeightUse& use) {
  if (w.rows < 0 || !DTypeRowValid(w.dtype, w.cols)) {
    return absl::InvalidArgumentError(absl::StrFormat("cuda: a %s weight of %d x %d is not a matrix of whole %s blocks",
                                                      DTypeName(w.dtype), w.rows, w.cols, DTypeName(w.dtype)));
  }
  if (w.data == nullptr && w.rows * w.cols > 0) return absl::InvalidArgumentError("cuda: weight without data");
  absl::StatusOr<DeviceBuffer> data = Allocate(static_cast<size_t>(w.rows * w.cols) * sizeof(uint16_t));
  if (!data.ok()) return data.status();
  if (absl::Status s = UploadAsBf16(w, data->as<uint16_t>()); !s.ok()) return s;
  DeviceBuffer bias;
  if (use.bias != nullptr && w.rows > 0) {
    absl::StatusOr<DeviceBuffer> b = Allocate(static_cast<size_t>(w.rows) * sizeof(float));
    if (!b.ok()) return b.status();
    bias = *std::move(b);
    TS_CUDA_RETURN_IF_ERROR(cudaMemcpy(bias.data(), use.bias, bias.bytes(), cudaMemcpyHostToDevice));
  }
  // A copy from pageable memory may return before its DMA lands; the streams of our contexts do not
  // wait for the legacy default stream, so wait here.
  TS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(nullptr));
  return std::make_unique<CudaWeight>(w, use, *std::move(data), std::move(bias));
}

// ---- Ops ----------------------------------------------------------------------------------------

const MatmulPlan* CudaBackend::Plan(CudaContext& c, const MatmulKey& key) {
  auto& plans = c.plans();
  if (auto it = plans.find(key); it != plans.end()) return &it->second;
  if (plans.size() >= kMaxMatmulPlans) plans.clear();

  MatmulPlan plan;
  cublasLtMatmulDesc_t desc = nullptr;
  if (!TS_CUDA_CHECK(c, cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F))) return nullptr;
  plan.desc.reset(desc);
  const cublasOperation_t transpose = CUBLAS_OP_T;
  const cublasOperation_t no_transpose = CUBLAS_OP_N;
  if (!TS_CUDA_CHECK(
          c, cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof(transpose))) ||
      !TS_CUDA_CHECK(
          c, cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &no_transpose, sizeof(no_transpose)))) {
    return nullptr;
  }
  cublasLtMatrixLayout_t layout = nullptr;
  const auto m = static_cast<uint64_t>(key.m);
  const auto n = static_cast<uint64_t>(key.n);
  const auto k = static_cast<uint64_t>(key.k);
  if (!TS_CUDA_CHECK(c, cublasLtMatrixLayoutCreate(&layout, CUDA_R_16BF, k, n, key.k))) return nullptr;
  plan.w.reset(layout);
  if (!TS_CUDA_CHECK(c, cublasLtMatrixLayoutCreate(&layout, CUDA_R_16BF, k, m, key.k))) return nullptr;
  plan.x.reset(layout);
  if (!TS_CUDA_CHECK(c, cublasLtMatrixLayoutCreate(&layout, CUDA_R_32F, n, m, key.n))) return nullptr;
  plan.y.reset(layout);

  cublasLtMatmulPreference_t raw_pref = nullptr;
  if (!TS_CUDA_CHECK(c, cublasLtMatmulPreferenceCreate(&raw_pref))) return nullptr;
  PreferencePtr pref(raw_pref);
  const uint64_t workspace = c.workspace_bytes();
  if (!TS_CUDA_CHECK(c, cublasLtMatmulPreferenceSetAttribute(raw_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &workspace, sizeof(workspace))) ||
      !TS_CUDA_CHECK(c, cublasLtMatmulPreferenceSetAttribute(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                             &key.align_w, sizeof(key.align_w))) ||
      !TS_CUDA_CHECK(c, cublasLtMatmulPreferenceSetAttribute(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                             &key.align_x, sizeof(key.align_x))) ||
      !TS_CUDA_CHECK(c, cublasLtMatmulPreferenceSetAttribute(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                             &key.align_y, sizeof(key.align_y))) ||
      !TS_CUDA_CHECK(c, cublasLtMatmulPreferenceSetAttribute(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                             &key.align_y, sizeof(key.align_y)))) {
    return nullptr;
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (!TS_CUDA_CHECK(c, cublasLtMatmulAlgoGetHeuristic(c.lt(), desc, plan.w.get(), plan.x.get(), plan.y.get(),
                                                       plan.y.get(), raw_pref, 1, &result, &found))) {
    return nullptr;
  }
  if (found == 0) {
    c.Fail(absl::InternalError(absl::StrCat("cuBLASLt has no bf16 x bf16 -> f32 algorithm for m=", key.m, " n=", key.n,
                                            " k=", key.k, " (alignments ", key.align_w, "/", key.align_x, "/",
                                            key.align_y, ")")));
    return nullptr;
  }
  plan.algo = result.algo;
  return &plans.emplace(key, std::move(plan)).first->second;
}

// Row-major y[m, n] = x[m, k] · W[n, k]ᵀ is, read column-major, yᵀ (n × m, ld n) = W (used transposed:
// stored k × n, ld k) · xᵀ (k × m, ld k): cuBLASLt with op(A) = T on the weight, op(B) = N on the
// activations, bf16 inputs, f32 compute and f32 output.
void CudaBackend::Linear(ExecContext& ctx, const LinearParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr || p.m <= 0 || p.weights.empty()) return;
  const int64_t m = p.m;
  const int64_t k = p.weights[0]->cols();
  if (k == 0) {  // an empty sum: y = bias or 0
    for (size_t i = 0; i < p.weights.size(); ++i) {
      const auto* w = static_cast<const CudaWeight*>(p.weights[i]);
      const size_t bytes = static_cast<size_t>(m * w->rows()) * sizeof(float);
      if (bytes == 0) continue;
      if (!TS_CUDA_CHECK(*c, cudaMemsetAsync(p.outputs[i], 0, bytes, c->stream()))) return;
      if (w->bias() != nullptr)
        TS_CUDA_CHECK(*c, gpu::LaunchAddBias(p.outputs[i], m, w->rows(), w->bias(), c->stream()));
    }
    return;
  }
  auto* x_bf16 = static_cast<uint16_t*>(Scratch(*c, static_cast<size_t>(m * k) * sizeof(uint16_t)));
  if (x_bf16 == nullptr) return;
  if (!TS_CUDA_CHECK(*c, gpu::LaunchF32ToBf16(p.x, m * k, x_bf16, c->stream()))) return;
  const float alpha = 1.0f;
  const float beta = 0.0f;
  for (size_t i = 0; i < p.weights.size(); ++i) {
    const auto* w = static_cast<const CudaWeight*>(p.weights[i]);
    const int64_t n = w->rows();
    if (n == 0) continue;
    float* y = p.outputs[i];
    const MatmulPlan* plan = Plan(*c, {.m = m,
                                       .n = n,
                                       .k = k,
                                       .align_w = Alignment(w->data()),
                                       .align_x = Alignment(x_bf16),
                                       .align_y = Alignment(y)});
    if (plan == nullptr) return;
    if (!TS_CUDA_CHECK(*c, cublasLtMatmul(c->lt(), plan->desc.get(), &alpha, w->data(), plan->w.get(), x_bf16,
                                          plan->x.get(), &beta, y, plan->y.get(), y, plan->y.get(), &plan->algo,
                                          c->workspace(), c->workspace_bytes(), c->stream()))) {
      return;
    }
    if (w->bias() != nullptr && !TS_CUDA_CHECK(*c, gpu::LaunchAddBias(y, m, n, w->bias(), c->stream()))) return;
  }
}

void CudaBackend::Embedding(ExecContext& ctx, const EmbeddingParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  const auto* table = static_cast<const CudaWeight*>(p.table);
  TS_CUDA_CHECK(
      *c, gpu::LaunchEmbedding({.table = table->data(), .dim = table->cols(), .ids = p.ids, .n = p.n, .out = p.out},
                               c->stream()));
}

void CudaBackend::RmsNorm(ExecContext& ctx, const RmsNormParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchRmsNorm(p, c->stream()));
}

void CudaBackend::Rope(ExecContext& ctx, const RopeParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchRope(p, c->stream()));
}

void CudaBackend::SiluMul(ExecContext& ctx, const SiluMulParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchSiluMul(p, c->stream()));
}

void CudaBackend::Add(ExecContext& ctx, const AddParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchAdd(p, c->stream()));
}

void CudaBackend::KvWrite(ExecContext& ctx, const KvWriteParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchKvWrite(p, c->stream()));
}

// One launch per sequence: the AttentionParams array is host memory, only its pointers are device
// memory.
void CudaBackend::Attention(ExecContext& ctx, const AttentionBatchParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  for (const AttentionParams& s : p.sequences) {
    if (!TS_CUDA_CHECK(*c, gpu::LaunchAttention(s, c->stream()))) {
      return;
    }
  }
}

void CudaBackend::MoeRoute(ExecContext& ctx, const MoeRouteParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchMoeRoute(p, c->stream()));
}

void CudaBackend::GatherRows(ExecContext& ctx, const GatherRowsParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchGatherRows(p, c->stream()));
}

void CudaBackend::ScatterAddRows(ExecContext& ctx, const ScatterAddRowsParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchScatterAddRows(p, c->stream()));
}

void CudaBackend::SigmoidGateAdd(ExecContext& ctx, const SigmoidGateAddParams& p) {
  CudaContext* c = Enter(ctx);
  if (c == nullptr) return;
  TS_CUDA_CHECK(*c, gpu::LaunchSigmoidGateAdd(p, c->stream()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(int device_index, int num_threads) {
  const int count = CudaDeviceCount();
  if (count == 0) {
    return absl::FailedPreconditionError(
        "no CUDA device: the CUDA runtime sees none (no GPU, no driver, or a driver older than this build's runtime)");
  }
  if (device_index < 0 || device_index >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda:", device_index, " requested but only ", count, count == 1 ? " device" : " devices"));
  }
  DeviceInfo info;
  info.index = device_index;
  TS_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_index));
  cudaDeviceProp prop{};
  TS_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, device_index));
  info.name = prop.name;
  info.total_memory = prop.totalGlobalMem;
  TS_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&info.compute_major, cudaDevAttrComputeCapabilityMajor, device_index));
  TS_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&info.compute_minor, cudaDevAttrComputeCapabilityMinor, device_index));
  TS_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&info.sm_count, cudaDevAttrMultiProcessorCount, device_index));
  if (info.compute_major < kMinComputeMajor) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cuda:%d (%s) has compute capability %d.%d; the CUDA backend needs %d.0 or newer (bf16 tensor cores)",
        device_index, info.name, info.compute_major, info.compute_minor, kMinComputeMajor));
  }
  return std::unique_ptr<Backend>(std::make_unique<CudaBackend>(info, num_threads));
}

}  // namespace tessera::kernels
