#include "server/http/openai_protocol.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/api/errors.h"

namespace tessera::server::openai {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Limits kLimits{};

ParsedCompletion MustParseCompletion(const json& body, const Limits& limits = kLimits) {
  auto r = ParseCompletionRequest(body.dump(), limits);
  EXPECT_TRUE(r.ok()) << r.status() << " for " << body.dump();
  return r.ok() ? *std::move(r) : ParsedCompletion{};
}

ParsedChat MustParseChat(const json& body, const Limits& limits = kLimits) {
  auto r = ParseChatRequest(body.dump(), limits);
  EXPECT_TRUE(r.ok()) << r.status() << " for " << body.dump();
  return r.ok() ? *std::move(r) : ParsedChat{};
}

json UserChat() { return {{"messages", {{{"role", "user"}, {"content", "hi"}}}}}; }

// ---- /v1/completions parsing ---------------------------------------------------------------------

TEST(ParseCompletion, MinimalRequestGetsVllmDefaults) {
  const ParsedCompletion p = MustParseCompletion({{"prompt", "Hello"}});
  EXPECT_EQ(p.request.prompt_text, "Hello");
  EXPECT_FALSE(p.request.prompt_ids.has_value());
  EXPECT_FALSE(p.request.messages.has_value());
  EXPECT_EQ(p.request.api, "openai");
  EXPECT_EQ(p.model, "");
  EXPECT_EQ(p.request.n, 1);
  EXPECT_EQ(p.request.sampling.max_tokens, 16);
  EXPECT_EQ(p.request.sampling.temperature, 1.0f);
  EXPECT_EQ(p.request.sampling.top_p, 1.0f);
  EXPECT_EQ(p.request.sampling.logprobs, -1);
  EXPECT_FALSE(p.request.sampling.seed.has_value());
  EXPECT_TRUE(p.request.add_special_tokens);
  EXPECT_TRUE(p.request.skip_special_tokens);
  EXPECT_FALSE(p.stream.stream);
  EXPECT_FALSE(p.logprobs_requested);
  EXPECT_FALSE(p.request.deadline.has_value());
}

TEST(ParseCompletion, EveryFieldIsMapped) {
  const json body = {{"model", "smol"},
                     {"prompt", "Once"},
                     {"max_tokens", 40},
                     {"temperature", 0.5},
                     {"top_p", 0.9},
                     {"top_k", 20},
                     {"min_p", 0.05},
                     {"n", 3},
                     {"best_of", 3},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}, {"continuous_usage_stats", true}}},
                     {"logprobs", 5},
                     {"echo", true},
                     {"stop", {"\n", "END"}},
                     {"stop_token_ids", {7, 9}},
                     {"seed", 1234},
                     {"presence_penalty", 0.5},
                     {"frequency_penalty", -0.5},
                     {"repetition_penalty", 1.2},
                     {"min_tokens", 4},
                     {"ignore_eos", true},
                     {"skip_special_tokens", false},
                     {"include_stop_str_in_output", true},
                     {"add_special_tokens", false},
                     {"user", "someone"},
                     {"logit_bias", json::object()},
                     {"some_future_field", {1, 2, 3}}};
  const ParsedCompletion p = MustParseCompletion(body);
  const TextRequest& r = p.request;
  EXPECT_EQ(p.model, "smol");
  EXPECT_EQ(r.model, "smol");
  EXPECT_EQ(r.sampling.max_tokens, 40);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.05f);
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(p.stream.stream);
  EXPECT_TRUE(p.stream.include_usage);
  EXPECT_TRUE(p.stream.continuous_usage);
  EXPECT_TRUE(p.logprobs_requested);
  EXPECT_EQ(p.top_logprobs, 5);
  EXPECT_EQ(r.sampling.logprobs, 5);
  EXPECT_TRUE(p.echo);
  EXPECT_TRUE(r.echo);
  EXPECT_THAT(r.stop, ElementsAre("\n", "END"));
  EXPECT_THAT(r.sampling.stop_token_ids, ElementsAre(7, 9));
  EXPECT_EQ(r.sampling.seed, 1234u);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r.sampling.repetition_penalty, 1.2f);
  EXPECT_EQ(r.sampling.min_tokens, 4);
  EXPECT_TRUE(r.sampling.ignore_eos);
  EXPECT_FALSE(r.skip_special_tokens);
  EXPECT_TRUE(r.include_stop_str_in_output);
  EXPECT_FALSE(r.add_special_tokens);
  // The parsed sampling settings pass the sampler's own validation.
  EXPECT_TRUE(r.sampling.Validate(100).ok()) << r.sampling.Validate(100);
}

TEST(ParseCompletion, PromptForms) {
  EXPECT_EQ(MustParseCompletion({{"prompt", {"one"}}}).request.prompt_text, "one");
  EXPECT_THAT(*MustParseCompletion({{"prompt", {1, 2, 3}}}).request.prompt_ids, ElementsAre(1, 2, 3));
  EXPECT_THAT(*MustParseCompletion({{"prompt", {{4, 5}}}}).request.prompt_ids, ElementsAre(4, 5));
  EXPECT_THAT(*MustParseCompletion({{"prompt", {4.0, 5}}}).request.prompt_ids, ElementsAre(4, 5));
}

TEST(ParseCompletion, MaxTokens) {
  EXPECT_EQ(MustParseCompletion({{"prompt", "x"}, {"max_tokens", nullptr}}).request.sampling.max_tokens, 0);
  EXPECT_EQ(MustParseCompletion({{"prompt", "x"}, {"max_tokens", 1}}).request.sampling.max_tokens, 1);
  Limits capped;
  capped.max_tokens_cap = 100;
  EXPECT_EQ(MustParseCompletion({{"prompt", "x"}, {"max_tokens", 100}}, capped).request.sampling.max_tokens, 100);
  auto over = ParseCompletionRequest(R"({"prompt":"x","max_tokens":101})", capped);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(ParamOf(over.status()), "max_tokens");
  // An unbounded request may still ask for min_tokens.
  EXPECT_EQ(
      MustParseCompletion({{"prompt", "x"}, {"max_tokens", nullptr}, {"min_tokens", 50}}).request.sampling.min_tokens,
      50);
}

TEST(ParseCompletion, SeedUsesInt64Range) {
  EXPECT_EQ(MustParseCompletion({{"prompt", "x"}, {"seed", -1}}).request.sampling.seed,
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(MustParseCompletion({{"prompt", "x"}, {"seed", std::numeric_limits<int64_t>::max()}}).request.sampling.seed,
            static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  auto r = ParseCompletionRequest(R"({"prompt":"x","seed":9223372036854775808})", kLimits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ParamOf(r.status()), "seed");
}

TEST(ParseCompletion, NullMeansNotGiven) {
  const ParsedCompletion p = MustParseCompletion(
      {{"prompt", "x"}, {"temperature", nullptr}, {"stop", nullptr}, {"n", nullptr}, {"stream_options", nullptr}});
  EXPECT_EQ(p.request.sampling.temperature, 1.0f);
  EXPECT_TRUE(p.request.stop.empty());
  EXPECT_EQ(p.request.n, 1);
}

TEST(ParseCompletion, TimeoutBecomesDeadline) {
  const auto before = Clock::now();
  const ParsedCompletion p = MustParseCompletion({{"prompt", "x"}, {"timeout", 2.5}});
  const auto after = Clock::now();
  ASSERT_TRUE(p.request.deadline.has_value());
  EXPECT_GE(*p.request.deadline, before + std::chrono::milliseconds(2500));
  EXPECT_LE(*p.request.deadline, after + std::chrono::milliseconds(2500));
}

TEST(ParseCompletion, VocabSizeBoundsTokenIds) {
  Limits l;
  l.vocab_size = 10;
  EXPECT_TRUE(ParseCompletionRequest(R"({"prompt":[0,9],"stop_token_ids":[9]})", l).ok());
  auto r = ParseCompletionRequest(R"({"prompt":[0,10]})", l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ParamOf(r.status()), "prompt[1]");
  r = ParseCompletionRequest(R"({"prompt":"x","stop_token_ids":[3,10]})", l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ParamOf(r.status()), "stop_token_ids[1]");
}

struct ErrorCase {
  const char* body;
  const char* param;    // expected `param` of the error ("" = none)
  const char* message;  // a substring of the message
};

class CompletionErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CompletionErrors, NamesTheField) {
  const ErrorCase& c = GetParam();
  auto r = ParseCompletionRequest(c.body, kLimits);
  ASSERT_FALSE(r.ok()) << c.body;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpStatusOf(r.status()), 400);
  EXPECT_EQ(ParamOf(r.status()), c.param) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  const json err = json::parse(OpenAiErrorBody(r.status()));
  EXPECT_EQ(err["error"]["type"], "invalid_request_error");
  if (*c.param != '\0') {
    EXPECT_EQ(err["error"]["param"], c.param);
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, CompletionErrors,
    ::testing::Values(
        ErrorCase{"", "", "empty"}, ErrorCase{"{", "", "not valid JSON"},
        ErrorCase{"{\"prompt\":\"x\",}", "", "not valid JSON"}, ErrorCase{"[1]", "", "must be a JSON object"},
        ErrorCase{"\"x\"", "", "must be a JSON object"}, ErrorCase{"{}", "prompt", "required"},
        ErrorCase{R"({"prompt":null})", "prompt", "required"}, ErrorCase{R"({"prompt":""})", "prompt", "empty"},
        ErrorCase{R"({"prompt":[]})", "prompt", "empty"}, ErrorCase{R"({"prompt":[[]]})", "prompt[0]", "empty"},
        ErrorCase{R"({"prompt":["a","b"]})", "prompt", "batch of 2"},
        ErrorCase{R"({"prompt":[[1],[2]]})", "prompt", "batch of 2"},
        ErrorCase{R"({"prompt":[1,"a"]})", "prompt[1]", "integer"},
        ErrorCase{R"({"prompt":[-1]})", "prompt[0]", "[0, "}, ErrorCase{R"({"prompt":[1.5]})", "prompt[0]", "integer"},
        ErrorCase{R"({"prompt":7})", "prompt", "a string"}, ErrorCase{R"({"prompt":[{}]})", "prompt[0]", "a string"},
        ErrorCase{R"({"prompt":"x","model":3})", "model", "must be a string"},
        ErrorCase{R"({"prompt":"x","temperature":2.5})", "temperature", "[0, 2]"},
        ErrorCase{R"({"prompt":"x","temperature":-0.1})", "temperature", "[0, 2]"},
        ErrorCase{R"({"prompt":"x","temperature":"hot"})", "temperature", "must be a number, got string"},
        ErrorCase{R"({"prompt":"x","temperature":1e999})", "", "not valid JSON"},
        ErrorCase{R"({"prompt":"x","top_p":0})", "top_p", "(0, 1]"},
        ErrorCase{R"({"prompt":"x","top_p":1.01})", "top_p", "(0, 1]"},
        ErrorCase{R"({"prompt":"x","top_k":-2})", "top_k", "[-1, "},
        ErrorCase{R"({"prompt":"x","top_k":1.5})", "top_k", "integer"},
        ErrorCase{R"({"prompt":"x","min_p":1.5})", "min_p", "[0, 1]"},
        ErrorCase{R"({"prompt":"x","n":0})", "n", "[1, 16]"}, ErrorCase{R"({"prompt":"x","n":17})", "n", "[1, 16]"},
        ErrorCase{R"({"prompt":"x","n":true})", "n", "must be an integer, got boolean"},
        ErrorCase{R"({"prompt":"x","best_of":2})", "best_of", "must equal n"},
        ErrorCase{R"({"prompt":"x","logprobs":21})", "logprobs", "[0, 20]"},
        ErrorCase{R"({"prompt":"x","logprobs":-1})", "logprobs", "[0, 20]"},
        ErrorCase{R"({"prompt":"x","logprobs":true})", "logprobs", "integer"},
        ErrorCase{R"({"prompt":"x","presence_penalty":2.1})", "presence_penalty", "[-2, 2]"},
        ErrorCase{R"({"prompt":"x","frequency_penalty":-3})", "frequency_penalty", "[-2, 2]"},
        ErrorCase{R"({"prompt":"x","repetition_penalty":0})", "repetition_penalty", "> 0"},
        ErrorCase{R"({"prompt":"x","max_tokens":0})", "max_tokens", "[1, "},
        ErrorCase{R"({"prompt":"x","max_tokens":"10"})", "max_tokens", "integer"},
        ErrorCase{R"({"prompt":"x","max_tokens":3000000000})", "max_tokens", "limit"},
        ErrorCase{R"({"prompt":"x","max_tokens":5,"min_tokens":6})", "min_tokens", "must not exceed"},
        ErrorCase{R"({"prompt":"x","min_tokens":-1})", "min_tokens", "[0, "},
        ErrorCase{R"({"prompt":"x","stop":""})", "stop", "empty"},
        ErrorCase{R"({"prompt":"x","stop":["a",""]})", "stop[1]", "empty"},
        ErrorCase{R"({"prompt":"x","stop":["a",1]})", "stop[1]", "a string"},
        ErrorCase{R"({"prompt":"x","stop":{}})", "stop", "a string or an array"},
        ErrorCase{
            R"({"prompt":"x","stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})",
            "stop", "at most 16"},
        ErrorCase{R"({"prompt":"x","stop_token_ids":[1,-2]})", "stop_token_ids[1]", "[0, "},
        ErrorCase{R"({"prompt":"x","stop_token_ids":5})", "stop_token_ids", "array"},
        ErrorCase{R"({"prompt":"x","seed":"1"})", "seed", "integer"},
        ErrorCase{R"({"prompt":"x","stream":"yes"})", "stream", "boolean"},
        ErrorCase{R"({"prompt":"x","stream_options":{"include_usage":true}})", "stream_options", "stream is true"},
        ErrorCase{R"({"prompt":"x","stream":true,"stream_options":{"include_usage":1}})",
                  "stream_options.include_usage", "boolean"},
        ErrorCase{R"({"prompt":"x","stream":true,"stream_options":[]})", "stream_options", "an object"},
        ErrorCase{R"({"prompt":"x","echo":1})", "echo", "boolean"},
        ErrorCase{R"({"prompt":"x","ignore_eos":"true"})", "ignore_eos", "boolean"},
        ErrorCase{R"({"prompt":"x","logit_bias":{"50256":-100}})", "logit_bias", "not supported"},
        ErrorCase{R"({"prompt":"x","suffix":"end"})", "suffix", "not supported"},
        ErrorCase{R"({"prompt":"x","use_beam_search":true})", "use_beam_search", "not supported"},
        ErrorCase{R"({"prompt":"x","guided_json":{"type":"object"}})", "guided_json", "not supported"},
        ErrorCase{R"({"prompt":"x","response_format":{"type":"json_object"}})", "response_format.type",
                  "not supported"},
        ErrorCase{R"({"prompt":"x","timeout":0})", "timeout", "(0, 86400]"},
        ErrorCase{R"({"prompt":"x","timeout":1e12})", "timeout", "(0, 86400]"}));

TEST(ParseCompletion, DeepNestingIsRejectedBeforeParsing) {
  std::string body = R"({"prompt":"x","extra":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto r = ParseCompletionRequest(body, kLimits);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("deeper than 64"));
  // Brackets inside strings do not count.
  body = R"({"prompt":")" + std::string(1000, '[') + R"("})";
  EXPECT_TRUE(ParseCompletionRequest(body, kLimits).ok());
}

TEST(ParseCompletion, InvalidUtf8IsRejected) {
  auto r = ParseCompletionRequest("{\"prompt\":\"\xff\xfe\"}", kLimits);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not valid JSON"));
}

// ---- /v1/chat/completions parsing ----------------------------------------------------------------

TEST(ParseChat, MinimalRequestGetsVllmDefaults) {
  const ParsedChat p = MustParseChat(UserChat());
  ASSERT_TRUE(p.request.messages.has_value());
  ASSERT_EQ(p.request.messages->size(), 1u);
  EXPECT_EQ((*p.request.messages)[0].role, "user");
  EXPECT_EQ((*p.request.messages)[0].content, "hi");
  EXPECT_TRUE((*p.request.messages)[0].extra.empty());
  EXPECT_FALSE(p.request.prompt_text.has_value());
  EXPECT_EQ(p.request.sampling.max_tokens, 0);  // until the context is full
  EXPECT_EQ(p.request.sampling.logprobs, -1);
  EXPECT_TRUE(p.request.add_generation_prompt);
  EXPECT_FALSE(p.request.add_special_tokens);
  EXPECT_TRUE(p.request.tools.is_null());
  EXPECT_TRUE(p.request.chat_template_kwargs.is_null());
  EXPECT_EQ(p.request.api, "openai");
  EXPECT_FALSE(p.continue_final_message);
}

TEST(ParseChat, MessagesRolesPartsAndExtras) {
  const json body = {
      {"messages",
       {{{"role", "system"}, {"content", "be brief"}},
        {{"role", "developer"}, {"content", "dev"}},
        {{"role", "user"},
         {"name", "ann"},
         {"content", {{{"type", "text"}, {"text", "line one"}}, {{"type", "text"}, {"text", "line two"}}}}},
        {{"role", "assistant"},
         {"content", nullptr},
         {"tool_calls",
          {{{"id", "call_1"},
            {"type", "function"},
            {"function", {{"name", "get_weather"}, {"arguments", R"({"city":"Paris"})"}}}}}}},
        {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}}}}};
  const ParsedChat p = MustParseChat(body);
  const auto& m = *p.request.messages;
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(m[1].role, "developer");
  EXPECT_EQ(m[2].content, "line one\nline two");
  EXPECT_EQ(m[2].extra["name"], "ann");
  EXPECT_EQ(m[3].content, "");
  ASSERT_TRUE(m[3].extra.contains("tool_calls"));
  EXPECT_EQ(m[3].extra["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(m[3].extra["tool_calls"][0]["function"]["name"], "get_weather");
  // Arguments reach the template as an object, as vLLM hands them over.
  EXPECT_EQ(m[3].extra["tool_calls"][0]["function"]["arguments"], json({{"city", "Paris"}}));
  EXPECT_EQ(m[4].extra["tool_call_id"], "call_1");
  EXPECT_EQ(m[4].content, "sunny");
}

TEST(ParseChat, MaxTokensAndLogprobs) {
  json body = UserChat();
  body["max_tokens"] = 10;
  EXPECT_EQ(MustParseChat(body).request.sampling.max_tokens, 10);
  body["max_completion_tokens"] = 20;
  EXPECT_EQ(MustParseChat(body).request.sampling.max_tokens, 20);
  body["logprobs"] = true;
  EXPECT_EQ(MustParseChat(body).request.sampling.logprobs, 0);
  body["top_logprobs"] = 3;
  const ParsedChat p = MustParseChat(body);
  EXPECT_TRUE(p.logprobs_requested);
  EXPECT_EQ(p.top_logprobs, 3);
  EXPECT_EQ(p.request.sampling.logprobs, 3);
  body["logprobs"] = false;
  body["top_logprobs"] = 0;
  EXPECT_EQ(MustParseChat(body).request.sampling.logprobs, -1);
}

TEST(ParseChat, ToolsTemplateOptions) {
  json body = UserChat();
  body["tools"] = {{{"type", "function"},
                    {"function", {{"name", "f"}, {"description", "d"}, {"parameters", {{"type", "object"}}}}}}};
  body["tool_choice"] = "auto";
  body["response_format"] = {{"type", "text"}};
  body["chat_template_kwargs"] = {{"enable_thinking", false}};
  body["add_generation_prompt"] = false;
  const ParsedChat p = MustParseChat(body);
  EXPECT_EQ(p.request.tools, body["tools"]);
  EXPECT_EQ(p.tool_choice, "auto");
  EXPECT_EQ(p.request.chat_template_kwargs, body["chat_template_kwargs"]);
  EXPECT_FALSE(p.request.add_generation_prompt);

  json cont = {{"messages", {{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", "The"}}}},
               {"continue_final_message", true},
               {"add_generation_prompt", false}};
  EXPECT_TRUE(MustParseChat(cont).continue_final_message);
  json none = UserChat();
  none["tool_choice"] = "none";  // allowed without tools
  EXPECT_EQ(MustParseChat(none).tool_choice, "none");
}

class ChatErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ChatErrors, NamesTheField) {
  const ErrorCase& c = GetParam();
  auto r = ParseChatRequest(c.body, kLimits);
  ASSERT_FALSE(r.ok()) << c.body;
  EXPECT_EQ(HttpStatusOf(r.status()), 400);
  EXPECT_EQ(ParamOf(r.status()), c.param) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
}

#define MSG_USER R"("messages":[{"role":"user","content":"hi"}])"

INSTANTIATE_TEST_SUITE_P(
    All, ChatErrors,
    ::testing::Values(
        ErrorCase{"{}", "messages", "required"}, ErrorCase{R"({"messages":[]})", "messages", "empty"},
        ErrorCase{R"({"messages":{}})", "messages", "an array"},
        ErrorCase{R"({"messages":["hi"]})", "messages[0]", "an object"},
        ErrorCase{R"({"messages":[{"content":"hi"}]})", "messages[0].role", "required"},
        ErrorCase{R"({"messages":[{"role":"bot","content":"hi"}]})", "messages[0].role", "not one of"},
        ErrorCase{R"({"messages":[{"role":"user","content":"a"},{"role":"user"}]})", "messages[1].content", "required"},
        ErrorCase{R"({"messages":[{"role":"assistant","content":null}]})", "messages[0].content", "required"},
        ErrorCase{R"({"messages":[{"role":"user","content":5}]})", "messages[0].content", "a string or an array"},
        ErrorCase{
            R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}]})",
            "messages[0].content[1].type", "only 'text'"},
        ErrorCase{R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", "messages[0].content[0].text",
                  "must be a string"},
        ErrorCase{R"({"messages":[{"role":"user","content":["a"]}]})", "messages[0].content[0]", "an object"},
        ErrorCase{R"({"messages":[{"role":"user","content":"a","name":1}]})", "messages[0].name", "a string"},
        ErrorCase{R"({"messages":[{"role":"tool","content":"a","tool_call_id":2}]})", "messages[0].tool_call_id",
                  "a string"},
        ErrorCase{R"({"messages":[{"role":"user","content":"a","tool_calls":[]}]})", "messages[0].tool_calls",
                  "only allowed on assistant"},
        ErrorCase{R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{oops"}}]}]})",
                  "messages[0].tool_calls[0].function.arguments", "not valid JSON"},
        ErrorCase{R"({"messages":[{"role":"assistant","tool_calls":[{"type":"function"}]}]})",
                  "messages[0].tool_calls[0].function", "an object"},
        ErrorCase{"{" MSG_USER R"(,"max_completion_tokens":0})", "max_completion_tokens", "[1, "},
        ErrorCase{"{" MSG_USER R"(,"max_tokens":-5})", "max_tokens", "[1, "},
        ErrorCase{"{" MSG_USER R"(,"logprobs":3})", "logprobs", "boolean"},
        ErrorCase{"{" MSG_USER R"(,"top_logprobs":2})", "top_logprobs", "requires logprobs"},
        ErrorCase{"{" MSG_USER R"(,"logprobs":true,"top_logprobs":21})", "top_logprobs", "[0, 20]"},
        ErrorCase{"{" MSG_USER R"(,"tools":{}})", "tools", "an array"},
        ErrorCase{"{" MSG_USER R"(,"tools":[{"type":"code"}]})", "tools[0].type", "'function'"},
        ErrorCase{"{" MSG_USER R"(,"tools":[{"type":"function","function":{"name":""}}]})", "tools[0].function.name",
                  "non-empty"},
        ErrorCase{"{" MSG_USER R"(,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]})",
                  "tools[0].function.parameters", "an object"},
        ErrorCase{"{" MSG_USER R"(,"tool_choice":"auto"})", "tool_choice", "requires tools"},
        ErrorCase{"{" MSG_USER R"(,"tool_choice":"required"})", "tool_choice", "not supported"},
        ErrorCase{"{" MSG_USER R"(,"tool_choice":{"type":"function","function":{"name":"f"}}})", "tool_choice",
                  "not supported"},
        ErrorCase{"{" MSG_USER R"(,"response_format":{"type":"json_schema"}})", "response_format.type",
                  "not supported"},
        ErrorCase{"{" MSG_USER R"(,"response_format":"text"})", "response_format", "an object"},
        ErrorCase{"{" MSG_USER R"(,"continue_final_message":true})", "continue_final_message", "cannot both"},
        ErrorCase{"{" MSG_USER R"(,"continue_final_message":true,"add_generation_prompt":false})",
                  "continue_final_message", "last message"},
        ErrorCase{"{" MSG_USER R"(,"chat_template_kwargs":[1]})", "chat_template_kwargs", "an object"},
        ErrorCase{"{" MSG_USER R"(,"chat_template":"{{ x }}"})", "chat_template", "not supported"},
        ErrorCase{"{" MSG_USER R"(,"logit_bias":{"1":5}})", "logit_bias", "not supported"},
        ErrorCase{"{" MSG_USER R"(,"temperature":3})", "temperature", "[0, 2]"},
        ErrorCase{"{" MSG_USER R"(,"n":100})", "n", "[1, 16]"}));

// ---- Formatting helpers --------------------------------------------------------------------------

// Splits an SSE byte stream into its `data:` payloads, checking the framing of every event.
std::vector<std::string> SsePayloads(const std::string& bytes) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t end = bytes.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event in: " << bytes.substr(pos);
    if (end == std::string::npos) break;
    const std::string event = bytes.substr(pos, end - pos);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    EXPECT_EQ(event.find('\n'), std::string::npos) << "multi-line event: " << event;
    out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

TokenOut Tok(int32_t id, std::string text, float logprob, std::vector<TopLogprob> top = {}) {
  return TokenOut{.id = id, .token = std::move(text), .logprob = logprob, .top = std::move(top)};
}

Delta MakeDelta(int32_t index, std::string text, std::vector<TokenOut> tokens, std::string finish = "",
                int32_t completion_tokens = 0) {
  Delta d;
  d.index = index;
  d.text = std::move(text);
  d.tokens = std::move(tokens);
  d.finish_reason = std::move(finish);
  d.usage = Usage{.prompt_tokens = 5, .completion_tokens = completion_tokens, .cached_prompt_tokens = 2};
  return d;
}

ResponseOptions Opts(Endpoint endpoint, bool stream, int32_t n = 1) {
  ResponseOptions o;
  o.endpoint = endpoint;
  o.id = endpoint == Endpoint::kCompletions ? "cmpl-abc" : "chatcmpl-abc";
  o.created = 1700000000;
  o.model = "smol";
  o.n = n;
  o.stream.stream = stream;
  return o;
}

// ---- Non-streaming -------------------------------------------------------------------------------

TEST(ResponseBuilder, CompletionBodyWithLogprobs) {
  ResponseOptions o = Opts(Endpoint::kCompletions, /*stream=*/false, /*n=*/2);
  o.logprobs = true;
  o.top_logprobs = 2;
  ResponseBuilder b(o);
  EXPECT_EQ(b.content_type(), "application/json");
  // Choice 0: "Hé" + "llo"; choice 1: " world". Tokens carry the alternatives.
  EXPECT_EQ(b.Add(MakeDelta(0, "Hé",
                            {Tok(1, "H", -0.5f, {{1, "H", -0.5f}, {2, "J", -1.25f}}),
                             Tok(3, "é", -0.25f, {{4, "e", -0.125f}, {3, "é", -0.25f}})},
                            "", 2)),
            "");
  EXPECT_EQ(b.Add(MakeDelta(1, " world", {Tok(5, " world", -2.0f, {{6, " there", -1.0f}})}, "length", 1)), "");
  EXPECT_FALSE(b.all_finished());
  Delta last = MakeDelta(0, "llo", {Tok(7, "llo", -0.75f)}, "stop", 3);
  last.stop_reason = "\n";
  b.Add(last);
  EXPECT_TRUE(b.all_finished());
  const json body = json::parse(b.Finish());

  EXPECT_EQ(body["id"], "cmpl-abc");
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "smol");
  ASSERT_EQ(body["choices"].size(), 2u);
  const json& c0 = body["choices"][0];
  EXPECT_EQ(c0["index"], 0);
  EXPECT_EQ(c0["text"], "Héllo");
  EXPECT_EQ(c0["finish_reason"], "stop");
  EXPECT_EQ(c0["stop_reason"], "\n");
  EXPECT_EQ(c0["logprobs"]["tokens"], json({"H", "é", "llo"}));
  EXPECT_EQ(c0["logprobs"]["token_logprobs"], json({-0.5, -0.25, -0.75}));
  // Offsets count code points: "H" is 1, "é" is 1 (2 bytes), so "llo" starts at 2.
  EXPECT_EQ(c0["logprobs"]["text_offset"], json({0, 1, 2}));
  EXPECT_EQ(c0["logprobs"]["top_logprobs"][0], json({{"H", -0.5}, {"J", -1.25}}));
  EXPECT_EQ(c0["logprobs"]["top_logprobs"][1], json({{"e", -0.125}, {"é", -0.25}}));
  // With no alternatives, the sampled token alone.
  EXPECT_EQ(c0["logprobs"]["top_logprobs"][2], json({{"llo", -0.75}}));
  const json& c1 = body["choices"][1];
  EXPECT_EQ(c1["text"], " world");
  EXPECT_EQ(c1["finish_reason"], "length");
  EXPECT_TRUE(c1["stop_reason"].is_null());
  // The sampled token is added to the alternatives when it is not among them.
  EXPECT_EQ(c1["logprobs"]["top_logprobs"][0], json({{" there", -1.0}, {" world", -2.0}}));
  // Prompt counted once, completion tokens summed over choices.
  EXPECT_EQ(body["usage"], json({{"prompt_tokens", 5},
                                 {"completion_tokens", 4},
                                 {"total_tokens", 9},
                                 {"prompt_tokens_details", {{"cached_tokens", 2}}}}));
}

TEST(ResponseBuilder, TextOffsetsCountCharactersOfPartialByteTokens) {
  ResponseOptions o = Opts(Endpoint::kCompletions, false);
  o.logprobs = true;
  o.text_offset_base = 4;  // e.g. an echoed prompt of four characters
  ResponseBuilder b(o);
  b.Add(MakeDelta(
      0, "The café is",
      {Tok(1, "The", -1), Tok(2, " caf", -1), Tok(3, "bytes:\\xc3", -1), Tok(4, "bytes:\\xa9", -1), Tok(5, " is", -1)},
      "stop", 5));
  const json body = json::parse(b.Finish());
  // "The café is": " caf" starts at 3, "é" (two byte tokens) at 7, " is" at 8; plus the base.
  EXPECT_EQ(body["choices"][0]["logprobs"]["text_offset"], json({4, 7, 11, 12, 12}));
}

TEST(ResponseBuilder, TopLogprobsAreCutToTheRequestedCount) {
  ResponseOptions o = Opts(Endpoint::kCompletions, false);
  o.logprobs = true;
  o.top_logprobs = 1;
  ResponseBuilder b(o);
  b.Add(MakeDelta(0, "a", {Tok(1, "a", -0.5f, {{2, "b", -0.25f}, {1, "a", -0.5f}, {3, "c", -3.0f}})}, "stop", 1));
  const json body = json::parse(b.Finish());
  EXPECT_EQ(body["choices"][0]["logprobs"]["top_logprobs"][0], json({{"b", -0.25}, {"a", -0.5}}));
}

TEST(ResponseBuilder, ChatBodyWithLogprobsAndBytes) {
  ResponseOptions o = Opts(Endpoint::kChatCompletions, false);
  o.logprobs = true;
  o.top_logprobs = 1;
  ResponseBuilder b(o);
  b.Add(MakeDelta(0, "", {Tok(9, "bytes:\\xe2\\x80", -0.1f, {{9, "bytes:\\xe2\\x80", -0.1f}})}, "", 1));
  b.Add(MakeDelta(0, "… ok", {Tok(10, "bytes:\\xa6", -0.2f), Tok(11, " ok", -std::numeric_limits<float>::infinity())},
                  "stop", 3));
  const std::string text = b.Finish();
  // Logprobs print as the shortest decimal of the float, not its double expansion.
  EXPECT_THAT(text, HasSubstr("\"logprob\":-0.1,"));
  const json body = json::parse(text);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["id"], "chatcmpl-abc");
  const json& c = body["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_EQ(c["message"]["content"], "… ok");
  EXPECT_EQ(c["finish_reason"], "stop");
  const json& content = c["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u);
  EXPECT_EQ(content[0]["token"], "bytes:\\xe2\\x80");
  EXPECT_EQ(content[0]["bytes"], json({0xe2, 0x80}));
  EXPECT_EQ(content[0]["top_logprobs"],
            json::array({{{"token", "bytes:\\xe2\\x80"}, {"logprob", -0.1}, {"bytes", {0xe2, 0x80}}}}));
  EXPECT_EQ(content[1]["bytes"], json::array({0xa6}));
  EXPECT_EQ(content[1]["top_logprobs"], json::array());
  EXPECT_EQ(content[2]["bytes"], json({' ', 'o', 'k'}));
  EXPECT_EQ(content[2]["logprob"], -9999.0);  // -inf is not JSON
  EXPECT_EQ(body["usage"]["completion_tokens"], 3);
}

TEST(ResponseBuilder, ChatBodyWithoutLogprobs) {
  ResponseBuilder b(Opts(Endpoint::kChatCompletions, false));
  b.Add(MakeDelta(0, "Hi", {}, "", 1));
  b.Add(MakeDelta(0, "!", {}, "stop", 2));
  const json body = json::parse(b.Finish());
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Hi!");
  EXPECT_EQ(body["usage"]["completion_tokens"], 2);
  EXPECT_EQ(b.Finish(), "");  // only once
}

TEST(ResponseBuilder, UnknownIndexAndLateDeltasAreIgnored) {
  ResponseBuilder b(Opts(Endpoint::kCompletions, false));
  b.Add(MakeDelta(3, "x", {}));
  b.Add(MakeDelta(-1, "x", {}));
  b.Add(MakeDelta(0, "a", {}, "stop", 1));
  b.Add(MakeDelta(0, "b", {}, "", 2));
  const json body = json::parse(b.Finish());
  ASSERT_EQ(body["choices"].size(), 1u);
  EXPECT_EQ(body["choices"][0]["text"], "a");
}

TEST(ResponseBuilder, NonStreamingFailureIsTheErrorBody) {
  ResponseBuilder b(Opts(Endpoint::kCompletions, false));
  const json err = json::parse(b.Fail(absl::UnavailableError("engine down")));
  EXPECT_EQ(err["error"]["message"], "engine down");
  EXPECT_EQ(err["error"]["code"], 503);
}

// ---- Streaming -----------------------------------------------------------------------------------

TEST(ResponseBuilder, CompletionStreamWithUsage) {
  ResponseOptions o = Opts(Endpoint::kCompletions, true, 2);
  o.stream.include_usage = true;
  o.logprobs = true;
  ResponseBuilder b(o);
  EXPECT_EQ(b.content_type(), "text/event-stream");
  std::string bytes;
  bytes += b.Add(MakeDelta(0, "He", {Tok(1, "He", -0.5f)}, "", 1));
  bytes += b.Add(MakeDelta(1, "", {}, "", 0));  // nothing to say yet
  bytes += b.Add(MakeDelta(0, "llo", {Tok(2, "llo", -0.25f)}, "length", 2));
  bytes += b.Add(MakeDelta(1, "Yo", {Tok(3, "Yo", -1.0f)}, "stop", 1));
  bytes += b.Finish();
  const std::vector<std::string> events = SsePayloads(bytes);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events.back(), "[DONE]");

  const json e0 = json::parse(events[0]);
  EXPECT_EQ(e0["object"], "text_completion");
  EXPECT_EQ(e0["id"], "cmpl-abc");
  ASSERT_EQ(e0["choices"].size(), 1u);
  EXPECT_EQ(e0["choices"][0]["text"], "He");
  EXPECT_TRUE(e0["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(e0["usage"].is_null());
  EXPECT_EQ(e0["choices"][0]["logprobs"]["text_offset"], json::array({0}));
  const json e1 = json::parse(events[1]);
  EXPECT_EQ(e1["choices"][0]["text"], "llo");
  EXPECT_EQ(e1["choices"][0]["finish_reason"], "length");
  // Offsets continue across chunks of the same choice.
  EXPECT_EQ(e1["choices"][0]["logprobs"]["text_offset"], json::array({2}));
  const json e2 = json::parse(events[2]);
  EXPECT_EQ(e2["choices"][0]["index"], 1);
  EXPECT_EQ(e2["choices"][0]["logprobs"]["text_offset"], json::array({0}));
  const json usage = json::parse(events[3]);
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(usage["usage"]["completion_tokens"], 3);
  EXPECT_EQ(usage["usage"]["total_tokens"], 8);
}

TEST(ResponseBuilder, ChatStreamSendsRoleFirst) {
  ResponseBuilder b(Opts(Endpoint::kChatCompletions, true, 2));
  std::string bytes;
  bytes += b.Add(MakeDelta(0, "Hel", {}, "", 1));
  bytes += b.Add(MakeDelta(1, "", {}, "", 0));
  bytes += b.Add(MakeDelta(0, "lo", {}, "", 2));
  bytes += b.Add(MakeDelta(0, "", {}, "stop", 2));
  bytes += b.Add(MakeDelta(1, "x", {}, "length", 1));
  bytes += b.Finish();
  const std::vector<std::string> events = SsePayloads(bytes);
  std::vector<json> chunks;
  for (size_t i = 0; i + 1 < events.size(); ++i) chunks.push_back(json::parse(events[i]));
  EXPECT_EQ(events.back(), "[DONE]");
  ASSERT_EQ(chunks.size(), 6u);
  for (const json& c : chunks) {
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    EXPECT_EQ(c["id"], "chatcmpl-abc");
    EXPECT_FALSE(c.contains("usage"));
  }
  EXPECT_EQ(chunks[0]["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_EQ(chunks[1]["choices"][0]["delta"], json({{"content", "Hel"}}));
  EXPECT_EQ(chunks[2]["choices"][0]["index"], 1);  // role chunk of choice 1
  EXPECT_EQ(chunks[2]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks[3]["choices"][0]["delta"], json({{"content", "lo"}}));
  EXPECT_EQ(chunks[4]["choices"][0]["delta"], json::object());
  EXPECT_EQ(chunks[4]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(chunks[5]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(chunks[5]["choices"][0]["delta"], json({{"content", "x"}}));
}

TEST(ResponseBuilder, ContinuousUsageOnEveryChunk) {
  ResponseOptions o = Opts(Endpoint::kChatCompletions, true);
  o.stream.include_usage = true;
  o.stream.continuous_usage = true;
  ResponseBuilder b(o);
  const std::vector<std::string> events = SsePayloads(b.Add(MakeDelta(0, "a", {}, "", 1)));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(json::parse(events[1])["usage"]["completion_tokens"], 1);
}

TEST(ResponseBuilder, StreamErrorThenDone) {
  ResponseBuilder b(Opts(Endpoint::kChatCompletions, true));
  std::string bytes = b.Add(MakeDelta(0, "a", {}, "", 1));
  bytes += b.Fail(absl::DeadlineExceededError("deadline passed"));
  const std::vector<std::string> events = SsePayloads(bytes);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3], "[DONE]");
  const json err = json::parse(events[2]);
  EXPECT_EQ(err["error"]["message"], "deadline passed");
  EXPECT_EQ(err["error"]["type"], "timeout_error");
  EXPECT_EQ(err["error"]["code"], 504);
  EXPECT_EQ(b.Finish(), "");  // nothing after the failure
}

TEST(Models, ListShape) {
  const json list = json::parse(FormatModelList({{.id = "smol", .created = 17, .max_model_len = 8192}}));
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["id"], "smol");
  EXPECT_EQ(list["data"][0]["object"], "model");
  EXPECT_EQ(list["data"][0]["created"], 17);
  EXPECT_EQ(list["data"][0]["owned_by"], "tessera");
  EXPECT_EQ(list["data"][0]["max_model_len"], 8192);
  EXPECT_EQ(json::parse(FormatModel({.id = "smol"}))["id"], "smol");
}

TEST(ResponseOptionsFor, CopiesStreamAndLogprobSettings) {
  ParsedChat chat = MustParseChat({{"messages", {{{"role", "user"}, {"content", "x"}}}},
                                   {"n", 2},
                                   {"stream", true},
                                   {"stream_options", {{"include_usage", true}}},
                                   {"logprobs", true},
                                   {"top_logprobs", 4}});
  const ResponseOptions o = ResponseOptionsFor(chat, "r1", 5);
  EXPECT_EQ(o.endpoint, Endpoint::kChatCompletions);
  EXPECT_EQ(o.id, "chatcmpl-r1");
  EXPECT_EQ(o.created, 5);
  EXPECT_EQ(o.n, 2);
  EXPECT_TRUE(o.stream.stream);
  EXPECT_TRUE(o.stream.include_usage);
  EXPECT_TRUE(o.logprobs);
  EXPECT_EQ(o.top_logprobs, 4);
  EXPECT_EQ(ResponseOptionsFor(MustParseCompletion({{"prompt", "x"}}), "r2", 5).id, "cmpl-r2");
  EXPECT_EQ(ResponseOptionsFor(MustParseCompletion({{"prompt", "x"}}), "r2", 5).text_offset_base, 0);
  EXPECT_EQ(ResponseOptionsFor(MustParseCompletion({{"prompt", "café"}, {"echo", true}}), "r2", 5).text_offset_base, 4);
}

}  // namespace
}  // namespace tessera::server::openai
