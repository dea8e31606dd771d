// The model stage: turns one pre-tokenized piece into token ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::tokenizer {

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `piece` (valid UTF-8, non-empty) to `ids`.
  virtual void Tokenize(std::string_view piece, std::vector<int32_t>* ids) const = 0;
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  // nullptr when the model has no token with this id.
  virtual const std::string* IdToToken(int32_t id) const = 0;
  // Number of entries in the model vocabulary (not counting added tokens outside it).
  virtual size_t VocabSize() const = 0;
};

}  // namespace tessera::tokenizer
