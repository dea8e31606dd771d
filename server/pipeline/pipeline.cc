#include "server/pipeline/pipeline.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/api/errors.h"
#include "server/pipeline/stop_matcher.h"
#include "server/tokenizer/incremental_decoder.h"

namespace tessera::server {
namespace pb = tessera::engine::v1;

namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

pb::SamplingParams ToProto(const llm::SamplingParams& s) {
  pb::SamplingParams p;
  p.set_temperature(s.temperature);
  p.set_top_k(s.top_k);
  p.set_top_p(s.top_p);
  p.set_min_p(s.min_p);
  p.set_repetition_penalty(s.repetition_penalty);
  p.set_presence_penalty(s.presence_penalty);
  p.set_frequency_penalty(s.frequency_penalty);
  if (s.seed) p.set_seed(*s.seed);
  for (int32_t id : s.stop_token_ids) p.add_stop_token_ids(id);
  p.set_ignore_eos(s.ignore_eos);
  p.set_logprobs(s.logprobs);
  p.set_max_tokens(s.max_tokens);
  p.set_min_tokens(s.min_tokens);
  return p;
}

std::string RandomHex(int n) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string out;
  while (static_cast<int>(out.size()) < n) out += absl::StrFormat("%016x", rng());
  return out.substr(0, n);
}

const char* FinishName(pb::FinishReason r) {
  switch (r) {
    case pb::FINISH_REASON_STOP:
      return "stop";
    case pb::FINISH_REASON_LENGTH:
      return "length";
    case pb::FINISH_REASON_ABORT:
      return "abort";
    default:
      return "";
  }
}

}  // namespace

// ---- Generation ---------------------------------------------------------------------------------

struct Generation::Seq {
  Seq(const tokenizer::Tokenizer& tok, const TextRequest& req)
      : decoder(tok, req.skip_special_tokens), stop(req.stop, req.include_stop_str_in_output) {}
  int32_t index = 0;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<pb::GenerateResponse>> reader;
  int64_t down_generation = 0;
  tokenizer::IncrementalDecoder decoder;
  StopMatcher stop;
  std::thread thread;
  bool done = false;
  bool registered = false;
  Usage usage;
  Clock::time_point last_token{};
};

Generation::~Generation() {
  for (auto& s : seqs_) {
    if (!s->done) s->ctx.TryCancel();
  }
  for (auto& s : seqs_) {
    if (s->thread.joinable()) s->thread.join();
    if (s->registered) engine_->Unregister(&s->ctx);
  }
  if (!first_token_seen_) pipeline_->Unqueue(static_cast<int64_t>(prompt_.size()));
  pipeline_->Forget(this);
}

absl::Status Generation::Start(int32_t index, const pb::GenerateRequest& req) {
  auto seq = std::make_unique<Seq>(pipeline_->tokenizer(), req_);
  seq->index = index;
  if (req_.deadline) {
    seq->ctx.set_deadline(std::chrono::system_clock::now() + (*req_.deadline - Clock::now()));
  }
  seq->down_generation = engine_->down_generation();
  engine_->Register(&seq->ctx);
  seq->registered = true;
  seq->reader = engine_->stub()->Generate(&seq->ctx, req);
  Seq* s = seq.get();
  seq->thread = std::thread([this, s] {
    Item item;
    item.index = s->index;
    while (s->reader->Read(&item.resp)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        items_.push_back(item);
      }
      cv_.notify_one();
    }
    Item end;
    end.index = s->index;
    end.end = true;
    end.status = s->reader->Finish();
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(end));
    }
    cv_.notify_one();
  });
  seqs_.push_back(std::move(seq));
  ++live_;
  return absl::OkStatus();
}

void Generation::Cancel(const absl::Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cancelled_) cancelled_ = why;
  }
  for (auto& s : seqs_) s->ctx.TryCancel();
  cv_.notify_all();
}

void Generation::FirstTokenSeen() {
  if (first_token_seen_) return;
  first_token_seen_ = true;
  pipeline_->Unqueue(static_cast<int64_t>(prompt_.size()));
  pipeline_->metrics()->FirstToken(Seconds(Clock::now() - arrival_));
}

std::optional<Delta> Generation::Handle(Item& item, absl::Status* error) {
  Seq& s = *seqs_[item.index];
  if (s.done) return std::nullopt;
  if (item.end) {
    s.done = true;
    --live_;
    if (item.status.ok()) {
      // A stream that ends without a finish reason: the engine went away mid-sequence.
      *error = absl::UnavailableError("engine ended the sequence without finishing it");
    } else if (engine_->down_generation() != s.down_generation ||
               item.status.error_code() == grpc::StatusCode::CANCELLED ||
               item.status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      *error =
          absl::UnavailableError(absl::StrCat("engine ", engine_->address(), " failed: ", item.status.error_message()));
    } else {
      *error = FromGrpc(item.status);
    }
    return std::nullopt;
  }
  const pb::GenerateResponse& r = item.resp;
  Delta d;
  d.index = item.index;
  const Clock::time_point now = Clock::now();
  for (const pb::Token& t : r.tokens()) {
    FirstTokenSeen();
    if (s.last_token != Clock::time_point{}) pipeline_->metrics()->InterToken(Seconds(now - s.last_token));
    s.last_token = now;
    ++s.usage.completion_tokens;
    d.text += s.stop.Feed(s.decoder.Add(t.id()));
    TokenOut out;
    out.id = t.id();
    out.token = pipeline_->TokenText(t.id());
    out.logprob = t.logprob();
    for (const pb::TokenLogprob& a : t.top_logprobs()) {
      out.top.push_back({a.id(), pipeline_->TokenText(a.id()), a.logprob()});
    }
    d.tokens.push_back(std::move(out));
    if (s.stop.stopped()) break;
  }
  s.usage.prompt_tokens = r.prompt_tokens() ? r.prompt_tokens() : prompt_tokens();
  s.usage.cached_prompt_tokens = std::max(s.usage.cached_prompt_tokens, r.cached_prompt_tokens());
  if (s.stop.stopped()) {
    d.finish_reason = "stop";
    d.stop_reason = s.stop.matched();
    s.ctx.TryCancel();  // the engine aborts the sequence; its CANCELLED end is ignored
  } else if (r.finish_reason() != pb::FINISH_REASON_NONE) {
    d.text += s.stop.Feed(s.decoder.Flush());
    d.text += s.stop.Flush();
    d.finish_reason = FinishName(r.finish_reason());
  }
  if (!d.finish_reason.empty()) {
    s.done = true;
    --live_;
    pipeline_->metrics()->RequestFinished(d.finish_reason, s.usage.prompt_tokens, s.usage.completion_tokens,
                                          Seconds(now - arrival_));
  }
  if (!echo_.empty() && item.index == 0) {
    d.text = echo_ + d.text;
    echo_.clear();
  }
  d.usage = s.usage;
  return d;
}

absl::StatusOr<std::optional<Delta>> Generation::Next(const std::function<bool()>& cancelled) {
  for (;;) {
    if (live_ == 0) return std::optional<Delta>();
    Item item;
    bool have = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return !items_.empty() || cancelled_.has_value(); });
      if (cancelled_) {
        const absl::Status why = *cancelled_;
        lock.unlock();
        for (auto& s : seqs_) s->ctx.TryCancel();
        live_ = 0;
        return why;
      }
      if (!items_.empty()) {
        item = std::move(items_.front());
        items_.pop_front();
        have = true;
      }
    }
    if (cancelled && cancelled()) {
      Cancel(absl::CancelledError("client cancelled the request"));
      continue;
    }
    if (req_.deadline && Clock::now() > *req_.deadline) {
      Cancel(absl::DeadlineExceededError("request deadline exceeded"));
      continue;
    }
    if (!have) continue;
    absl::Status error;
    std::optional<Delta> d = Handle(item, &error);
    if (!error.ok()) {
      Cancel(error);
      pipeline_->metrics()->RequestErrored(absl::StatusCodeToString(error.code()));
      live_ = 0;
      return error;
    }
    if (d) return d;
  }
}

// ---- Pipeline -----------------------------------------------------------------------------------

Pipeline::Pipeline(const Options& options, std::string model_name, const tokenizer::Tokenizer* tokenizer,
                   Router* router, Metrics* metrics)
    : options_(options),
      model_name_(std::move(model_name)),
      tokenizer_(tokenizer),
      router_(router),
      metrics_(metrics) {}

int64_t Pipeline::max_model_len() const {
  for (size_t i = 0; i < router_->size(); ++i) {
    auto c = router_->Get(i);
    if (c && c->info().max_model_len() > 0) return c->info().max_model_len();
  }
  return 0;
}

int64_t Pipeline::vocab_size() const {
  for (size_t i = 0; i < router_->size(); ++i) {
    auto c = router_->Get(i);
    if (c && c->info().vocab_size() > 0) return c->info().vocab_size();
  }
  return static_cast<int64_t>(tokenizer_->VocabSize());
}

std::string Pipeline::TokenText(int32_t id) const {
  const int32_t one[1] = {id};
  return tokenizer_->Decode(one, /*skip_special_tokens=*/false);
}

void Pipeline::Unqueue(int64_t tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  --queued_requests_;
  queued_tokens_ -= tokens;
}

void Pipeline::Forget(Generation* g) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.erase(g);
  inflight_.fetch_sub(1);
}

void Pipeline::CancelAll(const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Generation* g : live_) g->Cancel(why);
}

absl::StatusOr<std::vector<int32_t>> Pipeline::BuildPrompt(const TextRequest& req, std::string* prompt_text) const {
  const int n_sources = req.prompt_text.has_value() + req.prompt_ids.has_value() + req.messages.has_value();
  if (n_sources != 1)
    return InvalidParam("prompt", "exactly one of prompt text, prompt token ids or messages is required");
  if (req.prompt_ids) {
    const int64_t vocab = vocab_size();
    for (size_t i = 0; i < req.prompt_ids->size(); ++i) {
      const int32_t id = (*req.prompt_ids)[i];
      if (id < 0 || id >= vocab) {
        return InvalidParam("prompt", absl::StrFormat("prompt[%d] = %d is not a token id (vocabulary size %d)",
                                                      static_cast<int>(i), id, vocab));
      }
    }
    *prompt_text = tokenizer_->Decode(*req.prompt_ids, false);
    return *req.prompt_ids;
  }
  if (req.messages) {
    if (!chat_renderer_) return InvalidParam("messages", "this model has no chat template");
    if (req.messages->empty()) return InvalidParam("messages", "messages must not be empty");
    absl::StatusOr<std::string> text = chat_renderer_(req);
    if (!text.ok()) return InvalidParam("messages", std::string(text.status().message()));
    *prompt_text = *text;
    // The template writes BOS and other special tokens itself.
    return tokenizer_->Encode(*text, /*add_special_tokens=*/false);
  }
  *prompt_text = *req.prompt_text;
  return tokenizer_->Encode(*req.prompt_text, req.add_special_tokens);
}

absl::StatusOr<std::unique_ptr<Generation>> Pipeline::Submit(TextRequest req) {
  const Clock::time_point arrival = Clock::now();
  if (draining_.load()) {
    metrics_->AdmissionRejected("draining");
    return absl::UnavailableError("server is shutting down");
  }
  if (!req.model.empty() && req.model != model_name_) {
    return absl::NotFoundError(
        absl::StrCat("model '", req.model, "' does not exist; this server serves '", model_name_, "'"));
  }
  if (req.n < 1 || req.n > options_.max_n) {
    return InvalidParam("n", absl::StrFormat("n must be in [1, %d], got %d", options_.max_n, req.n));
  }
  std::string prompt_text;
  absl::StatusOr<std::vector<int32_t>> prompt = BuildPrompt(req, &prompt_text);
  if (!prompt.ok()) return prompt.status();
  const char* prompt_param = req.messages ? "messages" : "prompt";
  if (prompt->empty()) return InvalidParam(prompt_param, "the prompt is empty");
  const int64_t max_len = max_model_len();
  const int64_t plen = static_cast<int64_t>(prompt->size());
  if (max_len > 0 && plen >= max_len) {
    return InvalidParam(prompt_param,
                        absl::StrFormat("This model's maximum context length is %d tokens. However, your request has "
                                        "%d input tokens. Please reduce the length of the input.",
                                        max_len, plen));
  }
  llm::SamplingParams& sp = req.sampling;
  if (sp.max_tokens <= 0) sp.max_tokens = static_cast<int32_t>(max_len > 0 ? max_len - plen : 256);
  if (options_.max_tokens_cap > 0 && sp.max_tokens > options_.max_tokens_cap) {
    return InvalidParam(
        "max_tokens", absl::StrFormat("max_tokens must be at most %d, got %d", options_.max_tokens_cap, sp.max_tokens));
  }
  if (max_len > 0 && plen + sp.max_tokens > max_len) {
    return InvalidParam("max_tokens",
                        absl::StrFormat("This model's maximum context length is %d tokens. However, you requested %d "
                                        "tokens (%d in the messages, %d in the completion). Please reduce the "
                                        "length of the messages or completion.",
                                        max_len, plen + sp.max_tokens, plen, sp.max_tokens));
  }
  if (absl::Status s = sp.Validate(vocab_size()); !s.ok()) {
    // SamplingParams names the field first: "temperature must be ...".
    const std::string msg(s.message());
    return InvalidParam(msg.substr(0, msg.find(' ')), msg);
  }
  absl::StatusOr<std::shared_ptr<EngineClient>> engine = router_->Pick();
  if (!engine.ok()) {
    metrics_->AdmissionRejected("not_ready");
    return absl::UnavailableError("no engine is ready to serve the request");
  }

  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queued_requests_ >= options_.max_queued_requests) {
      metrics_->AdmissionRejected("queue_full");
      return Overloaded(
          absl::StrFormat("the server's queue is full (%d requests waiting); retry later", queued_requests_));
    }
    if (queued_tokens_ + plen > options_.max_queued_tokens) {
      metrics_->AdmissionRejected("token_budget");
      return Overloaded(
          absl::StrFormat("the server's queue holds %d prompt tokens; this request's %d would "
                          "exceed the budget of %d; retry later",
                          queued_tokens_, plen, options_.max_queued_tokens));
    }
    ++queued_requests_;
    queued_tokens_ += plen;
    inflight_.fetch_add(1);
  }
  // Admitted: from here on the Generation's destructor gives the queue slot back.
  auto g = std::unique_ptr<Generation>(new Generation());
  g->pipeline_ = this;
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(g.get());
  }
  g->id_ = req.request_id.empty() ? RandomHex(24) : req.request_id;
  g->arrival_ = arrival;
  g->engine_ = *engine;
  g->prompt_ = std::move(*prompt);
  if (req.echo) g->echo_ = prompt_text;
  g->req_ = std::move(req);

  metrics_->Queued(Seconds(Clock::now() - arrival));
  for (int32_t i = 0; i < g->req_.n; ++i) {
    pb::GenerateRequest er;
    er.set_request_id(absl::StrCat(g->id_, "-", i, "-", next_id_.fetch_add(1)));
    er.mutable_prompt_token_ids()->Add(g->prompt_.begin(), g->prompt_.end());
    llm::SamplingParams p = g->req_.sampling;
    if (p.seed && i > 0) p.seed = *p.seed + static_cast<uint64_t>(i);
    *er.mutable_sampling() = ToProto(p);
    if (absl::Status s = g->Start(i, er); !s.ok()) return s;
  }
  return g;
}

}  // namespace tessera::server
