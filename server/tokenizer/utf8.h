// UTF-8 helpers shared by every tokenizer stage.
//
// The tokenizer pipeline works on valid UTF-8 only. Input from the network may not be, so Encode()
// first runs SanitizeUtf8(), which replaces every maximal invalid subsequence with U+FFFD exactly
// as Python's bytes.decode("utf-8", "replace") and Rust's String::from_utf8_lossy do. The same
// function implements the lossy conversion at the end of byte-level decoding.
//
//   std::string text = SanitizeUtf8("\xE2\x82 ok");   // "\uFFFD ok"
//   for (size_t i = 0; i < text.size();) { char32_t c = DecodeUtf8(text, &i); ... }
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace tessera::tokenizer {

// Debian's Abseil is built with its own string_view type; heterogeneous lookups in absl hash
// containers need that type.
inline absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Length in bytes of the valid UTF-8 sequence starting at s[pos], or 0 if the bytes there are not
// a complete valid sequence.
size_t ValidUtf8SequenceLength(std::string_view s, size_t pos);

// Length of the maximal prefix of an invalid sequence at s[pos] (>= 1), i.e. how many bytes one
// U+FFFD replaces. Only meaningful when ValidUtf8SequenceLength(s, pos) == 0.
size_t InvalidUtf8PrefixLength(std::string_view s, size_t pos);

bool IsValidUtf8(std::string_view s);

// Copy of `s` with each maximal invalid subsequence replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);

// Decodes the code point at s[*pos] of a VALID UTF-8 string and advances *pos past it.
char32_t DecodeUtf8(std::string_view s, size_t* pos);

// Byte length of the character starting at s[pos] of a valid UTF-8 string.
size_t Utf8CharLength(std::string_view s, size_t pos);

void AppendUtf8(char32_t c, std::string* out);

// Number of bytes at the end of `s` that form an incomplete (but so far valid) UTF-8 sequence.
size_t IncompleteUtf8Suffix(std::string_view s);

}  // namespace tessera::tokenizer
