// Runs a set of requests to completion on one Model: chunked prefill, then batched decode steps,
// all sequences sharing one paged KV cache. The offline path behind tessera-generate and the
// end-to-end tests; the serving engine (worker/engine) has its own scheduler (preemption, prefix
// caching) on top of Model::Forward and the same per-sequence state (runtime/llm/sequence.h).
//
//   Generator gen(model.get(), {.max_step_tokens = 256});
//   TS_RETURN_IF_ERROR(gen.Run({{.prompt = ids, .params = {.temperature = 0, .max_tokens = 32}}},
//                              [&](const Generator::TokenEvent& e) { Print(e.token.id); }));
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "runtime/llm/model.h"
#include "runtime/llm/sampling/sampler.h"
#include "runtime/llm/sequence.h"

namespace tessera::llm {

class Generator {
 public:
  struct Options {
    int64_t block_size = 16;
    int64_t num_blocks = 0;         // 0: enough for every request's prompt + max_tokens
    int64_t max_step_tokens = 512;  // token budget of one forward step (prefill is chunked to fit)
  };
  struct Request {
    std::vector<int32_t> prompt;
    SamplingParams params;
  };
  struct TokenEvent {
    size_t request = 0;  // index into the requests passed to Run
    SampledToken token;
    FinishReason finish = FinishReason::kNone;  // set on the request's last token
  };
  struct Stats {
    int64_t prefill_tokens = 0;
    double prefill_seconds = 0;  // steps that carried prompt tokens
    int64_t decode_tokens = 0;
    double decode_seconds = 0;  // steps of decode tokens only
  };

  Generator(Model* model, const Options& options) : model_(model), options_(options) {}

  // Validates every request first (INVALID_ARGUMENT naming the request and field, nothing run),
  // then generates; on_token is called for every sampled token, in order per request.
  absl::Status Run(const std::vector<Request>& requests, const std::function<void(const TokenEvent&)>& on_token);
  const Stats& stats() const { return stats_; }

 private:
  Model* model_;
  Options options_;
  Stats stats_;
};

}  // namespace tessera::llm
