// The daemon's Prometheus metrics (ARCHITECTURE.md §5): one prometheus-cpp registry, rendered in
// the text exposition format at /metrics of the HTTP port. Every series carries model_name.
// Frontend-side figures (requests, tokens, latencies, admission) are recorded as they happen;
// engine-side ones (running, waiting, KV use, preemptions, prefix cache) are copied from the
// engines' GetLoad/GetStats replies by the router's poller.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace tessera::server {

// A worker group's sequence-parallel attention totals for one algorithm (GetStats' SpAlgoStats).
struct SpCounters {
  std::map<std::string, int64_t> bytes;              // sent, by direction ("q", "out", "kv")
  std::vector<double> bounds;                        // histogram bucket bounds (seconds)
  std::vector<int64_t> compute_counts, wait_counts;  // per bucket, bounds.size() + 1 each
  double compute_sum = 0, wait_sum = 0;
  double exposed_comm_seconds = 0;
};

struct EngineCounters {  // monotonic engine-side totals, as GetStats reports them
  int64_t preemptions = 0;
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
  std::map<std::string, SpCounters> sp = {};  // by algo ("token_ring", "ring"); empty for one rank
  // Gauges, not counters: the engine's memory now, by (device, kind).
  std::map<std::pair<std::string, std::string>, int64_t> device_memory = {};
};

class Metrics {
 public:
  Metrics(const std::string& model_name, const std::string& version);

  std::string Render() const;  // text exposition format 0.0.4

  void RequestFinished(const std::string& finished_reason, int64_t prompt_tokens, int64_t generation_tokens,
                       double e2e_seconds);
  void AdmissionRejected(const std::string& reason);
  void FirstToken(double ttft_seconds);
  void InterToken(double seconds);
  void Queued(double seconds);
  void RequestErrored(const std::string& code);

  // Gauges summed over engines by the caller.
  void SetEngineLoad(int64_t running, int64_t waiting, double kv_usage);
  // Adds the growth of one engine's counters since its previous report (a restarted engine starts
  // again from zero: its first report after a restart is taken whole).
  void AddEngineCounters(const std::string& engine, const EngineCounters& now);
  void WorkerRestarted(const std::string& group);
  void SetWorkerUp(const std::string& group, int rank, bool up);

 private:
  prometheus::Labels L(prometheus::Labels extra = {}) const;

  std::shared_ptr<prometheus::Registry> registry_;
  std::string model_;
  prometheus::Family<prometheus::Gauge>* running_;
  prometheus::Family<prometheus::Gauge>* waiting_;
  prometheus::Family<prometheus::Gauge>* kv_usage_;
  prometheus::Family<prometheus::Counter>* prompt_tokens_;
  prometheus::Family<prometheus::Counter>* generation_tokens_;
  prometheus::Family<prometheus::Counter>* success_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Family<prometheus::Counter>* rejections_;
  prometheus::Family<prometheus::Counter>* preemptions_;
  prometheus::Family<prometheus::Counter>* prefix_queries_;
  prometheus::Family<prometheus::Counter>* prefix_hits_;
  prometheus::Family<prometheus::Counter>* restarts_;
  prometheus::Family<prometheus::Gauge>* worker_up_;
  prometheus::Family<prometheus::Histogram>* ttft_;
  prometheus::Family<prometheus::Histogram>* itl_;
  prometheus::Family<prometheus::Histogram>* e2e_;
  prometheus::Family<prometheus::Histogram>* queue_;
  prometheus::Family<prometheus::Counter>* sp_bytes_;
  prometheus::Family<prometheus::Histogram>* sp_step_;
  prometheus::Family<prometheus::Counter>* sp_exposed_;
  prometheus::Family<prometheus::Gauge>* device_memory_;

  std::mutex mu_;
  std::map<std::string, EngineCounters> last_;  // per engine
};

}  // namespace tessera::server
