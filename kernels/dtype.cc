#include "kernels/dtype.h"

namespace tessera::kernels {

std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "f32";
    case DType::kBF16:
      return "bf16";
    case DType::kF16:
      return "f16";
  }
  return "?";
}

// IEEE binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
// Normal:    (-1)^s · 2^(e−15) · 1.m      → f32 exponent e + 112, mantissa m << 13.
// Subnormal: (-1)^s · 2^−24 · m           (exact in f32: m < 2^10).
float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    const float mag = static_cast<float>(mant) * 0x1p-24f;
    std::memcpy(&bits, &mag, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest, ties to even. |f| ≥ 65520 (halfway between 65504 and 2^16) becomes inf;
// NaN keeps its top payload bits and is made quiet.
uint16_t F32ToF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^−14): result = round(|f| / 2^−24), a subnormal or 0.
    // |f| ≤ 2^−25 rounds to 0 (2^−25 itself is a tie with 0, which is even).
    if (abs <= 0x33000000u) return sign;
    const uint32_t e = abs >> 23;                        // biased f32 exponent, 102..112
    const uint32_t sig = (abs & 0x7fffffu) | 0x800000u;  // 24-bit significand
    const uint32_t shift = 126 - e;                      // |f| / 2^−24 = sig >> shift
    uint32_t q = sig >> shift;
    const uint32_t rem = sig & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into the normal range
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = (abs >> 13) - (112u << 10);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carry into the exponent is correct
  return static_cast<uint16_t>(sign | h);
}

}  // namespace tessera::kernels
