#include "bench/serve/runner.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

namespace tessera::bench {
namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

std::vector<double> ArrivalOffsets(size_t n, double rate, uint64_t seed) {
  std::vector<double> at(n, 0.0);
  if (!std::isfinite(rate) || rate <= 0) return at;
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  std::exponential_distribution<double> gap(rate);
  double t = 0;
  for (size_t i = 0; i < n; ++i) {
    at[i] = t;
    t += gap(rng);
  }
  return at;
}

}  // namespace

RunResult RunRequests(ClientFactory& factory, const std::vector<RequestSpec>& specs, const RunOptions& opts) {
  RunResult run;
  const int n = static_cast<int>(specs.size());
  run.requests.resize(specs.size());
  if (n == 0) return run;
  int workers = opts.max_concurrency > 0 ? std::min(opts.max_concurrency, n) : n;
  workers = std::min(workers, kMaxWorkers);
  run.workers = workers;
  const std::vector<double> arrivals = ArrivalOffsets(specs.size(), opts.request_rate, opts.seed);

  std::vector<std::unique_ptr<Client>> clients;
  clients.reserve(static_cast<size_t>(workers));
  for (int w = 0; w < workers; ++w) clients.push_back(factory.NewClient(w));

  std::atomic<int> next{0};
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  double t0 = 0;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return go; });
      }
      Client& client = *clients[static_cast<size_t>(w)];
      for (;;) {
        // Requests are taken in order, so request i starts at its arrival time or when a worker
        // frees up, whichever is later (a semaphore of max_concurrency slots).
        const int i = next.fetch_add(1);
        if (i >= n) break;
        const double due = t0 + arrivals[static_cast<size_t>(i)];
        const double wait = due - NowSeconds();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
        run.requests[static_cast<size_t>(i)] =
            client.Send(specs[static_cast<size_t>(i)], absl::StrCat(opts.id_prefix, "-", i));
      }
    });
  }
  const double cpu0 = CpuSeconds();
  {
    std::lock_guard<std::mutex> lock(mu);
    t0 = NowSeconds();
    go = true;
  }
  cv.notify_all();
  for (std::thread& t : threads) t.join();
  run.client_cpu_s = CpuSeconds() - cpu0;
  double end = t0;
  for (const RequestResult& r : run.requests) end = std::max(end, r.start + r.e2e);
  run.duration_s = end - t0;
  return run;
}

Report MakeReport(const RunResult& run, const std::vector<RequestSpec>& specs) {
  Report rep;
  rep.duration_s = run.duration_s;
  rep.workers = run.workers;
  rep.client_cpu_s = run.client_cpu_s;
  rep.client_cpu_percent = run.duration_s > 0 ? 100.0 * run.client_cpu_s / run.duration_s : 0;
  std::vector<double> ttft, tpot, itl, e2e, in_tok, out_tok;
  for (size_t i = 0; i < run.requests.size(); ++i) {
    const RequestResult& r = run.requests[i];
    if (!r.ok) {
      ++rep.failed;
      ++rep.errors[r.error_kind.empty() ? "unknown" : r.error_kind];
      if (rep.first_error_detail.empty() && !r.error_detail.empty()) {
        rep.first_error_detail = absl::StrCat(r.error_kind, ": ", r.error_detail);
      }
      continue;
    }
    ++rep.completed;
    if (r.prompt_tokens >= 0) {
      rep.total_input_tokens += r.prompt_tokens;
      in_tok.push_back(r.prompt_tokens);
    }
    rep.total_output_tokens += r.output_tokens;
    out_tok.push_back(r.output_tokens);
    if (i < specs.size() && r.chunks > 0 && r.output_tokens != specs[i].output_len) ++rep.output_len_mismatches;
    e2e.push_back(r.e2e * 1e3);
    if (r.chunks > 0) {
      ttft.push_back(r.ttft * 1e3);
      if (r.output_tokens > 1) tpot.push_back((r.e2e - r.ttft) * 1e3 / (r.output_tokens - 1));
      for (double g : r.itl) itl.push_back(g * 1e3);
    }
  }
  if (rep.duration_s > 0) {
    rep.request_throughput = rep.completed / rep.duration_s;
    rep.output_throughput = static_cast<double>(rep.total_output_tokens) / rep.duration_s;
    rep.total_throughput = static_cast<double>(rep.total_input_tokens + rep.total_output_tokens) / rep.duration_s;
  }
  rep.ttft = Summarize(std::move(ttft));
  rep.tpot = Summarize(std::move(tpot));
  rep.itl = Summarize(std::move(itl));
  rep.e2e = Summarize(std::move(e2e));
  rep.input_tokens = Summarize(std::move(in_tok));
  rep.output_tokens = Summarize(std::move(out_tok));
  return rep;
}

}  // namespace tessera::bench
