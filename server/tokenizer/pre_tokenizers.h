// Pre-tokenizers: cut normalized text into the pieces ("words") the model encodes one at a time.
//
// Supported "pre_tokenizer" types of tokenizer.json:
//   ByteLevel {add_prefix_space, use_regex}   optional leading space, optional GPT-2 word split,
//                                             then every byte spelled in the GPT-2 byte alphabet
//   Split {pattern, behavior, invert}         String/Regex pattern with a split behaviour (split.h)
//   Metaspace {replacement, prepend_scheme, split}
//                                             ' ' -> replacement ("▁"), prefix per scheme
//                                             (always | first: only the piece at the start of the
//                                             input | never), optional split before each "▁"
//   Digits {individual_digits}                isolates numeric characters (each, or runs)
//   WhitespaceSplit                           splits on Unicode whitespace, dropping it
//   Sequence {pretokenizers: [...]}           applied in order, each to every current piece
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tessera::tokenizer {

struct PreToken {
  std::string text;
  // True when the piece starts at offset 0 of the original input (Metaspace "first" scheme).
  bool at_origin = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` with their sub-pieces; never produces empty pieces.
  virtual void PreTokenize(std::vector<PreToken>* pieces) const = 0;
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const nlohmann::json& j);

}  // namespace tessera::tokenizer
