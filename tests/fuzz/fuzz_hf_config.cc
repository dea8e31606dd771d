// Feeds arbitrary text to the config.json and generation_config.json parsers; every input must
// come back as a Status or a config that passed validation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/loader/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = tessera::loader::ParseHfConfig(text, "config.json");
  if (cfg.ok()) {
    if (cfg->num_attention_heads <= 0 || cfg->num_key_value_heads <= 0 || cfg->head_dim <= 0) std::abort();
    if (cfg->num_attention_heads % cfg->num_key_value_heads != 0) std::abort();
    if (cfg->num_experts > 0 && (cfg->num_experts_per_tok < 1 || cfg->num_experts_per_tok > cfg->num_experts)) {
      std::abort();
    }
    for (int64_t l = 0; l < cfg->num_hidden_layers && l < 64; ++l) (void)cfg->IsMoeLayer(l);
  }
  auto gen = tessera::loader::ParseGenerationConfig(text, "generation_config.json");
  (void)gen;
  return 0;
}
