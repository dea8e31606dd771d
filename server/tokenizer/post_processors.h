// Post-processors: add the model's special tokens around an encoded sequence when Encode() is
// called with add_special_tokens=true.
//
// Supported "post_processor" types of tokenizer.json:
//   TemplateProcessing {single, pair, special_tokens}
//       single: [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}] spells "<s> $A";
//       special_tokens maps each name to its ids. Only the single-sequence template is used.
//   BertProcessing {cls, sep} / RobertaProcessing {cls, sep}   cls + A + sep
//   ByteLevel                   offsets only; ids are unchanged
//   Sequence {processors: [...]}
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tessera::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Only called with add_special_tokens=true.
  virtual void Process(std::vector<int32_t>* ids) const = 0;
};

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const nlohmann::json& j);

}  // namespace tessera::tokenizer
