// Paged KV cache: fixed-size blocks of key/value slots shared by all sequences, addressed through
// per-sequence block tables (vLLM's PagedAttention layout, f32, in the memory of the model's
// backend: host memory for the CPU, device memory for a GPU).
//
//   TS_ASSIGN_OR_RETURN(PagedKvCache cache, PagedKvCache::Create(*backend, {.num_layers = 2,
//                       .num_kv_heads = 2, .head_dim = 64, .num_blocks = 256, .block_size = 16}));
//   BlockAllocator blocks(cache.num_blocks());
//   std::vector<int32_t> table;
//   TS_RETURN_IF_ERROR(blocks.Grow(table, cache.BlocksFor(prompt_len)));
//   // token at position p of the sequence lives in block table[p / 16], slot p % 16
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace tessera::llm {

class PagedKvCache {
 public:
  struct Options {
    int64_t num_layers = 0;
    int64_t num_kv_heads = 0;
    int64_t head_dim = 0;
    int64_t num_blocks = 0;
    int64_t block_size = 16;
  };
  // The cache in `backend`'s memory (f32). INVALID_ARGUMENT for a shape with a zero or negative
  // dimension; RESOURCE_EXHAUSTED, naming the bytes, when it does not fit.
  static absl::StatusOr<PagedKvCache> Create(kernels::Backend& backend, const Options& options);
  PagedKvCache(PagedKvCache&&) noexcept = default;
  PagedKvCache& operator=(PagedKvCache&&) noexcept = default;

  kernels::Backend* backend() const { return backend_; }
  int64_t num_blocks() const { return options_.num_blocks; }
  int64_t block_size() const { return options_.block_size; }
  int64_t BlocksFor(int64_t tokens) const { return (tokens + options_.block_size - 1) / options_.block_size; }
  // Bytes of K and V together, every layer.
  int64_t bytes() const { return static_cast<int64_t>(k_.bytes() + v_.bytes()); }

  // [num_blocks, block_size, num_kv_heads, head_dim] for one layer, in the backend's memory.
  float* keys(int64_t layer) const { return k_.as<float>() + layer * layer_stride_; }
  float* values(int64_t layer) const { return v_.as<float>() + layer * layer_stride_; }

  // The slot (block · block_size + offset) of position `pos` of a sequence with `block_table`.
  int32_t Slot(const int32_t* block_table, int64_t pos) const {
    return static_cast<int32_t>(block_table[pos / options_.block_size] * options_.block_size +
                                pos % options_.block_size);
  }

 private:
  PagedKvCache(kernels::Backend* backend, const Options& options, kernels::DeviceBuffer k, kernels::DeviceBuffer v);
  kernels::Backend* backend_;
  Options options_;
  int64_t layer_stride_;
  kernels::DeviceBuffer k_, v_;
};

// Free list of cache blocks. Not thread-safe: owned by the scheduler.
class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t num_blocks);
  int64_t num_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t num_total() const { return total_; }
  // Appends blocks to `table` until it holds `blocks_needed`; RESOURCE_EXHAUSTED (and no change)
  // when not enough are free.
  absl::Status Grow(std::vector<int32_t>& table, int64_t blocks_needed);
  // Returns every block of `table` to the free list and clears it.
  void Release(std::vector<int32_t>& table);

 private:
  int64_t total_;
  std::vector<int32_t> free_;
};

}  // namespace tessera::llm
