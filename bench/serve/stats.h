// Summary statistics for the serving benchmark: percentiles with the same definition as numpy's
// default (`np.percentile(x, q)`, "linear": the value at rank q/100 * (n - 1), interpolated between
// the two nearest order statistics), which is what `vllm bench serve` reports.
//
//   std::vector<double> ttft_ms = ...;
//   Summary s = Summarize(ttft_ms);   // s.mean, s.p50, s.p90, s.p99, s.min, s.max, s.count
#ifndef TESSERA_BENCH_SERVE_STATS_H_
#define TESSERA_BENCH_SERVE_STATS_H_

#include <cstddef>
#include <vector>

namespace tessera::bench {

// q in [0, 100]; `sorted` ascending and non-empty. Linear interpolation between order statistics.
double PercentileSorted(const std::vector<double>& sorted, double q);

// Same, on unsorted data (copied and sorted). Returns 0 for an empty vector.
double Percentile(std::vector<double> values, double q);

struct Summary {
  size_t count = 0;
  double mean = 0;
  double stddev = 0;  // population standard deviation (numpy's default ddof=0)
  double min = 0;
  double max = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
};

// All fields 0 for an empty vector.
Summary Summarize(std::vector<double> values);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_SERVE_STATS_H_
