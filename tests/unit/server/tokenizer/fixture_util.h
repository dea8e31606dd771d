// Reads the tokenizer fixtures written by tools/make_tokenizer_fixtures.py.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tessera::tokenizer::testing {

inline constexpr const char* kFixtureRoot = "tests/fixtures/tokenizers";
inline const std::vector<std::string>& FixtureNames() {
  static const std::vector<std::string> names = {"gpt2", "llama3", "qwen2", "llama2", "mistral", "misc"};
  return names;
}

struct ExpectedLine {
  std::string text;
  std::vector<int32_t> ids;     // encode(text, add_special_tokens=False)
  std::vector<int32_t> ids_sp;  // encode(text, add_special_tokens=True)
  std::string dec;              // decode(ids, skip_special_tokens=False)
  std::string dec_sp;           // decode(ids_sp, skip_special_tokens=False)
  std::string dec_sk;           // decode(ids_sp, skip_special_tokens=True)
};

// Corpus lines joined with one fixture's expectations; empty on a read error (reported via
// GTest failures by the caller).
std::vector<ExpectedLine> LoadExpected(const std::string& name);

std::string FixtureDir(const std::string& name);

// Short printable form of a string / id list for failure messages.
std::string Escape(const std::string& s);
std::string IdsToString(const std::vector<int32_t>& ids);

}  // namespace tessera::tokenizer::testing
