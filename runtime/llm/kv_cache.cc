#include "runtime/llm/kv_cache.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace tessera::llm {

absl::StatusOr<PagedKvCache> PagedKvCache::Create(kernels::Backend& backend, const Options& o) {
  if (o.num_layers < 1 || o.num_kv_heads < 1 || o.head_dim < 1 || o.num_blocks < 1 || o.block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("KV cache: bad shape: ", o.num_layers, " layers, ", o.num_kv_heads,
                                                   " kv heads of ", o.head_dim, ", ", o.num_blocks, " blocks of ",
                                                   o.block_size));
  }
  const int64_t layer_floats = o.num_blocks * o.block_size * o.num_kv_heads * o.head_dim;
  const auto bytes = static_cast<size_t>(o.num_layers * layer_floats) * sizeof(float);
  auto alloc = [&]() -> absl::StatusOr<kernels::DeviceBuffer> {
    absl::StatusOr<kernels::DeviceBuffer> b = backend.Allocate(bytes);
    if (!b.ok()) {
      return absl::Status(b.status().code(),
                          absl::StrCat("KV cache of ", 2 * bytes, " bytes (", o.num_blocks, " blocks) on ",
                                       backend.device().ToString(), ": ", b.status().message()));
    }
    return b;
  };
  TS_ASSIGN_OR_RETURN(kernels::DeviceBuffer k, alloc());
  TS_ASSIGN_OR_RETURN(kernels::DeviceBuffer v, alloc());
  return PagedKvCache(&backend, o, std::move(k), std::move(v));
}

PagedKvCache::PagedKvCache(kernels::Backend* backend, const Options& options, kernels::DeviceBuffer k,
                           kernels::DeviceBuffer v)
    : backend_(backend),
      options_(options),
      layer_stride_(options.num_blocks * options.block_size * options.num_kv_heads * options.head_dim),
      k_(std::move(k)),
      v_(std::move(v)) {}

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
