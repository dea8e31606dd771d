// Splits a Jinja template into tokens the way jinja2's lexer does with Hugging Face's settings
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False): "\r\n" and "\r" become
// "\n", one trailing newline is dropped, `{%- -%}` strip whitespace, `{%+ +%}` keep it, comments
// are dropped and `{% raw %}` bodies become text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::chat_template {

struct Token {
  enum class Type {
    kData,        // literal text outside tags
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,
    kString,  // value holds the decoded string
    kInteger,
    kFloat,
    kOperator,  // value holds the operator text: "+", "//", "==", "(", ...
    kEnd
  };
  Type type;
  std::string value;
  int line = 1;
  int column = 1;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// INVALID_ARGUMENT "line:col: message" on unterminated tags, strings or comments.
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, const LexerOptions& options = {});

}  // namespace tessera::chat_template
