#include "server/tokenizer/gguf_tokenizer.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"
#include "server/tokenizer/byte_level.h"
#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {
namespace {

using json = nlohmann::json;  // std::map objects: O(log n) inserts for large vocabularies

constexpr int32_t kTypeNormal = 1;
constexpr int32_t kTypeControl = 3;
constexpr int32_t kTypeUserDefined = 4;

// llama.cpp's pre-tokenizer regexes (llama-vocab.cpp), applied one after the other.
constexpr std::string_view kGpt2Split = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const std::map<std::string, std::vector<std::string_view>>& PreSplits() {
  static const auto* splits = new std::map<std::string, std::vector<std::string_view>>{
      {"gpt2", {kGpt2Split}},
      {"smollm", {R"(\p{N})", kGpt2Split}},
      {"llama-bpe", {kLlama3Split}},
      {"qwen2", {kQwen2Split}},
      {"default", {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2Split, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
  };
  return *splits;
}

absl::Status FieldError(const loader::GgufFile& f, std::string_view key, std::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(f.name(), ": metadata '", AsAbsl(key), "': ", AsAbsl(msg)));
}

// Number of code points (invalid bytes count one each, as the decoder steps over them).
size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); pos += std::max<size_t>(1, Utf8CharLength(s, pos))) ++n;
  return n;
}

bool InByteAlphabet(std::string_view s) {
  if (!IsValidUtf8(s)) return false;
  for (size_t pos = 0; pos < s.size();) {
    if (!ByteLevelCharToByte(DecodeUtf8(s, &pos))) return false;
  }
  return true;
}

// A token spelled in the GPT-2 byte alphabet (tokens outside it, e.g. raw spaces, are respelled).
std::string ByteLevelSpelling(const std::string& token) {
  if (InByteAlphabet(token)) return token;
  std::string out;
  AppendByteLevel(token, &out);
  return out;
}

// Merges implied by scores: every split of a token into two vocabulary tokens, ranked by the
// merged token's score (higher first; ties: longer left piece, then longer right piece, then
// vocabulary order), as transformers' generate_merges does for GGUF vocabularies.
std::vector<std::string> MergesFromScores(const std::vector<std::string>& tokens, const std::vector<float>& scores) {
  absl::flat_hash_map<std::string_view, int32_t> id;
  for (size_t i = 0; i < tokens.size(); ++i) id[tokens[i]] = static_cast<int32_t>(i);
  struct Merge {
    float score;
    size_t left_len, right_len;
    int32_t left_id, right_id;
    std::string text;
  };
  std::vector<Merge> merges;
  absl::flat_hash_map<std::string_view, bool> seen;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& tok = tokens[t];
    if (!seen.emplace(tok, true).second) continue;  // a duplicate token counts once
    std::vector<Merge> local;
    for (size_t pos = Utf8CharLength(tok, 0); pos > 0 && pos < tok.size();
         pos += std::max<size_t>(1, Utf8CharLength(tok, pos))) {
      const std::string_view l(tok.data(), pos), r(tok.data() + pos, tok.size() - pos);
      auto li = id.find(l), ri = id.find(r);
      if (li == id.end() || ri == id.end()) continue;
      local.push_back({scores[id[tok]], CodePoints(l), CodePoints(r), li->second, ri->second,
                       absl::StrCat(AsAbsl(l), " ", AsAbsl(r))});
    }
    std::stable_sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return std::pair(a.left_id, a.right_id) < std::pair(b.left_id, b.right_id);
    });
    for (Merge& m : local) merges.push_back(std::move(m));
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    return std::tuple(a.score, a.left_len, a.right_len) > std::tuple(b.score, b.left_len, b.right_len);
  });
  std::vector<std::string> out;
  out.reserve(merges.size());
  for (Merge& m : merges) out.push_back(std::move(m.text));
  return out;
}

json TemplateProcessor(const GgufTokenizerSpec& spec) {
  json single = json::array(), pair = json::array(), specials = json::object();
  auto add_special = [&](int32_t id, json* seq, int type_id) {
    const std::string& t = spec.tokens[id];
    seq->push_back({{"SpecialToken", {{"id", t}, {"type_id", type_id}}}});
    specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
  };
  const bool bos = spec.add_bos && spec.bos_id.has_value();
  const bool eos = spec.add_eos && spec.eos_id.has_value();
  if (bos) add_special(*spec.bos_id, &single, 0);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) add_special(*spec.eos_id, &single, 0);
  if (bos) add_special(*spec.bos_id, &pair, 0);
  pair.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) add_special(*spec.eos_id, &pair, 0);
  if (bos) add_special(*spec.bos_id, &pair, 1);
  pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
  if (eos) add_special(*spec.eos_id, &pair, 1);
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

}  // namespace

std::vector<std::string> SupportedGgufPreTokenizers() {
  std::vector<std::string> names;
  for (const auto& [name, _] : PreSplits()) names.push_back(name);
  return names;
}

absl::StatusOr<GgufTokenizerSpec> ReadGgufTokenizerSpec(const loader::GgufFile& f) {
  GgufTokenizerSpec s;
  TS_ASSIGN_OR_RETURN(std::string_view model, f.GetString("tokenizer.ggml.model"));
  s.model = std::string(model);
  if (f.Has("tokenizer.ggml.pre")) {
    TS_ASSIGN_OR_RETURN(std::string_view pre, f.GetString("tokenizer.ggml.pre"));
    s.pre = std::string(pre);
  }
  TS_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens, f.GetStringArray("tokenizer.ggml.tokens"));
  if (tokens.empty()) return FieldError(f, "tokenizer.ggml.tokens", "empty vocabulary");
  if (tokens.size() > (size_t{1} << 31) - 1) return FieldError(f, "tokenizer.ggml.tokens", "too many tokens");
  s.tokens.assign(tokens.begin(), tokens.end());
  const size_t n = s.tokens.size();
  if (f.Has("tokenizer.ggml.scores")) {
    TS_ASSIGN_OR_RETURN(std::vector<double> scores, f.GetFloatArray("tokenizer.ggml.scores"));
    if (scores.size() != n) {
      return FieldError(f, "tokenizer.ggml.scores", absl::StrCat(scores.size(), " scores for ", n, " tokens"));
    }
    s.scores.assign(scores.begin(), scores.end());
  }
  if (f.Has("tokenizer.ggml.token_type")) {
    TS_ASSIGN_OR_RETURN(std::vector<int64_t> types, f.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != n) {
      return FieldError(f, "tokenizer.ggml.token_type", absl::StrCat(types.size(), " types for ", n, " tokens"));
    }
    s.token_types.reserve(n);
    for (int64_t t : types) s.token_types.push_back(static_cast<int32_t>(std::clamp<int64_t>(t, -1, 1 << 20)));
  }
  if (f.Has("tokenizer.ggml.merges")) {
    TS_ASSIGN_OR_RETURN(std::vector<std::string_view> merges, f.GetStringArray("tokenizer.ggml.merges"));
    s.merges.assign(merges.begin(), merges.end());
    for (size_t i = 0; i < s.merges.size(); ++i) {
      if (s.merges[i].find(' ') == std::string::npos) {
        return FieldError(f, "tokenizer.ggml.merges", absl::StrCat("entry ", i, " has no space between its two parts"));
      }
    }
  }
  auto token_id = [&](const char* key, std::optional<int32_t>* out) -> absl::Status {
    if (!f.Has(key)) return absl::OkStatus();
    TS_ASSIGN_OR_RETURN(int64_t id, f.GetInt(key));
    if (id == 0xFFFFFFFF || id == -1) return absl::OkStatus();  // llama.cpp writes -1 (as uint32) for "none"
    if (id < 0 || id >= static_cast<int64_t>(n)) {
      return FieldError(f, key, absl::StrCat("id ", id, " outside the vocabulary of ", n, " tokens"));
    }
    *out = static_cast<int32_t>(id);
    return absl::OkStatus();
  };
  TS_RETURN_IF_ERROR(token_id("tokenizer.ggml.bos_token_id", &s.bos_id));
  TS_RETURN_IF_ERROR(token_id("tokenizer.ggml.eos_token_id", &s.eos_id));
  TS_RETURN_IF_ERROR(token_id("tokenizer.ggml.unknown_token_id", &s.unk_id));
  TS_RETURN_IF_ERROR(token_id("tokenizer.ggml.padding_token_id", &s.pad_id));
  TS_ASSIGN_OR_RETURN(s.add_bos, f.GetBoolOr("tokenizer.ggml.add_bos_token", s.model == "llama"));
  TS_ASSIGN_OR_RETURN(s.add_eos, f.GetBoolOr("tokenizer.ggml.add_eos_token", false));
  TS_ASSIGN_OR_RETURN(s.add_space_prefix, f.GetBoolOr("tokenizer.ggml.add_space_prefix", true));
  if (f.Has("tokenizer.chat_template")) {
    TS_ASSIGN_OR_RETURN(std::string_view tmpl, f.GetString("tokenizer.chat_template"));
    s.chat_template = std::string(tmpl);
  }
  return s;
}

absl::StatusOr<GgufTokenizerJson> BuildGgufTokenizerJson(const GgufTokenizerSpec& spec) {
  const size_t n = spec.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("tokenizer.ggml.tokens: empty vocabulary");
  if (!spec.scores.empty() && spec.scores.size() != n) {
    return absl::InvalidArgumentError("tokenizer.ggml.scores: length differs from tokenizer.ggml.tokens");
  }
  if (!spec.token_types.empty() && spec.token_types.size() != n) {
    return absl::InvalidArgumentError("tokenizer.ggml.token_type: length differs from tokenizer.ggml.tokens");
  }
  for (const std::optional<int32_t>& id : {spec.bos_id, spec.eos_id, spec.unk_id, spec.pad_id}) {
    if (id && (*id < 0 || static_cast<size_t>(*id) >= n)) {
      return absl::InvalidArgumentError(absl::StrCat("special token id ", *id, " outside the vocabulary"));
    }
  }
  const bool byte_level = spec.model == "gpt2";
  if (!byte_level && spec.model != "llama") {
    return absl::UnimplementedError(
        absl::StrCat("tokenizer.ggml.model '", AsAbsl(spec.model), "' is not supported (supported: gpt2, llama)"));
  }
  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;

  // Added tokens: control tokens and the named special ids are special; user-defined ones are not.
  json added = json::array();
  for (size_t i = 0; i < n; ++i) {
    const int32_t type = spec.token_types.empty() ? kTypeNormal : spec.token_types[i];
    const auto id = static_cast<int32_t>(i);
    const bool named = id == spec.bos_id || id == spec.eos_id || id == spec.unk_id || id == spec.pad_id;
    if (type != kTypeControl && type != kTypeUserDefined && !named) continue;
    if (spec.tokens[i].empty()) continue;
    added.push_back({{"id", id},
                     {"content", spec.tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", type != kTypeUserDefined || named}});
  }
  j["added_tokens"] = added;
  j["normalizer"] = nullptr;

  json vocab = json::object();
  json model = {
      {"type", "BPE"}, {"dropout", nullptr}, {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}};
  if (byte_level) {
    auto splits = PreSplits().find(spec.pre);
    if (splits == PreSplits().end()) {
      return absl::UnimplementedError(
          absl::StrCat("tokenizer.ggml.pre '", AsAbsl(spec.pre),
                       "' is not supported (supported: ", absl::StrJoin(SupportedGgufPreTokenizers(), ", "), ")"));
    }
    for (size_t i = 0; i < n; ++i) vocab[ByteLevelSpelling(spec.tokens[i])] = static_cast<int32_t>(i);
    json steps = json::array();
    for (std::string_view r : splits->second) {
      steps.push_back(
          {{"type", "Split"}, {"pattern", {{"Regex", std::string(r)}}}, {"behavior", "Isolated"}, {"invert", false}});
    }
    steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    model["unk_token"] = nullptr;
    model["fuse_unk"] = false;
    model["byte_fallback"] = false;
    model["ignore_merges"] = spec.pre == "llama-bpe";
    model["merges"] = spec.merges;
  } else {
    for (size_t i = 0; i < n; ++i) vocab[spec.tokens[i]] = static_cast<int32_t>(i);
    j["pre_tokenizer"] = {{"type", "Metaspace"},
                          {"replacement", "\xE2\x96\x81"},
                          {"prepend_scheme", spec.add_space_prefix ? "first" : "never"},
                          {"split", false}};
    json decoders = json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                 {{"type", "ByteFallback"}},
                                 {{"type", "Fuse"}}});
    if (spec.add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    j["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    model["unk_token"] = spec.unk_id ? json(spec.tokens[*spec.unk_id]) : json(nullptr);
    model["fuse_unk"] = true;
    model["byte_fallback"] = true;
    model["ignore_merges"] = false;
    if (!spec.merges.empty()) {
      model["merges"] = spec.merges;
    } else if (!spec.scores.empty()) {
      model["merges"] = MergesFromScores(spec.tokens, spec.scores);
    } else {
      return absl::InvalidArgumentError("llama tokenizer without tokenizer.ggml.merges needs tokenizer.ggml.scores");
    }
  }
  model["vocab"] = std::move(vocab);
  j["model"] = std::move(model);
  if ((spec.add_bos && spec.bos_id) || (spec.add_eos && spec.eos_id)) {
    j["post_processor"] = TemplateProcessor(spec);
  } else {
    j["post_processor"] = nullptr;
  }

  json config = json::object();
  if (spec.bos_id) config["bos_token"] = spec.tokens[*spec.bos_id];
  if (spec.eos_id) config["eos_token"] = spec.tokens[*spec.eos_id];
  config["add_bos_token"] = spec.add_bos;
  if (spec.chat_template) config["chat_template"] = *spec.chat_template;

  GgufTokenizerJson out;
  constexpr auto kReplace = json::error_handler_t::replace;  // invalid UTF-8 in a file becomes U+FFFD
  out.tokenizer_json = j.dump(-1, ' ', false, kReplace);
  out.config_json = config.dump(-1, ' ', false, kReplace);
  return out;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> GgufTokenizerFromSpec(const GgufTokenizerSpec& spec, std::string_view name) {
  auto built = BuildGgufTokenizerJson(spec);
  if (!built.ok())
    return absl::Status(built.status().code(), absl::StrCat(AsAbsl(name), ": ", built.status().message()));
  return Tokenizer::FromJson(built->tokenizer_json, name, built->config_json);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> GgufTokenizerFromFile(const std::string& path) {
  TS_ASSIGN_OR_RETURN(std::optional<std::string> file_path, loader::FindGgufModelFile(path));
  if (!file_path) return absl::NotFoundError(absl::StrCat(path, ": not a .gguf file or a directory holding one"));
  TS_ASSIGN_OR_RETURN(auto file, loader::GgufFile::Open(*file_path));
  TS_ASSIGN_OR_RETURN(GgufTokenizerSpec spec, ReadGgufTokenizerSpec(*file));
  return GgufTokenizerFromSpec(spec, *file_path);
}

}  // namespace tessera::tokenizer
