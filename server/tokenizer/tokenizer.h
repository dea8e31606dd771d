// Tokenizer: a Hugging Face tokenizer.json (BPE models) loaded for encoding and decoding.
//
// Encode pipeline, matching the `tokenizers` library:
//   1. invalid UTF-8 in the input becomes U+FFFD (as Python's bytes.decode(errors="replace"))
//   2. added tokens with normalized=false are cut out of the raw text
//   3. each remaining piece is normalized, then added tokens with normalized=true are cut out
//   4. each remaining piece is pre-tokenized into words, and each word is encoded by the model
//   5. with add_special_tokens, the post-processor adds e.g. BOS
// Decode maps ids to token strings (unknown ids are skipped, special ones too if asked) and runs
// the decoder chain.
//
//   TS_ASSIGN_OR_RETURN(auto tok, Tokenizer::FromFile("models/llama3"));   // dir or tokenizer.json
//   std::vector<int32_t> ids = tok->Encode("Hello world", /*add_special_tokens=*/true);
//   std::string text = tok->Decode(ids, /*skip_special_tokens=*/true);
//
// All methods are const and safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/tokenizer/added_tokens.h"

namespace tessera::tokenizer {

class Decoder;
class Model;
class Normalizer;
class PostProcessor;
class PreTokenizer;

// Fields of tokenizer_config.json that matter for serving.
struct TokenizerConfig {
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;
  std::optional<std::string> chat_template;  // passed through unparsed
};

class Tokenizer {
 public:
  // `path` is a tokenizer.json file or a directory holding one. A tokenizer_config.json next to
  // it is read too when present.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // `tokenizer_json` is the text of tokenizer.json; `config_json` that of tokenizer_config.json
  // (may be empty). `name` only labels error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view tokenizer_json, std::string_view name,
                                                             std::string_view config_json = {});
  ~Tokenizer();

  // Never fails: any byte string is accepted.
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const;
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  std::optional<std::string> IdToToken(int32_t id) const;
  // Model vocabulary plus added tokens outside it (max id + 1 over both).
  size_t VocabSize() const { return vocab_size_; }
  bool IsSpecial(int32_t id) const;
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  const TokenizerConfig& config() const { return config_; }
  const std::string& name() const { return name_; }

  // True for an id whose decoding depends on the ids after it (a <0xHH> byte token under a
  // ByteFallback decoder); used by IncrementalDecoder.
  bool IsPendingByteToken(int32_t id) const;
  // True when Decode() drops `id` entirely (unknown id, or special while skipping specials).
  bool IsDroppedInDecode(int32_t id, bool skip_special_tokens) const;

 private:
  Tokenizer();
  void EncodePiece(std::string_view piece, bool at_origin, std::vector<int32_t>* ids) const;

  std::string name_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  TokenizerConfig config_;
  std::optional<int32_t> bos_id_;
  std::optional<int32_t> eos_id_;
  size_t vocab_size_ = 0;
  bool byte_fallback_decoding_ = false;
};

}  // namespace tessera::tokenizer
