#include "bench/serve/stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace tessera::bench {
namespace {

// Expected values from numpy 1.x/2.x (default "linear" method):
//   x = np.array([3.5, 1.0, 7.25, 2.0, 9.0, 4.0, 4.0, 12.5, 0.5, 6.0, 8.75])
//   [np.percentile(x, q) for q in (0, 10, 25, 50, 90, 99, 100)], x.mean(), x.std()
const std::vector<double> kData = {3.5, 1.0, 7.25, 2.0, 9.0, 4.0, 4.0, 12.5, 0.5, 6.0, 8.75};

TEST(PercentileTest, MatchesNumpyLinear) {
  EXPECT_DOUBLE_EQ(Percentile(kData, 0), 0.5);
  EXPECT_DOUBLE_EQ(Percentile(kData, 10), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(kData, 25), 2.75);
  EXPECT_DOUBLE_EQ(Percentile(kData, 50), 4.0);
  EXPECT_DOUBLE_EQ(Percentile(kData, 90), 9.0);
  EXPECT_NEAR(Percentile(kData, 99), 12.150000000000002, 1e-12);
  EXPECT_DOUBLE_EQ(Percentile(kData, 100), 12.5);
}

TEST(PercentileTest, TwoAndOneElements) {
  // np.percentile([2.0, 1.0], [50, 90, 99]) == [1.5, 1.9, 1.99]
  EXPECT_DOUBLE_EQ(Percentile({2.0, 1.0}, 50), 1.5);
  EXPECT_NEAR(Percentile({2.0, 1.0}, 90), 1.9, 1e-12);
  EXPECT_NEAR(Percentile({2.0, 1.0}, 99), 1.99, 1e-12);
  EXPECT_DOUBLE_EQ(Percentile({5.0}, 0), 5.0);
  EXPECT_DOUBLE_EQ(Percentile({5.0}, 99), 5.0);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0.0);
}

// On 0, 1, ..., n-1 (in any order) the linear percentile is exactly q/100 * (n-1).
TEST(PercentileTest, ClosedFormOnShuffledRange) {
  std::mt19937 rng(7);
  for (int n : {2, 3, 10, 101, 1000}) {
    std::vector<double> v(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
    std::shuffle(v.begin(), v.end(), rng);
    for (double q : {0.0, 1.0, 33.3, 50.0, 90.0, 99.0, 99.9, 100.0}) {
      EXPECT_NEAR(Percentile(v, q), q / 100.0 * (n - 1), 1e-9) << "n=" << n << " q=" << q;
    }
  }
}

TEST(PercentileTest, ClampsQ) {
  EXPECT_DOUBLE_EQ(Percentile(kData, -5), 0.5);
  EXPECT_DOUBLE_EQ(Percentile(kData, 150), 12.5);
}

TEST(SummarizeTest, MatchesNumpy) {
  const Summary s = Summarize(kData);
  EXPECT_EQ(s.count, kData.size());
  EXPECT_NEAR(s.mean, 5.318181818181818, 1e-12);
  EXPECT_NEAR(s.stddev, 3.5772178579597007, 1e-12);  // x.std(), ddof=0
  EXPECT_DOUBLE_EQ(s.min, 0.5);
  EXPECT_DOUBLE_EQ(s.max, 12.5);
  EXPECT_DOUBLE_EQ(s.p50, 4.0);
  EXPECT_DOUBLE_EQ(s.p90, 9.0);
  EXPECT_NEAR(s.p99, 12.15, 1e-12);
}

TEST(SummarizeTest, EmptyIsZero) {
  const Summary s = Summarize({});
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.mean, 0);
  EXPECT_EQ(s.p99, 0);
}

}  // namespace
}  // namespace tessera::bench
