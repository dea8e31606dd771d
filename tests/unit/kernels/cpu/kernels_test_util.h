// Helpers shared by the CPU kernel tests: the ISA parameterization, outputs with sentinel guard
// regions, and an element-wise comparison that prints the first mismatches.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"

namespace tessera::kernels {
inline void PrintTo(Isa isa, std::ostream* os) { *os << IsaName(isa); }
}  // namespace tessera::kernels

namespace tessera::kernels::testing {

// Value-parameterized over every ISA; cases for an ISA the CPU cannot run are skipped, not passed.
class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!IsaSupported(GetParam())) GTEST_SKIP() << IsaName(GetParam()) << " is not supported by this CPU";
  }
  const OpTable& ops() const { return OpsFor(GetParam()); }
  // Scratch for ops().linear, kept across the calls of a test as CpuBackend keeps it across steps.
  CpuWorkspace* workspace() { return &workspace_; }

 private:
  CpuWorkspace workspace_;
};

inline std::string IsaParamName(const ::testing::TestParamInfo<Isa>& info) { return std::string(IsaName(info.param)); }

#define TESSERA_INSTANTIATE_ISA_TEST(suite) \
  INSTANTIATE_TEST_SUITE_P(AllIsas, suite, ::testing::ValuesIn(kAllIsas), ::tessera::kernels::testing::IsaParamName)

// An output buffer of n floats followed by kGuard sentinel floats; the data part starts as NaN so
// that elements a kernel forgets to write fail the comparison.
class Guarded {
 public:
  static constexpr size_t kGuard = 64;
  static constexpr uint32_t kSentinelBits = 0x7fa5a5a5u;  // a NaN no kernel produces

  explicit Guarded(size_t n) : n_(n), buf_(n + kGuard) {
    for (size_t i = 0; i < buf_.size(); ++i) SetBits(i, i < n ? 0x7fc00000u : kSentinelBits);
  }
  float* data() { return buf_.data(); }
  const float* data() const { return buf_.data(); }
  size_t size() const { return n_; }
  float operator[](size_t i) const { return buf_[i]; }

  // Index of the first overwritten guard float, or -1.
  int64_t FirstClobberedGuard() const {
    for (size_t i = n_; i < buf_.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &buf_[i], 4);
      if (bits != kSentinelBits) return static_cast<int64_t>(i - n_);
    }
    return -1;
  }

 private:
  void SetBits(size_t i, uint32_t bits) { std::memcpy(&buf_[i], &bits, 4); }
  size_t n_;
  std::vector<float> buf_;
};

// Checks |got[i] − want[i]| <= tol[i] for every i (equal infinities match, NaN never does), that
// the guard after `got` is intact and, unless allow_zero, that both norms are > 0.
inline ::testing::AssertionResult AllClose(const Guarded& got, const std::vector<double>& want,
                                           const std::vector<double>& tol, bool allow_zero = false) {
  if (got.size() != want.size() || want.size() != tol.size()) {
    return ::testing::AssertionFailure() << "size mismatch " << got.size() << " / " << want.size();
  }
  std::ostringstream msg;
  int64_t bad = 0;
  double got_norm = 0;
  double want_norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got[i];
    const double w = want[i];
    if (std::isfinite(g)) got_norm += g * g;
    if (std::isfinite(w)) want_norm += w * w;
    const bool ok = (std::isinf(w) && g == w) || std::fabs(g - w) <= tol[i];
    if (!ok && bad++ < 5) msg << "\n  [" << i << "] found " << g << " expected " << w << " tol " << tol[i];
  }
  if (const int64_t guard = got.FirstClobberedGuard(); guard >= 0) {
    return ::testing::AssertionFailure() << "write past the end of the output, at guard float " << guard;
  }
  if (bad > 0) return ::testing::AssertionFailure() << bad << " of " << want.size() << " mismatches:" << msg.str();
  if (!allow_zero && (got_norm == 0 || want_norm == 0)) {
    return ::testing::AssertionFailure() << "zero norm: output " << got_norm << ", reference " << want_norm;
  }
  return ::testing::AssertionSuccess();
}

inline std::vector<float> RandomFloats(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<float> RandomInts(size_t n, int lo, int hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

// Decoders written independently of kernels/dtype.cc, in double.
inline double DecodeBf16(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline double DecodeF16(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 31;
  const int mant = h & 1023;
  if (exp == 31) return mant ? NAN : sign * INFINITY;
  if (exp == 0) return sign * std::ldexp(static_cast<double>(mant), -24);
  return sign * std::ldexp(1024.0 + mant, exp - 25);
}

constexpr double kF32Eps = 1.0 / (1 << 24);  // unit roundoff of f32 (2^−24)

}  // namespace tessera::kernels::testing
