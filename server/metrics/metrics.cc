#include "server/metrics/metrics.h"

#include <algorithm>
#include <sstream>
#include <tuple>

#include "prometheus/text_serializer.h"

namespace tessera::server {
namespace {

const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
const prometheus::Histogram::BucketBoundaries kItlBuckets = {
    0.001, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};

}  // namespace

Metrics::Metrics(const std::string& model_name, const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()), model_(model_name) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto& r = *registry_;
  running_ = &BuildGauge().Name("tessera_num_requests_running").Help("Sequences running in the engines").Register(r);
  waiting_ = &BuildGauge().Name("tessera_num_requests_waiting").Help("Sequences waiting in the engines").Register(r);
  kv_usage_ = &BuildGauge()
                   .Name("tessera_kv_cache_usage_perc")
                   .Help("Fraction of KV cache blocks in use (1 = 100%), mean over engines")
                   .Register(r);
  sp_bytes_ = &BuildCounter()
                   .Name("tessera_sp_bytes_total")
                   .Help("Bytes sent between the ranks of worker groups by sequence-parallel attention")
                   .Register(r);
  sp_step_ =
      &BuildHistogram()
           .Name("tessera_sp_step_seconds")
           .Help("Per rank and ring step of sequence-parallel attention: time computing or waiting for transfers")
           .Register(r);
  sp_exposed_ =
      &BuildCounter()
           .Name("tessera_sp_exposed_comm_seconds_total")
           .Help("Time ranks of worker groups spent blocked on sequence-parallel transfers (not hidden by compute)")
           .Register(r);
  device_memory_ = &BuildGauge()
                        .Name("tessera_device_memory_bytes")
                        .Help("Memory the engines' models hold, by device and kind (weights, kv, workspace)")
                        .Register(r);
  prompt_tokens_ = &BuildCounter().Name("tessera_prompt_tokens_total").Help("Prompt tokens processed").Register(r);
  generation_tokens_ = &BuildCounter().Name("tessera_generation_tokens_total").Help("Generated tokens").Register(r);
  success_ = &BuildCounter()
                  .Name("tessera_request_success_total")
                  .Help("Requests finished successfully, by finish reason")
                  .Register(r);
  errors_ =
      &BuildCounter().Name("tessera_request_errors_total").Help("Requests ended by an error, by code").Register(r);
  rejections_ = &BuildCounter()
                     .Name("tessera_admission_rejections_total")
                     .Help("Requests refused at admission, by reason")
                     .Register(r);
  preemptions_ =
      &BuildCounter().Name("tessera_num_preemptions_total").Help("Sequences preempted by the engines").Register(r);
  prefix_queries_ = &BuildCounter()
                         .Name("tessera_prefix_cache_queries_total")
                         .Help("Prompt tokens looked up in the prefix cache")
                         .Register(r);
  prefix_hits_ = &BuildCounter()
                      .Name("tessera_prefix_cache_hits_total")
                      .Help("Prompt tokens found in the prefix cache")
                      .Register(r);
  restarts_ = &BuildCounter().Name("tessera_worker_restarts_total").Help("Worker group relaunches").Register(r);
  worker_up_ = &BuildGauge().Name("tessera_worker_up").Help("1 when the worker rank is up and ready").Register(r);
  ttft_ = &BuildHistogram().Name("tessera_time_to_first_token_seconds").Help("Time to first token").Register(r);
  itl_ = &BuildHistogram()
              .Name("tessera_inter_token_latency_seconds")
              .Help("Time between consecutive output tokens")
              .Register(r);
  e2e_ = &BuildHistogram()
              .Name("tessera_e2e_request_latency_seconds")
              .Help("Request latency from arrival to last token")
              .Register(r);
  queue_ = &BuildHistogram()
                .Name("tessera_request_queue_time_seconds")
                .Help("Time from arrival until the request is handed to an engine")
                .Register(r);
  BuildGauge()
      .Name("tessera_build_info")
      .Help("Build information")
      .Register(r)
      .Add({{"version", version}, {"model_name", model_name}})
      .Set(1);
  // Series that exist from the start, so dashboards and rate() see zeros rather than gaps.
  running_->Add(L());
  waiting_->Add(L());
  kv_usage_->Add(L());
  prompt_tokens_->Add(L());
  generation_tokens_->Add(L());
  preemptions_->Add(L());
  prefix_queries_->Add(L());
  prefix_hits_->Add(L());
  restarts_->Add(L({{"group", "0"}}));
  for (const char* reason : {"stop", "length", "abort"}) success_->Add(L({{"finished_reason", reason}}));
  for (const char* reason : {"queue_full", "token_budget", "draining", "not_ready"}) {
    rejections_->Add(L({{"reason", reason}}));
  }
  ttft_->Add(L(), kLatencyBuckets);
  itl_->Add(L(), kItlBuckets);
  e2e_->Add(L(), kLatencyBuckets);
  queue_->Add(L(), kLatencyBuckets);
}

prometheus::Labels Metrics::L(prometheus::Labels extra) const {
  extra["model_name"] = model_;
  return extra;
}

std::string Metrics::Render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

void Metrics::RequestFinished(const std::string& finished_reason, int64_t prompt_tokens, int64_t generation_tokens,
                              double e2e_seconds) {
  success_->Add(L({{"finished_reason", finished_reason}})).Increment();
  prompt_tokens_->Add(L()).Increment(static_cast<double>(prompt_tokens));
  generation_tokens_->Add(L()).Increment(static_cast<double>(generation_tokens));
  e2e_->Add(L(), kLatencyBuckets).Observe(e2e_seconds);
}

void Metrics::RequestErrored(const std::string& code) { errors_->Add(L({{"code", code}})).Increment(); }
void Metrics::AdmissionRejected(const std::string& reason) { rejections_->Add(L({{"reason", reason}})).Increment(); }
void Metrics::FirstToken(double s) { ttft_->Add(L(), kLatencyBuckets).Observe(s); }
void Metrics::InterToken(double s) { itl_->Add(L(), kItlBuckets).Observe(s); }
void Metrics::Queued(double s) { queue_->Add(L(), kLatencyBuckets).Observe(s); }

void Metrics::SetEngineLoad(int64_t running, int64_t waiting, double kv_usage) {
  running_->Add(L()).Set(static_cast<double>(running));
  waiting_->Add(L()).Set(static_cast<double>(waiting));
  kv_usage_->Add(L()).Set(kv_usage);
}

void Metrics::AddEngineCounters(const std::string& engine, const EngineCounters& now) {
  std::lock_guard<std::mutex> lock(mu_);
  EngineCounters& last = last_[engine];
  auto delta = [](int64_t cur, int64_t prev) { return static_cast<double>(cur >= prev ? cur - prev : cur); };
  preemptions_->Add(L()).Increment(delta(now.preemptions, last.preemptions));
  prefix_queries_->Add(L()).Increment(delta(now.prefix_cache_queries, last.prefix_cache_queries));
  prefix_hits_->Add(L()).Increment(delta(now.prefix_cache_hits, last.prefix_cache_hits));
  for (const auto& [algo, sp] : now.sp) {
    const auto it = last.sp.find(algo);
    const SpCounters prev = it == last.sp.end() ? SpCounters{} : it->second;
    // A restarted group starts again from zero: take its first report whole.
    const bool restarted = sp.exposed_comm_seconds < prev.exposed_comm_seconds;
    for (const auto& [dir, bytes] : sp.bytes) {
      const auto p = prev.bytes.find(dir);
      const int64_t before = restarted || p == prev.bytes.end() ? 0 : p->second;
      sp_bytes_->Add(L({{"algo", algo}, {"direction", dir}})).Increment(delta(bytes, before));
    }
    for (const auto& [phase, counts, prev_counts, sum, prev_sum] :
         {std::tuple{"compute", &sp.compute_counts, &prev.compute_counts, sp.compute_sum, prev.compute_sum},
          std::tuple{"wait", &sp.wait_counts, &prev.wait_counts, sp.wait_sum, prev.wait_sum}}) {
      if (counts->size() != sp.bounds.size() + 1) continue;
      std::vector<double> inc(counts->size());
      for (size_t b = 0; b < counts->size(); ++b) {
        const int64_t before = restarted || prev_counts->size() != counts->size() ? 0 : (*prev_counts)[b];
        inc[b] = delta((*counts)[b], before);
      }
      const double sum_inc = restarted ? sum : std::max(0.0, sum - prev_sum);
      sp_step_->Add(L({{"algo", algo}, {"phase", phase}}), sp.bounds).ObserveMultiple(inc, sum_inc);
    }
    sp_exposed_->Add(L({{"algo", algo}}))
        .Increment(restarted ? sp.exposed_comm_seconds : sp.exposed_comm_seconds - prev.exposed_comm_seconds);
  }
  last = now;
  // The memory gauges: every engine's latest report, summed by device and kind.
  std::map<std::pair<std::string, std::string>, int64_t> total;
  for (const auto& [name, counters] : last_) {
    for (const auto& [key, bytes] : counters.device_memory) total[key] += bytes;
  }
  for (const auto& [key, bytes] : total) {
    device_memory_->Add(L({{"device", key.first}, {"kind", key.second}})).Set(static_cast<double>(bytes));
  }
}

void Metrics::WorkerRestarted(const std::string& group) { restarts_->Add(L({{"group", group}})).Increment(); }

void Metrics::SetWorkerUp(const std::string& group, int rank, bool up) {
  worker_up_->Add(L({{"group", group}, {"rank", std::to_string(rank)}})).Set(up ? 1 : 0);
}

}  // namespace tessera::server
