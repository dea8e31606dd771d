// Decoders: turn the token strings of an id sequence back into text.
//
// A decoder maps the list of token strings to a new list; Decode() joins the final list. Supported
// "decoder" types of tokenizer.json:
//   ByteLevel                  GPT-2 byte alphabet back to bytes, joined into one string, invalid
//                              UTF-8 replaced by U+FFFD (maximal subparts); a token with a character
//                              outside the alphabet contributes its raw UTF-8 bytes
//   Metaspace {replacement, prepend_scheme}
//                              replacement -> ' '; in the first token it is dropped instead unless
//                              the scheme is "never"
//   ByteFallback               runs of <0xHH> tokens become their bytes when those form valid
//                              UTF-8, otherwise one U+FFFD per byte
//   Fuse                       joins all tokens into one
//   Strip {content, start, stop}  drops up to `start` leading and `stop` trailing `content` chars
//                              of every token
//   Replace {pattern, content} String/Regex pattern replaced in every token
//   Sequence {decoders: [...]}
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tessera::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void DecodeChain(std::vector<std::string>* tokens) const = 0;
  // True when some stage is ByteFallback, whose output for a run of byte tokens depends on the
  // whole run (the incremental decoder holds such runs back).
  virtual bool UsesByteFallback() const { return false; }
};

absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const nlohmann::json& j);

// True for tokens spelled "<0xHH>"; stores the byte.
bool ParseByteToken(std::string_view token, unsigned char* byte);

}  // namespace tessera::tokenizer
