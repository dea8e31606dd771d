#include "runtime/llm/kv_cache.h"

#include <set>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"

namespace tessera::llm {
namespace {

TEST(BlockAllocatorTest, GrowReleaseAndExhaustion) {
  BlockAllocator blocks(5);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(blocks.Grow(a, 3).ok());
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(blocks.num_free(), 2);
  absl::Status s = blocks.Grow(b, 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(b.empty()) << "a failed grow must not take blocks";
  ASSERT_TRUE(blocks.Grow(b, 2).ok());
  std::set<int32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 5u) << "blocks are handed out once";
  blocks.Release(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(blocks.num_free(), 3);
  ASSERT_TRUE(blocks.Grow(b, 2).ok()) << "growing to the current size is a no-op";
  EXPECT_EQ(blocks.num_free(), 3);
}

TEST(PagedKvCacheTest, SlotsFollowTheBlockTable) {
  auto backend = kernels::CpuBackend::Create({.num_threads = 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto made = PagedKvCache::Create(
      **backend, {.num_layers = 2, .num_kv_heads = 2, .head_dim = 3, .num_blocks = 4, .block_size = 2});
  ASSERT_TRUE(made.ok()) << made.status();
  PagedKvCache& cache = *made;
  const std::vector<int32_t> table = {3, 1};
  // position 0 → block 3 slot 0; position 3 → block 1 slot 1; slot = 2 heads × 3 floats.
  EXPECT_EQ(cache.Slot(table.data(), 0), 3 * 2 + 0);
  EXPECT_EQ(cache.Slot(table.data(), 3), 1 * 2 + 1);
  EXPECT_EQ(cache.keys(1) - cache.keys(0), 4 * 2 * 6);
  EXPECT_EQ(cache.bytes(), 2 * 2 * 4 * 2 * 6 * 4);
  EXPECT_EQ(cache.BlocksFor(5), 3);
  EXPECT_EQ(cache.BlocksFor(0), 0);
}

TEST(PagedKvCacheTest, BadShapeAndOutOfMemoryAreErrors) {
  auto backend = kernels::CpuBackend::Create({.num_threads = 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto zero = PagedKvCache::Create(**backend, {.num_layers = 1, .num_kv_heads = 1, .head_dim = 8, .num_blocks = 0});
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  // 2^60 bytes: no machine has them.
  auto huge = PagedKvCache::Create(
      **backend,
      {.num_layers = 1 << 10, .num_kv_heads = 1 << 10, .head_dim = 1 << 10, .num_blocks = 1 << 20, .block_size = 16});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
}

}  // namespace
}  // namespace tessera::llm
