// Python str semantics over UTF-8 bytes: code point indexing, whitespace, case mapping and
// printability, as the string methods and filters of a chat template need them.
//
// Invalid UTF-8 bytes are treated as one code point each, so no input is rejected here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::chat_template::text {

// Decodes the code point at s[*pos] and advances *pos (an invalid byte decodes to itself).
char32_t Decode(std::string_view s, size_t* pos);
void Append(char32_t c, std::string* out);

// Byte offsets of every code point, plus s.size() at the end.
std::vector<size_t> CodePointOffsets(std::string_view s);
size_t CodePointCount(std::string_view s);

// Python's str.isspace() for one code point.
bool IsSpace(char32_t c);
// Python's str.isprintable() for one code point (used by repr()).
bool IsPrintable(char32_t c);

std::string Upper(std::string_view s);
std::string Lower(std::string_view s);
std::string Title(std::string_view s);       // str.title()
std::string Capitalize(std::string_view s);  // str.capitalize()
// jinja2's `title` filter: words split at whitespace and -([{< get their first character upper-cased and
// the rest lower-cased.
std::string TitleWords(std::string_view s);

// str.strip()/lstrip()/rstrip(); `chars` == nullptr strips whitespace, else any of the code points
// in *chars.
std::string_view Strip(std::string_view s, const std::string* chars, bool left, bool right);

// str.split(sep, maxsplit) and str.split() (sep == nullptr); rsplit when `from_right`.
std::vector<std::string> Split(std::string_view s, const std::string* sep, int64_t maxsplit, bool from_right);

// str.replace(old, new, count) (count < 0: all).
std::string Replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);

}  // namespace tessera::chat_template::text
