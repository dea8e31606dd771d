#include "worker/engine/block_manager.h"

#include <algorithm>

namespace tessera::engine {
namespace {

// SplitMix64's finalizer: a bijection on 64 bits with full avalanche.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

}  // namespace

uint64_t BlockManager::HashBlock(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = Mix(parent + kGolden);
  for (int32_t t : tokens) h = Mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + kGolden));
  return Mix(h ^ tokens.size());
}

BlockManager::BlockManager(const Options& options) : options_(options), blocks_(options.num_blocks) {
  free_.reserve(options.num_blocks);
  // Hand out low block ids first.
  for (int64_t b = options.num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

int32_t BlockManager::Lookup(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return -1;
  const Block& b = blocks_[it->second];
  if (b.parent_hash != parent || !std::equal(tokens.begin(), tokens.end(), b.tokens.begin(), b.tokens.end())) {
    return -1;
  }
  return it->second;
}

BlockManager::Prefix BlockManager::FindCachedPrefix(std::span<const int32_t> tokens, int64_t max_tokens) const {
  Prefix prefix;
  if (!options_.enable_prefix_caching) return prefix;
  const int64_t bs = options_.block_size;
  const int64_t max_blocks = std::min<int64_t>(max_tokens, static_cast<int64_t>(tokens.size())) / bs;
  uint64_t parent = 0;
  for (int64_t i = 0; i < max_blocks; ++i) {
    std::span<const int32_t> block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t hash = HashBlock(parent, block_tokens);
    const int32_t b = Lookup(hash, parent, block_tokens);
    if (b < 0) break;
    prefix.blocks.push_back(b);
    prefix.hashes.push_back(hash);
    parent = hash;
  }
  prefix.num_tokens = static_cast<int64_t>(prefix.blocks.size()) * bs;
  return prefix;
}

bool BlockManager::Allocate(Table& table, const Prefix& prefix, int64_t num_tokens) {
  const bool take_prefix = table.blocks.empty() && !prefix.blocks.empty();
  const int64_t have = static_cast<int64_t>(table.blocks.size()) + (take_prefix ? prefix.blocks.size() : 0);
  const int64_t missing = std::max<int64_t>(0, BlocksFor(num_tokens) - have);
  int64_t available = num_free();
  if (take_prefix) {
    // Reviving an evictable block uses up free space as well.
    for (int32_t b : prefix.blocks) available -= blocks_[b].ref_count == 0 ? 1 : 0;
  }
  if (missing > available) return false;
  if (take_prefix) {
    for (int32_t b : prefix.blocks) {
      Block& blk = blocks_[b];
      if (blk.ref_count == 0) RemoveEvictable(b);
      ++blk.ref_count;
      table.blocks.push_back(b);
    }
    table.hashes = prefix.hashes;
  }
  for (int64_t i = 0; i < missing; ++i) {
    const int32_t b = TakeFreeBlock();
    blocks_[b].ref_count = 1;
    table.blocks.push_back(b);
  }
  return true;
}

void BlockManager::CacheFullBlocks(Table& table, std::span<const int32_t> tokens, int64_t num_computed) {
  if (!options_.enable_prefix_caching) return;
  const int64_t bs = options_.block_size;
  const int64_t full = std::min<int64_t>(num_computed / bs, static_cast<int64_t>(table.blocks.size()));
  for (auto i = static_cast<int64_t>(table.hashes.size()); i < full; ++i) {
    const uint64_t parent = i == 0 ? 0 : table.hashes[i - 1];
    std::span<const int32_t> block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t hash = HashBlock(parent, block_tokens);
    table.hashes.push_back(hash);
    Block& blk = blocks_[table.blocks[i]];
    if (blk.cached || cached_.contains(hash)) continue;  // the content is already findable
    blk.cached = true;
    blk.hash = hash;
    blk.parent_hash = parent;
    blk.tokens.assign(block_tokens.begin(), block_tokens.end());
    cached_.emplace(hash, table.blocks[i]);
  }
}

void BlockManager::Free(Table& table) {
  for (auto it = table.blocks.rbegin(); it != table.blocks.rend(); ++it) {
    Block& blk = blocks_[*it];
    if (--blk.ref_count > 0) continue;
    if (blk.cached) {
      PushEvictable(*it);
    } else {
      free_.push_back(*it);
    }
  }
  table.blocks.clear();
  table.hashes.clear();
}

void BlockManager::PushEvictable(int32_t b) {
  Block& blk = blocks_[b];
  blk.evictable = true;
  blk.prev = lru_tail_;
  blk.next = -1;
  if (lru_tail_ >= 0) {
    blocks_[lru_tail_].next = b;
  } else {
    lru_head_ = b;
  }
  lru_tail_ = b;
  ++num_evictable_;
}

void BlockManager::RemoveEvictable(int32_t b) {
  Block& blk = blocks_[b];
  if (blk.prev >= 0) {
    blocks_[blk.prev].next = blk.next;
  } else {
    lru_head_ = blk.next;
  }
  if (blk.next >= 0) {
    blocks_[blk.next].prev = blk.prev;
  } else {
    lru_tail_ = blk.prev;
  }
  blk.prev = blk.next = -1;
  blk.evictable = false;
  --num_evictable_;
}

int32_t BlockManager::TakeFreeBlock() {
  if (!free_.empty()) {
    const int32_t b = free_.back();
    free_.pop_back();
    return b;
  }
  const int32_t b = lru_head_;
  RemoveEvictable(b);
  Block& blk = blocks_[b];
  cached_.erase(blk.hash);
  blk.cached = false;
  blk.tokens.clear();
  return b;
}

}  // namespace tessera::engine
