// Streaming detokenization: for every fixture line, feeding ids one at a time yields valid UTF-8
// pieces whose concatenation equals Decode() of all ids.
#include "server/tokenizer/incremental_decoder.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/tokenizer/tokenizer.h"
#include "server/tokenizer/utf8.h"
#include "tests/unit/server/tokenizer/fixture_util.h"

namespace tessera::tokenizer {
namespace {

using testing::Escape;
using testing::IdsToString;

// Streams `ids` and checks the invariants; returns false (with a failure) on the first violation.
bool CheckStream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special, size_t line) {
  IncrementalDecoder stream(tok, skip_special);
  std::string joined;
  for (size_t k = 0; k <= ids.size(); ++k) {
    const std::string piece = k < ids.size() ? stream.Add(ids[k]) : stream.Flush();
    if (!IsValidUtf8(piece)) {
      ADD_FAILURE() << "line " << line << ": piece " << k << " is not valid UTF-8: " << Escape(piece);
      return false;
    }
    joined += piece;
  }
  const std::string expected = tok.Decode(ids, skip_special);
  if (joined != expected) {
    ADD_FAILURE() << "line " << line << " skip_special=" << skip_special << " ids " << IdsToString(ids)
                  << "\n  expected: " << Escape(expected) << "\n  streamed: " << Escape(joined);
    return false;
  }
  return true;
}

class IncrementalDecoderTest : public ::testing::TestWithParam<std::string> {};

TEST_P(IncrementalDecoderTest, StreamingMatchesDecodeOnCorpus) {
  auto tok = Tokenizer::FromFile(testing::FixtureDir(GetParam()));
  ASSERT_TRUE(tok.ok()) << tok.status();
  const auto lines = testing::LoadExpected(GetParam());
  ASSERT_FALSE(lines.empty());
  size_t failures = 0;
  for (size_t i = 0; i < lines.size() && failures < 5; ++i) {
    for (bool skip : {false, true}) {
      if (!CheckStream(**tok, lines[i].ids_sp, skip, i)) ++failures;
    }
  }
  EXPECT_EQ(failures, 0u);
}

TEST_P(IncrementalDecoderTest, StreamingMatchesDecodeOnRandomIds) {
  auto tok = Tokenizer::FromFile(testing::FixtureDir(GetParam()));
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> any_id(-2, static_cast<int32_t>((*tok)->VocabSize()) + 2);
  std::uniform_int_distribution<int32_t> low_id(0, 300);  // byte tokens live here in most fixtures
  size_t failures = 0;
  for (int trial = 0; trial < 300 && failures < 5; ++trial) {
    std::vector<int32_t> ids(1 + trial % 40);
    for (auto& id : ids) id = (trial % 2 == 0) ? any_id(rng) : low_id(rng);
    for (bool skip : {false, true}) {
      if (!CheckStream(**tok, ids, skip, static_cast<size_t>(trial))) ++failures;
    }
  }
  EXPECT_EQ(failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, IncrementalDecoderTest, ::testing::ValuesIn(testing::FixtureNames()),
                         [](const auto& info) { return info.param; });

TEST(IncrementalDecoder, HoldsIncompleteCharacterUntilComplete) {
  auto tok = Tokenizer::FromFile(testing::FixtureDir("llama2"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  // "€" is E2 82 AC; as byte-fallback tokens nothing may come out until the run ends.
  const auto e2 = (*tok)->TokenToId("<0xE2>");
  const auto x82 = (*tok)->TokenToId("<0x82>");
  const auto xac = (*tok)->TokenToId("<0xAC>");
  ASSERT_TRUE(e2 && x82 && xac);
  IncrementalDecoder stream(**tok);
  EXPECT_EQ(stream.Add(*e2), "");
  EXPECT_EQ(stream.Add(*x82), "");
  EXPECT_EQ(stream.Add(*xac), "");
  EXPECT_EQ(stream.Flush(), "\xE2\x82\xAC");
}

TEST(IncrementalDecoder, ByteLevelSplitCharacter) {
  auto tok = Tokenizer::FromFile(testing::FixtureDir("gpt2"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::string text = "ok \xF0\x9F\xA6\x80 done";  // crab emoji
  const auto ids = (*tok)->Encode(text, false);
  IncrementalDecoder stream(**tok);
  std::string joined;
  for (int32_t id : ids) {
    const std::string piece = stream.Add(id);
    EXPECT_TRUE(IsValidUtf8(piece)) << Escape(piece);
    joined += piece;
  }
  joined += stream.Flush();
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace tessera::tokenizer
