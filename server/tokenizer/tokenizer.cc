#include "server/tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"
#include "server/tokenizer/bpe_model.h"
#include "server/tokenizer/decoders.h"
#include "server/tokenizer/json_util.h"
#include "server/tokenizer/model.h"
#include "server/tokenizer/normalizers.h"
#include "server/tokenizer/post_processors.h"
#include "server/tokenizer/pre_tokenizers.h"
#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {
namespace {

using nlohmann::json;

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path.string()));
  return ss.str();
}

absl::StatusOr<std::unique_ptr<Model>> ParseModel(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("tokenizer.json has no \"model\" object");
  std::string type;
  if (auto it = j.find("type"); it != j.end() && it->is_string()) {
    type = it->get<std::string>();
  } else if (j.contains("merges")) {
    type = "BPE";  // very old files omit the type
  }
  if (type == "BPE") return ParseBpeModel(j);
  return absl::UnimplementedError(absl::StrCat("unsupported model type '", type, "'"));
}

// bos_token / eos_token are either a string or an AddedToken object {"content": ...}.
std::optional<std::string> SpecialTokenField(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    if (auto c = it->find("content"); c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}

absl::StatusOr<TokenizerConfig> ParseConfig(std::string_view text) {
  TokenizerConfig config;
  if (text.empty()) return config;
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError("tokenizer_config.json is not a JSON object");
  config.bos_token = SpecialTokenField(j, "bos_token");
  config.eos_token = SpecialTokenField(j, "eos_token");
  if (auto it = j.find("add_bos_token"); it != j.end() && it->is_boolean()) config.add_bos_token = it->get<bool>();
  if (auto it = j.find("chat_template"); it != j.end()) {
    if (it->is_string()) {
      config.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      // Named templates: [{"name": "default", "template": "..."}, ...]; prefer "default".
      for (const auto& t : *it) {
        if (!t.is_object() || !t.contains("template") || !t["template"].is_string()) continue;
        if (!config.chat_template || t.value("name", "") == "default") {
          config.chat_template = t["template"].get<std::string>();
        }
      }
    }
  }
  return config;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::filesystem::path file(path);
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) file /= "tokenizer.json";
  TS_ASSIGN_OR_RETURN(const std::string text, ReadFile(file));
  std::string config_text;
  const auto config_path = file.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path, ec)) {
    TS_ASSIGN_OR_RETURN(config_text, ReadFile(config_path));
  }
  return FromJson(text, file.string(), config_text);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json, std::string_view name,
                                                               std::string_view config_json) {
  const json j = json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(name), ": not a JSON object"));
  }
  auto tok = std::unique_ptr<Tokenizer>(new Tokenizer());
  tok->name_ = std::string(name);
  auto with_name = [&name](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(AsAbsl(name), ": ", s.message()));
  };
  try {
    auto it = j.find("model");
    if (it == j.end()) return absl::InvalidArgumentError(absl::StrCat(AsAbsl(name), ": missing \"model\""));
    auto model = ParseModel(*it);
    if (!model.ok()) return with_name(model.status());
    tok->model_ = *std::move(model);

    if (auto n = j.find("normalizer"); n != j.end() && !n->is_null()) {
      auto normalizer = ParseNormalizer(*n);
      if (!normalizer.ok()) return with_name(normalizer.status());
      tok->normalizer_ = *std::move(normalizer);
    }
    if (auto p = j.find("pre_tokenizer"); p != j.end() && !p->is_null()) {
      auto pre = ParsePreTokenizer(*p);
      if (!pre.ok()) return with_name(pre.status());
      tok->pre_tokenizer_ = *std::move(pre);
    }
    if (auto p = j.find("post_processor"); p != j.end() && !p->is_null()) {
      auto post = ParsePostProcessor(*p);
      if (!post.ok()) return with_name(post.status());
      tok->post_processor_ = *std::move(post);
    }
    if (auto d = j.find("decoder"); d != j.end() && !d->is_null()) {
      auto decoder = ParseDecoder(*d);
      if (!decoder.ok()) return with_name(decoder.status());
      tok->decoder_ = *std::move(decoder);
      tok->byte_fallback_decoding_ = tok->decoder_->UsesByteFallback();
    }

    // Ids are assigned the way the reference library re-adds tokens on load: a content already in
    // the model vocabulary takes the model's id, otherwise the next id after the model vocabulary
    // and the added tokens so far. For consistent files this reproduces the "id" fields.
    std::vector<AddedToken> added;
    absl::flat_hash_set<std::string> seen;
    const auto model_size = static_cast<int64_t>(tok->model_->VocabSize());
    int64_t max_added = -1;
    if (auto a = j.find("added_tokens"); a != j.end() && !a->is_null()) {
      if (!a->is_array()) return with_name(absl::InvalidArgumentError("added_tokens must be an array"));
      for (const auto& item : *a) {
        AddedToken t;
        const auto json_id = item.at("id").get<int64_t>();
        if (json_id < 0 || json_id > INT32_MAX) {
          return with_name(absl::InvalidArgumentError("added token id out of range"));
        }
        t.content = item.at("content").get<std::string>();
        if (t.content.empty() || !seen.insert(t.content).second) continue;
        int64_t id;
        if (auto model_id = tok->model_->TokenToId(t.content)) {
          id = *model_id;
        } else if (max_added >= model_size || model_size == 0) {
          id = max_added + 1;
        } else {
          id = model_size;
        }
        if (id > INT32_MAX) return with_name(absl::InvalidArgumentError("added token id out of range"));
        max_added = std::max(max_added, id);
        t.id = static_cast<int32_t>(id);
        t.special = GetOr(item, "special", false);
        t.normalized = GetOr(item, "normalized", !t.special);
        t.lstrip = GetOr(item, "lstrip", false);
        t.rstrip = GetOr(item, "rstrip", false);
        t.single_word = GetOr(item, "single_word", false);
        added.push_back(std::move(t));
      }
    }
    tok->added_ = AddedVocabulary(std::move(added), tok->normalizer_.get());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(name), ": malformed tokenizer.json: ", e.what()));
  }

  size_t max_id = tok->model_->VocabSize();
  for (const AddedToken& t : tok->added_.tokens()) max_id = std::max(max_id, static_cast<size_t>(t.id) + 1);
  tok->vocab_size_ = max_id;

  auto config = ParseConfig(config_json);
  if (!config.ok()) return with_name(config.status());
  tok->config_ = *std::move(config);
  if (tok->config_.bos_token) tok->bos_id_ = tok->TokenToId(*tok->config_.bos_token);
  if (tok->config_.eos_token) tok->eos_id_ = tok->TokenToId(*tok->config_.eos_token);
  return tok;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view input, bool add_special_tokens) const {
  const std::string text = SanitizeUtf8(input);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const AddedSplit& raw : added_.Split(text, /*normalized=*/false)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    if (raw.start == raw.end) continue;
    std::string piece = text.substr(raw.start, raw.end - raw.start);
    if (normalizer_ != nullptr) normalizer_->Normalize(&piece);
    for (const AddedSplit& sub : added_.Split(piece, /*normalized=*/true)) {
      if (sub.id >= 0) {
        ids.push_back(sub.id);
      } else if (sub.start != sub.end) {
        EncodePiece(std::string_view(piece).substr(sub.start, sub.end - sub.start), raw.start == 0 && sub.start == 0,
                    &ids);
      }
    }
  }
  if (add_special_tokens && post_processor_ != nullptr) post_processor_->Process(&ids);
  return ids;
}

void Tokenizer::EncodePiece(std::string_view piece, bool at_origin, std::vector<int32_t>* ids) const {
  if (pre_tokenizer_ == nullptr) {
    model_->Tokenize(piece, ids);
    return;
  }
  std::vector<PreToken> words{{std::string(piece), at_origin}};
  pre_tokenizer_->PreTokenize(&words);
  for (const PreToken& w : words) model_->Tokenize(w.text, ids);
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const AddedToken* added = added_.FindById(id);
    const std::string* token = added != nullptr ? &added->id_token : model_->IdToToken(id);
    if (token == nullptr) continue;  // unknown ids are skipped
    if (skip_special_tokens && added_.IsSpecialContent(*token)) continue;
    tokens.push_back(*token);
  }
  if (decoder_ == nullptr) return absl::StrJoin(tokens, " ");
  decoder_->DecodeChain(&tokens);
  return absl::StrJoin(tokens, "");
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto id = added_.FindByContent(token)) return id;
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (const AddedToken* t = added_.FindById(id)) return t->id_token;
  if (const std::string* s = model_->IdToToken(id)) return *s;
  return std::nullopt;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const AddedToken* t = added_.FindById(id);
  return t != nullptr && t->special;
}

bool Tokenizer::IsDroppedInDecode(int32_t id, bool skip_special_tokens) const {
  const AddedToken* added = added_.FindById(id);
  const std::string* token = added != nullptr ? &added->id_token : model_->IdToToken(id);
  return token == nullptr || (skip_special_tokens && added_.IsSpecialContent(*token));
}

bool Tokenizer::IsPendingByteToken(int32_t id) const {
  if (!byte_fallback_decoding_) return false;
  const AddedToken* added = added_.FindById(id);
  const std::string* token = added != nullptr ? &added->id_token : model_->IdToToken(id);
  unsigned char byte;
  return token != nullptr && ParseByteToken(*token, &byte);
}

}  // namespace tessera::tokenizer
