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
    case DType::kQ8_0:
      return "q8_0";
    case DType::kQ4_0:
      return "q4_0";
    case DType::kQ4_1:
      return "q4_1";
    case DType::kQ5_0:
      return "q5_0";
    case DType::kQ5_1:
      return "q5_1";
    case DType::kQ4_K:
      return "q4_k";
    case DType::kQ5_K:
      return "q5_k";
    case DType::kQ6_K:
      return "q6_k";
  }
  return "?";
}

namespace {

float HalfAt(const uint8_t* p) { return F16ToF32(static_cast<uint16_t>(p[0] | p[1] << 8)); }

uint32_t U32At(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Sub-block j's 6-bit scale and min from the 12 packed bytes of a Q4_K / Q5_K block (dtype.h).
void KScaleMin(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

// One block of each quantized type → out[0 .. block size).
void DecodeQ8_0(const uint8_t* b, float* out) {
  const float d = HalfAt(b);
  for (int i = 0; i < 32; ++i) out[i] = d * static_cast<float>(static_cast<int8_t>(b[2 + i]));
}

// Q4_0 / Q4_1 / Q5_0 / Q5_1: x = d·q + m with q the 4- or 5-bit value and m = −8d, −16d or the
// stored min. `qh` is null for the 4-bit types.
void DecodeNibbles32(const uint8_t* qs, const uint8_t* qh_bytes, float d, float m, int offset, float* out) {
  const uint32_t qh = qh_bytes != nullptr ? U32At(qh_bytes) : 0;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 15) | static_cast<int>((qh >> j) & 1u) << 4;
    const int hi = (qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    out[j] = d * static_cast<float>(lo - offset) + m;
    out[j + 16] = d * static_cast<float>(hi - offset) + m;
  }
}

// Q4_K (qh == nullptr) and Q5_K.
void DecodeQ45K(const uint8_t* b, bool five, float* out) {
  const float d = HalfAt(b);
  const float dmin = HalfAt(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = five ? b + 16 : nullptr;
  const uint8_t* qs = five ? b + 48 : b + 16;
  for (int g = 0; g < 4; ++g) {
    for (int half = 0; half < 2; ++half) {
      const int j = 2 * g + half;
      int sc, m;
      KScaleMin(scales, j, &sc, &m);
      const float dj = d * static_cast<float>(sc);
      const float mj = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        int q = half == 0 ? (qs[32 * g + l] & 15) : (qs[32 * g + l] >> 4);
        if (qh != nullptr) q |= ((qh[l] >> j) & 1) << 4;
        out[32 * j + l] = dj * static_cast<float>(q) - mj;
      }
    }
  }
}

void DecodeQ6K(const uint8_t* b, float* out) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = HalfAt(b + 208);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* l0 = ql + 64 * h;
    const uint8_t* h0 = qh + 32 * h;
    float* o = out + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int q[4] = {(l0[l] & 15) | (h0[l] & 3) << 4, (l0[l + 32] & 15) | ((h0[l] >> 2) & 3) << 4,
                        (l0[l] >> 4) | ((h0[l] >> 4) & 3) << 4, (l0[l + 32] >> 4) | ((h0[l] >> 6) & 3) << 4};
      for (int r = 0; r < 4; ++r) {
        const int e = 32 * r + l;  // element within the half; its sub-block of 16 is e / 16
        o[e] = d * static_cast<float>(sc[8 * h + e / 16]) * static_cast<float>(q[r] - 32);
      }
    }
  }
}

}  // namespace

void DequantizeRow(DType t, const void* row, int64_t n, float* out) {
  const auto* p = static_cast<const uint8_t*>(row);
  const int64_t bs = DTypeBlockSize(t);
  const int64_t bb = DTypeBlockBytes(t);
  for (int64_t i = 0; i + bs <= n; i += bs, p += bb) {
    float* o = out + i;
    switch (t) {
      case DType::kF32:
        std::memcpy(o, p, 4);
        break;
      case DType::kBF16:
        *o = Bf16ToF32(static_cast<uint16_t>(p[0] | p[1] << 8));
        break;
      case DType::kF16:
        *o = HalfAt(p);
        break;
      case DType::kQ8_0:
        DecodeQ8_0(p, o);
        break;
      case DType::kQ4_0: {
        const float d = HalfAt(p);
        DecodeNibbles32(p + 2, nullptr, d, 0.0f, 8, o);
        break;
      }
      case DType::kQ4_1:
        DecodeNibbles32(p + 4, nullptr, HalfAt(p), HalfAt(p + 2), 0, o);
        break;
      case DType::kQ5_0:
        DecodeNibbles32(p + 6, p + 2, HalfAt(p), 0.0f, 16, o);
        break;
      case DType::kQ5_1:
        DecodeNibbles32(p + 8, p + 4, HalfAt(p), HalfAt(p + 2), 0, o);
        break;
      case DType::kQ4_K:
        DecodeQ45K(p, false, o);
        break;
      case DType::kQ5_K:
        DecodeQ45K(p, true, o);
        break;
      case DType::kQ6_K:
        DecodeQ6K(p, o);
        break;
    }
  }
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

std::string_view ActivationsName(Activations a) { return a == Activations::kF32 ? "f32" : "int8"; }

std::string ActivationsFlagError(std::string_view value) {
  return "--activations: expected int8 or f32, got '" + std::string(value) + "'";
}

bool ParseActivations(std::string_view name, Activations* out) {
  for (Activations a : {Activations::kInt8, Activations::kF32}) {
    if (name == ActivationsName(a)) {
      *out = a;
      return true;
    }
  }
  return false;
}

}  // namespace tessera::kernels
