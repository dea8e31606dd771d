// Backend: the one seam between the model runtime and the hardware that runs it.
//
// runtime/ holds a Backend* and describes the forward pass as a sequence of ops over memory that
// the backend allocated; it never picks a weight layout and never does arithmetic itself. Each
// backend owns its device's memory, its weight layouts and its kernels:
//   CpuBackend  (cpu/cpu_backend.h)   host memory; the ISA op table (scalar, AVX2, AVX-512 chosen at
//                                     run time); packed VNNI weight groups; a thread pool.
//   CudaBackend (cuda/cuda_backend.h) device memory of one GPU; cuBLASLt GEMMs on bf16 weights;
//                                     our own kernels for the rest; one stream per context.
// CreateBackend (backend_registry.h) picks one from a Device ("cpu", "cuda", "cuda:1").
//
// Execution model. Ops are enqueued on an ExecContext (the CPU: runs them at once on its thread pool;
// CUDA: a stream) and may complete later; CopyToHost and Synchronize wait for everything enqueued
// before them and report any error the device raised since the last check. Every pointer an op
// takes points into this backend's memory (Allocate, or a PreparedWeight), except where a field
// says "host". Shapes are checked by the caller (runtime/ validates requests at the edge); an op
// the backend cannot run is refused by Supports() before any is enqueued, never at run time.
//
//   auto backend = CreateBackend({.device = Device::Cpu(), .num_threads = 2});   // StatusOr
//   auto ctx = (*backend)->CreateContext();
//   TS_ASSIGN_OR_RETURN(auto w, (*backend)->PrepareWeight({.data = mapped, .dtype = DType::kQ4_1,
//                                                          .rows = N, .cols = K}, {}));
//   TS_ASSIGN_OR_RETURN(DeviceBuffer x, (*backend)->Allocate(M * K * sizeof(float)));
//   (*backend)->CopyToDevice(*ctx, x.data(), host_x, M * K * sizeof(float));
//   (*backend)->Linear(*ctx, {.x = x.as<float>(), .m = M, .weights = {&w_ptr, 1}, .outputs = {&y_ptr, 1}});
//   TS_RETURN_IF_ERROR((*backend)->CopyToHost(*ctx, host_y, y_ptr, M * N * sizeof(float)));
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/dtype.h"
#include "kernels/op_params.h"

namespace tessera::kernels {

class ThreadPool;

// ---- Devices ------------------------------------------------------------------------------------

enum class DeviceType : uint8_t { kCpu, kCuda };

struct Device {
  DeviceType type = DeviceType::kCpu;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  static Device Cpu() { return {}; }
  static Device Cuda(int index) { return {DeviceType::kCuda, index}; }
  bool is_cpu() const { return type == DeviceType::kCpu; }
  std::string ToString() const;  // "cpu", "cuda:0"
  friend bool operator==(const Device&, const Device&) = default;
};

// "cpu", "cuda" (= cuda:0) or "cuda:N". INVALID_ARGUMENT otherwise, naming the accepted forms.
absl::StatusOr<Device> ParseDevice(std::string_view text);

// ---- Ops and their parameters ----------------------------------------------------------------------

// Every op of the forward pass (LLM today; diffusion's conv2d, group norm and resampling join here).
enum class OpKind : uint8_t {
  kLinear,          // LinearParams
  kEmbedding,       // EmbeddingParams
  kRmsNorm,         // RmsNormParams
  kRope,            // RopeParams
  kSiluMul,         // SiluMulParams
  kAdd,             // AddParams
  kKvWrite,         // KvWriteParams
  kAttention,       // AttentionBatchParams
  kMoeRoute,        // MoeRouteParams
  kGatherRows,      // GatherRowsParams
  kScatterAddRows,  // ScatterAddRowsParams
  kSigmoidGateAdd,  // SigmoidGateAddParams
};
std::string_view OpKindName(OpKind op);

// What Supports() is asked: an op and the properties its kernels specialise on.
struct OpDesc {
  OpKind op = OpKind::kLinear;
  DType dtype = DType::kF32;  // weights (kLinear, kEmbedding); f32 for the others
  int64_t rows = 0;           // weights: [rows, cols] (out, in); others: 0
  int64_t cols = 0;
  int64_t head_dim = 0;  // kAttention, kRope
};

// A weight matrix as the loader mapped it: row-major [rows, cols] of `dtype` (for a quantized type,
// each row is DTypeRowBytes(dtype, cols) bytes of blocks, a GGUF tensor of ne0 = cols, ne1 = rows).
// Host memory, usually a read-only file mapping that outlives every PreparedWeight made from it.
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
};

struct WeightUse {
  bool linear = true;   // multiplied by Linear
  bool gather = false;  // rows gathered by Embedding (a tied embedding is both)
  // How block-quantized weights meet the activations (dtype.h; float weights ignore it): kInt8
  // quantizes activations per block of 32 as llama.cpp does (fast), kF32 computes x·dequant(w)ᵀ in
  // f32 as transformers computes a dequantized checkpoint.
  Activations activations = Activations::kInt8;
  const float* bias = nullptr;  // host, [rows] or nullptr; copied by PrepareWeight
};

// A weight in the layout its backend chose (VNNI-packed groups, a bf16 device copy, ...).
// Immutable once made; shared by every context of the backend that made it.
class PreparedWeight {
 public:
  virtual ~PreparedWeight() = default;
  DType dtype() const { return view_.dtype; }  // of the original
  int64_t rows() const { return view_.rows; }
  int64_t cols() const { return view_.cols; }
  const WeightView& original() const { return view_; }
  const WeightUse& use() const { return use_; }
  // Bytes this weight holds in the backend's memory beyond the original mapping (packed copies,
  // device copies); 0 when it reads the mapping in place.
  virtual int64_t resident_bytes() const = 0;
  // Whether ops still read the original (host mapping). When false, the owner of the mapping may
  // give its resident pages back to the OS (loader::DropResidentPages); the mapping must stay.
  virtual bool reads_original() const = 0;

 protected:
  PreparedWeight(const WeightView& view, const WeightUse& use) : view_(view), use_(use) { use_.bias = nullptr; }

 private:
  WeightView view_;
  WeightUse use_;
};

// y_i[m, rows_i] = x[m, cols] · W_iᵀ (+ bias_i)  for every i  (torch: y = x @ w.T + b)
// All weights have the same cols. The backend may run them as one pass (x quantized once).
struct LinearParams {
  const float* x = nullptr;  // [m, cols]
  int64_t m = 0;
  std::span<const PreparedWeight* const> weights = {};
  std::span<float* const> outputs = {};  // outputs[i]: [m, weights[i]->rows()]
};

// out[i, :] = f32(table[ids[i], :])  (nn.Embedding)
struct EmbeddingParams {
  const PreparedWeight* table = nullptr;  // [vocab, dim], prepared with use.gather
  const int32_t* ids = nullptr;           // [n], each in [0, vocab)
  int64_t n = 0;
  float* out = nullptr;  // [n, dim]
};

// Attention of several sequences (a step's batch), each an AttentionParams whose pointers are in
// this backend's memory. The backend chooses how to spread them over its threads or blocks.
struct AttentionBatchParams {
  std::span<const AttentionParams> sequences = {};
};

// ---- Memory and execution -----------------------------------------------------------------------

class Backend;

// Memory on a backend's device. Move-only; frees itself through its backend, which must outlive it.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* owner, void* data, size_t bytes) : owner_(owner), data_(data), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { Reset(); }

  void* data() const { return data_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }
  void Reset();

 private:
  Backend* owner_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Where ops run and in what order: the CPU backend's thread pool, a CUDA stream. One context is used
// by one thread at a time; several contexts of one backend may run concurrently.
class ExecContext {
 public:
  virtual ~ExecContext() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;  // "cpu-avx512", "cuda"
  virtual Device device() const = 0;
  // A line for start-up logs: the device, its memory, the kernels chosen.
  virtual std::string Describe() const = 0;

  // Whether the op can run with these properties. Callers ask once per weight or shape at load time
  // and turn a `false` into a start-up error; ops never fail for an unsupported case at run time.
  virtual bool Supports(const OpDesc& op) const = 0;

  // A context on which to enqueue ops (the CPU: its thread pool; CUDA: a new stream).
  virtual absl::StatusOr<std::unique_ptr<ExecContext>> CreateContext() = 0;
  // The host thread pool (the CPU backend computes on it; every backend has one, for host-side
  // work such as CPU experts and sampling).
  virtual ThreadPool* host_pool() = 0;

  // `bytes` of uninitialised device memory (RESOURCE_EXHAUSTED when it does not fit).
  virtual absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) = 0;
  // Bytes this backend has allocated and not freed, weights included.
  virtual int64_t allocated_bytes() const = 0;
  // Device memory as raw copies, ordered with the ops of ctx. `src` of CopyToDevice may be reused
  // as soon as the call returns (the copy may still be in flight on the device side). CopyToHost
  // waits for the ops before it and for the copy.
  virtual void CopyToDevice(ExecContext& ctx, void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyToHost(ExecContext& ctx, void* dst, const void* src, size_t bytes) = 0;
  virtual void Memset(ExecContext& ctx, void* dst, int value, size_t bytes) = 0;
  // Waits for everything enqueued on ctx; the first device error since the last check, if any.
  virtual absl::Status Synchronize(ExecContext& ctx) = 0;

  // The backend's layout of a weight (Supports({kLinear or kEmbedding, dtype, rows, cols}) first).
  // INVALID_ARGUMENT for a dtype/shape it cannot take; RESOURCE_EXHAUSTED when out of memory.
  virtual absl::StatusOr<std::unique_ptr<PreparedWeight>> PrepareWeight(const WeightView& w, const WeightUse& use) = 0;
  // A host f32 vector (norm weights, inverse frequencies) copied into device memory.
  absl::StatusOr<DeviceBuffer> UploadF32(ExecContext& ctx, std::span<const float> host);

  // The ops (see each Params struct for the formula and shapes).
  virtual void Linear(ExecContext& ctx, const LinearParams& p) = 0;
  virtual void Embedding(ExecContext& ctx, const EmbeddingParams& p) = 0;
  virtual void RmsNorm(ExecContext& ctx, const RmsNormParams& p) = 0;
  virtual void Rope(ExecContext& ctx, const RopeParams& p) = 0;
  virtual void SiluMul(ExecContext& ctx, const SiluMulParams& p) = 0;
  virtual void Add(ExecContext& ctx, const AddParams& p) = 0;
  virtual void KvWrite(ExecContext& ctx, const KvWriteParams& p) = 0;
  virtual void Attention(ExecContext& ctx, const AttentionBatchParams& p) = 0;
  virtual void MoeRoute(ExecContext& ctx, const MoeRouteParams& p) = 0;
  virtual void GatherRows(ExecContext& ctx, const GatherRowsParams& p) = 0;
  virtual void ScatterAddRows(ExecContext& ctx, const ScatterAddRowsParams& p) = 0;
  virtual void SigmoidGateAdd(ExecContext& ctx, const SigmoidGateAddParams& p) = 0;

 protected:
  friend class DeviceBuffer;
  // Returns memory from Allocate. Never fails; logs device errors.
  virtual void Free(void* data, size_t bytes) = 0;
};

}  // namespace tessera::kernels
