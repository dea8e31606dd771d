// Fuzzes the chat template interpreter: the input is parsed as a template and, when it parses,
// rendered against a fixed conversation with tools under tight limits; the input is also used as
// message content for a template that runs the string methods and filters over it. Any input
// must give a result or a Status, never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"
#include "server/chat_template/chat_template.h"

namespace {

using tessera::chat_template::ChatTemplate;
using tessera::chat_template::RenderOptions;
using Json = nlohmann::ordered_json;

RenderOptions SmallLimits() {
  RenderOptions options;
  options.limits.max_steps = 200000;
  options.limits.max_output_bytes = 1 << 20;
  options.limits.max_value_bytes = 1 << 20;
  options.limits.max_call_depth = 16;
  options.now = 1721995200;
  return options;
}

Json FixedContext(const std::string& content) {
  Json tool = Json::parse(R"({"type": "function", "function": {"name": "get_weather", "description": "Weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})");
  Json messages = Json::array();
  messages.push_back(Json{{"role", "system"}, {"content", "You are helpful."}});
  messages.push_back(Json{{"role", "user"}, {"content", content}});
  messages.push_back(
      Json{{"role", "assistant"},
           {"content", "<think>\nhm\n</think>\n\nok"},
           {"tool_calls",
            Json::array({Json{{"type", "function"},
                              {"function", {{"name", "get_weather"}, {"arguments", {{"city", content}}}}}}})}});
  messages.push_back(Json{{"role", "tool"}, {"content", content}});
  return Json{{"messages", messages},
              {"tools", Json::array({tool})},
              {"add_generation_prompt", true},
              {"bos_token", "<s>"},
              {"eos_token", "</s>"}};
}

constexpr std::string_view kStringOps =
    "{%- set c = messages[1].content %}{{ c | trim }}|{{ c.split() | length }}|{{ c.split('\\n') | join('/') }}|"
    "{{ c.strip('<>') }}|{{ c.upper() }}{{ c.lower() }}{{ c | title }}{{ c | capitalize }}|{{ c[::-1] }}|{{ c[1:-1] }}|"
    "{{ c | tojson }}{{ messages | tojson(indent=2) }}|{{ c.startswith('<') }}{{ c.endswith('>') }}|"
    "{{ c.replace('a', 'bb') }}|{{ '</think>' in c }}{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ c | length }}"
    "{{ c | list | unique | list | length }}|{{ c.rsplit(' ', 2) }}{{ [c, c] }}{{ c | escape }}";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const RenderOptions options = SmallLimits();
  const Json context = FixedContext(input);
  if (auto parsed = ChatTemplate::Parse(input); parsed.ok()) {
    (void)parsed->Render(context, options);
  }
  static const auto* string_ops = new absl::StatusOr<ChatTemplate>(ChatTemplate::Parse(kStringOps));
  if (string_ops->ok()) (void)(*string_ops)->Render(context, options);
  return 0;
}
