#include "server/tokenizer/utf8.h"

#include <cstdint>

namespace tessera::tokenizer {
namespace {

inline bool IsCont(uint8_t b) { return (b & 0xC0) == 0x80; }

// Allowed range of the second byte for a lead byte (Unicode Table 3-7, "well-formed UTF-8").
inline bool SecondByteOk(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return IsCont(b);
  }
}

// Expected total length for a lead byte, 0 if it can never start a sequence.
inline size_t LeadLength(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Number of bytes at s[pos] that are a valid prefix of some sequence (1..need), and whether the
// whole sequence is present.
size_t ValidPrefix(std::string_view s, size_t pos, size_t* need) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t lead = p[pos];
  *need = LeadLength(lead);
  if (*need <= 1) return *need;
  size_t n = 1;
  if (pos + n >= s.size() || !SecondByteOk(lead, p[pos + n])) return n;
  ++n;
  while (n < *need && pos + n < s.size() && IsCont(p[pos + n])) ++n;
  return n;
}

}  // namespace

size_t ValidUtf8SequenceLength(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  size_t need = 0;
  const size_t got = ValidPrefix(s, pos, &need);
  return (need != 0 && got == need) ? need : 0;
}

size_t InvalidUtf8PrefixLength(std::string_view s, size_t pos) {
  size_t need = 0;
  const size_t got = ValidPrefix(s, pos, &need);
  return got == 0 ? 1 : got;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = ValidUtf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    // Fast path over ASCII.
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    const size_t n = ValidUtf8SequenceLength(s, i);
    if (n != 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append(kReplacementUtf8);
      i += InvalidUtf8PrefixLength(s, i);
    }
  }
  return out;
}

char32_t DecodeUtf8(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + *pos;
  const size_t left = s.size() - *pos;
  if (p[0] < 0x80 || left < 2) {
    *pos += 1;
    return p[0];
  }
  if (p[0] < 0xE0) {
    *pos += 2;
    return (char32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (p[0] < 0xF0 || left < 4) {
    if (left < 3) {
      *pos += left;
      return kReplacementChar;
    }
    *pos += 3;
    return (char32_t(p[0] & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *pos += 4;
  return (char32_t(p[0] & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

size_t Utf8CharLength(std::string_view s, size_t pos) {
  const size_t n = LeadLength(static_cast<uint8_t>(s[pos]));
  if (n == 0) return 1;
  return pos + n <= s.size() ? n : s.size() - pos;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

size_t IncompleteUtf8Suffix(std::string_view s) {
  // A sequence is at most 4 bytes, so only the last 3 positions can start an incomplete one.
  const size_t first = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = first; i < s.size(); ++i) {
    size_t need = 0;
    const size_t got = ValidPrefix(s, i, &need);
    if (need > 1 && got == s.size() - i && got < need) return got;
  }
  return 0;
}

}  // namespace tessera::tokenizer
