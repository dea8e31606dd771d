// Exact parity of Encode/Decode with the Hugging Face `tokenizers` library on the fixture corpus
// (tools/make_tokenizer_fixtures.py), for every fixture tokenizer.
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/tokenizer/tokenizer.h"
#include "tests/unit/server/tokenizer/fixture_util.h"

namespace tessera::tokenizer {
namespace {

using testing::Escape;
using testing::ExpectedLine;
using testing::IdsToString;

class ParityTest : public ::testing::TestWithParam<std::string> {};

// Counts mismatches of one check over all lines and prints the first few.
class MismatchLog {
 public:
  explicit MismatchLog(std::string what) : what_(std::move(what)) {}
  void Add(size_t line, const std::string& text, const std::string& expected, const std::string& got) {
    if (++count_ <= 5) {
      ADD_FAILURE() << what_ << " mismatch at line " << line << "\n  text:     " << Escape(text)
                    << "\n  expected: " << expected << "\n  got:      " << got;
    }
  }
  size_t count() const { return count_; }
  const std::string& what() const { return what_; }

 private:
  std::string what_;
  size_t count_ = 0;
};

TEST_P(ParityTest, EncodeAndDecodeMatchReference) {
  const std::string name = GetParam();
  auto tok = Tokenizer::FromFile(testing::FixtureDir(name));
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::vector<ExpectedLine> lines = testing::LoadExpected(name);
  ASSERT_GE(lines.size(), 2000u) << "fixture " << name << " missing or short";

  MismatchLog encode("Encode(add_special_tokens=false)");
  MismatchLog encode_sp("Encode(add_special_tokens=true)");
  MismatchLog decode("Decode(ids, skip_special_tokens=false)");
  MismatchLog decode_sp("Decode(ids_sp, skip_special_tokens=false)");
  MismatchLog decode_sk("Decode(ids_sp, skip_special_tokens=true)");
  for (size_t i = 0; i < lines.size(); ++i) {
    const ExpectedLine& e = lines[i];
    const auto ids = (*tok)->Encode(e.text, false);
    if (ids != e.ids) encode.Add(i, e.text, IdsToString(e.ids), IdsToString(ids));
    const auto ids_sp = (*tok)->Encode(e.text, true);
    if (ids_sp != e.ids_sp) encode_sp.Add(i, e.text, IdsToString(e.ids_sp), IdsToString(ids_sp));
    const std::string dec = (*tok)->Decode(e.ids, false);
    if (dec != e.dec) decode.Add(i, e.text, Escape(e.dec), Escape(dec));
    const std::string dec_sp = (*tok)->Decode(e.ids_sp, false);
    if (dec_sp != e.dec_sp) decode_sp.Add(i, e.text, Escape(e.dec_sp), Escape(dec_sp));
    const std::string dec_sk = (*tok)->Decode(e.ids_sp, true);
    if (dec_sk != e.dec_sk) decode_sk.Add(i, e.text, Escape(e.dec_sk), Escape(dec_sk));
  }
  std::printf("[parity] %-8s lines=%zu", name.c_str(), lines.size());
  for (const MismatchLog* log : {&encode, &encode_sp, &decode, &decode_sp, &decode_sk}) {
    std::printf(" | %s: %zu", log->what().c_str(), log->count());
    EXPECT_EQ(log->count(), 0u) << log->what() << " mismatches for " << name;
  }
  std::printf("\n");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ParityTest, ::testing::ValuesIn(testing::FixtureNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tessera::tokenizer
