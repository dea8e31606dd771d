#include "runtime/loader/gguf_quants.h"

#include <array>
#include <string>

#include "absl/strings/str_cat.h"

namespace tessera::loader {
namespace {

constexpr int64_t kQK = 32;    // elements per block of the 32-element formats
constexpr int64_t kQKK = 256;  // elements per super-block of the K formats

constexpr std::array<GgmlTypeInfo, 29> kTypes = {{
    {GgmlType::kF32, "F32", 1, 4},
    {GgmlType::kF16, "F16", 1, 2},
    {GgmlType::kQ4_0, "Q4_0", kQK, 18},
    {GgmlType::kQ4_1, "Q4_1", kQK, 20},
    {GgmlType::kQ5_0, "Q5_0", kQK, 22},
    {GgmlType::kQ5_1, "Q5_1", kQK, 24},
    {GgmlType::kQ8_0, "Q8_0", kQK, 34},
    {GgmlType::kQ8_1, "Q8_1", kQK, 40},
    {GgmlType::kQ2_K, "Q2_K", kQKK, 84},
    {GgmlType::kQ3_K, "Q3_K", kQKK, 110},
    {GgmlType::kQ4_K, "Q4_K", kQKK, 144},
    {GgmlType::kQ5_K, "Q5_K", kQKK, 176},
    {GgmlType::kQ6_K, "Q6_K", kQKK, 210},
    {GgmlType::kQ8_K, "Q8_K", kQKK, 292},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", kQKK, 66},
    {GgmlType::kIQ2_XS, "IQ2_XS", kQKK, 74},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", kQKK, 98},
    {GgmlType::kIQ1_S, "IQ1_S", kQKK, 50},
    {GgmlType::kIQ4_NL, "IQ4_NL", kQK, 18},
    {GgmlType::kIQ3_S, "IQ3_S", kQKK, 110},
    {GgmlType::kIQ2_S, "IQ2_S", kQKK, 82},
    {GgmlType::kIQ4_XS, "IQ4_XS", kQKK, 136},
    {GgmlType::kI8, "I8", 1, 1},
    {GgmlType::kI16, "I16", 1, 2},
    {GgmlType::kI32, "I32", 1, 4},
    {GgmlType::kI64, "I64", 1, 8},
    {GgmlType::kF64, "F64", 1, 8},
    {GgmlType::kIQ1_M, "IQ1_M", kQKK, 56},
    {GgmlType::kBF16, "BF16", 1, 2},
}};

}  // namespace

float GgufHalfToFloat(uint16_t h) { return kernels::F16ToF32(h); }

std::optional<kernels::DType> GgmlToDType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return kernels::DType::kF32;
    case GgmlType::kF16:
      return kernels::DType::kF16;
    case GgmlType::kBF16:
      return kernels::DType::kBF16;
    case GgmlType::kQ8_0:
      return kernels::DType::kQ8_0;
    case GgmlType::kQ4_0:
      return kernels::DType::kQ4_0;
    case GgmlType::kQ4_1:
      return kernels::DType::kQ4_1;
    case GgmlType::kQ5_0:
      return kernels::DType::kQ5_0;
    case GgmlType::kQ5_1:
      return kernels::DType::kQ5_1;
    case GgmlType::kQ4_K:
      return kernels::DType::kQ4_K;
    case GgmlType::kQ5_K:
      return kernels::DType::kQ5_K;
    case GgmlType::kQ6_K:
      return kernels::DType::kQ6_K;
    default:
      return std::nullopt;
  }
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
  const std::optional<kernels::DType> dtype = GgmlToDType(type);
  if (!dtype) {
    return absl::InvalidArgumentError(absl::StrCat("DequantizeRow: type ", GgmlTypeName(type), " is not supported"));
  }
  if (!kernels::DTypeRowValid(*dtype, n)) {
    return absl::InvalidArgumentError(absl::StrCat("DequantizeRow: ", n, " elements of ", GgmlTypeName(type),
                                                   " is not a whole number of ", kernels::DTypeBlockSize(*dtype),
                                                   "-element blocks"));
  }
  kernels::DequantizeRow(*dtype, src, n, dst);
  return absl::OkStatus();
}

}  // namespace tessera::loader
