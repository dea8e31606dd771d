#include "server/tokenizer/byte_level.h"

#include <array>
#include <string>

#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {
namespace {

struct Tables {
  std::array<char32_t, 256> byte_to_char{};
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 256 + 68> char_to_byte{};  // indexed by code point, -1 when unused
  Tables() {
    char_to_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      AppendUtf8(byte_to_char[b], &byte_to_utf8[b]);
      char_to_byte[byte_to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& GetTables() {
  static const Tables* tables = new Tables();
  return *tables;
}

}  // namespace

void AppendByteLevel(std::string_view bytes, std::string* out) {
  const Tables& t = GetTables();
  for (unsigned char b : bytes) out->append(t.byte_to_utf8[b]);
}

std::optional<uint8_t> ByteLevelCharToByte(char32_t c) {
  const Tables& t = GetTables();
  if (c >= t.char_to_byte.size() || t.char_to_byte[c] < 0) return std::nullopt;
  return static_cast<uint8_t>(t.char_to_byte[c]);
}

}  // namespace tessera::tokenizer
