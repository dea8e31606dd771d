// Drives a list of requests through worker threads (one request in flight per thread) with
// Poisson or all-at-once arrivals, and summarizes what came back the way `vllm bench serve` does.
#ifndef TESSERA_BENCH_SERVE_RUNNER_H_
#define TESSERA_BENCH_SERVE_RUNNER_H_

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "bench/serve/client.h"
#include "bench/serve/dataset.h"
#include "bench/serve/stats.h"

namespace tessera::bench {

struct RunOptions {
  double request_rate = std::numeric_limits<double>::infinity();  // requests/s; inf: all at t=0
  int max_concurrency = 0;                                        // 0: no limit (one thread per request)
  uint64_t seed = 0;                                              // for the arrival times
  std::string id_prefix = "bench";
};

// Largest number of worker threads a run starts.
inline constexpr int kMaxWorkers = 4096;

struct RunResult {
  std::vector<RequestResult> requests;  // in request order
  double duration_s = 0;                // first send to last completion
  double client_cpu_s = 0;              // user + system CPU time of this process during the run
  int workers = 0;
};

RunResult RunRequests(ClientFactory& factory, const std::vector<RequestSpec>& specs, const RunOptions& opts);

struct Report {
  int completed = 0;
  int failed = 0;
  std::map<std::string, int> errors;  // error kind -> count
  std::string first_error_detail;
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  int output_len_mismatches = 0;  // completed requests whose output length differs from max_tokens
  double request_throughput = 0;  // completed / s
  double output_throughput = 0;   // output tokens / s
  double total_throughput = 0;    // (input + output) tokens / s
  double client_cpu_s = 0;
  double client_cpu_percent = 0;  // of one core, over the run
  int workers = 0;
  // Milliseconds.
  Summary ttft;
  Summary tpot;  // per request: (e2e - ttft) / (output_tokens - 1)
  Summary itl;   // every gap between token-carrying chunks of every completed request
  Summary e2e;
  Summary input_tokens;   // per completed request, from usage
  Summary output_tokens;  // per completed request
};

Report MakeReport(const RunResult& run, const std::vector<RequestSpec>& specs);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_SERVE_RUNNER_H_
