// Normalizers: rewrite the text of each piece between added tokens before pre-tokenization.
//
// Supported "normalizer" types of tokenizer.json:
//   NFC, NFD, NFKC, NFKD            Unicode normalization forms
//   Sequence {normalizers: [...]}   applied in order
//   Prepend {prepend}               prefix added to non-empty text (SentencePiece's "▁")
//   Replace {pattern, content}      every match of a String or Regex pattern replaced by content
//   Lowercase                       per-character full lowercase mapping
//   Strip {strip_left, strip_right} trims Unicode whitespace
//   ByteLevel                       maps every byte to the GPT-2 byte alphabet
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tessera::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` is valid UTF-8 and stays valid UTF-8.
  virtual void Normalize(std::string* text) const = 0;
};

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const nlohmann::json& j);

}  // namespace tessera::tokenizer
