// Hugging Face chat templates: a Jinja interpreter that renders a model's `chat_template` the way
// transformers' apply_chat_template does (jinja2 ImmutableSandboxedEnvironment with
// trim_blocks=True, lstrip_blocks=True, loopcontrols, and the globals raise_exception,
// strftime_now, namespace and dict, plus HF's tojson filter), byte for byte.
//
//   TS_ASSIGN_OR_RETURN(ChatTemplateConfig config, ChatTemplateConfig::FromModelDir(model_dir));
//   TS_ASSIGN_OR_RETURN(std::string source, config.Select(/*has_tools=*/false));
//   TS_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::Parse(source));
//   nlohmann::ordered_json context = BuildChatContext({{"user", "Hi!"}}, std::nullopt, true, config.special_tokens);
//   TS_ASSIGN_OR_RETURN(std::string prompt, tmpl.Render(context));
//
// Errors: Parse returns INVALID_ARGUMENT "chat template: line:col: ..." for syntax errors. Render
// returns INVALID_ARGUMENT for raise_exception(message) (the message is the status message, for a
// 400 response) and for template errors on the given input ("chat template: line:col: ..."), and
// RESOURCE_EXHAUSTED when a limit of RenderLimits is hit.
//
// Use nlohmann::ordered_json for the context: json.dumps (`tojson`) writes keys in insertion
// order, so a tool schema renders byte-identically only if its key order is kept from the request.
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/chat_template/interpreter.h"

namespace tessera::chat_template {

struct TemplateAst;

struct ChatMessage {
  std::string role;
  std::string content;
  // Further fields of the message in order (tool_calls, name, tool_call_id, reasoning_content...).
  // A "content" entry here replaces `content` (null for an assistant turn with only tool calls, or a
  // list of content parts).
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

struct RenderOptions {
  RenderLimits limits;
  // Time strftime_now() formats (local time zone); the current time when unset.
  std::optional<std::time_t> now;
};

class ChatTemplate {
 public:
  static absl::StatusOr<ChatTemplate> Parse(std::string_view source);

  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context) const;
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context, const RenderOptions& options) const;
  // Convenience for a context built as nlohmann::json (its objects are key-sorted).
  absl::StatusOr<std::string> Render(const nlohmann::json& context) const;

  const std::string& source() const { return *source_; }

 private:
  ChatTemplate(std::shared_ptr<const TemplateAst> ast, std::shared_ptr<const std::string> source)
      : ast_(std::move(ast)), source_(std::move(source)) {}

  std::shared_ptr<const TemplateAst> ast_;
  std::shared_ptr<const std::string> source_;
};

// The chat templates and special tokens of a model, from tokenizer_config.json (and
// chat_template.jinja, which newer checkpoints ship beside it and which takes precedence).
struct ChatTemplateConfig {
  // Named templates; a plain string chat_template is stored as "default".
  std::map<std::string, std::string> templates;
  // bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token: those set in the
  // config, as strings (an AddedToken object contributes its "content").
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();

  static absl::StatusOr<ChatTemplateConfig> FromTokenizerConfigJson(std::string_view json_text);
  static absl::StatusOr<ChatTemplateConfig> FromModelDir(const std::string& model_dir);

  // transformers' get_chat_template: "tool_use" when tools are given and it exists, else
  // "default"; NOT_FOUND when the model has no usable template.
  absl::StatusOr<std::string> Select(bool has_tools) const;
};

// The render context apply_chat_template builds: the special tokens, then messages (keys whose
// value is null dropped; reasoning_content/thinking/reasoning aliased to each other), tools (null
// when absent, as transformers passes it), documents (null), add_generation_prompt, then
// `extra_kwargs` (chat_template_kwargs such as enable_thinking, or date_string), which override.
nlohmann::ordered_json BuildChatContext(const std::vector<ChatMessage>& messages,
                                        const std::optional<nlohmann::ordered_json>& tools, bool add_generation_prompt,
                                        const nlohmann::ordered_json& special_tokens,
                                        const nlohmann::ordered_json& extra_kwargs = nlohmann::ordered_json::object());

// Same, for messages already in JSON form (an array of objects, e.g. from an OpenAI request).
// INVALID_ARGUMENT when `messages` is not an array of objects.
absl::StatusOr<nlohmann::ordered_json> BuildChatContextFromJson(
    const nlohmann::ordered_json& messages, const std::optional<nlohmann::ordered_json>& tools,
    bool add_generation_prompt, const nlohmann::ordered_json& special_tokens,
    const nlohmann::ordered_json& extra_kwargs = nlohmann::ordered_json::object());

}  // namespace tessera::chat_template
