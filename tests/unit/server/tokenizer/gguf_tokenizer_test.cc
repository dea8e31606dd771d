// Tokenizers built from GGUF metadata against references recorded by tools/make_gguf_fixtures.py:
// the `tokenizers` library configured with llama.cpp's pre-tokenizer splits (byte-level BPE), and
// transformers' own GGUF tokenizer conversion (SentencePiece-style "llama" vocabularies), on the
// shared tokenizer corpus (tests/fixtures/tokenizers/corpus.jsonl).
#include "server/tokenizer/gguf_tokenizer.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/server/tokenizer/fixture_util.h"

namespace tessera::tokenizer {
namespace {

using ::testing::HasSubstr;

struct Expected {
  std::string text;
  std::vector<int32_t> ids, ids_sp;
  std::string dec, dec_sp, dec_sk;
};

std::vector<Expected> LoadGgufExpected(const std::string& path) {
  std::vector<std::string> corpus;
  std::ifstream c("tests/fixtures/tokenizers/corpus.jsonl");
  for (std::string line; std::getline(c, line);) corpus.push_back(nlohmann::json::parse(line).get<std::string>());
  std::vector<Expected> out;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line);
    Expected e;
    const size_t idx = j.at("line").get<size_t>();
    if (idx >= corpus.size()) return {};
    e.text = corpus[idx];
    e.ids = j.at("ids").get<std::vector<int32_t>>();
    e.ids_sp = j.contains("ids_sp") ? j["ids_sp"].get<std::vector<int32_t>>() : e.ids;
    e.dec = j.value("dec", e.text);
    e.dec_sp = j.value("dec_sp", e.text);
    e.dec_sk = j.value("dec_sk", e.text);
    out.push_back(std::move(e));
  }
  return out;
}

// Compares encode/decode on every expected line; prints a summary and the first mismatches.
void ExpectParity(const Tokenizer& tok, const std::vector<Expected>& lines, const std::string& label) {
  ASSERT_FALSE(lines.empty()) << label << ": fixture missing";
  size_t bad[5] = {0, 0, 0, 0, 0};
  for (const Expected& e : lines) {
    const auto ids = tok.Encode(e.text, false);
    const auto ids_sp = tok.Encode(e.text, true);
    const std::string got[5] = {"", "", tok.Decode(e.ids, false), tok.Decode(e.ids_sp, false),
                                tok.Decode(e.ids_sp, true)};
    const bool ok[5] = {ids == e.ids, ids_sp == e.ids_sp, got[2] == e.dec, got[3] == e.dec_sp, got[4] == e.dec_sk};
    for (int k = 0; k < 5; ++k) {
      if (ok[k]) continue;
      if (++bad[k] <= 3) {
        ADD_FAILURE() << label << " check " << k << " mismatch on " << testing::Escape(e.text) << "\n  expected ids "
                      << testing::IdsToString(k == 1 ? e.ids_sp : e.ids) << "\n  got ids      "
                      << testing::IdsToString(k == 1 ? ids_sp : ids);
      }
    }
  }
  std::printf(
      "[gguf parity] %-10s lines=%zu encode=%zu encode_sp=%zu decode=%zu decode_sp=%zu decode_sk=%zu mismatches\n",
      label.c_str(), lines.size(), bad[0], bad[1], bad[2], bad[3], bad[4]);
}

class GgufBpeParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufBpeParityTest, MatchesTokenizersWithLlamaCppSplits) {
  auto file = loader::GgufFile::Open("tests/fixtures/gguf/tok_bpe.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  auto spec = ReadGgufTokenizerSpec(**file);
  ASSERT_TRUE(spec.ok()) << spec.status();
  spec->pre = GetParam();
  auto tok = GgufTokenizerFromSpec(*spec, "tok_bpe.gguf");
  ASSERT_TRUE(tok.ok()) << tok.status();
  ExpectParity(**tok, LoadGgufExpected("tests/fixtures/gguf/tok_bpe_" + GetParam() + ".jsonl"), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Pre, GgufBpeParityTest, ::testing::Values("smollm", "gpt2", "llama-bpe", "qwen2", "default"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) ch = ch == '-' ? '_' : ch;
                           return n;
                         });

TEST(GgufTokenizerTest, SentencePieceStyleMatchesTransformers) {
  auto tok = GgufTokenizerFromFile("tests/fixtures/gguf/tok_spm.gguf");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->bos_id(), 1);
  ExpectParity(**tok, LoadGgufExpected("tests/fixtures/gguf/tok_spm.jsonl"), "spm");
}

TEST(GgufTokenizerTest, MetadataAndChatTemplate) {
  auto file = loader::GgufFile::Open("tests/fixtures/gguf/tok_bpe.gguf");
  ASSERT_TRUE(file.ok());
  auto spec = ReadGgufTokenizerSpec(**file);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model, "gpt2");
  EXPECT_EQ(spec->pre, "smollm");
  EXPECT_EQ(spec->tokens.size(), 3001u);
  EXPECT_EQ(spec->merges.size(), 2744u);
  EXPECT_TRUE(spec->add_bos);
  auto tok = GgufTokenizerFromFile("tests/fixtures/gguf/tok_bpe.gguf");
  ASSERT_TRUE(tok.ok());
  ASSERT_TRUE((*tok)->config().chat_template.has_value());
  EXPECT_EQ(*(*tok)->config().chat_template, "{% for m in messages %}{{ m['content'] }}{% endfor %}");
  EXPECT_EQ((*tok)->eos_id(), 3000);
  EXPECT_TRUE((*tok)->IsSpecial(3000));
  EXPECT_EQ((*tok)->Encode("<|endoftext|>", false), std::vector<int32_t>{3000});
}

TEST(GgufTokenizerTest, ErrorsNameTheField) {
  auto no_tok = GgufTokenizerFromFile("tests/fixtures/gguf/types.gguf");
  ASSERT_FALSE(no_tok.ok());
  EXPECT_THAT(no_tok.status().message(), HasSubstr("tokenizer.ggml.model"));

  auto file = loader::GgufFile::Open("tests/fixtures/gguf/tok_bpe.gguf");
  ASSERT_TRUE(file.ok());
  auto spec = ReadGgufTokenizerSpec(**file);
  ASSERT_TRUE(spec.ok());
  GgufTokenizerSpec bad = *spec;
  bad.pre = "no-such-pre";
  auto t = GgufTokenizerFromSpec(bad, "x.gguf");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("tokenizer.ggml.pre 'no-such-pre'"));
  bad = *spec;
  bad.model = "bert";
  EXPECT_THAT(GgufTokenizerFromSpec(bad, "x.gguf").status().message(), HasSubstr("tokenizer.ggml.model 'bert'"));
  bad = *spec;
  bad.token_types.pop_back();
  EXPECT_FALSE(GgufTokenizerFromSpec(bad, "x.gguf").ok());
}

TEST(GgufTokenizerTest, SmolLm2MatchesReference) {
  std::vector<std::string> dirs;
  if (const char* c = std::getenv("TESSERA_MODEL_CACHE")) dirs.push_back(std::string(c) + "/smollm2-135m-instruct");
  if (const char* h = std::getenv("HOME"))
    dirs.push_back(std::string(h) + "/.cache/tessera/models/smollm2-135m-instruct");
  std::string path;
  for (const std::string& d : dirs) {
    if (std::filesystem::exists(d + "/SmolLM2-135M-Instruct.Q4_1.gguf")) {
      path = d + "/SmolLM2-135M-Instruct.Q4_1.gguf";
      break;
    }
  }
  if (path.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not in the model cache (scripts/setup fetches it)";
  auto tok = GgufTokenizerFromFile(path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  ASSERT_TRUE((*tok)->config().chat_template.has_value());
  EXPECT_THAT(*(*tok)->config().chat_template, HasSubstr("<|im_start|>"));
  ExpectParity(**tok, LoadGgufExpected("tests/fixtures/gguf/smollm2_tokenizer.jsonl"), "smollm2");
}

}  // namespace
}  // namespace tessera::tokenizer
