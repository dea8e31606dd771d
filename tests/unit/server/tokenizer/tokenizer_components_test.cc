// Error handling, invalid input, configuration and UTF-8 helpers.
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/tokenizer/tokenizer.h"
#include "server/tokenizer/utf8.h"
#include "tests/unit/server/tokenizer/fixture_util.h"

namespace tessera::tokenizer {
namespace {

constexpr const char* kMinimalBpe = R"({
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
  "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null, "added_tokens": []
})";

std::string WithField(const std::string& key, const std::string& value) {
  return R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}, ")" + key +
         "\": " + value + "}";
}

TEST(TokenizerErrors, MinimalBpeLoadsAndMerges) {
  auto tok = Tokenizer::FromJson(kMinimalBpe, "minimal");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->Encode("abab", false), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ((*tok)->Decode(std::vector<int32_t>{2, 0, 99}, false), "ab a");
}

TEST(TokenizerErrors, BadJson) {
  for (const char* text :
       {"", "{", "not json", "[1, 2]", "{\"model\": 3}", "{\"model\": {\"type\": \"BPE\"}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": 5}}", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"added_tokens\": [{}]}"}) {
    auto tok = Tokenizer::FromJson(text, "bad");
    EXPECT_FALSE(tok.ok()) << text;
  }
}

TEST(TokenizerErrors, UnknownModelType) {
  auto tok = Tokenizer::FromJson(R"({"model": {"type": "Unigram", "vocab": []}})", "unigram");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(tok.status().message().find("Unigram"), std::string::npos) << tok.status();
}

TEST(TokenizerErrors, UnknownComponentsAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"pre_tokenizer", R"({"type": "BertPreTokenizer"})"},
      {"pre_tokenizer", R"({"type": "Sequence", "pretokenizers": [{"type": "Punctuation"}]})"},
      {"normalizer", R"({"type": "BertNormalizer"})"},
      {"decoder", R"({"type": "WordPiece"})"},
      {"post_processor", R"({"type": "SomethingNew"})"},
  };
  for (const auto& [key, value] : cases) {
    auto tok = Tokenizer::FromJson(WithField(key, value), "x");
    ASSERT_FALSE(tok.ok()) << key << " " << value;
    const std::string type = value.substr(value.rfind("\"type\": \"") + 9);
    EXPECT_NE(tok.status().message().find(type.substr(0, type.find('"'))), std::string::npos) << tok.status();
  }
}

TEST(TokenizerErrors, BadComponentFields) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})"},
           {"pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways"})"},
           {"pre_tokenizer", R"({"type": "Split", "pattern": {"Glob": "a"}, "behavior": "Isolated"})"},
           {"pre_tokenizer", R"({"type": "Metaspace", "replacement": "_", "prepend_scheme": "sometimes"})"},
           {"normalizer", R"({"type": "Replace", "pattern": 3, "content": "x"})"},
           {"decoder", R"({"type": "Strip", "content": 5})"},
           {"normalizer", R"("NFC")"},
       }) {
    EXPECT_FALSE(Tokenizer::FromJson(WithField(key, value), "x").ok()) << key << " " << value;
  }
}

TEST(TokenizerErrors, MissingFile) {
  auto tok = Tokenizer::FromFile("tests/fixtures/tokenizers/does_not_exist/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
}

TEST(TokenizerInput, InvalidUtf8IsReplacedNotFatal) {
  for (const auto& name : testing::FixtureNames()) {
    auto tok = Tokenizer::FromFile(testing::FixtureDir(name));
    ASSERT_TRUE(tok.ok()) << tok.status();
    // Each invalid sequence encodes exactly like the U+FFFD text Python would receive.
    EXPECT_EQ((*tok)->Encode("a\xE2\x82 b", true), (*tok)->Encode("a\xEF\xBF\xBD b", true)) << name;
    EXPECT_EQ((*tok)->Encode("\xC0\xAF", false), (*tok)->Encode("\xEF\xBF\xBD\xEF\xBF\xBD", false)) << name;
    EXPECT_EQ((*tok)->Encode("x\xF0\x9F\x98", false), (*tok)->Encode("x\xEF\xBF\xBD", false)) << name;
    std::mt19937 rng(42);
    for (int trial = 0; trial < 200; ++trial) {
      std::string bytes(1 + trial * 3 % 300, '\0');
      for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
      const auto ids = (*tok)->Encode(bytes, trial % 2 == 0);
      const std::string text = (*tok)->Decode(ids, trial % 3 == 0);
      EXPECT_TRUE(IsValidUtf8(text)) << name;
    }
  }
}

TEST(TokenizerConfig, SpecialIdsAndTemplate) {
  auto llama3 = Tokenizer::FromFile(testing::FixtureDir("llama3"));
  ASSERT_TRUE(llama3.ok()) << llama3.status();
  EXPECT_EQ((*llama3)->bos_id(), (*llama3)->TokenToId("<|begin_of_text|>"));
  EXPECT_EQ((*llama3)->eos_id(), (*llama3)->TokenToId("<|eot_id|>"));
  ASSERT_TRUE((*llama3)->bos_id().has_value());
  EXPECT_TRUE((*llama3)->IsSpecial(*(*llama3)->bos_id()));
  EXPECT_TRUE((*llama3)->config().chat_template.has_value());
  EXPECT_EQ((*llama3)->config().add_bos_token, true);
  EXPECT_EQ((*llama3)->Encode("hi", true).front(), *(*llama3)->bos_id());
  EXPECT_EQ((*llama3)->IdToToken(*(*llama3)->bos_id()), "<|begin_of_text|>");

  auto llama2 = Tokenizer::FromFile(testing::FixtureDir("llama2") + "/tokenizer.json");
  ASSERT_TRUE(llama2.ok()) << llama2.status();
  EXPECT_EQ((*llama2)->bos_id(), 1);
  EXPECT_EQ((*llama2)->eos_id(), 2);
  EXPECT_EQ((*llama2)->TokenToId("<0x41>"), 3 + 0x41);
  EXPECT_FALSE((*llama2)->IsSpecial(3 + 0x41));
  EXPECT_GE((*llama2)->VocabSize(), 3000u);

  auto qwen2 = Tokenizer::FromFile(testing::FixtureDir("qwen2"));
  ASSERT_TRUE(qwen2.ok()) << qwen2.status();
  const auto tool_call = (*qwen2)->TokenToId("<tool_call>");
  ASSERT_TRUE(tool_call.has_value());
  EXPECT_FALSE((*qwen2)->IsSpecial(*tool_call));
  EXPECT_FALSE((*qwen2)->bos_id().has_value());
}

TEST(Utf8, SanitizeReplacesMaximalSubparts) {
  EXPECT_EQ(SanitizeUtf8("abc"), "abc");
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\x98"), "\xEF\xBF\xBD");                          // truncated 4-byte
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"
                         "A"),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(SanitizeUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xE2\x82"), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xE2\x82\xAC"), 0u);
}

}  // namespace
}  // namespace tessera::tokenizer
