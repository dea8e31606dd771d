#include "worker/service/engine_service.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

namespace tessera::worker {
namespace pb = tessera::engine::v1;

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

namespace {

llm::SamplingParams FromProto(const pb::SamplingParams& p) {
  llm::SamplingParams s;
  s.temperature = p.temperature();
  s.top_k = p.top_k();
  s.top_p = p.top_p();
  s.min_p = p.min_p();
  s.repetition_penalty = p.repetition_penalty();
  s.presence_penalty = p.presence_penalty();
  s.frequency_penalty = p.frequency_penalty();
  if (p.has_seed()) s.seed = p.seed();
  s.stop_token_ids.assign(p.stop_token_ids().begin(), p.stop_token_ids().end());
  s.ignore_eos = p.ignore_eos();
  s.logprobs = p.logprobs();
  s.max_tokens = p.max_tokens();
  s.min_tokens = p.min_tokens();
  return s;
}

pb::FinishReason ToProto(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::kStop:
      return pb::FINISH_REASON_STOP;
    case engine::FinishReason::kLength:
      return pb::FINISH_REASON_LENGTH;
    case engine::FinishReason::kAbort:
      return pb::FINISH_REASON_ABORT;
    default:
      return pb::FINISH_REASON_NONE;
  }
}

// Events of one sequence, handed from the engine's step thread to the RPC's thread.
struct EventQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<engine::Event> events;
};

}  // namespace

grpc::Status EngineService::Generate(grpc::ServerContext* ctx, const pb::GenerateRequest* req,
                                     grpc::ServerWriter<pb::GenerateResponse>* writer) {
  if (!ready_.load()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "engine is not ready");
  engine::Request r;
  r.id = req->request_id();
  r.prompt.assign(req->prompt_token_ids().begin(), req->prompt_token_ids().end());
  r.params = FromProto(req->sampling());
  const auto deadline = ctx->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    r.deadline = std::chrono::steady_clock::now() + (deadline - std::chrono::system_clock::now());
  }
  auto queue = std::make_shared<EventQueue>();
  const std::string id = r.id;
  absl::Status added = engine_->Add(std::move(r), [queue](const engine::Event& e) {
    {
      std::lock_guard<std::mutex> lock(queue->mu);
      queue->events.push_back(e);
    }
    queue->cv.notify_one();
  });
  if (!added.ok()) return ToGrpc(added);

  bool aborted = false;
  for (;;) {
    std::deque<engine::Event> batch;
    {
      std::unique_lock<std::mutex> lock(queue->mu);
      queue->cv.wait_for(lock, std::chrono::milliseconds(10), [&] { return !queue->events.empty(); });
      batch.swap(queue->events);
    }
    if (!aborted && ctx->IsCancelled()) {
      engine_->Abort(id);
      aborted = true;
    }
    for (const engine::Event& e : batch) {
      if (e.finish == engine::FinishReason::kError) return ToGrpc(e.error);
      pb::GenerateResponse out;
      for (const llm::SampledToken& t : e.tokens) {
        pb::Token* tok = out.add_tokens();
        tok->set_id(t.id);
        tok->set_logprob(t.logprob);
        for (const auto& [alt, lp] : t.top_logprobs) {
          pb::TokenLogprob* a = tok->add_top_logprobs();
          a->set_id(alt);
          a->set_logprob(lp);
        }
      }
      out.set_finish_reason(ToProto(e.finish));
      out.set_prompt_tokens(e.prompt_tokens);
      out.set_completion_tokens(e.completion_tokens);
      out.set_cached_prompt_tokens(e.cached_prompt_tokens);
      if (e.finish == engine::FinishReason::kAbort && aborted) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled");
      }
      if (!aborted && !writer->Write(out)) {
        engine_->Abort(id);
        aborted = true;
      }
      if (e.finish != engine::FinishReason::kNone) {
        return aborted ? grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled") : grpc::Status::OK;
      }
    }
  }
}

grpc::Status EngineService::Abort(grpc::ServerContext*, const pb::AbortRequest* req, pb::AbortResponse*) {
  engine_->Abort(req->request_id());
  return grpc::Status::OK;
}

grpc::Status EngineService::GetLoad(grpc::ServerContext*, const pb::GetLoadRequest*, pb::Load* resp) {
  const engine::Load load = engine_->GetLoad();
  resp->set_waiting(load.waiting);
  resp->set_running(load.running);
  resp->set_kv_usage(load.kv_usage);
  resp->set_kv_blocks_total(load.kv_blocks_total);
  resp->set_kv_blocks_free(load.kv_blocks_free);
  return grpc::Status::OK;
}

grpc::Status EngineService::Health(grpc::ServerContext*, const pb::HealthRequest*, pb::HealthResponse* resp) {
  resp->set_ready(ready_.load());
  resp->set_model_name(info_.model_name);
  resp->set_vocab_size(info_.vocab_size);
  resp->set_max_model_len(info_.max_model_len);
  for (int32_t id : info_.eos_token_ids) resp->add_eos_token_ids(id);
  resp->set_group_size(info_.group_size);
  resp->set_pid(getpid());
  return grpc::Status::OK;
}

grpc::Status EngineService::GetStats(grpc::ServerContext*, const pb::GetStatsRequest*, pb::Stats* resp) {
  const engine::Counters c = engine_->GetCounters();
  resp->set_prompt_tokens(c.prompt_tokens);
  resp->set_generation_tokens(c.generation_tokens);
  resp->set_preemptions(c.preemptions);
  resp->set_prefix_cache_queries(c.prefix_cache_queries);
  resp->set_prefix_cache_hits(c.prefix_cache_hits);
  resp->set_steps(c.steps);
  if (info_.device_memory) {
    for (const ServiceInfo::DeviceMemory& m : info_.device_memory()) {
      pb::DeviceMemory* out = resp->add_device_memory();
      out->set_device(m.device);
      out->set_kind(m.kind);
      out->set_bytes(m.bytes);
    }
  }
  if (info_.sp_totals) {
    const llm::SpTotals t = info_.sp_totals();
    for (parallel::SpAlgorithm a : {parallel::SpAlgorithm::kTokenRing, parallel::SpAlgorithm::kRing}) {
      const llm::SpTotals::Algo& at = t.algo[static_cast<size_t>(a)];
      pb::SpAlgoStats* out = resp->add_sp();
      out->set_algo(std::string(parallel::SpAlgorithmName(a)));
      for (parallel::SpDirection d :
           {parallel::SpDirection::kQuery, parallel::SpDirection::kOutput, parallel::SpDirection::kKv}) {
        (*out->mutable_bytes_sent())[std::string(parallel::SpDirectionName(d))] = at.bytes[static_cast<size_t>(d)];
      }
      for (auto [h, src] : {std::pair{out->mutable_compute(), &at.compute}, std::pair{out->mutable_wait(), &at.wait}}) {
        for (double b : llm::SpTotals::kStepBuckets) h->add_bounds(b);
        for (int64_t n : src->counts) h->add_counts(n);
        h->set_sum(src->sum);
      }
      out->set_exposed_comm_seconds(at.exposed_comm_seconds);
      out->set_calls(at.calls);
    }
  }
  return grpc::Status::OK;
}

}  // namespace tessera::worker
