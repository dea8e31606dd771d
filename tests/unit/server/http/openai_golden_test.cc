// Recorded outputs of the response formatter, checked here byte for byte and, by
// openai_sdk_golden_test.py, against the `openai` Python SDK's own models (the independent check of
// the shapes). Regenerate after an intended format change with
//   TESSERA_UPDATE_GOLDENS=1 build/<dir>/tests/unit/server/http/openai_protocol_test --gtest_filter='Golden*'
// and run the Python test again.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/api/errors.h"
#include "server/http/openai_protocol.h"

namespace tessera::server::openai {
namespace {

constexpr char kGoldenDir[] = "tests/unit/server/http/golden";

TokenOut Tok(int32_t id, std::string text, float logprob, std::vector<TopLogprob> top = {}) {
  return TokenOut{.id = id, .token = std::move(text), .logprob = logprob, .top = std::move(top)};
}

Delta D(int32_t index, std::string text, std::vector<TokenOut> tokens, std::string finish, int32_t completion_tokens,
        std::optional<std::string> stop_reason = std::nullopt) {
  Delta d;
  d.index = index;
  d.text = std::move(text);
  d.tokens = std::move(tokens);
  d.finish_reason = std::move(finish);
  d.stop_reason = std::move(stop_reason);
  d.usage = Usage{.prompt_tokens = 7, .completion_tokens = completion_tokens, .cached_prompt_tokens = 3};
  return d;
}

ResponseOptions Opts(Endpoint endpoint, bool stream, int32_t n) {
  ResponseOptions o;
  o.endpoint = endpoint;
  o.id = endpoint == Endpoint::kCompletions ? "cmpl-golden" : "chatcmpl-golden";
  o.created = 1700000000;
  o.model = "SmolLM2-135M-Instruct";
  o.n = n;
  o.stream.stream = stream;
  return o;
}

// The deltas of a typical two-token-per-chunk generation with logprobs for choice `index`.
std::vector<Delta> Generation(int32_t index, bool with_top) {
  auto top = [&](std::vector<TopLogprob> t) { return with_top ? t : std::vector<TopLogprob>{}; };
  return {
      D(index, "The", {Tok(504, "The", -0.25f, top({{504, "The", -0.25f}, {3012, "A", -1.75f}}))}, "", 1),
      D(index, " caf", {Tok(28705, " caf", -1.5f, top({{28705, " caf", -1.5f}, {1200, " bar", -2.0f}}))}, "", 2),
      D(index, "é",
        {Tok(2315, "bytes:\\xc3", -0.125f, top({{2315, "bytes:\\xc3", -0.125f}})),
         Tok(1162, "bytes:\\xa9", -0.0625f, top({{1162, "bytes:\\xa9", -0.0625f}}))},
        "", 4),
      D(index, " is open",
        {Tok(314, " is", -0.5f, top({{314, " is", -0.5f}, {3333, " was", -0.875f}})),
         Tok(1001, " open", -std::numeric_limits<float>::infinity(), top({{404, " closed", -0.5f}}))},
        index == 0 ? "stop" : "length", 6, index == 0 ? std::optional<std::string>(".") : std::nullopt),
  };
}

std::string Run(ResponseOptions o, const std::vector<std::vector<Delta>>& per_choice) {
  ResponseBuilder b(std::move(o));
  std::string out;
  // Interleave the choices the way the pipeline does.
  for (size_t step = 0;; ++step) {
    bool any = false;
    for (const auto& deltas : per_choice) {
      if (step < deltas.size()) {
        out += b.Add(deltas[step]);
        any = true;
      }
    }
    if (!any) break;
  }
  return out + b.Finish();
}

std::vector<std::pair<std::string, std::function<std::string()>>> Scenarios() {
  return {
      {"completion_basic.json", [] { return Run(Opts(Endpoint::kCompletions, false, 1), {Generation(0, false)}); }},
      {"completion_logprobs_n2.json",
       [] {
         ResponseOptions o = Opts(Endpoint::kCompletions, false, 2);
         o.logprobs = true;
         o.top_logprobs = 2;
         return Run(o, {Generation(0, true), Generation(1, true)});
       }},
      {"chat_basic.json", [] { return Run(Opts(Endpoint::kChatCompletions, false, 1), {Generation(0, false)}); }},
      {"chat_logprobs_n2.json",
       [] {
         ResponseOptions o = Opts(Endpoint::kChatCompletions, false, 2);
         o.logprobs = true;
         o.top_logprobs = 2;
         return Run(o, {Generation(0, true), Generation(1, true)});
       }},
      {"completion_stream_usage_logprobs.sse",
       [] {
         ResponseOptions o = Opts(Endpoint::kCompletions, true, 2);
         o.stream.include_usage = true;
         o.logprobs = true;
         o.top_logprobs = 1;
         return Run(o, {Generation(0, true), Generation(1, true)});
       }},
      {"completion_stream.sse", [] { return Run(Opts(Endpoint::kCompletions, true, 1), {Generation(0, false)}); }},
      {"chat_stream_usage_n2.sse",
       [] {
         ResponseOptions o = Opts(Endpoint::kChatCompletions, true, 2);
         o.stream.include_usage = true;
         return Run(o, {Generation(0, false), Generation(1, false)});
       }},
      {"chat_stream_logprobs_continuous_usage.sse",
       [] {
         ResponseOptions o = Opts(Endpoint::kChatCompletions, true, 1);
         o.stream.include_usage = true;
         o.stream.continuous_usage = true;
         o.logprobs = true;
         o.top_logprobs = 2;
         return Run(o, {Generation(0, true)});
       }},
      {"chat_stream_error.sse",
       [] {
         ResponseBuilder b(Opts(Endpoint::kChatCompletions, true, 1));
         std::string out = b.Add(Generation(0, false)[0]);
         return out + b.Fail(absl::UnavailableError("the worker group went down"));
       }},
      {"error_invalid_param.json",
       [] {
         auto r = ParseChatRequest(R"({"messages":[{"role":"user","content":"hi"}],"temperature":3})", Limits{});
         return OpenAiErrorBody(r.status());
       }},
      {"models.json",
       [] { return FormatModelList({{.id = "SmolLM2-135M-Instruct", .created = 1700000000, .max_model_len = 8192}}); }},
  };
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(Golden, FormatterOutputMatchesRecordedFiles) {
  const bool update = std::getenv("TESSERA_UPDATE_GOLDENS") != nullptr;
  if (update) std::filesystem::create_directories(kGoldenDir);
  for (const auto& [name, make] : Scenarios()) {
    const std::filesystem::path path = std::filesystem::path(kGoldenDir) / name;
    const std::string got = make();
    if (update) {
      std::ofstream(path, std::ios::binary) << got;
      continue;
    }
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing; regenerate with TESSERA_UPDATE_GOLDENS=1";
    EXPECT_EQ(got, ReadFile(path)) << name << " differs from the recorded output";
  }
}

}  // namespace
}  // namespace tessera::server::openai
