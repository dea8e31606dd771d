// BlockManager: reference counts, prefix-cache lookups, LRU eviction, and a brute-force run of
// random allocate / grow / compute / free sequences checked against a plain model of the cache.
#include "worker/engine/block_manager.h"

#include <map>
#include <random>
#include <set>

#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

std::vector<int32_t> Range(int32_t begin, int32_t end) {
  std::vector<int32_t> v;
  for (int32_t i = begin; i < end; ++i) v.push_back(i);
  return v;
}

TEST(BlockManagerTest, AllocatesAndFrees) {
  BlockManager bm({.num_blocks = 4, .block_size = 4});
  BlockManager::Table t;
  ASSERT_TRUE(bm.Allocate(t, 5));  // 2 blocks
  EXPECT_EQ(t.blocks, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(bm.num_free(), 2);
  ASSERT_TRUE(bm.Allocate(t, 8));  // still 2
  EXPECT_EQ(bm.num_free(), 2);
  BlockManager::Table u;
  EXPECT_FALSE(bm.Allocate(u, 9));  // needs 3
  EXPECT_TRUE(u.blocks.empty());
  EXPECT_EQ(bm.num_free(), 2);
  bm.Free(t);
  EXPECT_TRUE(t.blocks.empty());
  EXPECT_EQ(bm.num_free(), 4);
  EXPECT_TRUE(bm.Allocate(u, 16));
  EXPECT_EQ(bm.num_free(), 0);
}

TEST(BlockManagerTest, SharesFullComputedBlocksOfACommonPrefix) {
  BlockManager bm({.num_blocks = 8, .block_size = 4});
  const std::vector<int32_t> a = Range(0, 10);  // blocks [0..3], [4..7], partial [8, 9]
  BlockManager::Table ta;
  ASSERT_TRUE(bm.Allocate(ta, 10));
  bm.CacheFullBlocks(ta, a, 10);
  EXPECT_EQ(ta.hashes.size(), 2u);
  EXPECT_TRUE(bm.is_cached(ta.blocks[0]));
  EXPECT_TRUE(bm.is_cached(ta.blocks[1]));
  EXPECT_FALSE(bm.is_cached(ta.blocks[2]));

  std::vector<int32_t> b = Range(0, 6);  // shares the first block only
  b.push_back(99);
  b.push_back(98);
  b.push_back(97);
  BlockManager::Prefix hit = bm.FindCachedPrefix(b, static_cast<int64_t>(b.size()) - 1);
  ASSERT_EQ(hit.blocks.size(), 1u);
  EXPECT_EQ(hit.blocks[0], ta.blocks[0]);
  EXPECT_EQ(hit.num_tokens, 4);
  BlockManager::Table tb;
  ASSERT_TRUE(bm.Allocate(tb, hit, static_cast<int64_t>(b.size())));
  EXPECT_EQ(bm.ref_count(ta.blocks[0]), 2);
  EXPECT_EQ(tb.blocks.size(), 3u);
  EXPECT_EQ(bm.num_free(), 8 - 3 - 2);

  // The same tokens as `a`, limited so that one token is left to compute: 9 tokens → 2 blocks.
  BlockManager::Prefix same = bm.FindCachedPrefix(a, 9);
  EXPECT_EQ(same.num_tokens, 8);
  // Exactly two blocks long: at most one block may be reused.
  BlockManager::Prefix capped = bm.FindCachedPrefix(Range(0, 8), 7);
  EXPECT_EQ(capped.num_tokens, 4);

  bm.Free(ta);
  EXPECT_EQ(bm.ref_count(tb.blocks[0]), 1);
  // a's cached second block is unreferenced but still findable.
  EXPECT_EQ(bm.num_evictable(), 1);
  EXPECT_EQ(bm.FindCachedPrefix(a, 9).num_tokens, 8);
  bm.Free(tb);
  EXPECT_EQ(bm.num_free(), 8);
  EXPECT_EQ(bm.num_evictable(), 2);
}

TEST(BlockManagerTest, ReviveEvictableBlocksCountsAgainstFreeSpace) {
  BlockManager bm({.num_blocks = 3, .block_size = 2});
  const std::vector<int32_t> a = {1, 2, 3, 4, 5};
  BlockManager::Table ta;
  ASSERT_TRUE(bm.Allocate(ta, 5));
  bm.CacheFullBlocks(ta, a, 5);
  bm.Free(ta);
  EXPECT_EQ(bm.num_free(), 3);
  BlockManager::Prefix hit = bm.FindCachedPrefix(a, 4);
  ASSERT_EQ(hit.num_tokens, 4);
  BlockManager::Table tb;
  // 2 revived + 2 new > 3 free.
  EXPECT_FALSE(bm.Allocate(tb, hit, 7));
  EXPECT_EQ(bm.num_free(), 3);
  EXPECT_TRUE(bm.Allocate(tb, hit, 6));
  EXPECT_EQ(bm.num_free(), 0);
  EXPECT_EQ(bm.num_evictable(), 0);
}

TEST(BlockManagerTest, EvictsLeastRecentlyFreedAndTailFirst) {
  BlockManager bm({.num_blocks = 4, .block_size = 2});
  const std::vector<int32_t> a = {1, 2, 3, 4}, b = {5, 6, 7, 8};
  BlockManager::Table ta, tb;
  ASSERT_TRUE(bm.Allocate(ta, 4));
  ASSERT_TRUE(bm.Allocate(tb, 4));
  bm.CacheFullBlocks(ta, a, 4);
  bm.CacheFullBlocks(tb, b, 4);
  const std::vector<int32_t> a_blocks = ta.blocks, b_blocks = tb.blocks;
  bm.Free(ta);  // evictable order: a1, a0
  bm.Free(tb);  // then b1, b0
  BlockManager::Table t;
  ASSERT_TRUE(bm.Allocate(t, 2));  // evicts a1: a keeps its first block
  EXPECT_EQ(t.blocks[0], a_blocks[1]);
  EXPECT_EQ(bm.FindCachedPrefix(a, 4).num_tokens, 2);
  EXPECT_EQ(bm.FindCachedPrefix(b, 4).num_tokens, 4);
  ASSERT_TRUE(bm.Allocate(t, 4));  // evicts a0
  EXPECT_EQ(t.blocks[1], a_blocks[0]);
  EXPECT_EQ(bm.FindCachedPrefix(a, 4).num_tokens, 0);
  // A hit moves b out of the pool; the next eviction cannot take it.
  BlockManager::Table tb2;
  ASSERT_TRUE(bm.Allocate(tb2, bm.FindCachedPrefix(b, 4), 4));
  EXPECT_EQ(tb2.blocks, b_blocks);
  EXPECT_EQ(bm.num_free(), 0);
}

TEST(BlockManagerTest, DuplicateContentStaysPrivate) {
  BlockManager bm({.num_blocks = 4, .block_size = 2});
  const std::vector<int32_t> a = {1, 2, 3};
  BlockManager::Table t1, t2;
  ASSERT_TRUE(bm.Allocate(t1, 3));
  ASSERT_TRUE(bm.Allocate(t2, 3));  // computed side by side, before either was cached
  bm.CacheFullBlocks(t1, a, 3);
  bm.CacheFullBlocks(t2, a, 3);
  EXPECT_TRUE(bm.is_cached(t1.blocks[0]));
  EXPECT_FALSE(bm.is_cached(t2.blocks[0]));
  EXPECT_EQ(t2.hashes, t1.hashes);
  bm.Free(t2);
  EXPECT_EQ(bm.num_evictable(), 0);
  EXPECT_EQ(bm.num_free(), 2);
}

TEST(BlockManagerTest, DisabledPrefixCachingNeverHits) {
  BlockManager bm({.num_blocks = 4, .block_size = 2, .enable_prefix_caching = false});
  const std::vector<int32_t> a = {1, 2, 3, 4, 5};
  BlockManager::Table t;
  ASSERT_TRUE(bm.Allocate(t, 5));
  bm.CacheFullBlocks(t, a, 5);
  EXPECT_EQ(bm.FindCachedPrefix(a, 4).num_tokens, 0);
  bm.Free(t);
  EXPECT_EQ(bm.num_evictable(), 0);
}

TEST(BlockManagerTest, HashChainDependsOnParentAndContent) {
  const std::vector<int32_t> x = {1, 2}, y = {2, 1};
  EXPECT_NE(BlockManager::HashBlock(0, x), BlockManager::HashBlock(0, y));
  EXPECT_NE(BlockManager::HashBlock(0, x), BlockManager::HashBlock(1, x));
  EXPECT_EQ(BlockManager::HashBlock(7, x), BlockManager::HashBlock(7, x));
}

// Random operations on a small cache against a model that knows, for every block, which
// sequences hold it and which whole token prefix its K/V were computed for.
TEST(BlockManagerTest, BruteForceAgainstReferenceModel) {
  constexpr int64_t kBlocks = 12, kBs = 3;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    BlockManager bm({.num_blocks = kBlocks, .block_size = kBs});
    struct Seq {
      std::vector<int32_t> tokens;
      int64_t computed = 0;
      BlockManager::Table table;
    };
    std::map<int, Seq> seqs;
    int next_id = 0;
    // content[b]: the token prefix (from position 0) whose last block's K/V block b holds, set once
    // the block is full and computed; empty otherwise.
    std::vector<std::vector<int32_t>> content(kBlocks);
    auto random_tokens = [&](size_t n) {
      std::vector<int32_t> t;
      for (size_t i = 0; i < n; ++i)
        t.push_back(static_cast<int32_t>(rng() % 3));  // small alphabet: many shared prefixes
      return t;
    };
    auto compute = [&](Seq& s, int64_t upto) {
      // Model::Forward writes positions [computed, upto): only into blocks owned by this sequence alone.
      for (int64_t p = s.computed; p < upto; ++p) {
        const int32_t b = s.table.blocks[p / kBs];
        ASSERT_EQ(bm.ref_count(b), 1) << "write into a shared block " << b << " seed " << seed;
        ASSERT_FALSE(bm.is_cached(b)) << "write into a cached block " << b;
        if (p % kBs == 0) content[b].clear();
        if (p % kBs == kBs - 1) content[b].assign(s.tokens.begin(), s.tokens.begin() + p + 1);
      }
      s.computed = upto;
      bm.CacheFullBlocks(s.table, s.tokens, s.computed);
    };
    auto check = [&]() {
      std::map<int32_t, int> refs;
      for (auto& [id, s] : seqs) {
        std::set<int32_t> distinct(s.table.blocks.begin(), s.table.blocks.end());
        ASSERT_EQ(distinct.size(), s.table.blocks.size()) << "a block twice in one table";
        ASSERT_GE(static_cast<int64_t>(s.table.blocks.size()), bm.BlocksFor(s.computed));
        for (int32_t b : s.table.blocks) ++refs[b];
        // Every full computed block of the sequence holds exactly its prefix.
        for (int64_t i = 0; i < s.computed / kBs; ++i) {
          const std::vector<int32_t> want(s.tokens.begin(), s.tokens.begin() + (i + 1) * kBs);
          ASSERT_EQ(content[s.table.blocks[i]], want) << "seed " << seed << " block " << i;
        }
      }
      int64_t used = 0;
      for (int32_t b = 0; b < kBlocks; ++b) {
        ASSERT_EQ(bm.ref_count(b), refs[b]) << "block " << b << " seed " << seed;
        if (refs[b] > 1) {
          ASSERT_TRUE(bm.is_cached(b)) << "a shared block must be a cached one";
        }
        used += refs[b] > 0;
      }
      ASSERT_EQ(bm.num_free(), kBlocks - used);
    };

    for (int op = 0; op < 400; ++op) {
      const int kind = static_cast<int>(rng() % 4);
      if (kind == 0 || seqs.empty()) {
        // New sequence: a random prompt, or a shared prefix of a live one plus random tokens.
        std::vector<int32_t> tokens = random_tokens(1 + rng() % 10);
        if (!seqs.empty() && rng() % 2 == 0) {
          auto it = seqs.begin();
          std::advance(it, rng() % seqs.size());
          std::vector<int32_t> pre(it->second.tokens.begin(),
                                   it->second.tokens.begin() + rng() % (it->second.tokens.size() + 1));
          pre.insert(pre.end(), tokens.begin(), tokens.end());
          tokens = pre;
        }
        const auto n = static_cast<int64_t>(tokens.size());
        BlockManager::Prefix hit = bm.FindCachedPrefix(tokens, n - 1);
        ASSERT_EQ(hit.num_tokens % kBs, 0);
        ASSERT_LE(hit.num_tokens, n - 1);
        for (size_t i = 0; i < hit.blocks.size(); ++i) {
          const std::vector<int32_t> want(tokens.begin(), tokens.begin() + (i + 1) * kBs);
          ASSERT_EQ(content[hit.blocks[i]], want) << "prefix hit with the wrong content, seed " << seed;
          ASSERT_TRUE(bm.is_cached(hit.blocks[i]));
        }
        // Model of capacity: new blocks plus revived ones must fit in the free space.
        int64_t revived = 0;
        for (int32_t b : hit.blocks) revived += bm.ref_count(b) == 0;
        const int64_t upto = hit.num_tokens + 1 + static_cast<int64_t>(rng() % (n - hit.num_tokens));
        const int64_t need = bm.BlocksFor(upto) - static_cast<int64_t>(hit.blocks.size()) + revived;
        const int64_t free_before = bm.num_free();
        Seq s{.tokens = tokens, .computed = hit.num_tokens, .table = {}};
        const bool ok = bm.Allocate(s.table, hit, upto);
        ASSERT_EQ(ok, need <= free_before) << "seed " << seed;
        if (!ok) {
          ASSERT_EQ(bm.num_free(), free_before);
          continue;
        }
        compute(s, upto);
        seqs.emplace(next_id++, std::move(s));
      } else if (kind == 1) {
        // Grow: finish the prompt or append generated tokens.
        auto it = seqs.begin();
        std::advance(it, rng() % seqs.size());
        Seq& s = it->second;
        if (s.computed == static_cast<int64_t>(s.tokens.size())) {
          const std::vector<int32_t> more = random_tokens(1 + rng() % 4);
          s.tokens.insert(s.tokens.end(), more.begin(), more.end());
        }
        const int64_t upto = s.computed + 1 + static_cast<int64_t>(rng() % (s.tokens.size() - s.computed));
        const int64_t need = bm.BlocksFor(upto) - static_cast<int64_t>(s.table.blocks.size());
        const int64_t free_before = bm.num_free();
        const bool ok = bm.Allocate(s.table, upto);
        ASSERT_EQ(ok, need <= free_before);
        if (ok) compute(s, upto);
      } else {
        auto it = seqs.begin();
        std::advance(it, rng() % seqs.size());
        bm.Free(it->second.table);
        seqs.erase(it);
      }
      check();
      if (testing::Test::HasFatalFailure()) return;
    }
    for (auto& [id, s] : seqs) bm.Free(s.table);
    EXPECT_EQ(bm.num_free(), kBlocks);
  }
}

}  // namespace
}  // namespace tessera::engine
