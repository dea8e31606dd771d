// Exhaustive checks of the f16 / bf16 conversions in kernels/dtype.h.
#include "kernels/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels_test_util.h"

namespace tessera::kernels::testing {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(DTypeTest, Names) {
  EXPECT_EQ(DTypeName(DType::kF32), "f32");
  EXPECT_EQ(DTypeName(DType::kBF16), "bf16");
  EXPECT_EQ(DTypeName(DType::kF16), "f16");
  EXPECT_EQ(DTypeSize(DType::kF32), 4);
  EXPECT_EQ(DTypeSize(DType::kF16), 2);
}

// Every half decodes to the value given by its fields, and encodes back to itself.
TEST(DTypeTest, F16DecodeAndRoundTripAll65536) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const float f = F16ToF32(hh);
    const double want = DecodeF16(hh);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_EQ(Bits(f) >> 31, h >> 15) << std::hex << h;
      const uint16_t back = F32ToF16(f);
      ASSERT_EQ(back & 0x7c00, 0x7c00) << std::hex << h;
      ASSERT_NE(back & 0x3ff, 0) << "NaN became inf: " << std::hex << h;
      continue;
    }
    ASSERT_EQ(double{f}, want) << std::hex << h;
    ASSERT_EQ(std::signbit(f), (h >> 15) != 0) << std::hex << h;
    ASSERT_EQ(F32ToF16(f), hh) << std::hex << h;
  }
}

// Rounding: for each pair of adjacent finite positive halves a < b, the midpoint goes to the one
// with an even mantissa, and the floats just below and above it go to a and b.
TEST(DTypeTest, F16RoundsToNearestEvenAtEveryMidpoint) {
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const double a = DecodeF16(static_cast<uint16_t>(h));
    const double b = h + 1 == 0x7c00 ? 65536.0 : DecodeF16(static_cast<uint16_t>(h + 1));
    const auto mid = static_cast<float>((a + b) / 2);  // exact: 12 significant bits
    ASSERT_EQ(double{mid}, (a + b) / 2);
    const uint32_t even = (h & 1) ? h + 1 : h;
    ASSERT_EQ(F32ToF16(mid), even) << std::hex << h;
    ASSERT_EQ(F32ToF16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(F32ToF16(std::nextafter(mid, INFINITY)), h + 1) << std::hex << h;
    ASSERT_EQ(F32ToF16(-mid), even | 0x8000) << std::hex << h;
  }
  EXPECT_EQ(F32ToF16(65519.996f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);
  EXPECT_EQ(F32ToF16(1e10f), 0x7c00);
  EXPECT_EQ(F32ToF16(-INFINITY), 0xfc00);
  EXPECT_EQ(F32ToF16(1e-10f), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
}

TEST(DTypeTest, Bf16DecodeRoundTripAndRoundingAll65536) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const float f = Bf16ToF32(hh);
    ASSERT_EQ(Bits(f), h << 16);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(f)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(F32ToBf16(f), hh) << std::hex << h;
    if ((h & 0x7fff) >= 0x7f80) continue;  // inf: no next value
    // The f32 halfway to the next bf16 is h·2^16 + 2^15 in bits; ties go to the even mantissa.
    const uint32_t mid_bits = (h << 16) | 0x8000u;
    float mid;
    std::memcpy(&mid, &mid_bits, 4);
    ASSERT_EQ(F32ToBf16(mid), (h & 1) ? h + 1 : h) << std::hex << h;
    const uint32_t above = mid_bits + 1, below = mid_bits - 1;
    float fa, fb;
    std::memcpy(&fa, &above, 4);
    std::memcpy(&fb, &below, 4);
    ASSERT_EQ(F32ToBf16(fa), h + 1) << std::hex << h;
    ASSERT_EQ(F32ToBf16(fb), h) << std::hex << h;
  }
}

}  // namespace
}  // namespace tessera::kernels::testing
