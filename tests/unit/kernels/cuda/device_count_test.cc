#include "kernels/cuda/device_count.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace tessera::kernels {
namespace {

struct SmiListing {
  int gpus = 0;      // lines "GPU i: ..."
  bool mig = false;  // some GPU is split into MIG instances, which CUDA may count instead
};

// What `nvidia-smi -L` lists; nullopt when nvidia-smi is not installed (or cannot be started).
std::optional<SmiListing> NvidiaSmiListing() {
  FILE* pipe = popen("nvidia-smi -L 2>/dev/null", "r");
  if (pipe == nullptr) return std::nullopt;
  SmiListing listing;
  std::string line;
  int ch;
  while ((ch = std::fgetc(pipe)) != EOF) {
    if (ch != '\n') {
      line.push_back(static_cast<char>(ch));
      continue;
    }
    if (line.rfind("GPU ", 0) == 0) ++listing.gpus;
    if (line.find("MIG ") != std::string::npos) listing.mig = true;
    line.clear();
  }
  const int status = pclose(pipe);
  if (status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 127)) return std::nullopt;  // not found
  return listing;
}

TEST(CudaDeviceCountTest, NeverNegativeAndStable) {
  const int count = CudaDeviceCount();
  EXPECT_GE(count, 0);
  EXPECT_EQ(CudaDeviceCount(), count);
}

TEST(CudaDeviceCountTest, SeesADevice) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  EXPECT_GT(CudaDeviceCount(), 0);
}

// The runtime sees the GPUs the driver lists: a count of 0 on a GPU machine would silently skip every
// GPU test.
TEST(CudaDeviceCountTest, MatchesNvidiaSmi) {
  const int count = CudaDeviceCount();
  if (count == 0) GTEST_SKIP() << "no CUDA device";
  const std::optional<SmiListing> smi = NvidiaSmiListing();
  if (!smi) GTEST_SKIP() << "nvidia-smi is not installed";
  if (smi->mig) {
    EXPECT_GE(count, 1);  // MIG instances replace their GPU in CUDA's enumeration
  } else if (std::getenv("CUDA_VISIBLE_DEVICES") != nullptr) {
    EXPECT_LE(count, smi->gpus) << "CUDA sees more devices than nvidia-smi -L lists";
  } else {
    EXPECT_EQ(count, smi->gpus) << "CudaDeviceCount() disagrees with nvidia-smi -L";
  }
}

TEST(CudaDeviceCountTest, NoDeviceMeansTheDriverListsNone) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "a CUDA device is present";
  const std::optional<SmiListing> smi = NvidiaSmiListing();
  if (!smi) GTEST_SKIP() << "nvidia-smi is not installed";
  if (std::getenv("CUDA_VISIBLE_DEVICES") != nullptr) GTEST_SKIP() << "CUDA_VISIBLE_DEVICES hides devices";
  EXPECT_EQ(smi->gpus, 0) << "nvidia-smi lists GPUs that the CUDA runtime cannot use (driver older than the runtime?)";
}

TEST(CudaDeviceCountTest, EveryDeviceHasProperties) {
  const int count = CudaDeviceCount();
  if (count == 0) GTEST_SKIP() << "no CUDA device";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    ASSERT_EQ(cudaGetDeviceProperties(&prop, i), cudaSuccess) << "device " << i;
    int sms = 0;
    ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, i), cudaSuccess) << "device " << i;
    EXPECT_GT(sms, 0) << "device " << i;
    EXPECT_EQ(prop.multiProcessorCount, sms) << "device " << i;
    EXPECT_GT(prop.totalGlobalMem, 0u) << "device " << i;
    EXPECT_NE(prop.name[0], '\0') << "device " << i;
  }
}

}  // namespace
}  // namespace tessera::kernels
