// Fuzzes the tokenizer: the input is encoded and decoded (with and without special tokens, and
// streamed through IncrementalDecoder) by one fixture tokenizer loaded once, its bytes are also
// decoded as little-endian int32 ids, and the input is parsed as a tokenizer.json.
// The tokenizer comes from $TESSERA_FUZZ_TOKENIZER or tests/fixtures/tokenizers/llama2 found from
// the working directory upwards.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/tokenizer/incremental_decoder.h"
#include "server/tokenizer/tokenizer.h"

namespace {

using tessera::tokenizer::IncrementalDecoder;
using tessera::tokenizer::Tokenizer;

const Tokenizer* LoadOnce() {
  static const Tokenizer* tok = []() -> const Tokenizer* {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("TESSERA_FUZZ_TOKENIZER")) candidates.emplace_back(env);
    // The repository root or any directory up to five levels above the working directory (CTest
    // runs the replay binary inside the build tree).
    std::string up;
    for (int level = 0; level <= 5; ++level, up += "../") {
      candidates.push_back(up + "tests/fixtures/tokenizers/llama2");
    }
    for (const auto& path : candidates) {
      auto loaded = Tokenizer::FromFile(path);
      if (loaded.ok()) return loaded->release();
    }
    return nullptr;
  }();
  return tok;
}

void Exercise(const Tokenizer& tok, std::string_view text, const std::vector<int32_t>& extra_ids) {
  for (bool special : {false, true}) {
    const std::vector<int32_t> ids = tok.Encode(text, special);
    (void)tok.Decode(ids, !special);
    IncrementalDecoder stream(tok, special);
    std::string joined;
    for (int32_t id : ids) joined += stream.Add(id);
    joined += stream.Flush();
    if (joined != tok.Decode(ids, special)) std::abort();
  }
  IncrementalDecoder stream(tok, false);
  std::string joined;
  for (int32_t id : extra_ids) {
    joined += stream.Add(id);
    (void)tok.IdToToken(id);
  }
  joined += stream.Flush();
  if (joined != tok.Decode(extra_ids, false)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const Tokenizer* tok = LoadOnce()) {
    std::vector<int32_t> ids(size / 4);
    if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
    // Keep most ids inside the vocabulary so they decode to something.
    for (int32_t& id : ids) id = static_cast<int32_t>(static_cast<uint32_t>(id) % (tok->VocabSize() + 8));
    Exercise(*tok, text, ids);
  }
  // Any bytes must be rejected or accepted as a tokenizer definition, never crash.
  auto parsed = Tokenizer::FromJson(text, "fuzz");
  if (parsed.ok()) {
    (void)(*parsed)->Encode("Hello world, \xE2\x82 123 <s>", true);
    (void)(*parsed)->Decode(std::vector<int32_t>{0, 1, 2, 3, 100}, false);
  }
  return 0;
}
