// Scratch: the activation buffers of a forward pass, in the backend's memory, reused across steps.
//
// Each slot is one grow-only buffer; Get(slot, n) returns room for n elements, reallocating (and
// invalidating that slot's earlier pointer) only when n exceeds what the slot holds. A slot is used
// by one piece of the forward pass at a time; the slots' names say which.
//
//   Scratch scratch(backend);
//   TS_ASSIGN_OR_RETURN(float* h, scratch.Get<float>(Scratch::kNormed, tokens * hidden));
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace tessera::llm {

class Scratch {
 public:
  enum Slot : int {
    kHidden,       // [tokens, hidden] the residual stream
    kNormed,       // [tokens, hidden] a norm's output
    kQ,            // [tokens, n_heads · head_dim]
    kK,            // [tokens, n_kv_heads · head_dim]
    kV,            // [tokens, n_kv_heads · head_dim]
    kAttn,         // [tokens, n_heads · head_dim]
    kFfOut,        // [tokens, hidden] o_proj and MLP outputs
    kLast,         // [rows, hidden] rows whose logits are wanted
    kLogits,       // [rows, vocab]
    kTokenIds,     // [tokens] int32
    kPositions,    // [tokens] int32
    kSlots,        // [tokens] int32: KV cache slots
    kBlockTables,  // int32: every sequence's block table
    kRowIds,       // int32: rows to gather
    kMlpGate,      // [tokens, width]
    kMlpUp,        // [tokens, width]
    kMoeProbs,     // [tokens, experts]
    kMoeIds,       // [tokens, k] int32
    kMoeWeights,   // [tokens, k]
    kMoeRows,      // [tokens · k] int32, grouped by expert
    kMoeScales,    // [tokens · k]
    kMoeIn,        // [rows, hidden] an expert's input rows
    kMoeOut,       // [rows, hidden] an expert's output rows
    kSharedOut,    // [tokens, hidden]
    kSharedGate,   // [tokens]
    kNumSlots
  };

  explicit Scratch(kernels::Backend* backend) : backend_(backend) {}

  template <class T>
  absl::StatusOr<T*> Get(Slot slot, int64_t count) {
    const size_t bytes = static_cast<size_t>(count > 0 ? count : 1) * sizeof(T);
    kernels::DeviceBuffer& b = bufs_[slot];
    if (b.bytes() < bytes) {
      b.Reset();
      absl::StatusOr<kernels::DeviceBuffer> fresh = backend_->Allocate(bytes + bytes / 4);
      if (!fresh.ok()) return fresh.status();
      b = std::move(*fresh);
      int64_t total = 0;
      for (const kernels::DeviceBuffer& buf : bufs_) total += static_cast<int64_t>(buf.bytes());
      bytes_.store(total, std::memory_order_relaxed);
    }
    return b.as<T>();
  }

  // Bytes of every slot together; may be read from any thread.
  int64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  kernels::Backend* backend_;
  std::array<kernels::DeviceBuffer, kNumSlots> bufs_;
  std::atomic<int64_t> bytes_{0};
};

}  // namespace tessera::llm
