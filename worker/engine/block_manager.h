// KV cache block manager with prefix caching: hands out the blocks of a PagedKvCache to sequences,
// reference-counts blocks shared through a common prefix, and keeps freed full blocks findable by
// content until their space is needed.
//
//   BlockManager blocks({.num_blocks = 1024, .block_size = 16});
//   BlockManager::Table table;
//   BlockManager::Prefix hit = blocks.FindCachedPrefix(tokens, tokens.size() - 1);
//   if (!blocks.Allocate(table, hit, hit.num_tokens + chunk)) { /* preempt someone, or wait */ }
//   // ... Model::Forward wrote K/V for tokens [0, hit.num_tokens + chunk) ...
//   blocks.CacheFullBlocks(table, tokens, hit.num_tokens + chunk);
//   blocks.Free(table);  // when the sequence ends or is preempted
//
// Identity of a block: a full block (block_size tokens, all computed) is named by a hash chain,
// hash_i = H(hash_{i-1}, tokens of block i), so equal hashes mean equal whole prefixes, as in vLLM's
// automatic prefix caching. A lookup also compares the stored tokens and parent hash, so a hash
// collision costs a miss, never wrong K/V (unless two different parents collide as well).
//
// Free space: blocks with reference count 0 are either plain free blocks (no hash) or cached ones
// in an LRU pool. Allocation takes plain free blocks first, then evicts the least recently freed
// cached block. A sequence frees its blocks tail first, so a chain's later blocks are evicted
// before its head, which other requests are more likely to share.
//
// Not thread-safe: owned by the scheduler of one engine.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace tessera::engine {

class BlockManager {
 public:
  struct Options {
    int64_t num_blocks = 0;
    int64_t block_size = 16;
    bool enable_prefix_caching = true;
  };

  // The blocks of one sequence.
  struct Table {
    std::vector<int32_t> blocks;   // [ceil(tokens / block_size)] block ids, position p in blocks[p / block_size]
    std::vector<uint64_t> hashes;  // chain hashes of the first hashes.size() blocks (full and computed)
  };

  // A run of cached blocks covering the first num_tokens tokens of a sequence.
  struct Prefix {
    std::vector<int32_t> blocks;
    std::vector<uint64_t> hashes;
    int64_t num_tokens = 0;  // blocks.size() * block_size
  };

  explicit BlockManager(const Options& options);

  int64_t block_size() const { return options_.block_size; }
  int64_t num_total() const { return options_.num_blocks; }
  // Blocks that Allocate can hand out now: plain free plus evictable cached blocks.
  int64_t num_free() const { return static_cast<int64_t>(free_.size()) + num_evictable_; }
  int64_t num_evictable() const { return num_evictable_; }
  int64_t BlocksFor(int64_t tokens) const { return (tokens + options_.block_size - 1) / options_.block_size; }

  // The longest chain of cached full blocks that is a prefix of `tokens`, at most max_tokens tokens
  // long. Takes no references: pass the result to Allocate before anything else changes the pool.
  Prefix FindCachedPrefix(std::span<const int32_t> tokens, int64_t max_tokens) const;

  // Makes `table` cover `num_tokens` tokens. An empty table first takes a reference on each block
  // of `prefix` (from FindCachedPrefix); then new blocks are appended, evicting cached ones as
  // needed. Returns false, changing nothing, when there is not enough free space.
  bool Allocate(Table& table, const Prefix& prefix, int64_t num_tokens);
  bool Allocate(Table& table, int64_t num_tokens) { return Allocate(table, Prefix{}, num_tokens); }

  // Records the hashes of the table's blocks that are full and computed, given the sequence's
  // tokens (at least num_computed of them) and that tokens [0, num_computed) have K/V, and makes
  // them findable. A block whose content is already cached under another id stays private.
  void CacheFullBlocks(Table& table, std::span<const int32_t> tokens, int64_t num_computed);

  // Drops the table's references and clears it.
  void Free(Table& table);

  // For tests and metrics.
  int32_t ref_count(int32_t block) const { return blocks_[block].ref_count; }
  bool is_cached(int32_t block) const { return blocks_[block].cached; }

  // H(parent, tokens): the chain hash of a block whose parent block has hash `parent` (0 for the
  // first block). Deterministic across runs and machines.
  static uint64_t HashBlock(uint64_t parent, std::span<const int32_t> tokens);

 private:
  struct Block {
    int32_t ref_count = 0;
    bool cached = false;  // in cached_ under `hash`
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    std::vector<int32_t> tokens;  // [block_size] while cached
    // Links of the LRU list of evictable blocks (cached, ref_count 0); -1 = none.
    int32_t prev = -1, next = -1;
    bool evictable = false;
  };

  // The cached block holding this chain link, or -1.
  int32_t Lookup(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) const;
  void PushEvictable(int32_t b);    // at the most recently used end
  void RemoveEvictable(int32_t b);  // from anywhere in the list
  int32_t TakeFreeBlock();          // a plain free block, else the LRU evictable one (uncached)

  Options options_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;              // plain free blocks, taken from the back
  int32_t lru_head_ = -1, lru_tail_ = -1;  // head: evicted first
  int64_t num_evictable_ = 0;
  absl::flat_hash_map<uint64_t, int32_t> cached_;  // chain hash -> block
};

}  // namespace tessera::engine
