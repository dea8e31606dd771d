// API, error, limit and loading behaviour of tessera_chat_template. Rendering semantics are checked
// against jinja2 in chat_template_parity_test.cc; the expectations here are the documented
// contract (status codes, line:col, limits) and values verified with jinja2 by hand.
#include "server/chat_template/chat_template.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::chat_template {
namespace {

using Json = nlohmann::ordered_json;

absl::StatusOr<std::string> RenderSource(const std::string& source, const Json& context = Json::object(),
                                         const RenderOptions& options = {}) {
  auto tmpl = ChatTemplate::Parse(source);
  if (!tmpl.ok()) return tmpl.status();
  return tmpl->Render(context, options);
}

TEST(ChatTemplateTest, ParseErrorsCarryLineAndColumn) {
  auto t = ChatTemplate::Parse("line one\n{% if x %}\n  {{ x + }}\n{% endif %}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(t.status().message()).find("3:"), std::string::npos) << t.status();

  for (const char* bad : {"{% if x %}no end", "{{ unclosed", "{% for %}{% endfor %}", "{% endif %}", "{# open comment",
                          "{{ 'unterminated }}", "{% unknown_tag %}", "{{ (1 }}", "{{ a ]] }}", "{% break %}",
                          "{% raw %}never closed", "{{ 1 + }}", "{% macro m(a=1, b) %}{% endmacro %}"}) {
    auto status = ChatTemplate::Parse(bad);
    EXPECT_FALSE(status.ok()) << bad;
    if (!status.ok()) {
      EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument) << bad;
      EXPECT_NE(std::string(status.status().message()).find(':'), std::string::npos) << bad;
    }
  }
}

TEST(ChatTemplateTest, DeepNestingIsRejectedNotACrash) {
  std::string deep(5000, '(');
  deep = "{{ " + deep + "1" + std::string(5000, ')') + " }}";
  auto t = ChatTemplate::Parse(deep);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(std::string(t.status().message()).find("nested too deeply"), std::string::npos) << t.status();

  std::string blocks;
  for (int i = 0; i < 3000; ++i) blocks += "{% if true %}";
  EXPECT_FALSE(ChatTemplate::Parse(blocks).ok());
}

TEST(ChatTemplateTest, RaiseExceptionIsInvalidArgumentWithTheMessage) {
  auto r = RenderSource("{{ raise_exception('Conversation roles must alternate') }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "Conversation roles must alternate");
}

TEST(ChatTemplateTest, RuntimeErrorsNameTheLocation) {
  auto r = RenderSource("ok\n{{ messages[0].content + 1 }}", Json{{"messages", Json::array({Json{{"content", "x"}}})}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("2:"), std::string::npos) << r.status();
  EXPECT_NE(std::string(r.status().message()).find("can only concatenate str"), std::string::npos) << r.status();
}

TEST(ChatTemplateTest, StepLimitStopsRunawayLoops) {
  RenderOptions options;
  options.limits.max_steps = 100000;
  auto r = RenderSource("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}", Json::object(),
                        options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
}

TEST(ChatTemplateTest, OutputAndValueLimits) {
  RenderOptions options;
  options.limits.max_output_bytes = 1000;
  auto r = RenderSource("{% for i in range(100) %}0123456789ABCDEF{% endfor %}", Json::object(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);

  options = RenderOptions{};
  options.limits.max_value_bytes = 1 << 20;
  r = RenderSource("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                   Json::object(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);

  r = RenderSource("{{ 'x' * 100000000000 }}", Json::object(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);

  r = RenderSource("{{ range(1000000) | length }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, RecursionDepthIsLimited) {
  auto r = RenderSource("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
}

TEST(ChatTemplateTest, CyclesAndDeepValuesAreSafe) {
  // A namespace holding itself and a macro stored in the scope it closes over are reference cycles;
  // the render must still free them (LeakSanitizer checks this under the asan preset).
  EXPECT_EQ(*RenderSource("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}"), "True");
  EXPECT_EQ(*RenderSource("{% macro m(x) %}<{{ x }}>{% endmacro %}{% set alias = m %}{{ alias(1) }}"), "<1>");
  EXPECT_FALSE(RenderSource("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}").ok());

  auto deep =
      RenderSource("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}");
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(std::string(deep.status().message()).find("nested"), std::string::npos) << deep.status();

  // A long chain of namespaces is released without deep recursion.
  EXPECT_EQ(*RenderSource("{% set ns = namespace(p=none) %}{% for i in range(50000) %}"
                          "{% set ns.p = namespace(p=ns.p) %}{% endfor %}ok"),
            "ok");

  std::string deep_json = "1";
  for (int i = 0; i < 1000; ++i) deep_json = "[" + deep_json + "]";
  auto tmpl = ChatTemplate::Parse("{{ x | length }}");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_FALSE(tmpl->Render(Json{{"x", Json::parse(deep_json)}}).ok());
}

TEST(ChatTemplateTest, IntegerOverflowIsAnError) {
  auto r = RenderSource("{{ 9223372036854775807 + 1 }}");
  EXPECT_FALSE(r.ok());
  r = RenderSource("{{ 2 ** 64 }}");
  EXPECT_FALSE(r.ok());
  r = RenderSource("{{ 1 // 0 }}");
  EXPECT_FALSE(r.ok());
}

TEST(ChatTemplateTest, GenerationBlockRendersItsBody) {
  // transformers' AssistantTracker extension: {% generation %} marks assistant text.
  EXPECT_EQ(*RenderSource("a{% generation %}b{{ 1 }}{% endgeneration %}c"), "ab1c");
}

TEST(ChatTemplateTest, StrftimeNowUsesTheGivenClock) {
  RenderOptions options;
  options.now = 1721995200;  // 2024-07-26 12:00:00 UTC
  EXPECT_EQ(*RenderSource("{{ strftime_now('%d %b %Y') }}", Json::object(), options), "26 Jul 2024");
  auto now = RenderSource("{{ strftime_now('%Y') }}");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->size(), 4u);
}

TEST(ChatTemplateTest, UndefinedSemanticsFollowJinjaDefaultUndefined) {
  EXPECT_EQ(*RenderSource("[{{ missing }}][{{ missing | length }}][{{ missing is defined }}]"), "[][0][False]");
  EXPECT_EQ(*RenderSource("{{ m.nothing }}|{{ m.nothing is defined }}", Json{{"m", Json::object()}}), "|False");
  EXPECT_FALSE(RenderSource("{{ missing.attr }}").ok());
  EXPECT_FALSE(RenderSource("{{ missing + 'x' }}").ok());
  EXPECT_EQ(*RenderSource("{% for x in missing %}x{% else %}empty{% endfor %}"), "empty");
}

TEST(ChatTemplateTest, KeyOrderOfTheContextIsKept) {
  const Json tool = Json::parse(R"({"name": "f", "parameters": {"z": 1, "a": 2}})");
  EXPECT_EQ(*RenderSource("{{ t | tojson }}", Json{{"t", tool}}), R"({"name": "f", "parameters": {"z": 1, "a": 2}})");
  // The nlohmann::json overload sorts keys (std::map), as its type implies.
  auto tmpl = ChatTemplate::Parse("{{ t | tojson }}");
  ASSERT_TRUE(tmpl.ok());
  nlohmann::json sorted;
  sorted["t"] = nlohmann::json::parse(R"({"z": 1, "a": 2})");
  EXPECT_EQ(*tmpl->Render(sorted), R"({"a": 2, "z": 1})");
}

TEST(ChatTemplateTest, ContextMustBeAnObject) {
  auto tmpl = ChatTemplate::Parse("x");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_EQ(tmpl->Render(Json::array()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, BuildChatContextMirrorsApplyChatTemplate) {
  ChatMessage assistant{"assistant", "", Json::object()};
  assistant.extra["content"] = nullptr;  // OpenAI's content: null for a pure tool call
  assistant.extra["tool_calls"] =
      Json::array({Json{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}});
  ChatMessage thinking{"assistant", "answer", Json{{"reasoning_content", "because"}}};
  const Json context =
      BuildChatContext({{"user", "hi"}, assistant, thinking}, std::nullopt, true,
                       Json{{"bos_token", "<s>"}, {"eos_token", "</s>"}}, Json{{"enable_thinking", false}});
  EXPECT_EQ(context["bos_token"], "<s>");
  EXPECT_EQ(context["eos_token"], "</s>");
  EXPECT_TRUE(context["tools"].is_null());
  EXPECT_TRUE(context["documents"].is_null());
  EXPECT_EQ(context["add_generation_prompt"], true);
  EXPECT_EQ(context["enable_thinking"], false);
  const Json& messages = context["messages"];
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].dump(), R"({"role":"user","content":"hi"})");
  EXPECT_FALSE(messages[1].contains("content"));  // None-valued keys are dropped
  EXPECT_EQ(messages[2].dump(),
            R"({"thinking":"because","role":"assistant","content":"answer","reasoning_content":"because"})");

  const Json tools = Json::array({Json{{"type", "function"}}});
  const Json with_tools = BuildChatContext({{"user", "x"}}, tools, false, Json::object());
  EXPECT_EQ(with_tools["tools"], tools);

  EXPECT_FALSE(BuildChatContextFromJson(Json::object(), std::nullopt, false, Json::object()).ok());
  EXPECT_FALSE(BuildChatContextFromJson(Json::array({1}), std::nullopt, false, Json::object()).ok());
}

TEST(ChatTemplateConfigTest, StringTemplateAndAddedTokenObjects) {
  auto config = ChatTemplateConfig::FromTokenizerConfigJson(R"({
    "chat_template": "{{ bos_token }}hi",
    "bos_token": {"content": "<s>", "lstrip": false, "normalized": false},
    "eos_token": "</s>",
    "pad_token": null,
    "model_max_length": 4096
  })");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->Select(false), "{{ bos_token }}hi");
  EXPECT_EQ(*config->Select(true), "{{ bos_token }}hi");
  EXPECT_EQ(config->special_tokens.dump(), R"({"bos_token":"<s>","eos_token":"</s>"})");
}

TEST(ChatTemplateConfigTest, NamedTemplatesPickToolUseWhenToolsAreGiven) {
  auto config = ChatTemplateConfig::FromTokenizerConfigJson(R"({
    "chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"},
                      {"name": "rag", "template": "R"}]
  })");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->Select(false), "D");
  EXPECT_EQ(*config->Select(true), "T");

  auto no_default =
      ChatTemplateConfig::FromTokenizerConfigJson(R"({"chat_template": [{"name": "rag", "template": "R"}]})");
  ASSERT_TRUE(no_default.ok());
  EXPECT_EQ(no_default->Select(false).status().code(), absl::StatusCode::kNotFound);

  auto none = ChatTemplateConfig::FromTokenizerConfigJson(R"({"eos_token": "x"})");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->Select(false).status().code(), absl::StatusCode::kNotFound);
}

TEST(ChatTemplateConfigTest, BadConfigsNameTheField) {
  for (const char* bad : {"not json", "[1]", R"({"chat_template": 5})", R"({"chat_template": [{"name": "x"}]})",
                          R"({"chat_template": [7]})", R"({"bos_token": 3})", R"({"eos_token": {"nocontent": 1}})"}) {
    auto config = ChatTemplateConfig::FromTokenizerConfigJson(bad);
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(std::string(config.status().message()).find("tokenizer_config.json"), std::string::npos) << bad;
  }
}

TEST(ChatTemplateConfigTest, LoadsFromAModelDirectory) {
  // The repository's tokenizer fixtures carry simplified chat templates.
  auto config = ChatTemplateConfig::FromModelDir("tests/fixtures/tokenizers/qwen2");
  ASSERT_TRUE(config.ok()) << config.status();
  auto source = config->Select(false);
  ASSERT_TRUE(source.ok());
  auto tmpl = ChatTemplate::Parse(*source);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const Json context = BuildChatContext({{"user", "Hi"}}, std::nullopt, true, config->special_tokens);
  EXPECT_EQ(*tmpl->Render(context), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");

  EXPECT_EQ(ChatTemplateConfig::FromModelDir("tests/fixtures/does_not_exist").status().code(),
            absl::StatusCode::kNotFound);

  // chat_template.jinja beside tokenizer_config.json takes precedence.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "tessera_chat_template_test_dir";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "old", "eos_token": "E"})";
  std::ofstream(dir / "chat_template.jinja") << "new {{ eos_token }}";
  auto from_dir = ChatTemplateConfig::FromModelDir(dir.string());
  ASSERT_TRUE(from_dir.ok()) << from_dir.status();
  EXPECT_EQ(*from_dir->Select(false), "new {{ eos_token }}");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera::chat_template
