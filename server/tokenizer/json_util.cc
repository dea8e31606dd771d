#include "server/tokenizer/json_util.h"

#include "absl/strings/str_cat.h"

namespace tessera::tokenizer {

absl::StatusOr<std::string> ComponentType(const nlohmann::json& j, const char* what) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, " must be a JSON object"));
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has no \"type\" string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::unique_ptr<Regex>> ParsePattern(const nlohmann::json& j) {
  if (j.is_object()) {
    if (auto it = j.find("String"); it != j.end() && it->is_string()) {
      return Regex::Compile(it->get<std::string>(), /*literal=*/true);
    }
    if (auto it = j.find("Regex"); it != j.end() && it->is_string()) {
      return Regex::Compile(it->get<std::string>(), /*literal=*/false);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported pattern ", j.dump(), " (want {\"String\"} or {\"Regex\"})"));
}

}  // namespace tessera::tokenizer
