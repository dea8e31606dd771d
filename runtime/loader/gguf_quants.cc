#include "runtime/loader/gguf_quants.h"

#include <array>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tessera::loader {
namespace {

constexpr int64_t kQK = 32;    // elements per block of the 32-element formats
constexpr int64_t kQKK = 256;  // elements per super-block of the K formats

constexpr std::array<GgmlTypeInfo, 29> kTypes = {{
    {GgmlType::kF32, "F32", 1, 4, true},
    {GgmlType::kF16, "F16", 1, 2, true},
    {GgmlType::kQ4_0, "Q4_0", kQK, 18, true},
    {GgmlType::kQ4_1, "Q4_1", kQK, 20, true},
    {GgmlType::kQ5_0, "Q5_0", kQK, 22, true},
    {GgmlType::kQ5_1, "Q5_1", kQK, 24, true},
    {GgmlType::kQ8_0, "Q8_0", kQK, 34, true},
    {GgmlType::kQ8_1, "Q8_1", kQK, 40, false},
    {GgmlType::kQ2_K, "Q2_K", kQKK, 84, false},
    {GgmlType::kQ3_K, "Q3_K", kQKK, 110, false},
    {GgmlType::kQ4_K, "Q4_K", kQKK, 144, true},
    {GgmlType::kQ5_K, "Q5_K", kQKK, 176, true},
    {GgmlType::kQ6_K, "Q6_K", kQKK, 210, true},
    {GgmlType::kQ8_K, "Q8_K", kQKK, 292, false},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", kQKK, 66, false},
    {GgmlType::kIQ2_XS, "IQ2_XS", kQKK, 74, false},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", kQKK, 98, false},
    {GgmlType::kIQ1_S, "IQ1_S", kQKK, 50, false},
    {GgmlType::kIQ4_NL, "IQ4_NL", kQK, 18, false},
    {GgmlType::kIQ3_S, "IQ3_S", kQKK, 110, false},
    {GgmlType::kIQ2_S, "IQ2_S", kQKK, 82, false},
    {GgmlType::kIQ4_XS, "IQ4_XS", kQKK, 136, false},
    {GgmlType::kI8, "I8", 1, 1, false},
    {GgmlType::kI16, "I16", 1, 2, false},
    {GgmlType::kI32, "I32", 1, 4, false},
    {GgmlType::kI64, "I64", 1, 8, false},
    {GgmlType::kF64, "F64", 1, 8, false},
    {GgmlType::kIQ1_M, "IQ1_M", kQKK, 56, false},
    {GgmlType::kBF16, "BF16", 1, 2, true},
}};

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

float LoadHalf(const uint8_t* p) { return GgufHalfToFloat(LoadU16(p)); }

// ---- Plain scalar types ------------------------------------------------------------------------

void DecodeF32(const uint8_t* src, float* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }

void DecodeF16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = LoadHalf(src + 2 * i);
}

// bfloat16 is the upper half of a float32.
void DecodeBF16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(LoadU16(src + 2 * i)) << 16;
    std::memcpy(&dst[i], &bits, 4);
  }
}

// ---- 32-element blocks ---------------------------------------------------------------------------

// Q8_0, 34 bytes: [0..2) f16 scale d, [2..34) int8 q[32]. x[i] = q[i] * d.
void DecodeQ8_0(const uint8_t* block, float* out) {
  const float d = LoadHalf(block);
  for (int i = 0; i < 32; ++i) out[i] = static_cast<float>(static_cast<int8_t>(block[2 + i])) * d;
}

// Q4_0, 18 bytes: [0..2) f16 d, [2..18) 16 bytes of 4-bit codes. Byte j holds element j in its low
// nibble and element j + 16 in its high nibble. x = (q - 8) * d.
void DecodeQ4_0(const uint8_t* block, float* out) {
  const float d = LoadHalf(block);
  const uint8_t* nibbles = block + 2;
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>((nibbles[j] & 0x0F) - 8) * d;
    out[j + 16] = static_cast<float>((nibbles[j] >> 4) - 8) * d;
  }
}

// Q4_1, 20 bytes: [0..2) f16 d, [2..4) f16 m, [4..20) nibbles as in Q4_0. x = q * d + m.
void DecodeQ4_1(const uint8_t* block, float* out) {
  const float d = LoadHalf(block);
  const float m = LoadHalf(block + 2);
  const uint8_t* nibbles = block + 4;
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>(nibbles[j] & 0x0F) * d + m;
    out[j + 16] = static_cast<float>(nibbles[j] >> 4) * d + m;
  }
}

// The 5-bit code of element i of a Q5 block: the low four bits come from the nibbles (as in Q4_0),
// the fifth bit is bit i of the little-endian 32-bit word `high_bits`.
int Q5Code(const uint8_t* nibbles, uint32_t high_bits, int i) {
  const int low = i < 16 ? (nibbles[i] & 0x0F) : (nibbles[i - 16] >> 4);
  const int high = static_cast<int>((high_bits >> i) & 1u);
  return low | (high << 4);
}

uint32_t LoadU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// Q5_0, 22 bytes: [0..2) f16 d, [2..6) u32 fifth bits, [6..22) nibbles. x = (q - 16) * d.
void DecodeQ5_0(const uint8_t* block, float* out) {
  const float d = LoadHalf(block);
  const uint32_t high = LoadU32(block + 2);
  for (int i = 0; i < 32; ++i) out[i] = static_cast<float>(Q5Code(block + 6, high, i) - 16) * d;
}

// Q5_1, 24 bytes: [0..2) f16 d, [2..4) f16 m, [4..8) u32 fifth bits, [8..24) nibbles. x = q * d + m.
void DecodeQ5_1(const uint8_t* block, float* out) {
  const float d = LoadHalf(block);
  const float m = LoadHalf(block + 2);
  const uint32_t high = LoadU32(block + 4);
  for (int i = 0; i < 32; ++i) out[i] = static_cast<float>(Q5Code(block + 8, high, i)) * d + m;
}

// ---- 256-element super-blocks ----------------------------------------------------------------------

// Q4_K and Q5_K split a super-block into 8 groups of 32 elements, each with a 6-bit scale and a
// 6-bit min packed into 12 bytes:
//   bytes 0..3:  low 6 bits = scale of groups 0..3, top 2 bits = bits 4..5 of scale of groups 4..7
//   bytes 4..7:  low 6 bits = min of groups 0..3,   top 2 bits = bits 4..5 of min of groups 4..7
//   bytes 8..11: low nibble = bits 0..3 of scale of groups 4..7, high nibble = bits 0..3 of their min
void KGroupScaleMin(const uint8_t* packed, int group, int* scale, int* min) {
  if (group < 4) {
    *scale = packed[group] & 0x3F;
    *min = packed[group + 4] & 0x3F;
  } else {
    const int g = group - 4;
    *scale = (packed[8 + g] & 0x0F) | ((packed[g] >> 6) << 4);
    *min = (packed[8 + g] >> 4) | ((packed[4 + g] >> 6) << 4);
  }
}

// Q4_K, 144 bytes: [0..2) f16 d, [2..4) f16 dmin, [4..16) packed scales/mins, [16..144) 128 bytes
// of nibbles. Groups come in pairs over 32 bytes: byte k of pair p holds element 64p + k in its low
// nibble (group 2p) and element 64p + 32 + k in its high nibble (group 2p + 1).
// x = (d * scale) * q - (dmin * min).
void DecodeQ4_K(const uint8_t* block, float* out) {
  const float d = LoadHalf(block);
  const float dmin = LoadHalf(block + 2);
  const uint8_t* packed = block + 4;
  const uint8_t* nibbles = block + 16;
  for (int group = 0; group < 8; ++group) {
    int scale = 0, min = 0;
    KGroupScaleMin(packed, group, &scale, &min);
    const float dl = d * static_cast<float>(scale);
    const float ml = dmin * static_cast<float>(min);
    const uint8_t* bytes = nibbles + 32 * (group / 2);
    const int shift = (group % 2) * 4;
    for (int k = 0; k < 32; ++k) {
      out[32 * group + k] = dl * static_cast<float>((bytes[k] >> shift) & 0x0F) - ml;
    }
  }
}

// Q5_K, 176 bytes: [0..2) f16 d, [2..4) f16 dmin, [4..16) packed scales/mins, [16..48) 32 bytes of
// fifth bits, [48..176) nibbles laid out as in Q4_K. Element k of group g takes its fifth bit from
// bit g of byte k of the fifth-bit array. x = (d * scale) * q - (dmin * min).
void DecodeQ5_K(const uint8_t* block, float* out) {
  const float d = LoadHalf(block);
  const float dmin = LoadHalf(block + 2);
  const uint8_t* packed = block + 4;
  const uint8_t* high = block + 16;
  const uint8_t* nibbles = block + 48;
  for (int group = 0; group < 8; ++group) {
    int scale = 0, min = 0;
    KGroupScaleMin(packed, group, &scale, &min);
    const float dl = d * static_cast<float>(scale);
    const float ml = dmin * static_cast<float>(min);
    const uint8_t* bytes = nibbles + 32 * (group / 2);
    const int shift = (group % 2) * 4;
    for (int k = 0; k < 32; ++k) {
      const int q = ((bytes[k] >> shift) & 0x0F) | (((high[k] >> group) & 1) << 4);
      out[32 * group + k] = dl * static_cast<float>(q) - ml;
    }
  }
}

// Q6_K, 210 bytes: [0..128) ql, low 4 bits; [128..192) qh, high 2 bits; [192..208) int8 scales,
// one per 16 elements; [208..210) f16 d. The super-block is two halves of 128 elements; half h uses
// ql[64h..64h+64), qh[32h..32h+32). Within a half, element 32r + k (quarter r, k < 32) takes
//   low 4 bits:  ql[64h + k + 32 * (r % 2)], low nibble for r < 2, high nibble for r >= 2
//   high 2 bits: bits 2r..2r+1 of qh[32h + k]
// and x = (d * scales[(128h + 32r + k) / 16]) * (q - 32).
void DecodeQ6_K(const uint8_t* block, float* out) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
  const float d = LoadHalf(block + 208);
  for (int half = 0; half < 2; ++half) {
    for (int r = 0; r < 4; ++r) {
      for (int k = 0; k < 32; ++k) {
        const int e = 128 * half + 32 * r + k;
        const uint8_t low_byte = ql[64 * half + k + 32 * (r % 2)];
        const int low = r < 2 ? (low_byte & 0x0F) : (low_byte >> 4);
        const int hi = (qh[32 * half + k] >> (2 * r)) & 3;
        const float dl = d * static_cast<float>(scales[e / 16]);
        out[e] = dl * static_cast<float>((low | (hi << 4)) - 32);
      }
    }
  }
}

using BlockDecoder = void (*)(const uint8_t* block, float* out);

BlockDecoder FindBlockDecoder(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0:
      return DecodeQ4_0;
    case GgmlType::kQ4_1:
      return DecodeQ4_1;
    case GgmlType::kQ5_0:
      return DecodeQ5_0;
    case GgmlType::kQ5_1:
      return DecodeQ5_1;
    case GgmlType::kQ8_0:
      return DecodeQ8_0;
    case GgmlType::kQ4_K:
      return DecodeQ4_K;
    case GgmlType::kQ5_K:
      return DecodeQ5_K;
    case GgmlType::kQ6_K:
      return DecodeQ6_K;
    default:
      return nullptr;
  }
}

}  // namespace

float GgufHalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN, payload kept
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 → 127
  } else if (mant == 0) {
    bits = sign;  // ±0
  } else {
    // Subnormal: value = mant * 2^-24; normalise so the leading one becomes the implicit bit.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

const GgmlTypeInfo* FindGgmlType(uint32_t id) {
  for (const GgmlTypeInfo& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return &t;
  }
  return nullptr;
}

const GgmlTypeInfo* FindGgmlType(GgmlType type) { return FindGgmlType(static_cast<uint32_t>(type)); }

std::string GgmlTypeName(GgmlType type) {
  const GgmlTypeInfo* info = FindGgmlType(type);
  if (info == nullptr) return absl::StrCat("type#", static_cast<uint32_t>(type));
  return std::string(info->name);
}

std::optional<int64_t> GgmlRowBytes(GgmlType type, int64_t n) {
  const GgmlTypeInfo* info = FindGgmlType(type);
  if (info == nullptr || n < 0 || n % info->block_size != 0) return std::nullopt;
  int64_t bytes = 0;
  if (__builtin_mul_overflow(n / info->block_size, info->type_size, &bytes)) return std::nullopt;
  return bytes;
}

absl::Status DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  const GgmlTypeInfo* info = FindGgmlType(type);
  if (info == nullptr || !info->dequantizable) {
    return absl::InvalidArgumentError(absl::StrCat("DequantizeRow: type ", GgmlTypeName(type), " is not supported"));
  }
  if (n < 0 || n % info->block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("DequantizeRow: ", n, " elements of ", GgmlTypeName(type),
                                                   " is not a whole number of ", info->block_size, "-element blocks"));
  }
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::kF32:
      DecodeF32(bytes, dst, n);
      return absl::OkStatus();
    case GgmlType::kF16:
      DecodeF16(bytes, dst, n);
      return absl::OkStatus();
    case GgmlType::kBF16:
      DecodeBF16(bytes, dst, n);
      return absl::OkStatus();
    default:
      break;
  }
  const BlockDecoder decode = FindBlockDecoder(type);
  const int64_t blocks = n / info->block_size;
  for (int64_t b = 0; b < blocks; ++b) decode(bytes + b * info->type_size, dst + b * info->block_size);
  return absl::OkStatus();
}

}  // namespace tessera::loader
