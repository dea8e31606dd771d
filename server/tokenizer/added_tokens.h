// Added tokens ("added_tokens" in tokenizer.json): strings that are cut out of the input before
// normalization and pre-tokenization and map straight to one id.
//
// Each entry has {id, content, special, normalized, lstrip, rstrip, single_word}:
//   normalized=false  matched against the raw input (special tokens are usually like this)
//   normalized=true   matched against the normalized text; its pattern is the normalized content
//   lstrip / rstrip   the match also swallows whitespace to its left / right
//   single_word       only matches when not touching word characters on either side
//   special           dropped by Decode(..., skip_special_tokens=true)
// Lookups by content use the original content; lookups by id give the (normalized) id_token.
// Matching is leftmost-longest over all contents of one kind, non-overlapping, left to right.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"

namespace tessera::tokenizer {

class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool normalized = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  // The token string an id maps back to: `content` run through the normalizer when `normalized`
  // (that is what the reference library decodes), else `content`. Filled in by AddedVocabulary.
  std::string id_token;
};

// One piece of a split: either an added token (id >= 0) or plain text between them (id == -1).
struct AddedSplit {
  size_t start;
  size_t end;
  int32_t id;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `normalizer` (may be null) gives the patterns of normalized tokens.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits `text` on tokens with the given `normalized` flag. Covers all of `text`; empty plain
  // pieces may appear and are for the caller to drop.
  std::vector<AddedSplit> Split(std::string_view text, bool normalized) const;

  const AddedToken* FindById(int32_t id) const;
  std::optional<int32_t> FindByContent(std::string_view content) const;
  bool IsSpecialContent(std::string_view content) const {
    return special_contents_.contains(absl::string_view(content.data(), content.size()));
  }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Byte trie over the patterns of one kind of token.
  struct Trie {
    struct Node {
      int32_t token = -1;  // index into tokens_ of a pattern ending here
    };
    std::vector<Node> nodes{Node{}};
    absl::flat_hash_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> child
    bool first_byte[256] = {};
    void Insert(std::string_view pattern, int32_t token);
    // Longest pattern starting at text[pos]: (token index, length), or token -1.
    std::pair<int32_t, size_t> LongestAt(std::string_view text, size_t pos) const;
  };

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  absl::flat_hash_map<std::string, int32_t> by_content_;
  absl::flat_hash_set<std::string> special_contents_;
  Trie raw_trie_;
  Trie normalized_trie_;
};

}  // namespace tessera::tokenizer
