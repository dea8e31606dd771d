// Unicode properties and normalization forms used by the tokenizer stages (backed by ICU).
#pragma once

#include <string>

namespace tessera::tokenizer {

enum class NormalizationForm { kNfc, kNfd, kNfkc, kNfkd };

// Normalizes valid UTF-8 `text` in place.
void NormalizeUnicode(NormalizationForm form, std::string* text);

// Unicode White_Space property (what Rust's char::is_whitespace and regex `\s` test).
bool IsWhiteSpace(char32_t c);

// Unicode word character as in regex `\w`: Alphabetic, marks, decimal digits, connector
// punctuation and join controls.
bool IsWordChar(char32_t c);

// General category Nd, Nl or No (Rust's char::is_numeric).
bool IsNumeric(char32_t c);

// Full, context-free lowercase mapping of one code point, appended to `out` as UTF-8 (may be more
// than one code point, e.g. U+0130 -> "i\u0307").
void AppendLowercase(char32_t c, std::string* out);

}  // namespace tessera::tokenizer
