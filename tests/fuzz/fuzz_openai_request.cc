// Feeds arbitrary bytes to the OpenAI request parsers (/v1/completions and /v1/chat/completions);
// every input must come back as a Status or a request that passes the sampler's validation. The
// parsed settings then drive a ResponseBuilder with the input itself as token text (any bytes,
// including invalid UTF-8), which must produce well-formed output without throwing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"
#include "server/http/openai_protocol.h"

namespace {

using tessera::server::Delta;
using tessera::server::TextRequest;
namespace openai = tessera::server::openai;

constexpr int64_t kVocab = 1000;

void CheckRequest(const TextRequest& r, const openai::Limits& limits) {
  const int sources = r.prompt_text.has_value() + r.prompt_ids.has_value() + r.messages.has_value();
  if (sources != 1) std::abort();
  if (r.n < 1 || r.n > limits.max_n) std::abort();
  if (r.stop.size() > static_cast<size_t>(limits.max_stop)) std::abort();
  for (const auto& s : r.stop) {
    if (s.empty()) std::abort();
  }
  if (r.prompt_ids) {
    if (r.prompt_ids->empty()) std::abort();
    for (int32_t id : *r.prompt_ids) {
      if (id < 0 || (limits.vocab_size > 0 && id >= limits.vocab_size)) std::abort();
    }
  }
  if (r.messages && r.messages->empty()) std::abort();
  tessera::llm::SamplingParams p = r.sampling;
  if (p.max_tokens == 0) p.max_tokens = p.min_tokens > 0 ? p.min_tokens : 1;  // 0 = until the context is full
  if (limits.vocab_size == 0) {
    // Without a vocabulary the ids are only checked to be non-negative.
    for (int32_t id : p.stop_token_ids) {
      if (id < 0) std::abort();
    }
    p.stop_token_ids.clear();
  }
  if (!p.Validate(limits.vocab_size > 0 ? limits.vocab_size : kVocab).ok()) std::abort();
}

void Render(openai::ResponseOptions options, std::string_view input) {
  for (bool stream : {false, true}) {
    options.stream.stream = stream;
    options.stream.include_usage = stream;
    openai::ResponseBuilder b(options);
    std::string out;
    for (int32_t i = 0; i < options.n; ++i) {
      Delta d;
      d.index = i;
      d.text = std::string(input.substr(0, 64));
      d.tokens.push_back({.id = 1, .token = std::string(input.substr(0, 16)), .logprob = -0.5f, .top = {}});
      d.tokens.back().top.push_back({.id = 2, .token = std::string(input.substr(0, 8)), .logprob = -1.0f});
      d.finish_reason = i % 2 == 0 ? "stop" : "length";
      out += b.Add(d);
    }
    out += b.Finish();
    if (out.empty()) std::abort();
    if (!stream) {
      // The non-streaming body is a JSON object.
      auto body = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded() || !body.is_object()) std::abort();
    } else if (out.size() < openai::kSseDone.size() ||
               out.compare(out.size() - openai::kSseDone.size(), std::string::npos, openai::kSseDone) != 0) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  openai::Limits limits;
  for (int64_t vocab : {int64_t{0}, kVocab}) {
    limits.vocab_size = vocab;
    if (auto c = openai::ParseCompletionRequest(body, limits); c.ok()) {
      CheckRequest(c->request, limits);
      if (vocab == 0) Render(openai::ResponseOptionsFor(*c, "fuzz", 1), body);
    }
    if (auto c = openai::ParseChatRequest(body, limits); c.ok()) {
      CheckRequest(c->request, limits);
      if (vocab == 0) Render(openai::ResponseOptionsFor(*c, "fuzz", 1), body);
    }
  }
  return 0;
}
