// Parses Jinja template source into a TemplateAst, following jinja2's grammar and operator
// precedence (the subset chat templates use: no inheritance, includes or imports).
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/chat_template/ast.h"

namespace tessera::chat_template {

// INVALID_ARGUMENT "line:col: message" for syntax errors. Nesting of expressions and blocks is
// limited (kMaxParseDepth) so hostile input cannot exhaust the stack.
absl::StatusOr<std::shared_ptr<const TemplateAst>> ParseTemplate(std::string_view source);

inline constexpr int kMaxParseDepth = 200;

}  // namespace tessera::chat_template
