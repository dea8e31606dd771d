// Parsers for a Hugging Face model directory's JSON files.
//
//   TS_ASSIGN_OR_RETURN(llm::ModelConfig cfg, LoadHfConfig(dir + "/config.json"));
//
// Unknown architectures, missing required fields, wrong JSON types and inconsistent values
// (heads not dividing, zero sizes, top-k above the expert count, ...) are INVALID_ARGUMENT errors
// naming the file and the field. Bad JSON never throws out of these functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/llm/model_config.h"

namespace tessera::loader {

absl::StatusOr<llm::ModelConfig> ParseHfConfig(std::string_view json_text, std::string_view file_name);
absl::StatusOr<llm::ModelConfig> LoadHfConfig(const std::string& path);

// generation_config.json; a missing file yields the defaults.
absl::StatusOr<llm::GenerationDefaults> ParseGenerationConfig(std::string_view json_text, std::string_view file_name);
absl::StatusOr<llm::GenerationDefaults> LoadGenerationConfig(const std::string& path);

// Reads a whole file; NOT_FOUND / error naming the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace tessera::loader
