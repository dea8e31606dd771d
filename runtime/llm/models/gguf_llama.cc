// GGUF `llama` architecture (see gguf_llama.h).
#include "runtime/llm/models/gguf_llama.h"

#include <cmath>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/dtype.h"
#include "runtime/base/status_macros.h"

namespace tessera::llm {
namespace {

using loader::GgmlType;
using loader::GgufFile;
using loader::GgufTensorInfo;

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Invalid(const GgufFile& f, std::string_view what, std::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(f.name(), ": ", Sv(what), ": ", Sv(msg)));
}

// A required positive integer "llama.<key>".
absl::StatusOr<int64_t> PositiveInt(const GgufFile& f, const std::string& key) {
  TS_ASSIGN_OR_RETURN(uint64_t v, f.GetUint(key));
  if (v == 0 || v > (uint64_t{1} << 40)) {
    return Invalid(f, absl::StrCat("metadata '", key, "'"), absl::StrCat("value ", v, " is out of range"));
  }
  return static_cast<int64_t>(v);
}

// Tracks which tensors the model asked for.
class TensorSource {
 public:
  explicit TensorSource(const GgufFile& f) : f_(f) {}

  bool Has(const std::string& name) const { return f_.FindTensor(name) != nullptr; }

  // The tensor `name`, checked to have exactly `dims` (ggml order: row length first).
  absl::StatusOr<const GgufTensorInfo*> Get(const std::string& name, const std::vector<int64_t>& dims) {
    const GgufTensorInfo* t = f_.FindTensor(name);
    if (t == nullptr) return absl::NotFoundError(absl::StrCat(f_.name(), ": tensor '", name, "' is missing"));
    if (t->dims != dims) {
      return Invalid(f_, absl::StrCat("tensor '", name, "'"),
                     absl::StrCat("dims ", DimsText(t->dims), " differ from the expected ", DimsText(dims)));
    }
    used_.insert(name);
    return t;
  }

  absl::StatusOr<LinearWeight> Linear(const std::string& name, int64_t out, int64_t in) {
    TS_ASSIGN_OR_RETURN(const GgufTensorInfo* t, Get(name + ".weight", {in, out}));
    LinearWeight w;
    TS_ASSIGN_OR_RETURN(w.dtype, GgufTensorDType(*t, f_.name()));
    w.data = t->data;
    w.out = out;
    w.in = in;
    if (Has(name + ".bias")) {
      TS_ASSIGN_OR_RETURN(w.bias, Vector(name + ".bias", out));
    }
    return w;
  }

  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n) {
    TS_ASSIGN_OR_RETURN(const GgufTensorInfo* t, Get(name, {n}));
    TS_ASSIGN_OR_RETURN(kernels::DType dtype, GgufTensorDType(*t, f_.name()));
    std::vector<float> v(n);
    kernels::DequantizeRow(dtype, t->data, n, v.data());
    return v;
  }

  absl::Status CheckAllUsed() const {
    std::string unused;
    int count = 0;
    for (const GgufTensorInfo& t : f_.tensors()) {
      if (used_.count(t.name) == 0 && ++count <= 8) absl::StrAppend(&unused, unused.empty() ? "" : ", ", t.name);
    }
    if (count == 0) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(f_.name(), ": ", count, " tensor(s) the llama architecture does not use: ", unused));
  }

 private:
  static std::string DimsText(const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) absl::StrAppend(&s, i ? ", " : "", d[i]);
    return s + "]";
  }
  const GgufFile& f_;
  std::set<std::string> used_;
};

}  // namespace

absl::StatusOr<kernels::DType> GgufTensorDType(const GgufTensorInfo& t, const std::string& file) {
  if (std::optional<kernels::DType> d = loader::GgmlToDType(t.type)) return *d;
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": tensor '", t.name, "' has type ", loader::GgmlTypeName(t.type),
                   ", which the kernels cannot run (supported: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K)"));
}

absl::StatusOr<ModelConfig> GgufLlamaConfig(const GgufFile& f) {
  TS_ASSIGN_OR_RETURN(std::string_view arch, f.GetString("general.architecture"));
  if (arch != "llama") {
    return Invalid(f, "metadata 'general.architecture'",
                   absl::StrCat("architecture '", Sv(arch), "' is not supported (supported: llama)"));
  }
  const std::string p = "llama.";
  ModelConfig c;
  c.architecture = Architecture::kLlama;
  c.architecture_name = "llama";
  TS_ASSIGN_OR_RETURN(c.num_hidden_layers, PositiveInt(f, p + "block_count"));
  TS_ASSIGN_OR_RETURN(c.hidden_size, PositiveInt(f, p + "embedding_length"));
  TS_ASSIGN_OR_RETURN(c.intermediate_size, PositiveInt(f, p + "feed_forward_length"));
  TS_ASSIGN_OR_RETURN(c.num_attention_heads, PositiveInt(f, p + "attention.head_count"));
  c.num_key_value_heads = c.num_attention_heads;
  if (f.Has(p + "attention.head_count_kv")) {
    TS_ASSIGN_OR_RETURN(c.num_key_value_heads, PositiveInt(f, p + "attention.head_count_kv"));
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return Invalid(f, "metadata 'llama.attention.head_count_kv'",
                   absl::StrCat(c.num_key_value_heads, " does not divide head_count ", c.num_attention_heads));
  }
  if (f.Has(p + "expert_count")) {
    TS_ASSIGN_OR_RETURN(uint64_t experts, f.GetUint(p + "expert_count"));
    if (experts > 0)
      return Invalid(f, "metadata 'llama.expert_count'", "mixture-of-experts llama files are not supported");
  }
  if (f.Has(p + "attention.key_length")) {
    TS_ASSIGN_OR_RETURN(c.head_dim, PositiveInt(f, p + "attention.key_length"));
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      return Invalid(f, "metadata 'llama.embedding_length'",
                     absl::StrCat(c.hidden_size, " is not a multiple of head_count ", c.num_attention_heads));
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (f.Has(p + "attention.value_length")) {
    TS_ASSIGN_OR_RETURN(uint64_t vlen, f.GetUint(p + "attention.value_length"));
    if (static_cast<int64_t>(vlen) != c.head_dim) {
      return Invalid(f, "metadata 'llama.attention.value_length'", "differs from key_length (not supported)");
    }
  }
  if (c.head_dim % 2 != 0) return Invalid(f, "metadata 'llama.attention.key_length'", "head size must be even");
  TS_ASSIGN_OR_RETURN(c.rms_norm_eps, f.GetFloat(p + "attention.layer_norm_rms_epsilon"));
  if (!(c.rms_norm_eps >= 0 && c.rms_norm_eps < 1)) {
    return Invalid(f, "metadata 'llama.attention.layer_norm_rms_epsilon'", "out of range [0, 1)");
  }
  TS_ASSIGN_OR_RETURN(c.rope.theta, f.GetFloatOr(p + "rope.freq_base", 10000.0));
  if (!(c.rope.theta > 1)) return Invalid(f, "metadata 'llama.rope.freq_base'", "must be > 1");
  TS_ASSIGN_OR_RETURN(uint64_t ctx, f.GetUintOr(p + "context_length", 2048));
  c.max_position_embeddings = static_cast<int64_t>(std::min<uint64_t>(ctx, uint64_t{1} << 31));
  TS_ASSIGN_OR_RETURN(uint64_t rot, f.GetUintOr(p + "rope.dimension_count", static_cast<uint64_t>(c.head_dim)));
  if (rot == 0 || rot % 2 != 0 || static_cast<int64_t>(rot) > c.head_dim) {
    return Invalid(f, "metadata 'llama.rope.dimension_count'",
                   absl::StrCat(rot, " must be even and within head size ", c.head_dim));
  }
  c.rope.partial_rotary_factor = static_cast<double>(rot) / static_cast<double>(c.head_dim);
  if (f.Has(p + "rope.scaling.type")) {
    TS_ASSIGN_OR_RETURN(std::string_view type, f.GetString(p + "rope.scaling.type"));
    if (type == "linear") {
      c.rope.scaling = RopeScaling::kLinear;
      TS_ASSIGN_OR_RETURN(c.rope.factor, f.GetFloat(p + "rope.scaling.factor"));
      if (!(c.rope.factor > 0)) return Invalid(f, "metadata 'llama.rope.scaling.factor'", "must be > 0");
    } else if (type != "none") {
      return Invalid(f, "metadata 'llama.rope.scaling.type'",
                     absl::StrCat("'", Sv(type), "' is not supported (supported: none, linear)"));
    }
  }
  if (f.FindTensor("rope_freqs.weight") != nullptr) {
    return Invalid(f, "tensor 'rope_freqs.weight'", "per-frequency RoPE factors (Llama 3.1 scaling) are not supported");
  }

  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) return absl::NotFoundError(absl::StrCat(f.name(), ": tensor 'token_embd.weight' is missing"));
  if (embd->dims.size() != 2) return Invalid(f, "tensor 'token_embd.weight'", "must be 2-D");
  c.vocab_size = embd->dims[1];
  if (c.vocab_size <= 0) return Invalid(f, "tensor 'token_embd.weight'", "has no rows");
  if (f.Has("tokenizer.ggml.tokens")) {
    TS_ASSIGN_OR_RETURN(const loader::GgufArray* tokens, f.GetArray("tokenizer.ggml.tokens"));
    if (static_cast<int64_t>(tokens->size) != c.vocab_size) {
      return Invalid(f, "metadata 'tokenizer.ggml.tokens'",
                     absl::StrCat(tokens->size, " tokens but token_embd has ", c.vocab_size, " rows"));
    }
  }
  if (f.Has(p + "vocab_size")) {
    TS_ASSIGN_OR_RETURN(uint64_t v, f.GetUint(p + "vocab_size"));
    if (static_cast<int64_t>(v) != c.vocab_size) {
      return Invalid(f, "metadata 'llama.vocab_size'", absl::StrCat(v, " but token_embd has ", c.vocab_size, " rows"));
    }
  }
  c.tie_word_embeddings = f.FindTensor("output.weight") == nullptr;
  c.attention_bias = f.FindTensor("blk.0.attn_q.bias") != nullptr;
  c.attention_out_bias = f.FindTensor("blk.0.attn_output.bias") != nullptr;

  auto token_id = [&](const char* key, int64_t* out) -> absl::Status {
    if (!f.Has(key)) return absl::OkStatus();
    TS_ASSIGN_OR_RETURN(uint64_t id, f.GetUint(key));
    if (static_cast<int64_t>(id) >= c.vocab_size) {
      return Invalid(f, absl::StrCat("metadata '", key, "'"), absl::StrCat("id ", id, " outside the vocabulary"));
    }
    *out = static_cast<int64_t>(id);
    return absl::OkStatus();
  };
  int64_t eos = -1, eot = -1;
  TS_RETURN_IF_ERROR(token_id("tokenizer.ggml.bos_token_id", &c.bos_token_id));
  TS_RETURN_IF_ERROR(token_id("tokenizer.ggml.eos_token_id", &eos));
  TS_RETURN_IF_ERROR(token_id("tokenizer.ggml.eot_token_id", &eot));
  TS_RETURN_IF_ERROR(token_id("tokenizer.ggml.padding_token_id", &c.pad_token_id));
  if (eos >= 0) c.eos_token_ids.push_back(eos);
  if (eot >= 0 && eot != eos) c.eos_token_ids.push_back(eot);
  return c;
}

absl::StatusOr<GenerationDefaults> GgufGenerationDefaults(const GgufFile& f, const ModelConfig& c) {
  GenerationDefaults g;
  g.eos_token_ids = c.eos_token_ids;
  g.bos_token_id = c.bos_token_id;
  if (f.Has("general.sampling.temp")) {
    TS_ASSIGN_OR_RETURN(g.temperature, f.GetFloat("general.sampling.temp"));
    g.do_sample = g.temperature > 0;
  }
  TS_ASSIGN_OR_RETURN(g.top_p, f.GetFloatOr("general.sampling.top_p", 1.0));
  TS_ASSIGN_OR_RETURN(g.min_p, f.GetFloatOr("general.sampling.min_p", 0.0));
  TS_ASSIGN_OR_RETURN(uint64_t top_k, f.GetUintOr("general.sampling.top_k", 0));
  g.top_k = static_cast<int64_t>(std::min<uint64_t>(top_k, uint64_t{1} << 31));
  return g;
}

absl::StatusOr<ModelWeights> LoadGgufLlamaWeights(const ModelConfig& c, const GgufFile& f) {
  TensorSource src(f);
  ModelWeights w;
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  TS_ASSIGN_OR_RETURN(w.embed, src.Linear("token_embd", c.vocab_size, c.hidden_size));
  TS_ASSIGN_OR_RETURN(w.final_norm.host, src.Vector("output_norm.weight", c.hidden_size));
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    TS_ASSIGN_OR_RETURN(w.lm_head, src.Linear("output", c.vocab_size, c.hidden_size));
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("blk.", i, ".");
    LayerWeights l;
    TS_ASSIGN_OR_RETURN(l.input_norm.host, src.Vector(p + "attn_norm.weight", c.hidden_size));
    TS_ASSIGN_OR_RETURN(l.post_attention_norm.host, src.Vector(p + "ffn_norm.weight", c.hidden_size));
    TS_ASSIGN_OR_RETURN(l.attn.q, src.Linear(p + "attn_q", q_dim, c.hidden_size));
    TS_ASSIGN_OR_RETURN(l.attn.k, src.Linear(p + "attn_k", kv_dim, c.hidden_size));
    TS_ASSIGN_OR_RETURN(l.attn.v, src.Linear(p + "attn_v", kv_dim, c.hidden_size));
    TS_ASSIGN_OR_RETURN(l.attn.o, src.Linear(p + "attn_output", c.hidden_size, q_dim));
    MlpWeights m;
    TS_ASSIGN_OR_RETURN(m.gate, src.Linear(p + "ffn_gate", c.intermediate_size, c.hidden_size));
    TS_ASSIGN_OR_RETURN(m.up, src.Linear(p + "ffn_up", c.intermediate_size, c.hidden_size));
    TS_ASSIGN_OR_RETURN(m.down, src.Linear(p + "ffn_down", c.hidden_size, c.intermediate_size));
    l.mlp = std::move(m);
    w.layers.push_back(std::move(l));
  }
  TS_RETURN_IF_ERROR(src.CheckAllUsed());
  return w;
}

}  // namespace tessera::llm
