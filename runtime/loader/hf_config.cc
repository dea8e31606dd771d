#include "runtime/loader/hf_config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"

namespace tessera::loader {
namespace {

using Json = nlohmann::json;
using llm::Architecture;
using llm::ModelConfig;
using llm::RopeScaling;

// Sanity bounds: far above any real model, low enough that products of a few of them stay in int64.
constexpr int64_t kMaxSize = int64_t{1} << 24;       // vocab, hidden, intermediate, head_dim
constexpr int64_t kMaxCount = int64_t{1} << 16;      // layers, heads, experts
constexpr int64_t kMaxPositions = int64_t{1} << 30;  // max_position_embeddings

// Typed, error-reporting access to the members of one JSON object. A member that is absent or null
// takes the caller's default, mirroring how transformers treats `None`.
class Fields {
 public:
  Fields(const Json& obj, absl::string_view file, std::string prefix = "")
      : obj_(obj), file_(file), prefix_(std::move(prefix)) {}

  bool Has(const char* key) const {
    auto it = obj_.find(key);
    return it != obj_.end() && !it->is_null();
  }
  bool Present(const char* key) const { return obj_.contains(key); }
  const Json* Find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

  absl::Status Error(const char* key, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": field '", prefix_, key, "': ", what));
  }
  absl::Status TypeError(const char* key, absl::string_view expected, const Json& got) const {
    return Error(key, absl::StrCat("expected ", expected, ", got ", got.type_name()));
  }

  absl::StatusOr<int64_t> RequiredInt(const char* key) const {
    if (!Has(key)) return Error(key, "required but missing");
    return Int(key, 0);
  }
  absl::StatusOr<int64_t> Int(const char* key, int64_t def) const {
    const Json* j = Find(key);
    if (j == nullptr) return def;
    return AsInt(key, *j);
  }
  absl::StatusOr<int64_t> AsInt(const char* key, const Json& j) const {
    if (j.is_number_unsigned()) {
      uint64_t v = j.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Error(key, "integer out of range");
      return static_cast<int64_t>(v);
    }
    if (j.is_number_integer()) return j.get<int64_t>();
    return TypeError(key, "an integer", j);
  }
  absl::StatusOr<double> Double(const char* key, double def) const {
    const Json* j = Find(key);
    if (j == nullptr) return def;
    if (!j->is_number()) return TypeError(key, "a number", *j);
    double v = j->get<double>();
    if (!std::isfinite(v)) return Error(key, "must be finite");
    return v;
  }
  absl::StatusOr<bool> Bool(const char* key, bool def) const {
    const Json* j = Find(key);
    if (j == nullptr) return def;
    if (!j->is_boolean()) return TypeError(key, "true or false", *j);
    return j->get<bool>();
  }
  absl::StatusOr<std::string> String(const char* key, std::string def) const {
    const Json* j = Find(key);
    if (j == nullptr) return def;
    if (!j->is_string()) return TypeError(key, "a string", *j);
    return j->get<std::string>();
  }
  absl::StatusOr<std::vector<int64_t>> IntList(const char* key) const {
    const Json* j = Find(key);
    if (j == nullptr) return std::vector<int64_t>{};
    if (!j->is_array()) return TypeError(key, "a list of integers", *j);
    std::vector<int64_t> out;
    for (const Json& e : *j) {
      TS_ASSIGN_OR_RETURN(int64_t v, AsInt(key, e));
      out.push_back(v);
    }
    return out;
  }
  // eos_token_id and friends: an integer or a list of integers; absent → `def`, null → none.
  absl::StatusOr<std::vector<int64_t>> TokenIds(const char* key, std::vector<int64_t> def) const {
    if (!Present(key)) return def;
    const Json* j = Find(key);
    if (j == nullptr) return std::vector<int64_t>{};
    if (j->is_array()) return IntList(key);
    TS_ASSIGN_OR_RETURN(int64_t v, AsInt(key, *j));
    return std::vector<int64_t>{v};
  }
  // bos_token_id / pad_token_id: an integer; absent → `def`, null → -1 (none).
  absl::StatusOr<int64_t> TokenId(const char* key, int64_t def) const {
    if (!Present(key)) return def;
    return Int(key, -1);
  }

 private:
  const Json& obj_;
  absl::string_view file_;
  std::string prefix_;
};

// What transformers' configuration class for each family assumes when config.json omits a field.
struct Family {
  Architecture architecture;
  const char* class_name;  // "architectures"[0]
  const char* model_type;  // "model_type", used when "architectures" is absent
  int64_t max_position_embeddings;
  double rms_norm_eps;
  double rope_theta;
  int64_t num_key_value_heads;  // 0: same as num_attention_heads
  int64_t bos_token_id;         // -1: none
  int64_t eos_token_id;         // -1: none
  int64_t num_experts;
  int64_t num_experts_per_tok;
  int64_t moe_intermediate_size;
  int64_t shared_expert_intermediate_size;
};

constexpr Family kFamilies[] = {
    {Architecture::kLlama, "LlamaForCausalLM", "llama", 2048, 1e-6, 10000.0, 0, 1, 2, 0, 0, 0, 0},
    {Architecture::kMixtral, "MixtralForCausalLM", "mixtral", 4096 * 32, 1e-5, 1e6, 8, 1, 2, 8, 2, 0, 0},
    {Architecture::kQwen2Moe, "Qwen2MoeForCausalLM", "qwen2_moe", 32768, 1e-6, 10000.0, 16, -1, -1, 60, 4, 1408, 5632},
    {Architecture::kQwen3Moe, "Qwen3MoeForCausalLM", "qwen3_moe", 32768, 1e-6, 10000.0, 4, -1, -1, 128, 8, 768, 0},
};

std::string SupportedList() {
  std::vector<std::string> names;
  for (const Family& f : kFamilies) names.push_back(f.class_name);
  return absl::StrJoin(names, ", ");
}

// "architectures": ["LlamaForCausalLM"], or failing that "model_type": "llama".
absl::StatusOr<const Family*> FindFamily(const Fields& f, absl::string_view file) {
  if (const Json* archs = f.Find("architectures")) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      return f.Error("architectures", "expected a non-empty list of class names");
    }
    const std::string& name = (*archs)[0].get_ref<const std::string&>();
    for (const Family& fam : kFamilies) {
      if (fam.class_name == name) return &fam;
    }
    return f.Error("architectures",
                   absl::StrCat("architecture '", name, "' is not supported (supported: ", SupportedList(), ")"));
  }
  if (const Json* type = f.Find("model_type"); type != nullptr && type->is_string()) {
    const std::string& name = type->get_ref<const std::string&>();
    for (const Family& fam : kFamilies) {
      if (fam.model_type == name) return &fam;
    }
    return f.Error("model_type",
                   absl::StrCat("model type '", name, "' is not supported (supported: ", SupportedList(), ")"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": field 'architectures': required but missing (supported: ", SupportedList(), ")"));
}

absl::Status CheckRange(const Fields& f, const char* key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) return f.Error(key, absl::StrCat(v, " is outside [", lo, ", ", hi, "]"));
  return absl::OkStatus();
}

// RoPE settings. Newer transformers write {"rope_parameters": {"rope_type": .., "rope_theta": ..}};
// older ones a top-level "rope_theta" plus an optional "rope_scaling": {"type"|"rope_type": ..}.
// As in transformers, "rope_scaling" wins over "rope_parameters", and keys inside the dict win over
// top-level ones.
absl::Status ParseRope(const Fields& top, const Family& fam, ModelConfig& cfg, absl::string_view file) {
  const char* dict_key = top.Has("rope_scaling") ? "rope_scaling" : "rope_parameters";
  const Json empty = Json::object();
  const Json* dict = top.Find(dict_key);
  if (dict == nullptr) dict = &empty;
  if (!dict->is_object()) return top.TypeError(dict_key, "an object", *dict);
  for (const auto& [key, value] : dict->items()) {
    if (value.is_object()) {
      return top.Error(dict_key, absl::StrCat("per-layer-type RoPE parameters ('", key, "') are not supported"));
    }
  }
  Fields rope(*dict, file, absl::StrCat(dict_key, "."));

  TS_ASSIGN_OR_RETURN(double theta, top.Double("rope_theta", fam.rope_theta));
  TS_ASSIGN_OR_RETURN(cfg.rope.theta, rope.Double("rope_theta", theta));
  if (!(cfg.rope.theta > 0)) return (rope.Has("rope_theta") ? rope : top).Error("rope_theta", "must be positive");

  TS_ASSIGN_OR_RETURN(double partial, top.Double("partial_rotary_factor", 1.0));
  TS_ASSIGN_OR_RETURN(cfg.rope.partial_rotary_factor, rope.Double("partial_rotary_factor", partial));
  if (!(cfg.rope.partial_rotary_factor > 0 && cfg.rope.partial_rotary_factor <= 1)) {
    return (rope.Has("partial_rotary_factor") ? rope : top).Error("partial_rotary_factor", "must be in (0, 1]");
  }

  TS_ASSIGN_OR_RETURN(std::string legacy_type, rope.String("type", "default"));
  TS_ASSIGN_OR_RETURN(std::string type, rope.String("rope_type", legacy_type));
  const char* type_key = rope.Has("rope_type") ? "rope_type" : "type";
  if (type == "default") {
    cfg.rope.scaling = RopeScaling::kNone;
    return absl::OkStatus();
  }
  if (type == "linear") {
    cfg.rope.scaling = RopeScaling::kLinear;
    if (!rope.Has("factor")) return rope.Error("factor", "required for linear RoPE scaling");
    TS_ASSIGN_OR_RETURN(cfg.rope.factor, rope.Double("factor", 1.0));
    if (!(cfg.rope.factor >= 1)) return rope.Error("factor", "must be >= 1");
    return absl::OkStatus();
  }
  if (type == "llama3") {
    cfg.rope.scaling = RopeScaling::kLlama3;
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor"}) {
      if (!rope.Has(key)) return rope.Error(key, "required for llama3 RoPE scaling");
    }
    TS_ASSIGN_OR_RETURN(cfg.rope.factor, rope.Double("factor", 1.0));
    TS_ASSIGN_OR_RETURN(cfg.rope.low_freq_factor, rope.Double("low_freq_factor", 1.0));
    TS_ASSIGN_OR_RETURN(cfg.rope.high_freq_factor, rope.Double("high_freq_factor", 4.0));
    // A top-level original_max_position_embeddings takes priority, then the dict, then max positions.
    TS_ASSIGN_OR_RETURN(int64_t orig, rope.Int("original_max_position_embeddings", cfg.max_position_embeddings));
    TS_ASSIGN_OR_RETURN(cfg.rope.original_max_position_embeddings, top.Int("original_max_position_embeddings", orig));
    if (!(cfg.rope.factor >= 1)) return rope.Error("factor", "must be >= 1");
    if (!(cfg.rope.low_freq_factor > 0)) return rope.Error("low_freq_factor", "must be positive");
    if (!(cfg.rope.high_freq_factor > cfg.rope.low_freq_factor)) {
      return rope.Error("high_freq_factor", "must be greater than low_freq_factor");
    }
    return CheckRange(top.Has("original_max_position_embeddings") ? top : rope, "original_max_position_embeddings",
                      cfg.rope.original_max_position_embeddings, 1, kMaxPositions);
  }
  return rope.Error(type_key,
                    absl::StrCat("RoPE type '", type, "' is not supported (supported: default, linear, llama3)"));
}

// Fields every family shares, with the family's defaults.
absl::Status ParseCommon(const Fields& f, const Family& fam, ModelConfig& cfg) {
  TS_ASSIGN_OR_RETURN(cfg.vocab_size, f.RequiredInt("vocab_size"));
  TS_ASSIGN_OR_RETURN(cfg.hidden_size, f.RequiredInt("hidden_size"));
  TS_ASSIGN_OR_RETURN(cfg.intermediate_size, f.RequiredInt("intermediate_size"));
  TS_ASSIGN_OR_RETURN(cfg.num_hidden_layers, f.RequiredInt("num_hidden_layers"));
  TS_ASSIGN_OR_RETURN(cfg.num_attention_heads, f.RequiredInt("num_attention_heads"));
  TS_RETURN_IF_ERROR(CheckRange(f, "vocab_size", cfg.vocab_size, 1, kMaxSize));
  TS_RETURN_IF_ERROR(CheckRange(f, "hidden_size", cfg.hidden_size, 1, kMaxSize));
  TS_RETURN_IF_ERROR(CheckRange(f, "intermediate_size", cfg.intermediate_size, 1, kMaxSize));
  TS_RETURN_IF_ERROR(CheckRange(f, "num_hidden_layers", cfg.num_hidden_layers, 1, kMaxCount));
  TS_RETURN_IF_ERROR(CheckRange(f, "num_attention_heads", cfg.num_attention_heads, 1, kMaxCount));

  // Absent → the class default; explicit null → num_attention_heads (transformers' __post_init__).
  const int64_t kv_default = f.Present("num_key_value_heads") || fam.num_key_value_heads == 0 ? cfg.num_attention_heads
                                                                                              : fam.num_key_value_heads;
  TS_ASSIGN_OR_RETURN(cfg.num_key_value_heads, f.Int("num_key_value_heads", kv_default));
  TS_RETURN_IF_ERROR(CheckRange(f, "num_key_value_heads", cfg.num_key_value_heads, 1, cfg.num_attention_heads));
  if (cfg.num_attention_heads % cfg.num_key_value_heads != 0) {
    return f.Error("num_key_value_heads", absl::StrCat(cfg.num_key_value_heads, " does not divide num_attention_heads ",
                                                       cfg.num_attention_heads));
  }

  if (f.Has("head_dim")) {
    TS_ASSIGN_OR_RETURN(cfg.head_dim, f.Int("head_dim", 0));
    TS_RETURN_IF_ERROR(CheckRange(f, "head_dim", cfg.head_dim, 1, kMaxSize));
  } else {
    if (cfg.hidden_size % cfg.num_attention_heads != 0) {
      return f.Error("hidden_size", absl::StrCat(cfg.hidden_size, " is not divisible by num_attention_heads ",
                                                 cfg.num_attention_heads, " and head_dim is not given"));
    }
    cfg.head_dim = cfg.hidden_size / cfg.num_attention_heads;
  }
  if (cfg.head_dim % 2 != 0) return f.Error("head_dim", absl::StrCat(cfg.head_dim, " must be even for RoPE"));

  TS_ASSIGN_OR_RETURN(cfg.max_position_embeddings, f.Int("max_position_embeddings", fam.max_position_embeddings));
  TS_RETURN_IF_ERROR(CheckRange(f, "max_position_embeddings", cfg.max_position_embeddings, 1, kMaxPositions));
  TS_ASSIGN_OR_RETURN(cfg.rms_norm_eps, f.Double("rms_norm_eps", fam.rms_norm_eps));
  if (!(cfg.rms_norm_eps > 0 && cfg.rms_norm_eps < 1)) return f.Error("rms_norm_eps", "must be in (0, 1)");
  TS_ASSIGN_OR_RETURN(cfg.tie_word_embeddings, f.Bool("tie_word_embeddings", false));

  TS_ASSIGN_OR_RETURN(std::string act, f.String("hidden_act", "silu"));
  if (act != "silu") return f.Error("hidden_act", absl::StrCat("activation '", act, "' is not supported (only silu)"));
  if (f.Has("quantization_config")) return f.Error("quantization_config", "quantized checkpoints are not supported");

  TS_ASSIGN_OR_RETURN(cfg.eos_token_ids,
                      f.TokenIds("eos_token_id", fam.eos_token_id >= 0 ? std::vector<int64_t>{fam.eos_token_id}
                                                                       : std::vector<int64_t>{}));
  TS_ASSIGN_OR_RETURN(cfg.bos_token_id, f.TokenId("bos_token_id", fam.bos_token_id));
  TS_ASSIGN_OR_RETURN(cfg.pad_token_id, f.TokenId("pad_token_id", -1));
  for (int64_t id : cfg.eos_token_ids) TS_RETURN_IF_ERROR(CheckRange(f, "eos_token_id", id, 0, cfg.vocab_size - 1));
  if (cfg.bos_token_id != -1)
    TS_RETURN_IF_ERROR(CheckRange(f, "bos_token_id", cfg.bos_token_id, 0, cfg.vocab_size - 1));
  if (cfg.pad_token_id != -1)
    TS_RETURN_IF_ERROR(CheckRange(f, "pad_token_id", cfg.pad_token_id, 0, cfg.vocab_size - 1));
  return absl::OkStatus();
}

// Attention windows would change which keys each query sees; refuse any window that can bite.
absl::Status RejectSlidingWindow(const Fields& f, const ModelConfig& cfg) {
  TS_ASSIGN_OR_RETURN(bool use, f.Bool("use_sliding_window", false));
  if (use) return f.Error("use_sliding_window", "sliding-window attention is not supported");
  if (cfg.architecture == Architecture::kMixtral) {
    TS_ASSIGN_OR_RETURN(int64_t window, f.Int("sliding_window", 0));
    if (window > 0 && window < cfg.max_position_embeddings) {
      return f.Error("sliding_window", absl::StrCat("sliding-window attention (", window, " < max_position_embeddings ",
                                                    cfg.max_position_embeddings, ") is not supported"));
    }
  }
  if (const Json* types = f.Find("layer_types")) {
    if (!types->is_array()) return f.TypeError("layer_types", "a list of strings", *types);
    for (const Json& t : *types) {
      if (!t.is_string() || t.get_ref<const std::string&>() != "full_attention") {
        return f.Error("layer_types", "only \"full_attention\" layers are supported");
      }
    }
  }
  return absl::OkStatus();
}

// Expert counts: Mixtral spells it num_local_experts, Qwen2-MoE num_experts; Qwen3-MoE configs exist
// with either (transformers 5 writes num_local_experts, the released checkpoints num_experts).
absl::StatusOr<int64_t> ParseExpertCount(const Fields& f, const Family& fam) {
  TS_ASSIGN_OR_RETURN(int64_t local, f.Int("num_local_experts", -1));
  TS_ASSIGN_OR_RETURN(int64_t plain, f.Int("num_experts", -1));
  if (local >= 0 && plain >= 0 && local != plain) {
    return f.Error("num_experts", absl::StrCat(plain, " disagrees with num_local_experts ", local));
  }
  if (local >= 0) return local;
  if (plain >= 0) return plain;
  return fam.num_experts;
}

absl::Status ParseMoe(const Fields& f, const Family& fam, ModelConfig& cfg) {
  TS_ASSIGN_OR_RETURN(cfg.num_experts, ParseExpertCount(f, fam));
  TS_RETURN_IF_ERROR(CheckRange(f, "num_experts", cfg.num_experts, 1, kMaxCount));
  TS_ASSIGN_OR_RETURN(cfg.num_experts_per_tok, f.Int("num_experts_per_tok", fam.num_experts_per_tok));
  TS_RETURN_IF_ERROR(CheckRange(f, "num_experts_per_tok", cfg.num_experts_per_tok, 1, cfg.num_experts));
  if (cfg.architecture == Architecture::kMixtral) {
    cfg.norm_topk_prob = true;  // Mixtral always renormalizes the top-k router weights
    cfg.decoder_sparse_step = 1;
    return absl::OkStatus();
  }
  TS_ASSIGN_OR_RETURN(cfg.moe_intermediate_size, f.Int("moe_intermediate_size", fam.moe_intermediate_size));
  TS_RETURN_IF_ERROR(CheckRange(f, "moe_intermediate_size", cfg.moe_intermediate_size, 1, kMaxSize));
  if (cfg.architecture == Architecture::kQwen2Moe) {
    TS_ASSIGN_OR_RETURN(cfg.shared_expert_intermediate_size,
                        f.Int("shared_expert_intermediate_size", fam.shared_expert_intermediate_size));
    TS_RETURN_IF_ERROR(
        CheckRange(f, "shared_expert_intermediate_size", cfg.shared_expert_intermediate_size, 0, kMaxSize));
  }
  TS_ASSIGN_OR_RETURN(cfg.norm_topk_prob, f.Bool("norm_topk_prob", false));
  TS_ASSIGN_OR_RETURN(cfg.decoder_sparse_step, f.Int("decoder_sparse_step", 1));
  TS_RETURN_IF_ERROR(CheckRange(f, "decoder_sparse_step", cfg.decoder_sparse_step, 1, kMaxCount));
  TS_ASSIGN_OR_RETURN(cfg.mlp_only_layers, f.IntList("mlp_only_layers"));
  for (int64_t l : cfg.mlp_only_layers) {
    TS_RETURN_IF_ERROR(CheckRange(f, "mlp_only_layers", l, 0, cfg.num_hidden_layers - 1));
  }
  return absl::OkStatus();
}

// Which projections carry a bias, per family.
absl::Status ParseBiases(const Fields& f, ModelConfig& cfg) {
  switch (cfg.architecture) {
    case Architecture::kLlama: {
      TS_ASSIGN_OR_RETURN(cfg.attention_bias, f.Bool("attention_bias", false));
      cfg.attention_out_bias = cfg.attention_bias;
      TS_ASSIGN_OR_RETURN(cfg.mlp_bias, f.Bool("mlp_bias", false));
      break;
    }
    case Architecture::kMixtral:
      break;
    case Architecture::kQwen2Moe: {
      TS_ASSIGN_OR_RETURN(cfg.attention_bias, f.Bool("qkv_bias", true));  // q/k/v only; o_proj never
      break;
    }
    case Architecture::kQwen3Moe: {
      TS_ASSIGN_OR_RETURN(cfg.attention_bias, f.Bool("attention_bias", false));
      cfg.attention_out_bias = cfg.attention_bias;
      cfg.qk_norm = true;
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRotaryDim(const Fields& f, const ModelConfig& cfg) {
  const auto rot = static_cast<int64_t>(static_cast<double>(cfg.head_dim) * cfg.rope.partial_rotary_factor);
  if (rot < 2 || rot % 2 != 0) {
    return f.Error("partial_rotary_factor",
                   absl::StrCat("rotary dimension head_dim*factor = ", rot, " must be even and at least 2"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> ParseObject(std::string_view text, absl::string_view file_name) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(file_name, ": not valid JSON"));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": expected a JSON object, got ", j.type_name()));
  }
  return j;
}

}  // namespace

absl::StatusOr<llm::ModelConfig> ParseHfConfig(std::string_view json_text, std::string_view file_name_std) {
  const absl::string_view file_name(file_name_std.data(), file_name_std.size());
  TS_ASSIGN_OR_RETURN(Json root, ParseObject(json_text, file_name));
  Fields f(root, file_name);
  TS_ASSIGN_OR_RETURN(const Family* fam, FindFamily(f, file_name));
  ModelConfig cfg;
  cfg.architecture = fam->architecture;
  cfg.architecture_name = std::string(fam->class_name);
  TS_RETURN_IF_ERROR(ParseCommon(f, *fam, cfg));
  TS_RETURN_IF_ERROR(ParseRope(f, *fam, cfg, file_name));
  TS_RETURN_IF_ERROR(CheckRotaryDim(f, cfg));
  TS_RETURN_IF_ERROR(RejectSlidingWindow(f, cfg));
  TS_RETURN_IF_ERROR(ParseBiases(f, cfg));
  if (fam->num_experts > 0) TS_RETURN_IF_ERROR(ParseMoe(f, *fam, cfg));
  return cfg;
}

absl::StatusOr<llm::ModelConfig> LoadHfConfig(const std::string& path) {
  TS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseHfConfig(text, path);
}

// generation_config.json: sampling defaults. Absent or null fields keep GenerationDefaults' values.
absl::StatusOr<llm::GenerationDefaults> ParseGenerationConfig(std::string_view json_text,
                                                              std::string_view file_name_std) {
  const absl::string_view file_name(file_name_std.data(), file_name_std.size());
  TS_ASSIGN_OR_RETURN(Json root, ParseObject(json_text, file_name));
  Fields f(root, file_name);
  llm::GenerationDefaults g;
  TS_ASSIGN_OR_RETURN(g.eos_token_ids, f.TokenIds("eos_token_id", {}));
  TS_ASSIGN_OR_RETURN(g.bos_token_id, f.TokenId("bos_token_id", -1));
  TS_ASSIGN_OR_RETURN(g.do_sample, f.Bool("do_sample", g.do_sample));
  TS_ASSIGN_OR_RETURN(g.temperature, f.Double("temperature", g.temperature));
  TS_ASSIGN_OR_RETURN(g.top_p, f.Double("top_p", g.top_p));
  TS_ASSIGN_OR_RETURN(g.top_k, f.Int("top_k", g.top_k));
  TS_ASSIGN_OR_RETURN(g.min_p, f.Double("min_p", g.min_p));
  TS_ASSIGN_OR_RETURN(g.repetition_penalty, f.Double("repetition_penalty", g.repetition_penalty));
  TS_ASSIGN_OR_RETURN(g.max_new_tokens, f.Int("max_new_tokens", g.max_new_tokens));

  for (int64_t id : g.eos_token_ids) {
    if (id < 0) return f.Error("eos_token_id", absl::StrCat(id, " is negative"));
  }
  if (g.bos_token_id < -1) return f.Error("bos_token_id", absl::StrCat(g.bos_token_id, " is negative"));
  if (!(g.temperature >= 0)) return f.Error("temperature", "must be >= 0");
  if (!(g.top_p > 0 && g.top_p <= 1)) return f.Error("top_p", "must be in (0, 1]");
  if (g.top_k < 0) return f.Error("top_k", "must be >= 0");
  if (!(g.min_p >= 0 && g.min_p <= 1)) return f.Error("min_p", "must be in [0, 1]");
  if (!(g.repetition_penalty > 0)) return f.Error("repetition_penalty", "must be positive");
  if (g.max_new_tokens < -1) return f.Error("max_new_tokens", "must be >= 0");
  return g;
}

absl::StatusOr<llm::GenerationDefaults> LoadGenerationConfig(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (absl::IsNotFound(text.status())) return llm::GenerationDefaults{};
  if (!text.ok()) return text.status();
  return ParseGenerationConfig(*text, path);
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (fp == nullptr) {
    int err = errno;
    std::string msg = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InvalidArgumentError(msg);
  }
  struct stat st {};
  if (::fstat(::fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fclose(fp);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), fp)) > 0) out.append(buf, n);
  const bool failed = std::ferror(fp) != 0;
  std::fclose(fp);
  if (failed) return absl::InternalError(absl::StrCat(path, ": read error"));
  return out;
}

}  // namespace tessera::loader
