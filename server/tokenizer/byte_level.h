// The GPT-2 byte-to-unicode alphabet used by ByteLevel pre-tokenizers and decoders.
//
// Each byte 0..255 is shown as one printable code point so that byte strings can live in a JSON
// vocabulary: the printable bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to themselves, and the
// remaining 68 bytes (controls, space, 0x7F..0xA0, 0xAD) map to U+0100, U+0101, ... in byte order.
// So ' ' (0x20) is 'Ġ' (U+0120) and '\n' is 'Ċ' (U+010A).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tessera::tokenizer {

// The pattern GPT-2 uses to split text into words before byte-level BPE.
inline constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Appends the byte-level spelling (UTF-8) of every byte of `bytes` to `out`.
void AppendByteLevel(std::string_view bytes, std::string* out);

// The byte a byte-level code point stands for, or nullopt if `c` is not in the alphabet.
std::optional<uint8_t> ByteLevelCharToByte(char32_t c);

}  // namespace tessera::tokenizer
