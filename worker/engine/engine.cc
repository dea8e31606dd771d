#include "worker/engine/engine.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace tessera::engine {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
  }
  return "";
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(llm::Model* model, const Options& options) {
  if (model == nullptr) return absl::InvalidArgumentError("model: must not be null");
  const llm::ModelConfig& cfg = model->config();
  if (options.block_size < 1 || options.block_size > 4096) {
    return absl::InvalidArgumentError(absl::StrCat("block_size must be in [1, 4096], got ", options.block_size));
  }
  if (options.max_num_seqs < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_num_seqs must be >= 1, got ", options.max_num_seqs));
  }
  if (options.max_num_batched_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_num_batched_tokens must be >= 1, got ", options.max_num_batched_tokens));
  }
  if (options.num_blocks < 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_blocks must be >= 0, got ", options.num_blocks));
  }
  if (options.max_model_len < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_model_len must be >= 0, got ", options.max_model_len));
  }
  // K and V, f32, every layer.
  const int64_t block_bytes = 2 * cfg.num_hidden_layers * options.block_size * cfg.num_key_value_heads * cfg.head_dim *
                              static_cast<int64_t>(sizeof(float));
  int64_t num_blocks = options.num_blocks;
  if (num_blocks == 0) {
    if (options.kv_cache_bytes < block_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("kv_cache_bytes: ", options.kv_cache_bytes,
                                                     " bytes cannot hold one KV block of ", block_bytes, " bytes"));
    }
    num_blocks = options.kv_cache_bytes / block_bytes;
  }
  if (num_blocks > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("num_blocks: ", num_blocks, " blocks is too many"));
  }
  const int64_t capacity = num_blocks * options.block_size;
  int64_t max_model_len = options.max_model_len;
  if (max_model_len == 0) {
    max_model_len = std::min(cfg.max_position_embeddings, capacity);
  } else if (max_model_len > cfg.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("max_model_len: ", max_model_len,
                                                   " exceeds the model's max_position_embeddings ",
                                                   cfg.max_position_embeddings));
  } else if (max_model_len > capacity) {
    return absl::InvalidArgumentError(absl::StrCat("max_model_len: ", max_model_len,
                                                   " tokens do not fit in the KV cache (", num_blocks, " blocks of ",
                                                   options.block_size, " tokens)"));
  }
  TS_ASSIGN_OR_RETURN(llm::PagedKvCache cache, model->CreateKvCache(num_blocks, options.block_size));
  return std::unique_ptr<Engine>(new Engine(model, options, std::move(cache), max_model_len));
}

Engine::Engine(llm::Model* model, const Options& options, llm::PagedKvCache cache, int64_t max_model_len)
    : model_(model),
      options_(options),
      num_blocks_(cache.num_blocks()),
      max_model_len_(max_model_len),
      eos_(llm::EosTokenIds(model->generation_defaults())),
      cache_(std::move(cache)),
      scheduler_({.max_num_seqs = options.max_num_seqs,
                  .max_num_batched_tokens = options.max_num_batched_tokens,
                  .blocks = {.num_blocks = num_blocks_,
                             .block_size = options.block_size,
                             .enable_prefix_caching = options.enable_prefix_caching}}) {
  load_ = {.waiting = 0, .running = 0, .kv_usage = 0.0, .kv_blocks_total = num_blocks_, .kv_blocks_free = num_blocks_};
}

Engine::~Engine() { Stop(); }

absl::Status Engine::Add(Request request, EventSink sink) {
  if (request.id.empty()) return absl::InvalidArgumentError("id: must not be empty");
  if (!sink) return absl::InvalidArgumentError("sink: must be set");
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.params.max_tokens;
  TS_ASSIGN_OR_RETURN(llm::Sequence seq, llm::Sequence::Create(std::move(request.prompt), request.params,
                                                               model_->config().vocab_size, eos_));
  if (total > max_model_len_) {
    return absl::InvalidArgumentError(absl::StrCat("prompt + max_tokens: ", seq.prompt_len(), " + ",
                                                   request.params.max_tokens, " tokens exceed max_model_len ",
                                                   max_model_len_));
  }
  absl::MutexLock lock(&mu_);
  if (!live_ids_.insert(request.id).second) {
    return absl::AlreadyExistsError(absl::StrCat("id: a request with id '", request.id, "' is already running"));
  }
  incoming_.push_back(
      {.id = std::move(request.id), .seq = std::move(seq), .sink = std::move(sink), .deadline = request.deadline});
  ++counters_.requests_added;
  wake_.Signal();
  return absl::OkStatus();
}

void Engine::Abort(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (!live_ids_.contains(id)) return;
  aborts_.insert(id);
  wake_.Signal();
}

void Engine::AbortAll() {
  absl::MutexLock lock(&mu_);
  abort_all_ = true;
  wake_.Signal();
}

Event Engine::MakeEvent(const SequenceState& s) const {
  Event e;
  e.id = s.id;
  e.prompt_tokens = static_cast<int32_t>(s.seq.prompt_len());
  e.completion_tokens = static_cast<int32_t>(s.seq.num_output());
  e.cached_prompt_tokens = static_cast<int32_t>(s.cached_prompt_tokens);
  return e;
}

void Engine::Finish(const std::string& id, FinishReason reason, absl::Status error, std::vector<Delivery>& out,
                    std::vector<llm::SampledToken> tokens) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  Live& live = it->second;
  scheduler_.Remove(live.state.get());
  Event e = MakeEvent(*live.state);
  e.tokens = std::move(tokens);
  e.finish = reason;
  e.error = std::move(error);
  out.push_back({.sink = std::move(live.sink), .event = std::move(e)});
  switch (reason) {
    case FinishReason::kStop:
      ++delta_.finished_stop;
      break;
    case FinishReason::kLength:
      ++delta_.finished_length;
      break;
    case FinishReason::kAbort:
      ++delta_.finished_abort;
      break;
    case FinishReason::kError:
    case FinishReason::kNone:
      ++delta_.finished_error;
      break;
  }
  finished_ids_.push_back(id);
  live_.erase(it);
}

absl::StatusOr<bool> Engine::Step() {
  std::vector<Delivery> deliveries;
  // 1. New requests, aborts and deadlines.
  absl::flat_hash_set<std::string> aborts;
  bool abort_all = false;
  {
    absl::MutexLock lock(&mu_);
    for (Incoming& in : incoming_) {
      auto state = std::make_unique<SequenceState>(in.id, *std::move(in.seq));
      scheduler_.AddWaiting(state.get());
      live_.emplace(in.id, Live{.state = std::move(state), .sink = std::move(in.sink), .deadline = in.deadline});
    }
    incoming_.clear();
    aborts.swap(aborts_);
    abort_all = std::exchange(abort_all_, false);
  }
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, FinishReason>> ended;
  for (const auto& [id, live] : live_) {
    if (abort_all || aborts.contains(id)) {
      ended.emplace_back(id, FinishReason::kAbort);
    } else if (live.deadline.has_value() && now >= *live.deadline) {
      ended.emplace_back(id, FinishReason::kError);
    }
  }
  for (const auto& [id, reason] : ended) {
    Finish(id, reason,
           reason == FinishReason::kError ? absl::DeadlineExceededError("deadline exceeded") : absl::OkStatus(),
           deliveries);
  }
  if (live_.empty()) {
    const bool did_something = !deliveries.empty();
    Publish(deliveries);
    return did_something;
  }

  // 2. Plan the step.
  SchedulerOutput plan = scheduler_.Schedule();
  if (plan.empty()) {
    // Cannot happen for requests that passed Add (each fits the cache alone, and the oldest running
    // sequence can always take the whole cache); fail them rather than spin.
    std::vector<std::string> stuck;
    for (const auto& [id, live] : live_) stuck.push_back(id);
    for (const std::string& id : stuck) {
      Finish(id, FinishReason::kError, absl::InternalError("scheduler: no request can be scheduled"), deliveries);
    }
    Publish(deliveries);
    return absl::InternalError("scheduler: no request can be scheduled");
  }

  // 3. One forward pass over every chunk.
  std::vector<llm::SequenceInput> batch;
  batch.reserve(plan.chunks.size());
  for (const ScheduledChunk& c : plan.chunks) {
    const llm::Sequence& seq = c.seq->seq;
    batch.push_back({.tokens = {seq.tokens().data() + seq.num_computed(), static_cast<size_t>(c.num_tokens)},
                     .start_pos = seq.num_computed(),
                     .block_table = c.seq->table.blocks});
  }
  ++delta_.steps;
  absl::Status s =
      options_.forward ? options_.forward(batch, cache_, &logits_) : model_->Forward(batch, cache_, &logits_);
  if (!s.ok()) {
    for (const ScheduledChunk& c : plan.chunks) Finish(c.seq->id, FinishReason::kError, s, deliveries);
    Publish(deliveries);
    return s;
  }
  delta_.computed_tokens += plan.num_tokens;

  // 4. Sample where a sequence is fully computed.
  const int64_t vocab = model_->config().vocab_size;
  for (size_t b = 0; b < plan.chunks.size(); ++b) {
    SequenceState* s = plan.chunks[b].seq;
    scheduler_.OnComputed(plan.chunks[b]);
    if (s->seq.num_pending() > 0) continue;  // a prefill chunk: nothing to sample yet
    std::span<const float> row(logits_.data() + b * vocab, static_cast<size_t>(vocab));
    absl::StatusOr<llm::SampledToken> tok = s->seq.Sample(sampler_, row);
    if (!tok.ok()) {
      Finish(s->id, FinishReason::kError, tok.status(), deliveries);
      continue;
    }
    ++delta_.generation_tokens;
    if (s->seq.num_output() == 1) delta_.prompt_tokens += s->seq.prompt_len();
    std::vector<llm::SampledToken> tokens;
    tokens.push_back(*std::move(tok));
    switch (s->seq.finish()) {
      case llm::FinishReason::kStop:
        Finish(s->id, FinishReason::kStop, absl::OkStatus(), deliveries, std::move(tokens));
        break;
      case llm::FinishReason::kLength:
        Finish(s->id, FinishReason::kLength, absl::OkStatus(), deliveries, std::move(tokens));
        break;
      case llm::FinishReason::kNone: {
        Event e = MakeEvent(*s);
        e.tokens = std::move(tokens);
        deliveries.push_back({.sink = live_.at(s->id).sink, .event = std::move(e)});
        break;
      }
    }
  }
  Publish(deliveries);
  return true;
}

void Engine::Publish(std::vector<Delivery>& deliveries) {
  const SchedulerStats& st = scheduler_.stats();
  const BlockManager& blocks = scheduler_.blocks();
  {
    absl::MutexLock lock(&mu_);
    counters_.prompt_tokens += delta_.prompt_tokens;
    counters_.generation_tokens += delta_.generation_tokens;
    counters_.steps += delta_.steps;
    counters_.computed_tokens += delta_.computed_tokens;
    counters_.finished_stop += delta_.finished_stop;
    counters_.finished_length += delta_.finished_length;
    counters_.finished_abort += delta_.finished_abort;
    counters_.finished_error += delta_.finished_error;
    counters_.preemptions = st.preemptions;
    counters_.prefix_cache_queries = st.prefix_cache_queries;
    counters_.prefix_cache_hits = st.prefix_cache_hits;
    for (const std::string& id : finished_ids_) live_ids_.erase(id);
    scheduler_waiting_ = scheduler_.num_waiting();
    load_.running = scheduler_.num_running();
    load_.kv_blocks_total = blocks.num_total();
    load_.kv_blocks_free = blocks.num_free();
    load_.kv_usage = blocks.num_total() > 0 ? 1.0 - static_cast<double>(blocks.num_free()) / blocks.num_total() : 0.0;
  }
  delta_ = Counters{};
  finished_ids_.clear();
  for (Delivery& d : deliveries) d.sink(d.event);
  deliveries.clear();
}

Load Engine::GetLoad() const {
  absl::MutexLock lock(&mu_);
  Load load = load_;
  load.waiting = scheduler_waiting_ + static_cast<int64_t>(incoming_.size());
  return load;
}

Counters Engine::GetCounters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

void Engine::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (thread_.joinable()) return;
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void Engine::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    wake_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

void Engine::Loop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
    }
    absl::StatusOr<bool> worked = Step();
    if (!worked.ok()) {
      std::fprintf(stderr, "tessera engine: step failed: %s\n", worked.status().ToString().c_str());
      continue;
    }
    if (*worked) continue;
    absl::MutexLock lock(&mu_);
    while (!stop_ && incoming_.empty() && aborts_.empty() && !abort_all_) wake_.Wait(&mu_);
  }
}

}  // namespace tessera::engine
