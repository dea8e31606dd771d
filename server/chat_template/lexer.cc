#include "server/chat_template/lexer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/chat_template/text.h"

namespace tessera::chat_template {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }
bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's `\s` on str: the Unicode whitespace set of str.isspace().
bool AllWhitespace(std::string_view s) {
  if (s.empty()) return false;
  for (size_t pos = 0; pos < s.size();) {
    if (!text::IsSpace(text::Decode(s, &pos))) return false;
  }
  return true;
}

// Length of the whitespace run (Python `\s*`) at s[pos].
size_t WhitespaceRun(std::string_view s, size_t pos) {
  size_t end = pos;
  while (end < s.size()) {
    size_t next = end;
    if (!text::IsSpace(text::Decode(s, &next))) break;
    end = next;
  }
  return end - pos;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's "unicode-escape" decoding of a string literal body, as jinja2 applies it.
std::string DecodeStringLiteral(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    const char e = body[i + 1];
    auto hex_escape = [&](int digits) -> bool {
      if (i + 1 + static_cast<size_t>(digits) >= body.size()) return false;
      uint32_t value = 0;
      for (int k = 0; k < digits; ++k) {
        const int h = HexValue(body[i + 2 + static_cast<size_t>(k)]);
        if (h < 0) return false;
        value = value * 16 + static_cast<uint32_t>(h);
      }
      if (value > 0x10FFFF) return false;
      text::Append(value, &out);
      i += 1 + static_cast<size_t>(digits);
      return true;
    };
    switch (e) {
      case '\n':
        ++i;
        break;
      case '\\':
      case '\'':
      case '"':
        out.push_back(e);
        ++i;
        break;
      case 'a':
        out.push_back('\a');
        ++i;
        break;
      case 'b':
        out.push_back('\b');
        ++i;
        break;
      case 'f':
        out.push_back('\f');
        ++i;
        break;
      case 'n':
        out.push_back('\n');
        ++i;
        break;
      case 'r':
        out.push_back('\r');
        ++i;
        break;
      case 't':
        out.push_back('\t');
        ++i;
        break;
      case 'v':
        out.push_back('\v');
        ++i;
        break;
      case 'x':
        if (!hex_escape(2)) out.push_back(c);
        break;
      case 'u':
        if (!hex_escape(4)) out.push_back(c);
        break;
      case 'U':
        if (!hex_escape(8)) out.push_back(c);
        break;
      default:
        if (e >= '0' && e <= '7') {
          uint32_t value = 0;
          size_t k = 0;
          while (k < 3 && i + 1 + k < body.size() && body[i + 1 + k] >= '0' && body[i + 1 + k] <= '7') {
            value = value * 8 + static_cast<uint32_t>(body[i + 1 + k] - '0');
            ++k;
          }
          text::Append(value, &out);
          i += k;
        } else {
          out.push_back(c);  // unknown escapes keep their backslash
        }
    }
  }
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options) : src_(std::move(source)), options_(options) {}

  absl::StatusOr<std::vector<Token>> Run() {
    while (pos_ < src_.size()) {
      if (auto status = LexRoot(); !status.ok()) return status;
    }
    Push(Token::Type::kEnd, "", src_.size());
    return std::move(tokens_);
  }

 private:
  void Push(Token::Type type, std::string value, size_t offset) {
    Token t{type, std::move(value), 1, 1};
    Locate(offset, &t.line, &t.column);
    tokens_.push_back(std::move(t));
  }

  // Line and column of a byte offset. Tokens are pushed in source order, so the scan continues
  // from the previous offset (linear overall).
  void Locate(size_t offset, int* line, int* column) const {
    offset = std::min(offset, src_.size());
    if (offset < cache_offset_) {
      cache_offset_ = 0;
      cache_line_ = 1;
      cache_line_start_ = 0;
    }
    for (size_t i = cache_offset_; i < offset; ++i) {
      if (src_[i] == '\n') {
        ++cache_line_;
        cache_line_start_ = i + 1;
      }
    }
    cache_offset_ = offset;
    *line = cache_line_;
    *column = static_cast<int>(offset - cache_line_start_ + 1);
  }

  absl::Status Error(size_t offset, std::string_view message) const {
    int line = 0;
    int column = 0;
    Locate(offset, &line, &column);
    return absl::InvalidArgumentError(std::to_string(line) + ":" + std::to_string(column) + ": " +
                                      std::string(message));
  }

  // Strips the data before a tag as jinja2 does for the sign after the tag opener.
  void EmitData(std::string_view data, char sign, bool is_variable, size_t offset) {
    if (sign == '-') {
      data = text::Strip(data, nullptr, false, true);
    } else if (sign != '+' && options_.lstrip_blocks && !is_variable) {
      const size_t nl = data.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && AllWhitespace(data.substr(l_pos))) data = data.substr(0, l_pos);
    }
    if (!data.empty()) Push(Token::Type::kData, std::string(data), offset);
  }

  // Matches `{%(-|+|)\s*raw\s*(-%}\s*|%})` at `at`; returns the end offset or npos.
  size_t MatchRawBegin(size_t at, char* sign) const {
    size_t p = at + 2;
    *sign = 0;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) *sign = src_[p++];
    p += WhitespaceRun(src_, p);
    if (src_.compare(p, 3, "raw") != 0) return std::string::npos;
    p += 3;
    if (p < src_.size() && IsNameChar(src_[p])) return std::string::npos;
    p += WhitespaceRun(src_, p);
    if (src_.compare(p, 3, "-%}") == 0) return p + 3 + WhitespaceRun(src_, p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  absl::Status LexRoot() {
    // Find the next tag opener.
    size_t start = pos_;
    size_t found = std::string::npos;
    while (true) {
      found = src_.find('{', start);
      if (found == std::string::npos || found + 1 >= src_.size()) {
        found = std::string::npos;
        break;
      }
      const char n = src_[found + 1];
      if (n == '{' || n == '%' || n == '#') break;
      start = found + 1;
    }
    if (found == std::string::npos) {
      Push(Token::Type::kData, src_.substr(pos_), pos_);
      pos_ = src_.size();
      return absl::OkStatus();
    }
    const std::string_view data = std::string_view(src_).substr(pos_, found - pos_);
    const char kind = src_[found + 1];
    char sign = 0;
    if (kind == '%') {
      char raw_sign = 0;
      const size_t raw_end = MatchRawBegin(found, &raw_sign);
      if (raw_end != std::string::npos) {
        EmitData(data, raw_sign, false, pos_);
        return LexRaw(found, raw_end);
      }
    }
    size_t after = found + 2;
    if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
    EmitData(data, sign, kind == '{', pos_);
    line_starting_ = false;
    if (kind == '#') return LexComment(found, after);
    return LexTag(found, after, kind == '{');
  }

  absl::Status LexRaw(size_t open, size_t body_start) {
    // (.*?)({%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?))
    size_t search = body_start;
    while (true) {
      const size_t tag = src_.find("{%", search);
      if (tag == std::string::npos) return Error(open, "Missing end of raw directive");
      size_t p = tag + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      p += WhitespaceRun(src_, p);
      if (src_.compare(p, 6, "endraw") != 0 || (p + 6 < src_.size() && IsNameChar(src_[p + 6]))) {
        search = tag + 2;
        continue;
      }
      p += 6;
      p += WhitespaceRun(src_, p);
      size_t end = std::string::npos;
      if (src_.compare(p, 3, "+%}") == 0) {
        end = p + 3;
      } else if (src_.compare(p, 3, "-%}") == 0) {
        end = p + 3 + WhitespaceRun(src_, p + 3);
      } else if (src_.compare(p, 2, "%}") == 0) {
        end = p + 2;
        if (options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
      } else {
        search = tag + 2;
        continue;
      }
      // The raw body is stripped like data before a tag (lstrip applies: the end tag is a block).
      line_starting_ = src_[body_start - 1] == '\n';
      EmitData(std::string_view(src_).substr(body_start, tag - body_start), sign, false, body_start);
      pos_ = end;
      line_starting_ = src_[end - 1] == '\n';
      return absl::OkStatus();
    }
  }

  absl::Status LexComment(size_t open, size_t p) {
    for (; p < src_.size(); ++p) {
      if (src_.compare(p, 3, "+#}") == 0) {
        pos_ = p + 3;
        break;
      }
      if (src_.compare(p, 3, "-#}") == 0) {
        pos_ = p + 3 + WhitespaceRun(src_, p + 3);
        break;
      }
      if (src_.compare(p, 2, "#}") == 0) {
        pos_ = p + 2;
        if (options_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
        break;
      }
    }
    if (p >= src_.size()) return Error(open, "Missing end of comment tag");
    line_starting_ = src_[pos_ - 1] == '\n';
    return absl::OkStatus();
  }

  absl::Status LexTag(size_t open, size_t p, bool is_variable) {
    Push(is_variable ? Token::Type::kVarBegin : Token::Type::kBlockBegin, "", open);
    std::vector<char> balance;
    while (true) {
      if (p >= src_.size()) {
        return Error(open, is_variable ? "unexpected end of template, expected '}}'"
                                       : "unexpected end of template, expected '%}'");
      }
      if (balance.empty()) {
        size_t end = std::string::npos;
        if (is_variable) {
          if (src_.compare(p, 3, "-}}") == 0) {
            end = p + 3 + WhitespaceRun(src_, p + 3);
          } else if (src_.compare(p, 2, "}}") == 0) {
            end = p + 2;
          }
        } else {
          if (src_.compare(p, 3, "+%}") == 0) {
            end = p + 3;
          } else if (src_.compare(p, 3, "-%}") == 0) {
            end = p + 3 + WhitespaceRun(src_, p + 3);
          } else if (src_.compare(p, 2, "%}") == 0) {
            end = p + 2;
            if (options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
          }
        }
        if (end != std::string::npos) {
          Push(is_variable ? Token::Type::kVarEnd : Token::Type::kBlockEnd, "", p);
          pos_ = end;
          line_starting_ = src_[end - 1] == '\n';
          return absl::OkStatus();
        }
      }
      const char c = src_[p];
      if (IsAsciiSpace(c)) {
        ++p;
        continue;
      }
      if (static_cast<unsigned char>(c) >= 0x80) {
        size_t next = p;
        if (text::IsSpace(text::Decode(src_, &next))) {
          p = next;
          continue;
        }
        return Error(p, "unexpected character in tag");
      }
      if (IsDigit(c)) {
        p = LexNumber(p);
        continue;
      }
      if (IsNameStart(c)) {
        const size_t start = p;
        while (p < src_.size() && IsNameChar(src_[p])) ++p;
        Push(Token::Type::kName, src_.substr(start, p - start), start);
        continue;
      }
      if (c == '\'' || c == '"') {
        const size_t start = p;
        ++p;
        while (p < src_.size() && src_[p] != c) {
          if (src_[p] == '\\') ++p;
          ++p;
        }
        if (p >= src_.size()) return Error(start, "unexpected end of string");
        Push(Token::Type::kString, DecodeStringLiteral(std::string_view(src_).substr(start + 1, p - start - 1)), start);
        ++p;
        continue;
      }
      static constexpr std::array<std::string_view, 6> kTwoChar = {"**", "//", "==", "!=", ">=", "<="};
      std::string_view op;
      for (std::string_view candidate : kTwoChar) {
        if (src_.compare(p, 2, candidate) == 0) op = candidate;
      }
      if (op.empty()) {
        static constexpr std::string_view kOneChar = "+-/*%~[](){}><=.:|,;";
        if (kOneChar.find(c) == std::string_view::npos) return Error(p, "unexpected char '" + std::string(1, c) + "'");
        op = std::string_view(src_).substr(p, 1);
      }
      if (op == "(" || op == "[" || op == "{") {
        balance.push_back(op == "(" ? ')' : (op == "[" ? ']' : '}'));
      } else if (op == ")" || op == "]" || op == "}") {
        if (balance.empty()) return Error(p, "unexpected '" + std::string(op) + "'");
        if (balance.back() != op[0]) {
          return Error(p, "unexpected '" + std::string(op) + "', expected '" + std::string(1, balance.back()) + "'");
        }
        balance.pop_back();
      }
      Push(Token::Type::kOperator, std::string(op), p);
      p += op.size();
    }
  }

  // Integer and float literals (underscores allowed between digits, 0b/0o/0x prefixes).
  size_t LexNumber(size_t p) {
    const size_t start = p;
    auto digits = [&](size_t q, auto valid) {
      size_t r = q;
      while (r < src_.size() && (valid(src_[r]) || (src_[r] == '_' && r + 1 < src_.size() && valid(src_[r + 1])))) ++r;
      return r;
    };
    auto dec = [](char ch) { return ch >= '0' && ch <= '9'; };
    if (src_[p] == '0' && p + 1 < src_.size() && std::strchr("bBoOxX", src_[p + 1]) != nullptr && src_[p + 1] != 0) {
      const char base_char = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[p + 1])));
      auto valid = [base_char](char ch) {
        if (base_char == 'b') return ch == '0' || ch == '1';
        if (base_char == 'o') return ch >= '0' && ch <= '7';
        return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
      };
      size_t q = p + 2;
      if (q < src_.size() && src_[q] == '_') ++q;
      const size_t end = digits(q, valid);
      if (end > q) {
        std::string clean;
        for (size_t k = p; k < end; ++k) {
          if (src_[k] != '_') clean.push_back(src_[k]);
        }
        Push(Token::Type::kInteger, clean, start);
        return end;
      }
    }
    size_t end = digits(p, dec);
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' && dec(src_[end + 1])) {
      end = digits(end + 1, dec);
      is_float = true;
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t q = end + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && dec(src_[q])) {
        end = digits(q, dec);
        is_float = true;
      }
    }
    std::string clean;
    for (size_t k = start; k < end; ++k) {
      if (src_[k] != '_') clean.push_back(src_[k]);
    }
    Push(is_float ? Token::Type::kFloat : Token::Type::kInteger, clean, start);
    return end;
  }

  std::string src_;
  LexerOptions options_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
  mutable size_t cache_offset_ = 0;
  mutable int cache_line_ = 1;
  mutable size_t cache_line_start_ = 0;
};

std::string NormalizeNewlines(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, const LexerOptions& options) {
  Lexer lexer(NormalizeNewlines(source, options.keep_trailing_newline), options);
  return lexer.Run();
}

}  // namespace tessera::chat_template
