#include "server/pipeline/model_assets.h"

#include "runtime/base/status_macros.h"
#include "runtime/loader/gguf.h"
#include "server/tokenizer/gguf_tokenizer.h"

namespace tessera::server {

absl::StatusOr<ModelAssets> LoadModelAssets(const std::string& path) {
  ModelAssets assets;
  TS_ASSIGN_OR_RETURN(std::optional<std::string> gguf, loader::FindGgufModelFile(path));
  chat_template::ChatTemplateConfig chat_config;
  if (gguf) {
    TS_ASSIGN_OR_RETURN(auto file, loader::GgufFile::Open(*gguf));
    TS_ASSIGN_OR_RETURN(tokenizer::GgufTokenizerSpec spec, tokenizer::ReadGgufTokenizerSpec(*file));
    TS_ASSIGN_OR_RETURN(tokenizer::GgufTokenizerJson json, tokenizer::BuildGgufTokenizerJson(spec));
    TS_ASSIGN_OR_RETURN(assets.tokenizer, tokenizer::Tokenizer::FromJson(json.tokenizer_json, *gguf, json.config_json));
    TS_ASSIGN_OR_RETURN(chat_config, chat_template::ChatTemplateConfig::FromTokenizerConfigJson(json.config_json));
  } else {
    TS_ASSIGN_OR_RETURN(assets.tokenizer, tokenizer::Tokenizer::FromFile(path));
    absl::StatusOr<chat_template::ChatTemplateConfig> c = chat_template::ChatTemplateConfig::FromModelDir(path);
    if (c.ok()) {
      chat_config = std::move(*c);
    } else if (c.status().code() != absl::StatusCode::kNotFound) {
      return c.status();
    }
  }
  if (!chat_config.templates.empty()) {
    TS_ASSIGN_OR_RETURN(assets.chat, ChatRenderer::FromConfig(std::move(chat_config)));
  }
  return assets;
}

}  // namespace tessera::server
