#include "server/chat_template/text.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <algorithm>

#include "server/tokenizer/utf8.h"

namespace tessera::chat_template::text {
namespace {

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::u16string ToUtf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = Decode(s, &pos);
    if (c < 0x10000) {
      out.push_back(static_cast<char16_t>(c));
    } else {
      out.push_back(static_cast<char16_t>(0xD7C0 + (c >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 | (c & 0x3FF)));
    }
  }
  return out;
}

std::string FromUtf16(const std::u16string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] < 0xE000) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    }
    Append(c, &out);
  }
  return out;
}

enum class CaseOp { kUpper, kLower };

std::string MapCase(std::string_view s, CaseOp op) {
  if (IsAscii(s)) {
    std::string out(s);
    for (char& c : out) {
      if (op == CaseOp::kUpper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (op == CaseOp::kLower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  const std::u16string in = ToUtf16(s);
  std::u16string out(in.size() + 16, u'\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    UErrorCode status = U_ZERO_ERROR;
    const int32_t n =
        op == CaseOp::kUpper
            ? u_strToUpper(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()),
                           reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), "", &status)
            : u_strToLower(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()),
                           reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), "", &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      out.assign(static_cast<size_t>(n) + 1, u'\0');
      continue;
    }
    if (U_FAILURE(status)) return std::string(s);
    out.resize(static_cast<size_t>(n));
    return FromUtf16(out);
  }
  return std::string(s);
}

bool IsCased(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED) != 0;
}

char32_t ToTitleChar(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
  return static_cast<char32_t>(u_totitle(static_cast<UChar32>(c)));
}

char32_t ToLowerChar(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
  return static_cast<char32_t>(u_tolower(static_cast<UChar32>(c)));
}

bool InSet(char32_t c, const std::string& chars) {
  for (size_t pos = 0; pos < chars.size();) {
    if (Decode(chars, &pos) == c) return true;
  }
  return false;
}

}  // namespace

char32_t Decode(std::string_view s, size_t* pos) {
  const auto b0 = static_cast<unsigned char>(s[*pos]);
  if (b0 < 0x80) {
    ++*pos;
    return b0;
  }
  int len = 0;
  char32_t c = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    c = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    c = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    c = b0 & 0x07;
  } else {
    ++*pos;
    return b0;
  }
  if (*pos + len > s.size()) {
    ++*pos;
    return b0;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[*pos + k]);
    if ((b & 0xC0) != 0x80) {
      ++*pos;
      return b0;
    }
    c = (c << 6) | (b & 0x3F);
  }
  const bool overlong = (len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000);
  if (overlong || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000)) {
    ++*pos;
    return b0;
  }
  *pos += len;
  return c;
}

void Append(char32_t c, std::string* out) { tokenizer::AppendUtf8(c, out); }

std::vector<size_t> CodePointOffsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (size_t pos = 0; pos < s.size();) {
    offsets.push_back(pos);
    Decode(s, &pos);
  }
  offsets.push_back(s.size());
  return offsets;
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); ++n) Decode(s, &pos);
  return n;
}

bool IsSpace(char32_t c) {
  switch (c) {
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case 0x1C:
    case 0x1D:
    case 0x1E:
    case 0x1F:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool IsPrintable(char32_t c) {
  if (c == ' ') return true;
  if (c < 0x7F) return c >= 0x20;
  if (c == 0x7F) return false;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

std::string Upper(std::string_view s) { return MapCase(s, CaseOp::kUpper); }
std::string Lower(std::string_view s) { return MapCase(s, CaseOp::kLower); }

std::string Title(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool previous_cased = false;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = Decode(s, &pos);
    Append(previous_cased ? ToLowerChar(c) : ToTitleChar(c), &out);
    previous_cased = IsCased(c);
  }
  return out;
}

std::string TitleWords(std::string_view s) {
  auto is_separator = [](char32_t c) { return IsSpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
  std::string out;
  out.reserve(s.size());
  bool word_start = true;
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const char32_t c = Decode(s, &pos);
    if (is_separator(c)) {
      out.append(s.substr(start, pos - start));
      word_start = true;
    } else if (word_start) {
      out += Upper(s.substr(start, pos - start));
      word_start = false;
    } else {
      out += Lower(s.substr(start, pos - start));
    }
  }
  return out;
}

std::string Capitalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool first = true;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = Decode(s, &pos);
    Append(first ? ToTitleChar(c) : ToLowerChar(c), &out);
    first = false;
  }
  return out;
}

std::string_view Strip(std::string_view s, const std::string* chars, bool left, bool right) {
  auto strippable = [&](char32_t c) { return chars == nullptr ? IsSpace(c) : InSet(c, *chars); };
  size_t begin = 0;
  size_t end = s.size();
  if (left) {
    while (begin < end) {
      size_t next = begin;
      if (!strippable(Decode(s, &next))) break;
      begin = next;
    }
  }
  if (right && end > begin) {
    const std::vector<size_t> offsets = CodePointOffsets(s.substr(begin));
    size_t k = offsets.size() - 1;  // offsets[k] == end - begin
    while (k > 0) {
      size_t probe = begin + offsets[k - 1];
      if (!strippable(Decode(s, &probe))) break;
      --k;
    }
    end = begin + offsets[k];
  }
  return s.substr(begin, end - begin);
}

std::vector<std::string> Split(std::string_view s, const std::string* sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep != nullptr) {
    if (from_right) {
      size_t end = s.size();
      while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
        if (end < sep->size()) break;
        const size_t found = s.rfind(*sep, end - sep->size());
        if (found == std::string_view::npos) break;
        parts.emplace_back(s.substr(found + sep->size(), end - found - sep->size()));
        end = found;
      }
      parts.emplace_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
      return parts;
    }
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t found = s.find(*sep, start);
      if (found == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, found - start));
      start = found + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  // Whitespace split: runs of whitespace separate, no empty strings.
  std::vector<std::pair<size_t, size_t>> words;  // [begin, end) byte ranges
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    if (IsSpace(Decode(s, &next))) {
      pos = next;
      continue;
    }
    const size_t begin = pos;
    size_t end = next;
    pos = next;
    while (pos < s.size()) {
      size_t probe = pos;
      if (IsSpace(Decode(s, &probe))) break;
      pos = probe;
      end = probe;
    }
    words.emplace_back(begin, end);
  }
  if (maxsplit < 0 || static_cast<int64_t>(words.size()) <= maxsplit) {
    for (const auto& [b, e] : words) parts.emplace_back(s.substr(b, e - b));
    return parts;
  }
  if (from_right) {
    const size_t keep = words.size() - static_cast<size_t>(maxsplit);
    // The first part runs from the first word to the end of word `keep - 1`, left part unstripped
    // on its right only up to that word.
    parts.emplace_back(s.substr(words[0].first, words[keep - 1].second - words[0].first));
    for (size_t i = keep; i < words.size(); ++i)
      parts.emplace_back(s.substr(words[i].first, words[i].second - words[i].first));
    return parts;
  }
  for (int64_t i = 0; i < maxsplit; ++i) parts.emplace_back(s.substr(words[i].first, words[i].second - words[i].first));
  // The remainder starts at the next word and keeps everything after it, minus trailing space.
  std::string_view rest = s.substr(words[static_cast<size_t>(maxsplit)].first);
  parts.emplace_back(Strip(rest, nullptr, false, true));
  return parts;
}

std::string Replace(std::string_view s, std::string_view from, std::string_view to, int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` before every code point and at the end.
    int64_t done = 0;
    size_t pos = 0;
    while (pos < s.size()) {
      if (count < 0 || done < count) {
        out.append(to);
        ++done;
      }
      const size_t start = pos;
      Decode(s, &pos);
      out.append(s.substr(start, pos - start));
    }
    if (count < 0 || done < count) out.append(to);
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t found = s.find(from, start);
    if (found == std::string_view::npos) break;
    out.append(s.substr(start, found - start));
    out.append(to);
    start = found + from.size();
    ++done;
  }
  out.append(s.substr(start));
  return out;
}

}  // namespace tessera::chat_template::text
