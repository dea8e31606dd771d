#include "server/tokenizer/bpe_model.h"

#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "server/tokenizer/json_util.h"
#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {
namespace {

constexpr size_t kCacheCapacity = 10000;
constexpr size_t kMaxCachedPieceBytes = 256;

inline uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct MergeRule {
  int32_t rank;
  int32_t new_id;
};

struct Options {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel final : public Model {
 public:
  BpeModel(absl::flat_hash_map<std::string, int32_t> vocab, absl::flat_hash_map<uint64_t, MergeRule> merges,
           Options options)
      : vocab_(std::move(vocab)), merges_(std::move(merges)), options_(std::move(options)) {
    for (const auto& [token, id] : vocab_) vocab_r_[id] = token;
    if (options_.unk_token) {
      auto it = vocab_.find(*options_.unk_token);
      if (it != vocab_.end()) unk_id_ = it->second;
    }
    if (options_.byte_fallback) {
      for (int b = 0; b < 256; ++b) {
        auto it = vocab_.find(absl::StrFormat("<0x%02X>", b));
        byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
      }
    }
  }

  void Tokenize(std::string_view piece, std::vector<int32_t>* ids) const override {
    if (piece.empty()) return;
    if (options_.ignore_merges) {
      if (auto it = vocab_.find(AsAbsl(piece)); it != vocab_.end()) {
        ids->push_back(it->second);
        return;
      }
    }
    const bool cacheable = piece.size() < kMaxCachedPieceBytes;
    if (cacheable) {
      absl::MutexLock lock(&cache_mu_);
      if (auto it = cache_.find(AsAbsl(piece)); it != cache_.end()) {
        ids->insert(ids->end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> word = MergeWord(piece);
    ids->insert(ids->end(), word.begin(), word.end());
    if (cacheable) {
      absl::MutexLock lock(&cache_mu_);
      if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(piece), std::move(word));
    }
  }

  std::optional<int32_t> TokenToId(std::string_view token) const override {
    auto it = vocab_.find(AsAbsl(token));
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }

  const std::string* IdToToken(int32_t id) const override {
    auto it = vocab_r_.find(id);
    return it == vocab_r_.end() ? nullptr : &it->second;
  }

  size_t VocabSize() const override { return vocab_.size(); }

 private:
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool removed;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    // Min-heap order: lowest rank first, then leftmost.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  // Initial symbols: one per character (with unk / byte fallback), then all merges applied.
  std::vector<int32_t> MergeWord(std::string_view w) const {
    std::vector<Symbol> symbols;
    symbols.reserve(w.size());
    auto add = [&symbols](int32_t id) {
      const auto n = static_cast<int32_t>(symbols.size());
      symbols.push_back({id, n - 1, n + 1, false});
    };
    int32_t pending_unk = -1;  // id of a run of unknown characters not yet emitted
    std::string scratch;
    for (size_t i = 0; i < w.size();) {
      const size_t start = i;
      i += Utf8CharLength(w, i);
      std::string_view s = w.substr(start, i - start);
      const bool decorate = (start != 0 && !options_.continuing_subword_prefix.empty()) ||
                            (i == w.size() && !options_.end_of_word_suffix.empty());
      if (decorate) {
        scratch.clear();
        if (start != 0) scratch.append(options_.continuing_subword_prefix);
        scratch.append(s);
        if (i == w.size()) scratch.append(options_.end_of_word_suffix);
        s = scratch;
      }
      if (auto it = vocab_.find(AsAbsl(s)); it != vocab_.end()) {
        if (pending_unk >= 0) {
          add(pending_unk);
          pending_unk = -1;
        }
        add(it->second);
        continue;
      }
      if (options_.byte_fallback) {
        bool all = true;
        for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
        if (all) {
          // Like a known character, byte tokens do not flush a pending unk run first.
          for (unsigned char b : s) add(byte_ids_[b]);
          continue;
        }
      }
      if (unk_id_) {
        if (pending_unk >= 0 && !options_.fuse_unk) add(pending_unk);
        pending_unk = *unk_id_;
      }
      // Without an unk token the character is dropped.
    }
    if (pending_unk >= 0) add(pending_unk);
    if (!symbols.empty()) symbols.back().next = -1;

    std::priority_queue<Candidate> queue;
    for (size_t k = 0; k + 1 < symbols.size(); ++k) {
      if (auto it = merges_.find(PairKey(symbols[k].id, symbols[k + 1].id)); it != merges_.end()) {
        queue.push({it->second.rank, static_cast<int32_t>(k), it->second.new_id});
      }
    }
    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (left.removed || left.next < 0) continue;
      const int32_t right_pos = left.next;
      Symbol& right = symbols[right_pos];
      // Skip stale entries: the pair at this position changed since it was queued.
      auto rule = merges_.find(PairKey(left.id, right.id));
      if (rule == merges_.end() || rule->second.new_id != top.new_id) continue;
      left.id = top.new_id;
      left.next = right.next;
      right.removed = true;
      if (right.next >= 0) symbols[right.next].prev = top.pos;
      if (left.prev >= 0) {
        if (auto it = merges_.find(PairKey(symbols[left.prev].id, left.id)); it != merges_.end()) {
          queue.push({it->second.rank, left.prev, it->second.new_id});
        }
      }
      if (left.next >= 0) {
        if (auto it = merges_.find(PairKey(left.id, symbols[left.next].id)); it != merges_.end()) {
          queue.push({it->second.rank, top.pos, it->second.new_id});
        }
      }
    }
    std::vector<int32_t> out;
    out.reserve(symbols.size());
    for (const Symbol& s : symbols) {
      if (!s.removed) out.push_back(s.id);
    }
    return out;
  }

  absl::flat_hash_map<std::string, int32_t> vocab_;
  absl::flat_hash_map<int32_t, std::string> vocab_r_;
  absl::flat_hash_map<uint64_t, MergeRule> merges_;
  Options options_;
  std::optional<int32_t> unk_id_;
  int32_t byte_ids_[256] = {};

  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_;
};

// Splits one merges entry into its two sides.
absl::StatusOr<std::pair<std::string, std::string>> ParseMerge(const nlohmann::json& m, size_t index) {
  if (m.is_string()) {
    const auto s = m.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("BPE merge #", index + 1, " '", s, "' is not \"left right\""));
    }
    return std::make_pair(s.substr(0, space), s.substr(space + 1));
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return std::make_pair(m[0].get<std::string>(), m[1].get<std::string>());
  }
  return absl::InvalidArgumentError(absl::StrCat("BPE merge #", index + 1, " is neither a string nor a pair"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> ParseBpeModel(const nlohmann::json& j) {
  if (auto it = j.find("dropout"); it != j.end() && !it->is_null() && it->get<double>() != 0.0) {
    return absl::UnimplementedError("BPE dropout is not supported");
  }
  const auto& vocab_json = j.at("vocab");
  if (!vocab_json.is_object()) return absl::InvalidArgumentError("BPE vocab must be an object");
  absl::flat_hash_map<std::string, int32_t> vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [token, id] : vocab_json.items()) {
    const auto value = id.get<int64_t>();
    if (value < 0 || value > INT32_MAX) return absl::InvalidArgumentError(absl::StrCat("bad id for token ", token));
    vocab[token] = static_cast<int32_t>(value);
  }
  Options options;
  if (auto it = j.find("unk_token"); it != j.end() && !it->is_null()) options.unk_token = it->get<std::string>();
  options.continuing_subword_prefix = GetOr<std::string>(j, "continuing_subword_prefix", "");
  options.end_of_word_suffix = GetOr<std::string>(j, "end_of_word_suffix", "");
  options.fuse_unk = GetOr(j, "fuse_unk", false);
  options.byte_fallback = GetOr(j, "byte_fallback", false);
  options.ignore_merges = GetOr(j, "ignore_merges", false);

  absl::flat_hash_map<uint64_t, MergeRule> merges;
  if (auto it = j.find("merges"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return absl::InvalidArgumentError("BPE merges must be an array");
    const size_t prefix_len = options.continuing_subword_prefix.size();
    merges.reserve(it->size());
    for (size_t i = 0; i < it->size(); ++i) {
      auto parsed = ParseMerge((*it)[i], i);
      if (!parsed.ok()) return parsed.status();
      const auto& [a, b] = *parsed;
      auto a_it = vocab.find(a);
      auto b_it = vocab.find(b);
      if (a_it == vocab.end() || b_it == vocab.end()) {
        return absl::InvalidArgumentError(absl::StrCat("BPE merge #", i + 1, " uses a token missing from the vocab"));
      }
      const std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : std::string());
      auto m_it = vocab.find(merged);
      if (m_it == vocab.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("BPE merge #", i + 1, " result '", merged, "' is not in the vocab"));
      }
      // A repeated rule keeps the rank of its last occurrence.
      merges[PairKey(a_it->second, b_it->second)] = {static_cast<int32_t>(i), m_it->second};
    }
  }
  return std::make_unique<BpeModel>(std::move(vocab), std::move(merges), std::move(options));
}

}  // namespace tessera::tokenizer
