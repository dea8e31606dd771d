// RopeInvFreq against the inv_freq buffers transformers computed for each fixture model
// (default, linear and llama3 scaling).
#include "runtime/llm/rope.h"

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/loader/hf_config.h"

namespace tessera::llm {
namespace {

class RopeTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RopeTest, InvFreqMatchesTransformers) {
  const std::string dir = std::string("tests/fixtures/models/") + GetParam();
  auto config = loader::LoadHfConfig(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  std::ifstream in(dir + "/reference.json");
  const auto want = nlohmann::json::parse(in)["inv_freq"].get<std::vector<double>>();
  const std::vector<float> got = RopeInvFreq(*config);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 2e-6 * std::abs(want[i])) << "index " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, RopeTest,
                         ::testing::Values("llama_gqa4_hd64_f32", "llama_mha_hd128_tied_linrope_bf16",
                                           "llama3rope_gqa2_bias_sharded_f32", "qwen3moe_qknorm_hd64_bf16"));

}  // namespace
}  // namespace tessera::llm
