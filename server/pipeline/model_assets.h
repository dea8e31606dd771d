// What the frontend needs of a model: its tokenizer and chat templates, from a Hugging Face
// directory (tokenizer.json, tokenizer_config.json, chat_template.jinja) or from a GGUF file's
// metadata (tokenizer.ggml.*, tokenizer.chat_template). The weights stay with the workers.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/pipeline/chat_renderer.h"
#include "server/tokenizer/tokenizer.h"

namespace tessera::server {

struct ModelAssets {
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<ChatRenderer> chat;  // null when the model has no chat template
};

absl::StatusOr<ModelAssets> LoadModelAssets(const std::string& path);

}  // namespace tessera::server
