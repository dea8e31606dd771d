#include "bench/serve/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_split.h"

namespace tessera::bench {
namespace {

TEST(DatasetTest, WordCountsFollowTheLengthRange) {
  auto in = ParseLengthSpec(32, 0.25, "", "input");
  ASSERT_TRUE(in.ok());
  DatasetOptions opts;
  opts.num = 200;
  opts.input = *in;
  opts.output.base = 16;
  opts.seed = 3;
  const std::vector<RequestSpec> reqs = MakeRequests(opts);
  ASSERT_EQ(reqs.size(), 200u);
  std::set<int> lens;
  for (const RequestSpec& r : reqs) {
    const std::vector<std::string> words = absl::StrSplit(r.prompt, ' ');
    EXPECT_EQ(static_cast<int>(words.size()), r.input_len);
    EXPECT_GE(r.input_len, 24);
    EXPECT_LE(r.input_len, 40);
    EXPECT_EQ(r.output_len, 16);
    lens.insert(r.input_len);
  }
  EXPECT_GT(lens.size(), 5u);  // the range is used, not one value
  // Same seed, same prompts.
  EXPECT_EQ(MakeRequests(opts)[17].prompt, reqs[17].prompt);
}

TEST(DatasetTest, CalibrationSetsTheWordCount) {
  DatasetOptions opts;
  opts.num = 20;
  opts.input.base = 33;
  opts.tokens_per_word = 2.0;
  opts.overhead_tokens = 3;
  for (const RequestSpec& r : MakeRequests(opts)) {
    const std::vector<std::string> words = absl::StrSplit(r.prompt, ' ');
    EXPECT_EQ(words.size(), 15u);  // (33 - 3) / 2
    EXPECT_EQ(r.input_len, 33);
  }
}

TEST(DatasetTest, ListAndTokenIds) {
  auto in = ParseLengthSpec(1, 0, "8, 64", "input");
  ASSERT_TRUE(in.ok());
  DatasetOptions opts;
  opts.num = 50;
  opts.input = *in;
  opts.output.base = 4;
  opts.seed = 1;
  opts.token_ids = true;
  opts.id_lo = 100;
  opts.id_hi = 200;
  for (const RequestSpec& r : MakeRequests(opts)) {
    EXPECT_TRUE(r.input_len == 8 || r.input_len == 64);
    EXPECT_EQ(static_cast<int>(r.prompt_ids.size()), r.input_len);
    EXPECT_TRUE(r.prompt.empty());
    for (int32_t id : r.prompt_ids) {
      EXPECT_GE(id, 100);
      EXPECT_LT(id, 200);
    }
  }
}

TEST(DatasetTest, BadSpecsNameTheFlag) {
  EXPECT_NE(ParseLengthSpec(0, 0, "", "input").status().message().find("--input-len"), std::string::npos);
  EXPECT_NE(ParseLengthSpec(8, 1.5, "", "output").status().message().find("--output-len-range"), std::string::npos);
  EXPECT_NE(ParseLengthSpec(8, 0, "4,x", "input").status().message().find("--input-lens"), std::string::npos);
  EXPECT_NE(ParseLengthSpec(8, 0, "4,-2", "input").status().message().find("'-2'"), std::string::npos);
}

}  // namespace
}  // namespace tessera::bench
