// Element types of weight tensors: plain floats (f32, bf16, f16) and ggml's block-quantized formats,
// with their geometry and the scalar conversions between them.
//
// A quantized type packs DTypeBlockSize(t) consecutive elements of a row into DTypeBlockBytes(t)
// bytes; a row of n elements (n a multiple of the block size) takes DTypeRowBytes(t, n) bytes.
// Plain float types are "blocks" of one element, so the same three functions work for every type.
//
//   // one row of a Q4_1 embedding table [vocab, dim], dim % 32 == 0
//   const auto* table = static_cast<const uint8_t*>(data);
//   std::vector<float> row(dim);
//   DequantizeRow(DType::kQ4_1, table + id * DTypeRowBytes(DType::kQ4_1, dim), dim, row.data());
//
// Block layouts (ggml's; all multi-byte fields little-endian, blocks unaligned, "f16" = IEEE half).
// In a 32-element group of nibbles, byte j holds element j in its low nibble and element j + 16 in
// its high nibble.
//   Q8_0 (32 elements, 34 B): f16 d; int8 q[32].                         x = d·q
//   Q4_0 (32, 18 B): f16 d; u8 qs[16] (nibbles).                         x = d·(q − 8)
//   Q4_1 (32, 20 B): f16 d, f16 m; u8 qs[16].                            x = d·q + m
//   Q5_0 (32, 22 B): f16 d; u32 qh; u8 qs[16]. Bit j of qh is bit 4 of element j.
//                                                                        x = d·(q − 16)
//   Q5_1 (32, 24 B): f16 d, f16 m; u32 qh; u8 qs[16].                    x = d·q + m
//   Q4_K (256, 144 B): f16 d, f16 dmin; u8 scales[12]; u8 qs[128]. Eight sub-blocks of 32 with a
//     6-bit scale sc_j and 6-bit min m_j each, packed into 12 bytes s: for j < 4, sc = s[j] & 63,
//     m = s[j+4] & 63; for j >= 4, sc = (s[j+4] & 15) | (s[j−4] >> 6) << 4,
//     m = (s[j+4] >> 4) | (s[j] >> 6) << 4. The qs bytes come in
//     4 groups of 32: group g holds sub-block 2g in its low nibbles and 2g + 1 in its high nibbles.
//                                                                        x = d·sc_j·q − dmin·m_j
//   Q5_K (256, 176 B): as Q4_K with u8 qh[32] between scales and qs: bit 2g (2g + 1) of qh[l] is
//     bit 4 of element l of sub-block 2g (2g + 1).
//   Q6_K (256, 210 B): u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d. Sixteen sub-blocks of 16,
//     x = d·scales[i]·(q − 32), q 6-bit. Each half h (128 elements) uses ql[64h..], qh[32h..]:
//     for l < 32, elements l, l+32, l+64, l+96 of the half take the low nibble of ql[l], the low
//     nibble of ql[l+32], the high nibble of ql[l], the high nibble of ql[l+32], and bits 0-1,
//     2-3, 4-5, 6-7 of qh[l] as their top two bits.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tessera::kernels {

enum class DType : uint8_t { kF32, kBF16, kF16, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K };

// Every DType, in enum order (for tests and tables).
inline constexpr DType kAllDTypes[] = {DType::kF32,  DType::kBF16, DType::kF16,  DType::kQ8_0,
                                       DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                                       DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// Whether `t` is one of the block-quantized types (block size > 1).
constexpr bool DTypeIsQuantized(DType t) { return t != DType::kF32 && t != DType::kBF16 && t != DType::kF16; }

// Elements per block: 1 for f32/bf16/f16, 32 for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, 256 for the K-quants.
constexpr int64_t DTypeBlockSize(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kBF16:
    case DType::kF16:
      return 1;
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
      return 32;
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return 256;
  }
  return 1;
}

// Bytes per block (for the float types: bytes per element).
constexpr int64_t DTypeBlockBytes(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kBF16:
    case DType::kF16:
      return 2;
    case DType::kQ8_0:
      return 34;
    case DType::kQ4_0:
      return 18;
    case DType::kQ4_1:
      return 20;
    case DType::kQ5_0:
      return 22;
    case DType::kQ5_1:
      return 24;
    case DType::kQ4_K:
      return 144;
    case DType::kQ5_K:
      return 176;
    case DType::kQ6_K:
      return 210;
  }
  return 0;
}

// Bytes per element of a plain float type (4 for f32, 2 for bf16/f16). Quantized types have no
// whole number of bytes per element: 0 (use DTypeRowBytes).
constexpr int64_t DTypeSize(DType t) { return DTypeIsQuantized(t) ? 0 : DTypeBlockBytes(t); }

// Whether a row of n elements is a whole number of blocks of `t` (n >= 0).
constexpr bool DTypeRowValid(DType t, int64_t n) { return n >= 0 && n % DTypeBlockSize(t) == 0; }

// Bytes of a row of n elements; n must satisfy DTypeRowValid(t, n).
constexpr int64_t DTypeRowBytes(DType t, int64_t n) { return n / DTypeBlockSize(t) * DTypeBlockBytes(t); }

// "f32", "bf16", "f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k".
std::string_view DTypeName(DType t);

// out[i] = value of element i of the row at `row` for i < n. n must satisfy DTypeRowValid(t, n).
// Works for every DType (plain floats are widened to f32).
void DequantizeRow(DType t, const void* row, int64_t n, float* out);

inline float Bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as torch does when casting f32 → bf16. NaN stays NaN.
inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// IEEE half → float, exact for every value (subnormals, inf, NaN).
float F16ToF32(uint16_t h);
// float → IEEE half, round to nearest even.
uint16_t F32ToF16(float f);

// How Linear (cpu/ops.h) multiplies activations with block-quantized weights (float weights
// ignore it).
enum class Activations : uint8_t {
  kInt8,  // quantized to int8 per block of 32, integer dot products: llama.cpp's numerics and speed
  kF32,   // f32 activations times the dequantized weights: x·dequant(w)ᵀ with f32 rounding only
};

// "int8" / "f32", the names the --activations flags take.
std::string_view ActivationsName(Activations a);
// The Activations named `name`, false if none is.
bool ParseActivations(std::string_view name, Activations* out);
// The help text of every binary's --activations flag, and its error for a value that
// ParseActivations rejects.
inline constexpr char kActivationsFlagHelp[] =
    "how quantized (GGUF) weights meet the activations: int8 (llama.cpp's numerics, fast) or f32 (x times the "
    "dequantized weights, as transformers computes them)";
std::string ActivationsFlagError(std::string_view value);

}  // namespace tessera::kernels
