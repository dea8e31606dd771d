// The OpenAI-compatible REST protocol (/v1/completions, /v1/chat/completions, /v1/models) as vLLM
// serves it, as pure functions without sockets: a JSON body becomes a TextRequest, and the Deltas
// the pipeline produces become the JSON body or the SSE events to write.
//
//   auto parsed = ParseChatRequest(body, limits);
//   if (!parsed.ok()) return Reply(HttpStatusOf(parsed.status()), OpenAiErrorBody(parsed.status()));
//   ResponseBuilder out(ResponseOptionsFor(*parsed, request_id, UnixNow()));
//   for (const Delta& d : pipeline.Run(std::move(parsed->request))) Write(out.Add(d));
//   Write(status.ok() ? out.Finish() : out.Fail(status));   // SSE tail, or the whole JSON body
//
// Parsing follows vLLM's OpenAI server: same field names, defaults and meanings; unknown fields are
// ignored; fields we know but cannot honour (logit_bias, suffix, beam search, guided decoding,
// non-text content, ...) are rejected. Every error is INVALID_ARGUMENT naming the field
// ("messages[2].content[0].text" style, see server/api/errors.h). One request carries one prompt:
// a batch of several prompts in /v1/completions is rejected with 400 (param "prompt").
// No function here throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/llm/sampling/sampling_params.h"
#include "server/api/types.h"

namespace tessera::server::openai {

// Server-side bounds on what a request may ask for.
struct Limits {
  // max_tokens / max_completion_tokens above this → 400; 0 = no cap here (the context decides).
  int32_t max_tokens_cap = 0;
  // /v1/completions without max_tokens generates this many tokens (OpenAI's and vLLM's default).
  // An explicit `"max_tokens": null` and chat requests without a limit get 0 (until the context is full).
  int32_t default_completion_max_tokens = 16;
  int32_t max_n = 16;                        // n in [1, max_n]
  int32_t max_stop = 16;                     // stop strings per request
  int32_t max_stop_bytes = 1024;             // bytes per stop string
  int32_t max_stop_token_ids = 256;          // entries in stop_token_ids
  int32_t max_logprobs = llm::kMaxLogprobs;  // logprobs (completions), top_logprobs (chat)
  int64_t vocab_size = 0;                    // > 0: token ids are checked against it
  int32_t max_json_depth = 64;               // deeper nesting → 400 (bounds recursion)
  double max_timeout_s = 24 * 3600.0;        // `timeout` (seconds) in (0, max_timeout_s]
};

// Settings shared by both endpoints that shape the response rather than the generation.
struct StreamSettings {
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage: a last chunk with usage only
  bool continuous_usage = false;  // stream_options.continuous_usage_stats (vLLM): usage on every chunk
};

// POST /v1/completions.
struct ParsedCompletion {
  TextRequest request;  // prompt_text or prompt_ids set; request.api == "openai"
  std::string model;    // as sent ("" when absent)
  StreamSettings stream;
  bool logprobs_requested = false;  // `logprobs` was given (0..20)
  int32_t top_logprobs = 0;         // its value: alternatives per token
  bool echo = false;
};

// POST /v1/chat/completions.
struct ParsedChat {
  TextRequest request;  // messages set; request.api == "openai"
  std::string model;
  StreamSettings stream;
  bool logprobs_requested = false;  // `logprobs: true`
  int32_t top_logprobs = 0;
  // vLLM's continue_final_message: render the last (assistant) message open-ended instead of adding
  // a generation prompt. TextRequest has no field for it; the template stage reads it from here.
  bool continue_final_message = false;
  std::string tool_choice;  // "none", "auto", or "" when absent
};

absl::StatusOr<ParsedCompletion> ParseCompletionRequest(std::string_view body, const Limits& limits);
absl::StatusOr<ParsedChat> ParseChatRequest(std::string_view body, const Limits& limits);

// ---- Responses -------------------------------------------------------------------------------

enum class Endpoint { kCompletions, kChatCompletions };

struct ResponseOptions {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string id;       // the response id: "cmpl-<request id>" / "chatcmpl-<request id>"
  int64_t created = 0;  // Unix seconds; 0 → now
  std::string model;    // the served model name, echoed in every object
  int32_t n = 1;        // choices; Deltas carry index in [0, n)
  StreamSettings stream;
  bool logprobs = false;         // render Delta.tokens as logprobs
  int32_t top_logprobs = 0;      // alternatives shown per token
  int32_t text_offset_base = 0;  // completions: code points before the first token's text (echo)
};

// The response settings a parsed request asks for; `model` is the requested name (a server that
// serves one model usually overwrites it with its own). With echo of a text prompt,
// text_offset_base is the prompt's length in code points.
ResponseOptions ResponseOptionsFor(const ParsedCompletion& parsed, std::string_view request_id, int64_t created);
ResponseOptions ResponseOptionsFor(const ParsedChat& parsed, std::string_view request_id, int64_t created);

// Turns one request's Deltas into the bytes to send. Streaming: Add() returns zero or more SSE
// events (`data: {json}\n\n`), Finish() the usage event (when asked) and `data: [DONE]\n\n`.
// Non-streaming: Add() returns "" and collects, Finish() returns the whole JSON body. Fail() turns
// an error into an SSE error event plus [DONE] (streaming; send after any Add) or the JSON error
// body (non-streaming; send with HttpStatusOf(status)).
class ResponseBuilder {
 public:
  explicit ResponseBuilder(ResponseOptions options);

  std::string Add(const Delta& delta);
  std::string Finish();
  std::string Fail(const absl::Status& status);

  // "text/event-stream" when streaming, else "application/json".
  std::string_view content_type() const;
  // Every choice has received its finish_reason.
  bool all_finished() const;
  // Totals over the choices so far (prompt tokens counted once).
  Usage usage() const;

 private:
  struct Choice {
    bool started = false;  // chat streaming: the role chunk was sent
    std::string text;
    nlohmann::ordered_json logprobs;  // accumulated (non-streaming): completion object or chat content array
    int64_t text_offset = 0;          // code points of token text so far (completions)
    std::string finish_reason;
    std::optional<std::string> stop_reason;
    Usage usage;
    int32_t counted_tokens = 0;
  };

  std::string AddStreaming(const Delta& delta, Choice& choice);
  nlohmann::ordered_json ChunkEnvelope() const;
  nlohmann::ordered_json UsageJson() const;
  std::string FinalBody() const;

  ResponseOptions options_;
  std::vector<Choice> choices_;
  bool finished_ = false;
};

// ---- Models ----------------------------------------------------------------------------------

struct ModelCard {
  std::string id;
  int64_t created = 0;
  int64_t max_model_len = 0;
  std::string owned_by = "tessera";
};

// GET /v1/models: {"object":"list","data":[{id, object:"model", created, owned_by, max_model_len}]}.
std::string FormatModelList(const std::vector<ModelCard>& models);
// GET /v1/models/{id}: one model object.
std::string FormatModel(const ModelCard& model);

// SSE framing: "data: <payload>\n\n"; kSseDone ends every stream.
std::string SseEvent(std::string_view payload);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace tessera::server::openai
