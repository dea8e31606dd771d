// Renders a chat request's messages with the model's Jinja chat template (tokenizer_config.json /
// chat_template.jinja of the model directory, or a template string from GGUF metadata), as
// transformers' apply_chat_template does.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/api/types.h"
#include "server/chat_template/chat_template.h"

namespace tessera::server {

class ChatRenderer {
 public:
  // NOT_FOUND when the model has no chat template.
  static absl::StatusOr<std::unique_ptr<ChatRenderer>> FromModelDir(const std::string& dir);
  static absl::StatusOr<std::unique_ptr<ChatRenderer>> FromConfig(chat_template::ChatTemplateConfig config);

  absl::StatusOr<std::string> Render(const TextRequest& req) const;

 private:
  chat_template::ChatTemplateConfig config_;
  std::map<std::string, chat_template::ChatTemplate> parsed_;  // by template source
};

}  // namespace tessera::server
