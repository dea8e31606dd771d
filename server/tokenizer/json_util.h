// Small helpers for reading tokenizer.json fragments with nlohmann::json.
//
// Component parsers may let nlohmann::json::exception escape for wrongly typed fields;
// Tokenizer::FromJson catches those at the boundary and turns them into InvalidArgument errors.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/tokenizer/regex.h"

namespace tessera::tokenizer {

// The "type" field of a component object, or an error naming `what` ("normalizer", ...).
absl::StatusOr<std::string> ComponentType(const nlohmann::json& j, const char* what);

// A pattern object, {"String": "literal"} or {"Regex": "pcre"}, compiled.
absl::StatusOr<std::unique_ptr<Regex>> ParsePattern(const nlohmann::json& j);

// Reads an optional field: `fallback` when absent or null.
template <typename T>
T GetOr(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->template get<T>();
}

}  // namespace tessera::tokenizer
