#include "server/chat_template/chat_template.h"

#include <chrono>
#include <fstream>
#include <new>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/chat_template/ast.h"
#include "server/chat_template/parser.h"

namespace tessera::chat_template {
namespace {

constexpr const char* kSpecialTokenNames[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                              "pad_token", "cls_token", "mask_token"};
constexpr const char* kReasoningFields[] = {"reasoning_content", "thinking", "reasoning"};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One message as render_jinja_template sees it after apply_chat_template's normalization.
nlohmann::ordered_json NormalizeMessage(const nlohmann::ordered_json& message) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [key, value] : message.items()) {
    if (!value.is_null()) out[key] = value;
  }
  const nlohmann::ordered_json* reasoning = nullptr;
  for (const char* field : kReasoningFields) {
    auto it = out.find(field);
    if (it != out.end()) {
      reasoning = &*it;
      break;
    }
  }
  if (reasoning == nullptr) return out;
  const nlohmann::ordered_json value = *reasoning;
  // {"thinking": r, **message, "reasoning_content": r}
  nlohmann::ordered_json aliased = nlohmann::ordered_json::object();
  aliased["thinking"] = value;
  for (const auto& [key, v] : out.items()) aliased[key] = v;
  aliased["reasoning_content"] = value;
  return aliased;
}

nlohmann::ordered_json FinishContext(nlohmann::ordered_json messages,
                                     const std::optional<nlohmann::ordered_json>& tools, bool add_generation_prompt,
                                     const nlohmann::ordered_json& special_tokens,
                                     const nlohmann::ordered_json& extra_kwargs) {
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  if (special_tokens.is_object()) {
    for (const auto& [key, value] : special_tokens.items()) context[key] = value;
  }
  context["messages"] = std::move(messages);
  context["tools"] = tools.has_value() ? *tools : nlohmann::ordered_json(nullptr);
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  if (extra_kwargs.is_object()) {
    for (const auto& [key, value] : extra_kwargs.items()) context[key] = value;
  }
  return context;
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string_view source) {
  auto ast = ParseTemplate(source);
  if (!ast.ok()) return absl::InvalidArgumentError(absl::StrCat("chat template: ", ast.status().message()));
  return ChatTemplate(*std::move(ast), std::make_shared<const std::string>(source));
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context) const {
  return Render(context, RenderOptions{});
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::json& context) const {
  return Render(nlohmann::ordered_json::parse(context.dump()), RenderOptions{});
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context,
                                                 const RenderOptions& options) const {
  if (!context.is_object()) return absl::InvalidArgumentError("chat template context must be a JSON object");
  const std::time_t now =
      options.now.has_value() ? *options.now : std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  try {
    const Value root = Value::FromJson(context);
    Interpreter interpreter(options.limits, now);
    return interpreter.Render(*ast_, root);
  } catch (const RenderError& e) {
    switch (e.kind()) {
      case ErrorKind::kRaised:
        return absl::InvalidArgumentError(e.message());
      case ErrorKind::kResourceExhausted:
        return absl::ResourceExhaustedError(absl::StrCat("chat template: ", e.message()));
      case ErrorKind::kTemplate:
        return absl::InvalidArgumentError(absl::StrCat("chat template: ", e.message()));
    }
    return absl::InternalError(e.message());
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("chat template: out of memory while rendering");
  } catch (const std::length_error&) {
    return absl::ResourceExhaustedError("chat template: value too large while rendering");
  }
}

absl::StatusOr<ChatTemplateConfig> ChatTemplateConfig::FromTokenizerConfigJson(std::string_view json_text) {
  const nlohmann::ordered_json config = nlohmann::ordered_json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return absl::InvalidArgumentError("tokenizer_config.json: not valid JSON");
  if (!config.is_object()) return absl::InvalidArgumentError("tokenizer_config.json: top level must be an object");
  ChatTemplateConfig out;
  if (auto it = config.find("chat_template"); it != config.end() && !it->is_null()) {
    if (it->is_string()) {
      out.templates["default"] = it->get<std::string>();
    } else if (it->is_array()) {
      for (const auto& entry : *it) {
        if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
            !entry["name"].is_string() || !entry["template"].is_string()) {
          return absl::InvalidArgumentError(
              "tokenizer_config.json: chat_template list entries must be objects with string 'name' and 'template'");
        }
        out.templates[entry["name"].get<std::string>()] = entry["template"].get<std::string>();
      }
    } else {
      return absl::InvalidArgumentError("tokenizer_config.json: chat_template must be a string or a list");
    }
  }
  for (const char* name : kSpecialTokenNames) {
    auto it = config.find(name);
    if (it == config.end() || it->is_null()) continue;
    if (it->is_string()) {
      out.special_tokens[name] = *it;
    } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
      out.special_tokens[name] = (*it)["content"];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer_config.json: ", name, " must be a string or an object with 'content'"));
    }
  }
  return out;
}

absl::StatusOr<ChatTemplateConfig> ChatTemplateConfig::FromModelDir(const std::string& model_dir) {
  auto text = ReadFile(model_dir + "/tokenizer_config.json");
  if (!text.ok()) return text.status();
  auto config = FromTokenizerConfigJson(*text);
  if (!config.ok())
    return absl::Status(config.status().code(), absl::StrCat(model_dir, "/", config.status().message()));
  if (auto jinja = ReadFile(model_dir + "/chat_template.jinja"); jinja.ok()) config->templates["default"] = *jinja;
  return config;
}

absl::StatusOr<std::string> ChatTemplateConfig::Select(bool has_tools) const {
  if (has_tools) {
    if (auto it = templates.find("tool_use"); it != templates.end()) return it->second;
  }
  if (auto it = templates.find("default"); it != templates.end()) return it->second;
  if (templates.empty()) return absl::NotFoundError("the model has no chat_template");
  return absl::NotFoundError("the model has several chat templates and none named 'default'");
}

nlohmann::ordered_json BuildChatContext(const std::vector<ChatMessage>& messages,
                                        const std::optional<nlohmann::ordered_json>& tools, bool add_generation_prompt,
                                        const nlohmann::ordered_json& special_tokens,
                                        const nlohmann::ordered_json& extra_kwargs) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    j["role"] = m.role;
    j["content"] = m.content;
    if (m.extra.is_object()) {
      for (const auto& [key, value] : m.extra.items()) j[key] = value;
    }
    list.push_back(NormalizeMessage(j));
  }
  return FinishContext(std::move(list), tools, add_generation_prompt, special_tokens, extra_kwargs);
}

absl::StatusOr<nlohmann::ordered_json> BuildChatContextFromJson(const nlohmann::ordered_json& messages,
                                                                const std::optional<nlohmann::ordered_json>& tools,
                                                                bool add_generation_prompt,
                                                                const nlohmann::ordered_json& special_tokens,
                                                                const nlohmann::ordered_json& extra_kwargs) {
  if (!messages.is_array()) return absl::InvalidArgumentError("messages must be an array");
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object())
      return absl::InvalidArgumentError(absl::StrCat("messages[", i, "] must be an object"));
    list.push_back(NormalizeMessage(messages[i]));
  }
  return FinishContext(std::move(list), tools, add_generation_prompt, special_tokens, extra_kwargs);
}

}  // namespace tessera::chat_template
