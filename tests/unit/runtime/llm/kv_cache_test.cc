#include "runtime/llm/kv_cache.h"

#include <set>

#include "gtest/gtest.h"

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
  PagedKvCache cache({.num_layers = 2, .num_kv_heads = 2, .head_dim = 3, .num_blocks = 4, .block_size = 2});
  const std::vector<int32_t> table = {3, 1};
  // position 0 → block 3 slot 0; position 3 → block 1 slot 1; slot = 2 heads × 3 floats.
  EXPECT_EQ(cache.KeySlot(0, table.data(), 0) - cache.keys(0), (3 * 2 + 0) * 6);
  EXPECT_EQ(cache.KeySlot(1, table.data(), 3) - cache.keys(1), (1 * 2 + 1) * 6);
  EXPECT_EQ(cache.keys(1) - cache.keys(0), 4 * 2 * 6);
  EXPECT_EQ(cache.BlocksFor(5), 3);
  EXPECT_EQ(cache.BlocksFor(0), 0);
}

}  // namespace
}  // namespace tessera::llm
