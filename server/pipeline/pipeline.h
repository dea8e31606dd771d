// The frontend's request path, shared by every API: tokenize (or render the chat template and
// tokenize), admit against the bounded queue, route to an engine, then stream back deltas of
// detokenized text with stop strings applied, recording metrics on the way.
//
//   TS_ASSIGN_OR_RETURN(auto gen, pipeline.Submit(std::move(request)));
//   for (;;) {
//     TS_ASSIGN_OR_RETURN(std::optional<Delta> d, gen->Next([&] { return client_gone(); }));
//     if (!d) break;            // every sequence finished
//     Send(*d);
//   }
//
// Threads: each of a request's n sequences has one reader thread pulling the engine's gRPC stream;
// Next() waits on their shared queue and polls the caller's cancellation predicate every 20 ms, so
// a client that goes away aborts the engine sequences within a step or two.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "server/api/types.h"
#include "server/metrics/metrics.h"
#include "server/router/router.h"
#include "server/tokenizer/tokenizer.h"

namespace tessera::server {

class Pipeline;

class Generation {
 public:
  ~Generation();
  // The next piece of output; nullopt once every sequence has finished. An error ends the
  // generation (remaining sequences are cancelled). `cancelled` is polled while waiting.
  absl::StatusOr<std::optional<Delta>> Next(const std::function<bool()>& cancelled);
  const std::string& id() const { return id_; }
  int32_t prompt_tokens() const { return static_cast<int32_t>(prompt_.size()); }
  const std::vector<int32_t>& prompt_ids() const { return prompt_; }
  // Cancels every sequence; Next() then returns `why`.
  void Cancel(const absl::Status& why);

 private:
  friend class Pipeline;
  struct Seq;
  struct Item {
    int32_t index = 0;
    bool end = false;
    tessera::engine::v1::GenerateResponse resp;
    grpc::Status status;
  };
  Generation() = default;
  absl::Status Start(int32_t index, const tessera::engine::v1::GenerateRequest& req);
  std::optional<Delta> Handle(Item& item, absl::Status* error);
  void FirstTokenSeen();

  Pipeline* pipeline_ = nullptr;
  std::string id_;
  TextRequest req_;
  std::vector<int32_t> prompt_;
  Clock::time_point arrival_;
  std::shared_ptr<EngineClient> engine_;
  std::vector<std::unique_ptr<Seq>> seqs_;
  int32_t live_ = 0;
  bool first_token_seen_ = false;
  std::string echo_;  // prompt text to prepend (completions echo)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;
  std::optional<absl::Status> cancelled_;
};

class Pipeline {
 public:
  struct Options {
    int64_t max_queued_requests = 1024;   // requests admitted but without a first token yet
    int64_t max_queued_tokens = 1 << 20;  // their prompt tokens
    int32_t max_tokens_cap = 0;           // upper bound on max_tokens; 0 = none
    int32_t max_n = 16;
  };
  using ChatRenderer = std::function<absl::StatusOr<std::string>(const TextRequest&)>;

  Pipeline(const Options& options, std::string model_name, const tokenizer::Tokenizer* tokenizer, Router* router,
           Metrics* metrics);

  void SetChatRenderer(ChatRenderer r) { chat_renderer_ = std::move(r); }
  absl::StatusOr<std::unique_ptr<Generation>> Submit(TextRequest req);

  const std::string& model_name() const { return model_name_; }
  // The context length and vocabulary of the served model (from the engines' Health replies).
  int64_t max_model_len() const;
  int64_t vocab_size() const;
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  std::string TokenText(int32_t id) const;

  bool Ready() const { return !draining_.load() && router_->AnyReady(); }
  void StartDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  int64_t InFlight() const { return inflight_.load(); }
  // Ends every generation still running with `why`.
  void CancelAll(const absl::Status& why);

  Metrics* metrics() { return metrics_; }

 private:
  friend class Generation;
  absl::StatusOr<std::vector<int32_t>> BuildPrompt(const TextRequest& req, std::string* prompt_text) const;
  void Unqueue(int64_t tokens);
  void Forget(Generation* g);

  Options options_;
  std::string model_name_;
  const tokenizer::Tokenizer* tokenizer_;
  Router* router_;
  Metrics* metrics_;
  ChatRenderer chat_renderer_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> inflight_{0};
  std::atomic<uint64_t> next_id_{1};

  std::mutex mu_;
  int64_t queued_requests_ = 0;
  int64_t queued_tokens_ = 0;
  std::set<Generation*> live_;
};

}  // namespace tessera::server
