#include "kernels/cuda/device_count.h"

#include <gtest/gtest.h>

namespace tessera::kernels {
namespace {

TEST(CudaDeviceCountTest, NeverNegativeAndStable) {
  const int count = CudaDeviceCount();
  EXPECT_GE(count, 0);
  EXPECT_EQ(CudaDeviceCount(), count);
}

TEST(CudaDeviceCountTest, SeesADevice) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  EXPECT_GT(CudaDeviceCount(), 0);
}

}  // namespace
}  // namespace tessera::kernels
