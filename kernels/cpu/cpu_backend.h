// CpuBackend: the Backend (kernels/backend.h) of the host CPU.
//
// Memory is host memory (64-byte aligned); ops run at once, on the calling thread and the backend's
// thread pool, through the op table of one ISA (isa.h: scalar reference, AVX2, AVX-512; by default
// the best the CPU runs, TESSERA_CPU_ISA overrides). Weights are read in place from their mapping,
// except Q4_1/Q8_0 matrices on AVX-512 VNNI, which PrepareWeight repacks (packed_linear.h) and whose
// mapped pages it then gives back to the kernel (with int8 activations, where the original is not
// read again).
//
//   TS_ASSIGN_OR_RETURN(auto cpu, CpuBackend::Create({.num_threads = 2}));
//   TS_ASSIGN_OR_RETURN(auto ref, CpuBackend::Create({.num_threads = 1, .isa = Isa::kScalar}));
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera::kernels {

class CpuBackend final : public Backend {
 public:
  struct Options {
    int num_threads = 0;                    // 0: all hardware threads
    std::optional<Isa> isa = std::nullopt;  // unset: ActiveIsa(); an ISA the CPU lacks is FAILED_PRECONDITION
    bool pack_weights = true;               // repack Q4_1/Q8_0 for VNNI where the ISA is AVX-512 with VNNI
  };
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const Options& options);
  ~CpuBackend() override;

  Isa isa() const { return ops_->isa; }

  std::string_view name() const override { return name_; }
  Device device() const override { return Device::Cpu(); }
  std::string Describe() const override;
  bool Supports(const OpDesc& op) const override;
  absl::StatusOr<std::unique_ptr<ExecContext>> CreateContext() override;
  ThreadPool* host_pool() override { return pool_.get(); }

  absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) override;
  int64_t allocated_bytes() const override { return allocated_.load(std::memory_order_relaxed); }
  void CopyToDevice(ExecContext& ctx, void* dst, const void* src, size_t bytes) override;
  absl::Status CopyToHost(ExecContext& ctx, void* dst, const void* src, size_t bytes) override;
  void Memset(ExecContext& ctx, void* dst, int value, size_t bytes) override;
  absl::Status Synchronize(ExecContext& ctx) override { return absl::OkStatus(); }

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
  CpuBackend(const Options& options, const OpTable* ops);

  Options options_;
  const OpTable* ops_;
  std::string name_;
  std::unique_ptr<ThreadPool> pool_;
  std::atomic<int64_t> allocated_{0};
};

}  // namespace tessera::kernels
