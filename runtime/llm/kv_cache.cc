#include "runtime/llm/kv_cache.h"

#include "absl/strings/str_cat.h"

namespace tessera::llm {

PagedKvCache::PagedKvCache(const Options& options)
    : options_(options),
      slot_stride_(options.num_kv_heads * options.head_dim),
      layer_stride_(options.num_blocks * options.block_size * options.num_kv_heads * options.head_dim),
      k_(options.num_layers * layer_stride_),
      v_(options.num_layers * layer_stride_) {}

BlockAllocator::BlockAllocator(int64_t num_blocks) : total_(num_blocks) {
  free_.reserve(num_blocks);
  // Hand out low block ids first.
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

absl::Status BlockAllocator::Grow(std::vector<int32_t>& table, int64_t blocks_needed) {
  const int64_t missing = blocks_needed - static_cast<int64_t>(table.size());
  if (missing <= 0) return absl::OkStatus();
  if (missing > num_free()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("KV cache: need ", missing, " more blocks, ", num_free(), " of ", total_, " free"));
  }
  for (int64_t i = 0; i < missing; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return absl::OkStatus();
}

void BlockAllocator::Release(std::vector<int32_t>& table) {
  for (int32_t b : table) free_.push_back(b);
  table.clear();
}

}  // namespace tessera::llm
