// The frontend's request and output model, shared by every public API (OpenAI REST, tessera.v1
// gRPC, KServe v2). API adapters translate their wire format to a TextRequest and render Deltas
// back; the pipeline (server/pipeline) tokenizes, admits, routes, detokenizes and applies stop
// strings in between.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/llm/sampling/sampling_params.h"

namespace tessera::server {

using Clock = std::chrono::steady_clock;

struct ChatMessage {
  std::string role;
  std::string content;
  nlohmann::json extra = nlohmann::json::object();  // name, tool_calls, tool_call_id, ...
};

struct TextRequest {
  std::string request_id;  // "" → the pipeline assigns one
  std::string model;       // "" → the served model
  // Exactly one of: prompt text, prompt token ids, chat messages.
  std::optional<std::string> prompt_text;
  std::optional<std::vector<int32_t>> prompt_ids;
  std::optional<std::vector<ChatMessage>> messages;
  bool add_generation_prompt = true;              // chat only
  nlohmann::json tools = nullptr;                 // chat only; null when absent
  nlohmann::json chat_template_kwargs = nullptr;  // extra template variables, or null
  bool add_special_tokens = true;                 // text prompts: BOS etc. as the tokenizer says

  llm::SamplingParams sampling;   // max_tokens == 0 → as many as fit the context
  std::vector<std::string> stop;  // stop strings (not emitted unless include_stop_str_in_output)
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;
  bool echo = false;  // completions: prepend the prompt text to the output
  int32_t n = 1;      // independent samples of the same prompt

  std::optional<Clock::time_point> deadline;
  std::string api = "unknown";  // label for metrics: "openai", "grpc", "kserve"
};

struct TopLogprob {
  int32_t id = 0;
  std::string token;  // the token's text (may be a partial UTF-8 sequence shown as bytes:\xNN)
  float logprob = 0;
};

struct TokenOut {
  int32_t id = 0;
  std::string token;  // the token's own text
  float logprob = 0;
  std::vector<TopLogprob> top;
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_prompt_tokens = 0;
};

// A piece of output of one of the request's n sequences.
struct Delta {
  int32_t index = 0;                       // which of the n sequences
  std::string text;                        // new text (UTF-8 complete; stop strings held back until resolved)
  std::vector<TokenOut> tokens;            // tokens behind this text, with logprobs when asked
  std::string finish_reason;               // "" while running; then "stop", "length" or "abort"
  std::optional<std::string> stop_reason;  // the stop string matched, if that ended it
  Usage usage;                             // cumulative for this sequence; final on the last Delta
};

}  // namespace tessera::server
