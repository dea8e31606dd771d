// Paged KV cache: fixed-size blocks of key/value slots shared by all sequences, addressed through
// per-sequence block tables (vLLM's PagedAttention layout, on the host in f32).
//
//   PagedKvCache cache({.num_layers = 2, .num_kv_heads = 2, .head_dim = 64,
//                       .num_blocks = 256, .block_size = 16});
//   BlockAllocator blocks(cache.num_blocks());
//   std::vector<int32_t> table;
//   TS_RETURN_IF_ERROR(blocks.Grow(table, cache.BlocksFor(prompt_len)));
//   // token at position p of the sequence lives in block table[p / 16], slot p % 16
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

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
  explicit PagedKvCache(const Options& options);

  int64_t num_blocks() const { return options_.num_blocks; }
  int64_t block_size() const { return options_.block_size; }
  int64_t BlocksFor(int64_t tokens) const { return (tokens + options_.block_size - 1) / options_.block_size; }

  // [num_blocks, block_size, num_kv_heads, head_dim] for one layer.
  float* keys(int64_t layer) { return k_.data() + layer * layer_stride_; }
  float* values(int64_t layer) { return v_.data() + layer * layer_stride_; }

  // Pointer to the [num_kv_heads, head_dim] slot of position `pos` of a sequence.
  float* KeySlot(int64_t layer, const int32_t* block_table, int64_t pos) {
    return keys(layer) + SlotOffset(block_table, pos);
  }
  float* ValueSlot(int64_t layer, const int32_t* block_table, int64_t pos) {
    return values(layer) + SlotOffset(block_table, pos);
  }

 private:
  int64_t SlotOffset(const int32_t* block_table, int64_t pos) const {
    const int64_t block = block_table[pos / options_.block_size];
    return (block * options_.block_size + pos % options_.block_size) * slot_stride_;
  }
  Options options_;
  int64_t slot_stride_;
  int64_t layer_stride_;
  std::vector<float> k_, v_;
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
