// RAII wrapper over a compiled PCRE2 pattern (UTF + UCP, JIT when available), used by the Split
// pre-tokenizer, the Replace normalizer/decoder and the byte-level GPT-2 splitter.
//
//   TS_ASSIGN_OR_RETURN(auto re, Regex::Compile(R"(\p{L}+)", /*literal=*/false));
//   for (auto [start, end] : re->FindAll("héllo wörld")) { ... }   // byte offsets
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::tokenizer {

class Regex {
 public:
  // `literal` treats the pattern as a plain string (the "String" pattern form of tokenizer.json).
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(std::string_view pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping matches in valid UTF-8 `text`, left to right, as [start, end) byte ranges.
  // An empty match that starts where the previous match ended is skipped and the scan moves on by
  // one character (the find-iterator rule of the reference implementation). If the engine reports
  // an error (e.g. a resource limit on a pathological input), the scan stops there.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex(void* code, std::string pattern) : code_(code), pattern_(std::move(pattern)) {}
  void* code_;  // pcre2_code*
  std::string pattern_;
};

}  // namespace tessera::tokenizer
