// CpuWorkspace: the scratch memory of the CPU Linear kernels, owned by their caller.
//
// A call needs the activations quantized or padded once (shared by every thread of the call) and,
// for the blocked GEMM, one pair of packing panels per task. The workspace keeps them between calls,
// so that a steady decode or prefill step allocates nothing, and the kernels hold no thread_local
// state. CpuBackend keeps one per ExecContext; a workspace serves one call at a time.
//
//   CpuWorkspace ws;
//   Linear(&pool, x, M, K, w, DType::kQ4_1, N, y, Activations::kInt8, &ws);   // grows ws once
//   Linear(&pool, x, M, K, w, DType::kQ4_1, N, y, Activations::kInt8, &ws);   // reuses it
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace tessera::kernels {

// 64-byte-aligned bytes, grown on demand and kept (contents are not preserved across growth).
class AlignedScratch {
 public:
  template <class T>
  T* Get(int64_t count) {
    const size_t bytes = static_cast<size_t>(count > 0 ? count : 1) * sizeof(T);
    if (bytes > capacity_) {
      data_.reset(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64})));
      capacity_ = bytes;
    }
    return reinterpret_cast<T*>(data_.get());
  }

 private:
  struct Free {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<std::byte[], Free> data_;
  size_t capacity_ = 0;
};

class CpuWorkspace {
 public:
  // The call's activations in whatever form the kernel multiplies (int8 blocks, padded f32 rows).
  AlignedScratch& activations() { return activations_; }
  // Per-row temporaries of the activation packing ([M, K/32] int8 blocks).
  AlignedScratch& row_blocks() { return row_blocks_; }
  // Room for `tasks` GEMM tasks; call before the parallel loop that uses Panels(t) for t < tasks.
  void ReserveTasks(int64_t tasks) {
    if (static_cast<int64_t>(panels_.size()) < tasks) panels_.resize(tasks);
  }
  // Task t's packing panels of A (x) and B (w); each task touches only its own.
  AlignedScratch& PanelA(int64_t t) { return panels_[t].a; }
  AlignedScratch& PanelB(int64_t t) { return panels_[t].b; }

 private:
  struct Panels {
    AlignedScratch a, b;
  };
  AlignedScratch activations_;
  AlignedScratch row_blocks_;
  std::vector<Panels> panels_;
};

}  // namespace tessera::kernels
