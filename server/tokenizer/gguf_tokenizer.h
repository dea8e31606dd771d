// Tokenizers described by GGUF metadata (tokenizer.ggml.*), built as the equivalent tokenizer.json
// and loaded with Tokenizer::FromJson, so encoding and decoding run through the same code as
// Hugging Face files.
//
//   TS_ASSIGN_OR_RETURN(auto tok, GgufTokenizerFromFile("SmolLM2-135M-Instruct.Q4_1.gguf"));
//   std::vector<int32_t> ids = tok->Encode("Hello", /*add_special_tokens=*/true);
//   const std::optional<std::string>& tmpl = tok->config().chat_template;   // tokenizer.chat_template
//
// tokenizer.ggml.model:
//   "gpt2"   byte-level BPE: tokens (already in the GPT-2 byte alphabet), merges ("a b"), and the
//            pre-tokenizer named by tokenizer.ggml.pre — the regex splits llama.cpp applies for that
//            name, in order, each keeping matches and the text between them as pieces, then the
//            byte-level mapping. Supported: smollm (digits one by one, then GPT-2), gpt2, llama-bpe
//            (Llama 3, with ignore_merges), qwen2, default (llama.cpp's default sequence; also used
//            when the key is absent). ByteLevel decoder.
//   "llama"  SentencePiece-style BPE: tokens with scores; merges from tokenizer.ggml.merges or, when
//            absent, from the scores (every split of a token into two vocabulary tokens, ranked by
//            the token's score, as transformers does for GGUF files); byte fallback to <0xHH> tokens,
//            unknown token fused; Metaspace pre-tokenizer prepending "▁" to the text when
//            tokenizer.ggml.add_space_prefix (default true); decoder ▁→space, byte fallback, fuse,
//            and one leading space stripped when a prefix is added.
// Token types (tokenizer.ggml.token_type): 3 (control) tokens and the bos/eos/unk/pad tokens are
// special added tokens, matched whole in text; 4 (user-defined) tokens are non-special added
// tokens. tokenizer.ggml.add_bos_token (default false for gpt2, true for llama) and add_eos_token
// set the post-processor.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/loader/gguf.h"
#include "server/tokenizer/tokenizer.h"

namespace tessera::tokenizer {

// The tokenizer metadata of a GGUF file.
struct GgufTokenizerSpec {
  std::string model;                 // tokenizer.ggml.model: "gpt2" or "llama"
  std::string pre = "default";       // tokenizer.ggml.pre
  std::vector<std::string> tokens;   // [vocab]
  std::vector<float> scores;         // [vocab] or empty
  std::vector<int32_t> token_types;  // [vocab] or empty (all normal)
  std::vector<std::string> merges;   // "left right", best first; may be empty for "llama"
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = true;  // "llama" only
  std::optional<std::string> chat_template;
};

// Reads and checks the tokenizer.* keys of `file` (ids in range, arrays of matching lengths).
absl::StatusOr<GgufTokenizerSpec> ReadGgufTokenizerSpec(const loader::GgufFile& file);

// The tokenizer.json and tokenizer_config.json texts equivalent to `spec`.
struct GgufTokenizerJson {
  std::string tokenizer_json;
  std::string config_json;
};
absl::StatusOr<GgufTokenizerJson> BuildGgufTokenizerJson(const GgufTokenizerSpec& spec);

absl::StatusOr<std::unique_ptr<Tokenizer>> GgufTokenizerFromSpec(const GgufTokenizerSpec& spec, std::string_view name);
// `path`: a .gguf file or a directory holding exactly one (loader::FindGgufModelFile).
absl::StatusOr<std::unique_ptr<Tokenizer>> GgufTokenizerFromFile(const std::string& path);

// The pre-tokenizer names GgufTokenizerFromSpec accepts for "gpt2".
std::vector<std::string> SupportedGgufPreTokenizers();

}  // namespace tessera::tokenizer
