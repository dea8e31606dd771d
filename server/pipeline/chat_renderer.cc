#include "server/pipeline/chat_renderer.h"

#include "runtime/base/status_macros.h"

namespace tessera::server {

absl::StatusOr<std::unique_ptr<ChatRenderer>> ChatRenderer::FromModelDir(const std::string& dir) {
  TS_ASSIGN_OR_RETURN(chat_template::ChatTemplateConfig config, chat_template::ChatTemplateConfig::FromModelDir(dir));
  return FromConfig(std::move(config));
}

absl::StatusOr<std::unique_ptr<ChatRenderer>> ChatRenderer::FromConfig(chat_template::ChatTemplateConfig config) {
  if (config.templates.empty()) return absl::NotFoundError("the model has no chat template");
  auto r = std::unique_ptr<ChatRenderer>(new ChatRenderer());
  for (const auto& [name, source] : config.templates) {
    absl::StatusOr<chat_template::ChatTemplate> t = chat_template::ChatTemplate::Parse(source);
    if (!t.ok()) {
      return absl::InvalidArgumentError("chat template '" + name + "': " + std::string(t.status().message()));
    }
    r->parsed_.emplace(source, std::move(*t));
  }
  r->config_ = std::move(config);
  return r;
}

absl::StatusOr<std::string> ChatRenderer::Render(const TextRequest& req) const {
  const bool has_tools = !req.tools.is_null() && !(req.tools.is_array() && req.tools.empty());
  TS_ASSIGN_OR_RETURN(std::string source, config_.Select(has_tools));
  auto it = parsed_.find(source);
  if (it == parsed_.end()) return absl::NotFoundError("the selected chat template is not loaded");
  std::vector<chat_template::ChatMessage> messages;
  for (const ChatMessage& m : *req.messages) {
    chat_template::ChatMessage cm{m.role, m.content, nlohmann::ordered_json::object()};
    for (auto e = m.extra.begin(); e != m.extra.end(); ++e) cm.extra[e.key()] = nlohmann::ordered_json(e.value());
    messages.push_back(std::move(cm));
  }
  std::optional<nlohmann::ordered_json> tools;
  if (has_tools) tools = nlohmann::ordered_json(req.tools);
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
  if (req.chat_template_kwargs.is_object()) kwargs = nlohmann::ordered_json(req.chat_template_kwargs);
  const nlohmann::ordered_json ctx =
      chat_template::BuildChatContext(messages, tools, req.add_generation_prompt, config_.special_tokens, kwargs);
  return it->second.Render(ctx);
}

}  // namespace tessera::server
