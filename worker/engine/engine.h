// The serving engine of a worker: token ids in, token ids out. Requests arrive from any thread;
// one step thread runs continuous batching over a paged KV cache with prefix caching and
// preemption (worker/engine/scheduler.h), one Model::Forward per step, and streams every sampled
// token to the request's sink. No networking: worker/service wraps it in gRPC.
//
//   TS_ASSIGN_OR_RETURN(auto engine, Engine::Create(model.get(), {.kv_cache_bytes = 1 << 30}));
//   engine->Start();
//   TS_RETURN_IF_ERROR(engine->Add({.id = "req-1", .prompt = ids, .params = {.max_tokens = 64}},
//                                  [](const Event& e) { Send(e); /* called on the step thread */ }));
//   ...
//   engine->Abort("req-1");  // the sink then gets Event{.finish = FinishReason::kAbort}
//   engine->Stop();
//
// Lifecycle of a request: waiting → running (→ back to waiting if preempted) → finished. Its sink
// sees each new token exactly once, in order, and a last event with finish != kNone (stop, length,
// abort, or error with the status). Aborts and deadlines take effect at the start of the next step.
// A sink runs on the step thread and must not block for long; it may call Add, Abort, GetLoad and
// GetCounters, but not Stop.
//
// Every request that passes Add fits the KV cache on its own (max_model_len is at most the cache's
// capacity), and the oldest running request can always preempt the others, so every request
// finishes; none waits forever for blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/llm/kv_cache.h"
#include "runtime/llm/model.h"
#include "runtime/llm/sampling/sampler.h"
#include "runtime/llm/sequence.h"
#include "worker/engine/scheduler.h"

namespace tessera::engine {

enum class FinishReason {
  kNone,
  kStop,    // an EOS id (unless ignore_eos) or one of params.stop_token_ids; the token is included
  kLength,  // max_tokens reached
  kAbort,   // Abort() or AbortAll()
  kError,   // Event::error says why (DEADLINE_EXCEEDED for a passed deadline)
};

// "stop", "length", "abort", "error" ("" for kNone): the names OpenAI and vLLM use.
const char* FinishReasonName(FinishReason reason);

struct Request {
  std::string id = {};  // unique among live requests
  std::vector<int32_t> prompt = {};
  llm::SamplingParams params = {};
  // Past it the request finishes with kError and a DEADLINE_EXCEEDED status.
  std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt;
};

// One per request per step that produced something.
struct Event {
  std::string id = {};
  std::vector<llm::SampledToken> tokens = {};  // new tokens this step (usually 1)
  FinishReason finish = FinishReason::kNone;
  absl::Status error = {};  // set when finish == kError
  int32_t prompt_tokens = 0, completion_tokens = 0, cached_prompt_tokens = 0;
};

using EventSink = std::function<void(const Event&)>;  // called on the step thread

struct Options {
  int64_t block_size = 16;
  int64_t num_blocks = 0;  // 0: as many as fit in kv_cache_bytes
  int64_t kv_cache_bytes = 256 << 20;
  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 512;
  bool enable_prefix_caching = true;
  // 0: the config's max_position_embeddings, capped to what the KV cache holds. A request's prompt
  // plus max_tokens must fit in it.
  int64_t max_model_len = 0;
  // The forward pass of a step; unset: model->Forward. A worker group's rank 0 sets it to run the
  // step across its ranks (worker/group); it is called on the step thread only.
  std::function<absl::Status(std::span<const llm::SequenceInput>, llm::PagedKvCache&, std::vector<float>*)> forward =
      nullptr;
};

struct Load {
  int64_t waiting, running;
  double kv_usage;  // 1 - kv_blocks_free / kv_blocks_total (cached but unused blocks count as free)
  int64_t kv_blocks_total, kv_blocks_free;
};

// Totals since Create, for metrics.
struct Counters {
  int64_t prompt_tokens = 0;      // prompts of requests that got their first token (cached ones included)
  int64_t generation_tokens = 0;  // tokens sampled
  int64_t preemptions = 0;
  int64_t prefix_cache_queries = 0;  // tokens looked up in the prefix cache (once per request)
  int64_t prefix_cache_hits = 0;     // of those, tokens found (vLLM counts in tokens too)
  int64_t steps = 0;                 // forward passes
  int64_t computed_tokens = 0;       // tokens run through the model (recomputation included)
  int64_t requests_added = 0;
  int64_t finished_stop = 0, finished_length = 0, finished_abort = 0, finished_error = 0;
};

class Engine {
 public:
  // INVALID_ARGUMENT naming the option when one is out of range or the KV cache cannot hold one
  // block (or max_model_len tokens, when set explicitly).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(llm::Model* model, const Options& options);
  ~Engine();  // stops the step loop; requests still live get no further events

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Thread-safe. INVALID_ARGUMENT naming the field for an empty id, an empty prompt or ids outside
  // the vocabulary, prompt + max_tokens > max_model_len, invalid params, or no sink; ALREADY_EXISTS
  // when a live request has this id. The sink receives every Event of this request, the last one
  // with finish != kNone.
  absl::Status Add(Request request, EventSink sink);
  // Thread-safe; takes effect at the next step: the sink gets a final Event{finish = kAbort} and the
  // request's blocks are freed. Unknown ids are ignored.
  void Abort(const std::string& id);
  // Aborts every live request.
  void AbortAll();

  // Runs one scheduling step, one Model::Forward and sampling; returns false when there was
  // nothing to do. Called by one thread only (the step loop), and not while Start()ed. A failed
  // forward pass fails the requests of that step (kError events) and is returned.
  absl::StatusOr<bool> Step();

  // Runs Step in a loop on its own thread until Stop(); sleeps when idle.
  void Start();
  void Stop();

  Load GetLoad() const;          // thread-safe
  Counters GetCounters() const;  // thread-safe
  int64_t max_model_len() const { return max_model_len_; }
  int64_t num_blocks() const { return num_blocks_; }
  // Bytes of the KV cache (K and V, every layer), fixed at Create.
  int64_t kv_cache_bytes() const { return cache_.bytes(); }

 private:
  struct Live {
    std::unique_ptr<SequenceState> state;
    EventSink sink;
    std::optional<std::chrono::steady_clock::time_point> deadline;
  };
  struct Incoming {
    std::string id;
    std::optional<llm::Sequence> seq;
    EventSink sink;
    std::optional<std::chrono::steady_clock::time_point> deadline;
  };
  // An event to deliver after the step's bookkeeping, outside the lock.
  struct Delivery {
    EventSink sink;
    Event event;
  };

  Engine(llm::Model* model, const Options& options, llm::PagedKvCache cache, int64_t max_model_len);

  Event MakeEvent(const SequenceState& s) const;
  // Ends a request: frees its blocks, forgets it, and queues its final event.
  void Finish(const std::string& id, FinishReason reason, absl::Status error, std::vector<Delivery>& out,
              std::vector<llm::SampledToken> tokens = {});
  // Makes the step's counters, load and finished ids visible to other threads, then runs the sinks.
  void Publish(std::vector<Delivery>& deliveries);
  void Loop();

  llm::Model* model_;
  const Options options_;
  const int64_t num_blocks_;
  const int64_t max_model_len_;
  const std::vector<int32_t> eos_;

  // Step thread only.
  llm::PagedKvCache cache_;
  Scheduler scheduler_;
  llm::Sampler sampler_;
  std::vector<float> logits_;
  absl::flat_hash_map<std::string, Live> live_;
  Counters delta_;                         // since the last Publish
  std::vector<std::string> finished_ids_;  // since the last Publish

  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  std::vector<Incoming> incoming_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> live_ids_ ABSL_GUARDED_BY(mu_);  // incoming or in live_
  absl::flat_hash_set<std::string> aborts_ ABSL_GUARDED_BY(mu_);
  bool abort_all_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  Load load_ ABSL_GUARDED_BY(mu_);
  int64_t scheduler_waiting_ ABSL_GUARDED_BY(mu_) = 0;
  Counters counters_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace tessera::engine
