// ggml tensor element types as stored in GGUF files: their block geometry, the kernels' DType for
// the ones Tessera runs, and dequantization (kernels::DequantizeRow, the one decoder of every block
// format).
//
//   const GgmlTypeInfo* info = FindGgmlType(GgmlType::kQ4_1);   // 32 elements in 20 bytes
//   std::vector<float> row(ne0);
//   TS_RETURN_IF_ERROR(DequantizeRow(GgmlType::kQ4_1, tensor.data, row.data(), ne0));
//
// Quantized types pack `block_size` consecutive elements of a row into `type_size` bytes; a row of
// n elements takes n / block_size blocks and n must be a multiple of block_size. The block layouts
// are described in kernels/dtype.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "kernels/dtype.h"

namespace tessera::loader {

// The numeric ids are the ones written in GGUF tensor infos.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;  // "Q4_K"
  int64_t block_size;     // elements per block (1 for plain scalar types)
  int64_t type_size;      // bytes per block
};

// The type with GGUF id `id`, or nullptr when the id is not a known ggml type.
const GgmlTypeInfo* FindGgmlType(uint32_t id);
const GgmlTypeInfo* FindGgmlType(GgmlType type);
// "Q4_K", or "type#<id>" for an unknown id.
std::string GgmlTypeName(GgmlType type);

// Bytes taken by a row of `n` elements of `type`; nullopt when the type is unknown, n is negative
// or not a multiple of the block size.
std::optional<int64_t> GgmlRowBytes(GgmlType type, int64_t n);

// The kernels' type for `type`: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K;
// nullopt for the others.
std::optional<kernels::DType> GgmlToDType(GgmlType type);

// Decodes `n` consecutive elements (a whole number of blocks) starting at `src` into `dst`.
// Supports F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K; any other type, or
// an n that is negative or not a multiple of the block size, is INVALID_ARGUMENT and writes nothing.
absl::Status DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

// IEEE binary16 → float, exact for every input (subnormals, infinities, NaN).
float GgufHalfToFloat(uint16_t h);

}  // namespace tessera::loader
