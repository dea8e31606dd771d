#include "runtime/loader/hf_config.h"

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/runtime/loader/test_util.h"

namespace tessera::loader {
namespace {

using ::tessera::llm::Architecture;
using ::tessera::llm::ModelConfig;
using ::tessera::llm::RopeScaling;
using ::tessera::loader::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// Configs written by transformers 5 (save_pretrained) and copies of released hub configs (written
// by transformers 4.x, with top-level rope_theta / rope_scaling).
const std::string kConfigDir = "tests/fixtures/configs/";

ModelConfig LoadOk(const std::string& name) {
  auto cfg = LoadHfConfig(kConfigDir + name);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  return cfg.ok() ? *cfg : ModelConfig{};
}

// Every field, so two configs can be compared in one assertion with a readable diff.
std::string Describe(const ModelConfig& c) {
  Json j = {
      {"architecture", static_cast<int>(c.architecture)},
      {"architecture_name", c.architecture_name},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope.theta", c.rope.theta},
      {"rope.scaling", static_cast<int>(c.rope.scaling)},
      {"rope.factor", c.rope.factor},
      {"rope.low_freq_factor", c.rope.low_freq_factor},
      {"rope.high_freq_factor", c.rope.high_freq_factor},
      {"rope.original_max_position_embeddings", c.rope.original_max_position_embeddings},
      {"rope.partial_rotary_factor", c.rope.partial_rotary_factor},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"attention_bias", c.attention_bias},
      {"attention_out_bias", c.attention_out_bias},
      {"mlp_bias", c.mlp_bias},
      {"qk_norm", c.qk_norm},
      {"num_experts", c.num_experts},
      {"num_experts_per_tok", c.num_experts_per_tok},
      {"moe_intermediate_size", c.moe_intermediate_size},
      {"shared_expert_intermediate_size", c.shared_expert_intermediate_size},
      {"norm_topk_prob", c.norm_topk_prob},
      {"decoder_sparse_step", c.decoder_sparse_step},
      {"mlp_only_layers", c.mlp_only_layers},
      {"eos_token_ids", c.eos_token_ids},
      {"bos_token_id", c.bos_token_id},
      {"pad_token_id", c.pad_token_id},
  };
  return j.dump(1);
}

// ---- Real configs -----------------------------------------------------------------------------

// minimal_<family>.json holds only the shape-defining sizes; minimal_<family>_expanded.json is what
// transformers writes back after loading it, i.e. with every class default spelled out. Parsing
// both must agree, which pins our defaults to transformers' own.
TEST(HfConfigTest, DefaultsMatchTransformers) {
  for (const char* family : {"llama", "mixtral", "qwen2_moe", "qwen3_moe"}) {
    SCOPED_TRACE(family);
    ModelConfig minimal = LoadOk(std::string("minimal_") + family + ".json");
    ModelConfig expanded = LoadOk(std::string("minimal_") + family + "_expanded.json");
    EXPECT_EQ(Describe(minimal), Describe(expanded));
  }
}

TEST(HfConfigTest, LlamaDefaults) {
  ModelConfig c = LoadOk("minimal_llama.json");
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.architecture_name, "LlamaForCausalLM");
  EXPECT_EQ(c.num_key_value_heads, 16);  // = num_attention_heads
  EXPECT_EQ(c.head_dim, 16);             // 256 / 16
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_EQ(c.rope.scaling, RopeScaling::kNone);
  EXPECT_DOUBLE_EQ(c.rope.partial_rotary_factor, 1.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.num_experts, 0);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(2));
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.pad_token_id, -1);
  EXPECT_FALSE(c.IsMoeLayer(0));
}

TEST(HfConfigTest, MixtralDefaults) {
  ModelConfig c = LoadOk("minimal_mixtral.json");
  EXPECT_EQ(c.architecture, Architecture::kMixtral);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.ExpertWidth(), 512);  // intermediate_size
  EXPECT_EQ(c.shared_expert_intermediate_size, 0);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_TRUE(c.IsMoeLayer(0));
  EXPECT_TRUE(c.IsMoeLayer(3));
  EXPECT_THAT(c.eos_token_ids, ElementsAre(2));
  EXPECT_EQ(c.bos_token_id, 1);
}

TEST(HfConfigTest, Qwen2MoeDefaults) {
  ModelConfig c = LoadOk("minimal_qwen2_moe.json");
  EXPECT_EQ(c.architecture, Architecture::kQwen2Moe);
  EXPECT_EQ(c.num_key_value_heads, 16);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_EQ(c.num_experts, 60);
  EXPECT_EQ(c.num_experts_per_tok, 4);
  EXPECT_EQ(c.moe_intermediate_size, 1408);
  EXPECT_EQ(c.shared_expert_intermediate_size, 5632);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_TRUE(c.attention_bias);  // q/k/v bias
  EXPECT_FALSE(c.attention_out_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.bos_token_id, -1);
}

TEST(HfConfigTest, Qwen3MoeDefaults) {
  ModelConfig c = LoadOk("minimal_qwen3_moe.json");
  EXPECT_EQ(c.architecture, Architecture::kQwen3Moe);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_experts, 128);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.moe_intermediate_size, 768);
  EXPECT_EQ(c.shared_expert_intermediate_size, 0);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_TRUE(c.eos_token_ids.empty());
}

TEST(HfConfigTest, Llama31WithLlama3RopeScaling) {
  ModelConfig hub = LoadOk("hub_llama31_8b_instruct.json");  // rope_scaling + top-level rope_theta
  ModelConfig v5 = LoadOk("llama31_8b.json");                // rope_parameters
  EXPECT_EQ(Describe(hub), Describe(v5));
  EXPECT_EQ(hub.vocab_size, 128256);
  EXPECT_EQ(hub.num_key_value_heads, 8);
  EXPECT_EQ(hub.head_dim, 128);
  EXPECT_EQ(hub.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(hub.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(hub.rope.theta, 500000.0);
  EXPECT_EQ(hub.rope.scaling, RopeScaling::kLlama3);
  EXPECT_DOUBLE_EQ(hub.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(hub.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(hub.rope.high_freq_factor, 4.0);
  EXPECT_EQ(hub.rope.original_max_position_embeddings, 8192);
  EXPECT_THAT(hub.eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(hub.bos_token_id, 128000);
}

TEST(HfConfigTest, LlamaLinearRopeTiedWithBiases) {
  ModelConfig c = LoadOk("llama_linear_tied_bias.json");
  EXPECT_EQ(c.rope.scaling, RopeScaling::kLinear);
  EXPECT_DOUBLE_EQ(c.rope.factor, 2.0);
  EXPECT_DOUBLE_EQ(c.rope.theta, 50000.0);
  EXPECT_EQ(c.head_dim, 128);  // explicit, != hidden / heads
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.attention_out_bias);
  EXPECT_TRUE(c.mlp_bias);
  EXPECT_EQ(c.pad_token_id, 0);
}

TEST(HfConfigTest, Mixtral8x7b) {
  ModelConfig hub = LoadOk("hub_mixtral_8x7b_v01.json");
  EXPECT_EQ(Describe(hub), Describe(LoadOk("mixtral_8x7b.json")));
  EXPECT_EQ(hub.num_experts, 8);
  EXPECT_EQ(hub.num_experts_per_tok, 2);
  EXPECT_EQ(hub.intermediate_size, 14336);
  EXPECT_EQ(hub.head_dim, 128);
  EXPECT_DOUBLE_EQ(hub.rope.theta, 1e6);
  EXPECT_EQ(hub.max_position_embeddings, 32768);
}

TEST(HfConfigTest, Qwen15MoeA27b) {
  ModelConfig c = LoadOk("hub_qwen15_moe_a27b.json");
  EXPECT_EQ(c.num_experts, 60);
  EXPECT_EQ(c.num_experts_per_tok, 4);
  EXPECT_EQ(c.moe_intermediate_size, 1408);
  EXPECT_EQ(c.shared_expert_intermediate_size, 5632);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.attention_out_bias);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(151643));

  ModelConfig v5 = LoadOk("qwen2_moe_a27b.json");  // decoder_sparse_step 2, layer 0 dense
  EXPECT_EQ(v5.decoder_sparse_step, 2);
  EXPECT_THAT(v5.mlp_only_layers, ElementsAre(0));
  EXPECT_FALSE(v5.IsMoeLayer(0));
  EXPECT_TRUE(v5.IsMoeLayer(1));
  EXPECT_FALSE(v5.IsMoeLayer(2));
  EXPECT_TRUE(v5.IsMoeLayer(3));
}

TEST(HfConfigTest, Qwen3MoeA3b) {
  ModelConfig hub = LoadOk("hub_qwen3_30b_a3b.json");  // spells the expert count num_experts
  ModelConfig v5 = LoadOk("qwen3_moe_30b_a3b.json");   // transformers 5 spells it num_local_experts
  EXPECT_EQ(Describe(hub), Describe(v5));
  EXPECT_EQ(hub.num_experts, 128);
  EXPECT_EQ(hub.num_experts_per_tok, 8);
  EXPECT_EQ(hub.head_dim, 128);  // explicit: 32 heads * 128 != hidden 2048
  EXPECT_TRUE(hub.norm_topk_prob);
  EXPECT_TRUE(hub.qk_norm);
  EXPECT_EQ(hub.max_position_embeddings, 40960);
  EXPECT_THAT(hub.eos_token_ids, ElementsAre(151645));
}

TEST(HfConfigTest, ClassDefaultConfigsParse) {
  for (const char* name :
       {"llama_defaults.json", "mixtral_defaults.json", "qwen2_moe_defaults.json", "qwen3_moe_defaults.json"}) {
    SCOPED_TRACE(name);
    LoadOk(name);
  }
}

// Every fixture model's config.json parses.
TEST(HfConfigTest, FixtureModelConfigsParse) {
  const std::filesystem::path root = "tests/fixtures/models";
  if (!std::filesystem::is_directory(root)) GTEST_SKIP() << "no fixture models";
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const auto path = entry.path() / "config.json";
    if (!std::filesystem::exists(path)) continue;
    auto cfg = LoadHfConfig(path.string());
    EXPECT_TRUE(cfg.ok()) << cfg.status();
    auto gen = LoadGenerationConfig((entry.path() / "generation_config.json").string());
    EXPECT_TRUE(gen.ok()) << gen.status();
  }
}

// ---- Variations on a small valid config -------------------------------------------------------

Json SmallLlama() {
  return Json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 320, "hidden_size": 128,
    "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": null, "rms_norm_eps": 1e-05, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": null,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}})");
}

Json SmallMoe(const char* arch) {
  Json j = SmallLlama();
  j["architectures"] = {arch};
  j["num_experts"] = 4;
  j["num_experts_per_tok"] = 2;
  j["moe_intermediate_size"] = 64;
  return j;
}

absl::StatusOr<ModelConfig> Parse(const Json& j) { return ParseHfConfig(j.dump(), "config.json"); }

void ExpectBad(const Json& j, const std::string& field, const std::string& detail) {
  absl::Status s = Parse(j).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("config.json: field '" + field + "'")) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(detail)) << s;
}

TEST(HfConfigTest, SmallVariationsParse) {
  ASSERT_TRUE(Parse(SmallLlama()).ok()) << Parse(SmallLlama()).status();
  Json j = SmallLlama();
  j["eos_token_id"] = {2, 3};
  j.erase("architectures");  // model_type suffices
  j["num_key_value_heads"] = nullptr;
  j["partial_rotary_factor"] = 0.5;
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2, 3));
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_DOUBLE_EQ(c->rope.partial_rotary_factor, 0.5);

  // Legacy "type" key, and llama3 original_max_position_embeddings defaulting to max positions.
  j = SmallLlama();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope.scaling, RopeScaling::kLinear);
  EXPECT_DOUBLE_EQ(c->rope.factor, 4.0);
  j["max_position_embeddings"] = 4096;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}};
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope.original_max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c->rope.theta, 10000.0);  // rope_scaling wins over rope_parameters; theta from default

  // Mixtral with a window no shorter than the context is harmless.
  j = SmallMoe("MixtralForCausalLM");
  j["max_position_embeddings"] = 512;
  j["sliding_window"] = 512;
  EXPECT_TRUE(Parse(j).ok()) << Parse(j).status();
}

TEST(HfConfigTest, RejectsUnknownArchitecture) {
  Json j = SmallLlama();
  j["architectures"] = {"GPT2LMHeadModel"};
  ExpectBad(j, "architectures", "'GPT2LMHeadModel' is not supported");
  ExpectBad(j, "architectures", "LlamaForCausalLM, MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM");
  j["architectures"] = Json::array();
  ExpectBad(j, "architectures", "non-empty list");
  j.erase("architectures");
  j["model_type"] = "gpt2";
  ExpectBad(j, "model_type", "'gpt2' is not supported");
  j.erase("model_type");
  ExpectBad(j, "architectures", "required but missing");
}

TEST(HfConfigTest, RejectsNonJsonAndNonObject) {
  absl::Status s = ParseHfConfig("{\"vocab_size\": ", "cfg/config.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("cfg/config.json: not valid JSON"));
  s = ParseHfConfig("[1]", "cfg/config.json").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("cfg/config.json: expected a JSON object, got array"));
}

TEST(HfConfigTest, RejectsMissingAndMistypedFields) {
  Json j = SmallLlama();
  j.erase("hidden_size");
  ExpectBad(j, "hidden_size", "required but missing");
  j = SmallLlama();
  j["vocab_size"] = "320";
  ExpectBad(j, "vocab_size", "expected an integer, got string");
  j = SmallLlama();
  j["num_hidden_layers"] = 2.0;
  ExpectBad(j, "num_hidden_layers", "expected an integer, got number");
  j = SmallLlama();
  j["tie_word_embeddings"] = 1;
  ExpectBad(j, "tie_word_embeddings", "expected true or false");
  j = SmallLlama();
  j["rms_norm_eps"] = "1e-5";
  ExpectBad(j, "rms_norm_eps", "expected a number");
  j = SmallLlama();
  j["eos_token_id"] = {2, "3"};
  ExpectBad(j, "eos_token_id", "expected an integer");
  j = SmallLlama();
  j["rope_parameters"] = "default";
  ExpectBad(j, "rope_parameters", "expected an object");
  j = SmallLlama();
  j["rope_parameters"]["rope_theta"] = "1e4";
  ExpectBad(j, "rope_parameters.rope_theta", "expected a number");
}

TEST(HfConfigTest, RejectsInconsistentSizes) {
  Json j = SmallLlama();
  j["hidden_size"] = 0;
  ExpectBad(j, "hidden_size", "0 is outside [1, ");
  j = SmallLlama();
  j["num_key_value_heads"] = 3;
  ExpectBad(j, "num_key_value_heads", "3 does not divide num_attention_heads 4");
  j = SmallLlama();
  j["num_key_value_heads"] = 8;
  ExpectBad(j, "num_key_value_heads", "outside [1, 4]");
  j = SmallLlama();
  j["hidden_size"] = 130;
  ExpectBad(j, "hidden_size", "130 is not divisible by num_attention_heads 4");
  j = SmallLlama();
  j["head_dim"] = 33;
  ExpectBad(j, "head_dim", "must be even");
  j = SmallLlama();
  j["max_position_embeddings"] = -1;
  ExpectBad(j, "max_position_embeddings", "outside");
  j = SmallLlama();
  j["rms_norm_eps"] = 0;
  ExpectBad(j, "rms_norm_eps", "must be in (0, 1)");
  j = SmallLlama();
  j["partial_rotary_factor"] = 1.5;
  ExpectBad(j, "partial_rotary_factor", "(0, 1]");
  j = SmallLlama();
  j["partial_rotary_factor"] = 0.01;
  ExpectBad(j, "partial_rotary_factor", "must be even and at least 2");
  j = SmallLlama();
  j["vocab_size"] = 9223372036854775807LL;
  ExpectBad(j, "vocab_size", "outside");
}

TEST(HfConfigTest, RejectsTokenIdsOutsideVocab) {
  Json j = SmallLlama();
  j["eos_token_id"] = {2, 320};
  ExpectBad(j, "eos_token_id", "320 is outside [0, 319]");
  j = SmallLlama();
  j["bos_token_id"] = -5;
  ExpectBad(j, "bos_token_id", "-5 is outside");
  j = SmallLlama();
  j["pad_token_id"] = 1000;
  ExpectBad(j, "pad_token_id", "1000 is outside");
}

TEST(HfConfigTest, RejectsUnsupportedNumerics) {
  Json j = SmallLlama();
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 1e4}};
  ExpectBad(j, "rope_parameters.rope_type", "RoPE type 'yarn' is not supported (supported: default, linear, llama3)");
  j = SmallLlama();
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  ExpectBad(j, "rope_scaling.type", "RoPE type 'dynamic' is not supported");
  j = SmallLlama();
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"high_freq_factor", 4.0}};
  ExpectBad(j, "rope_parameters.low_freq_factor", "required for llama3");
  j = SmallLlama();
  j["rope_parameters"] = {{"rope_type", "linear"}};
  ExpectBad(j, "rope_parameters.factor", "required for linear");
  j = SmallLlama();
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}}}};
  ExpectBad(j, "rope_parameters", "per-layer-type");
  j = SmallLlama();
  j["hidden_act"] = "gelu";
  ExpectBad(j, "hidden_act", "'gelu' is not supported");
  j = SmallLlama();
  j["quantization_config"] = {{"quant_method", "gptq"}};
  ExpectBad(j, "quantization_config", "not supported");

  j = SmallMoe("Qwen2MoeForCausalLM");
  j["use_sliding_window"] = true;
  ExpectBad(j, "use_sliding_window", "not supported");
  j = SmallMoe("Qwen2MoeForCausalLM");
  j["layer_types"] = {"full_attention", "sliding_attention"};
  ExpectBad(j, "layer_types", "full_attention");
  j = SmallMoe("Qwen3MoeForCausalLM");
  j["use_sliding_window"] = true;
  ExpectBad(j, "use_sliding_window", "not supported");
  j = SmallMoe("MixtralForCausalLM");
  j["max_position_embeddings"] = 32768;
  j["sliding_window"] = 4096;
  ExpectBad(j, "sliding_window", "4096 < max_position_embeddings 32768");
}

TEST(HfConfigTest, RejectsBadMoeSettings) {
  Json j = SmallMoe("Qwen3MoeForCausalLM");
  j["num_experts_per_tok"] = 5;
  ExpectBad(j, "num_experts_per_tok", "5 is outside [1, 4]");
  j["num_experts_per_tok"] = 0;
  ExpectBad(j, "num_experts_per_tok", "0 is outside [1, 4]");
  j = SmallMoe("MixtralForCausalLM");
  j["num_local_experts"] = 0;
  j.erase("num_experts");
  ExpectBad(j, "num_experts", "0 is outside");
  j = SmallMoe("Qwen3MoeForCausalLM");
  j["num_local_experts"] = 8;
  ExpectBad(j, "num_experts", "4 disagrees with num_local_experts 8");
  j = SmallMoe("Qwen2MoeForCausalLM");
  j["moe_intermediate_size"] = 0;
  ExpectBad(j, "moe_intermediate_size", "outside");
  j = SmallMoe("Qwen2MoeForCausalLM");
  j["shared_expert_intermediate_size"] = -1;
  ExpectBad(j, "shared_expert_intermediate_size", "outside");
  j = SmallMoe("Qwen2MoeForCausalLM");
  j["decoder_sparse_step"] = 0;
  ExpectBad(j, "decoder_sparse_step", "outside");
  j = SmallMoe("Qwen3MoeForCausalLM");
  j["mlp_only_layers"] = {0, 2};
  ExpectBad(j, "mlp_only_layers", "2 is outside [0, 1]");
  j = SmallMoe("Qwen3MoeForCausalLM");
  j["mlp_only_layers"] = 1;
  ExpectBad(j, "mlp_only_layers", "list of integers");
  j = SmallMoe("Qwen3MoeForCausalLM");
  j["norm_topk_prob"] = "true";
  ExpectBad(j, "norm_topk_prob", "true or false");
}

TEST(HfConfigTest, LoadNamesMissingFile) {
  auto c = LoadHfConfig("/nonexistent/dir/config.json");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/dir/config.json"));
}

// ---- generation_config.json -------------------------------------------------------------------

TEST(GenerationConfigTest, ParsesReleasedConfigs) {
  auto g = LoadGenerationConfig(kConfigDir + "generation_llama31.json");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(g->eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(g->bos_token_id, 128000);
  EXPECT_TRUE(g->do_sample);
  EXPECT_DOUBLE_EQ(g->temperature, 0.6);
  EXPECT_DOUBLE_EQ(g->top_p, 0.9);
  EXPECT_EQ(g->top_k, 0);  // absent: keeps the default
  EXPECT_EQ(g->max_new_tokens, -1);

  g = LoadGenerationConfig(kConfigDir + "generation_qwen3.json");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(g->eos_token_ids, ElementsAre(151645, 151643));
  EXPECT_EQ(g->top_k, 20);
  EXPECT_DOUBLE_EQ(g->top_p, 0.95);
}

TEST(GenerationConfigTest, AllFieldsAndNulls) {
  auto g = ParseGenerationConfig(R"({"eos_token_id": 7, "bos_token_id": null, "do_sample": false,
      "temperature": 0.0, "top_p": 0.5, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1,
      "max_new_tokens": 128})",
                                 "generation_config.json");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(g->eos_token_ids, ElementsAre(7));
  EXPECT_EQ(g->bos_token_id, -1);
  EXPECT_FALSE(g->do_sample);
  EXPECT_DOUBLE_EQ(g->temperature, 0.0);
  EXPECT_DOUBLE_EQ(g->top_p, 0.5);
  EXPECT_EQ(g->top_k, 40);
  EXPECT_DOUBLE_EQ(g->min_p, 0.05);
  EXPECT_DOUBLE_EQ(g->repetition_penalty, 1.1);
  EXPECT_EQ(g->max_new_tokens, 128);

  g = ParseGenerationConfig(R"({"min_p": null, "max_new_tokens": null, "top_k": null})", "generation_config.json");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_DOUBLE_EQ(g->min_p, 0.0);
  EXPECT_EQ(g->max_new_tokens, -1);
  EXPECT_EQ(g->top_k, 0);
}

TEST(GenerationConfigTest, MissingFileYieldsDefaults) {
  TempDir dir;
  auto g = LoadGenerationConfig(dir.File("generation_config.json"));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(g->eos_token_ids.empty());
  EXPECT_DOUBLE_EQ(g->temperature, 1.0);
  EXPECT_FALSE(g->do_sample);
}

TEST(GenerationConfigTest, RejectsBadValues) {
  auto bad = [](const std::string& text, const std::string& field, const std::string& detail) {
    absl::Status s = ParseGenerationConfig(text, "generation_config.json").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(s.message()), HasSubstr("generation_config.json: field '" + field + "'")) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(detail)) << s;
  };
  bad(R"({"temperature": "hot"})", "temperature", "expected a number");
  bad(R"({"temperature": -1})", "temperature", ">= 0");
  bad(R"({"top_p": 0})", "top_p", "(0, 1]");
  bad(R"({"top_p": 1.5})", "top_p", "(0, 1]");
  bad(R"({"top_k": -1})", "top_k", ">= 0");
  bad(R"({"top_k": 2.5})", "top_k", "expected an integer");
  bad(R"({"min_p": 2})", "min_p", "[0, 1]");
  bad(R"({"repetition_penalty": 0})", "repetition_penalty", "positive");
  bad(R"({"do_sample": "yes"})", "do_sample", "true or false");
  bad(R"({"eos_token_id": [1, -2]})", "eos_token_id", "negative");
  bad(R"({"eos_token_id": {"a": 1}})", "eos_token_id", "expected an integer");
  bad(R"({"max_new_tokens": -7})", "max_new_tokens", ">= 0");

  TempDir dir;
  const std::string path = dir.Write("generation_config.json", "{not json");
  absl::Status s = LoadGenerationConfig(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
}

TEST(ReadFileToStringTest, ReadsAndReportsMissing) {
  TempDir dir;
  std::string content(100000, 'x');
  content[99999] = '\0';
  const std::string path = dir.Write("f.bin", content);
  auto read = ReadFileToString(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, content);
  auto missing = ReadFileToString(dir.File("g.bin"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("g.bin"));
}

}  // namespace
}  // namespace tessera::loader
