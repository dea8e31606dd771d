#include "server/tokenizer/added_tokens.h"

#include <algorithm>

#include "server/tokenizer/normalizers.h"
#include "server/tokenizer/unicode.h"
#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {
namespace {

// Last / first character of a valid UTF-8 string.
char32_t LastChar(std::string_view s) {
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return DecodeUtf8(s, &start);
}

char32_t FirstChar(std::string_view s) {
  size_t pos = 0;
  return DecodeUtf8(s, &pos);
}

// Start of the run of whitespace that ends `s`.
size_t TrailingSpaceStart(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!IsWhiteSpace(DecodeUtf8(s, &pos))) break;
    end = start;
  }
  return end;
}

// Length of the run of whitespace that starts `s`.
size_t LeadingSpaceLength(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    if (!IsWhiteSpace(DecodeUtf8(s, &next))) break;
    pos = next;
  }
  return pos;
}

}  // namespace

void AddedVocabulary::Trie::Insert(std::string_view pattern, int32_t token) {
  int32_t node = 0;
  for (unsigned char b : pattern) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
    auto it = edges.find(key);
    if (it == edges.end()) {
      nodes.push_back(Node{});
      it = edges.emplace(key, static_cast<int32_t>(nodes.size() - 1)).first;
    }
    node = it->second;
  }
  // On duplicate patterns the first token keeps the slot.
  if (nodes[node].token < 0) nodes[node].token = token;
  first_byte[static_cast<unsigned char>(pattern[0])] = true;
}

std::pair<int32_t, size_t> AddedVocabulary::Trie::LongestAt(std::string_view text, size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  if (!first_byte[static_cast<unsigned char>(text[pos])]) return best;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = edges.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
    if (it == edges.end()) break;
    node = it->second;
    if (nodes[node].token >= 0) best = {nodes[node].token, i + 1 - pos};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    AddedToken& t = tokens_[i];
    t.id_token = t.content;
    by_id_[t.id] = i;
    by_content_.emplace(t.content, t.id);
    if (t.special) special_contents_.insert(t.content);
    if (t.content.empty()) continue;
    if (t.normalized) {
      std::string pattern = t.content;
      if (normalizer != nullptr) normalizer->Normalize(&pattern);
      t.id_token = pattern;
      if (!pattern.empty()) normalized_trie_.Insert(pattern, static_cast<int32_t>(i));
    } else {
      raw_trie_.Insert(t.content, static_cast<int32_t>(i));
    }
  }
}

std::vector<AddedSplit> AddedVocabulary::Split(std::string_view text, bool normalized) const {
  const Trie& trie = normalized ? normalized_trie_ : raw_trie_;
  std::vector<AddedSplit> out;
  size_t emitted = 0;  // end of the last piece pushed
  size_t pos = 0;
  while (pos < text.size()) {
    const auto [index, len] = trie.LongestAt(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t start = pos;
    size_t stop = pos + len;
    pos = stop;  // scanning resumes after the raw match whatever happens below
    if (token.single_word) {
      const bool free_left = start == 0 || !IsWordChar(LastChar(text.substr(0, start)));
      const bool free_right = stop == text.size() || !IsWordChar(FirstChar(text.substr(stop)));
      if (!free_left || !free_right) continue;
    }
    if (token.lstrip) start = std::max(TrailingSpaceStart(text.substr(0, start)), emitted);
    if (token.rstrip) stop += LeadingSpaceLength(text.substr(stop));
    if (emitted < start) out.push_back({emitted, start, -1});
    out.push_back({start, stop, token.id});
    emitted = stop;
  }
  if (emitted < text.size()) out.push_back({emitted, text.size(), -1});
  return out;
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(AsAbsl(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tessera::tokenizer
