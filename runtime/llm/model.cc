#include "runtime/llm/model.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/ops.h"
#include "runtime/base/status_macros.h"
#include "runtime/llm/feed_forward.h"
#include "runtime/llm/models/families.h"
#include "runtime/llm/models/gguf_llama.h"
#include "runtime/llm/rope.h"
#include "runtime/loader/hf_config.h"

namespace tessera::llm {

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& dir, const Options& options) {
  std::unique_ptr<Model> m(new Model());
  TS_ASSIGN_OR_RETURN(std::optional<std::string> gguf_path, loader::FindGgufModelFile(dir));
  if (gguf_path) {
    TS_ASSIGN_OR_RETURN(m->gguf_, loader::GgufFile::Open(*gguf_path));
    TS_ASSIGN_OR_RETURN(m->config_, GgufLlamaConfig(*m->gguf_));
    TS_ASSIGN_OR_RETURN(m->generation_, GgufGenerationDefaults(*m->gguf_, m->config_));
    TS_ASSIGN_OR_RETURN(m->weights_, LoadGgufLlamaWeights(m->config_, *m->gguf_));
    m->rope_interleaved_ = true;
  } else {
    TS_ASSIGN_OR_RETURN(m->config_, loader::LoadHfConfig(dir + "/config.json"));
    TS_ASSIGN_OR_RETURN(m->generation_, loader::LoadGenerationConfig(dir + "/generation_config.json"));
    if (m->generation_.eos_token_ids.empty()) m->generation_.eos_token_ids = m->config_.eos_token_ids;
    TS_ASSIGN_OR_RETURN(m->checkpoint_, loader::Checkpoint::Open(dir));
    TS_ASSIGN_OR_RETURN(m->weights_, LoadModelWeights(m->config_, *m->checkpoint_));
    TS_RETURN_IF_ERROR(m->checkpoint_->CheckAllUsed({"rotary_emb.inv_freq"}));
  }
  PrepareLinears(m->weights_, options.activations);
  m->rot_dim_ = RopeDim(m->config_);
  m->inv_freq_ = RopeInvFreq(m->config_);
  m->pool_ = std::make_unique<kernels::ThreadPool>(options.num_threads);
  return m;
}

PagedKvCache::Options Model::KvCacheOptions(int64_t num_blocks, int64_t block_size) const {
  return {.num_layers = config_.num_hidden_layers,
          .num_kv_heads = config_.num_key_value_heads,
          .head_dim = config_.head_dim,
          .num_blocks = num_blocks,
          .block_size = block_size};
}

absl::Status Model::Validate(std::span<const SequenceInput> batch, const PagedKvCache& cache) const {
  if (batch.empty()) return absl::InvalidArgumentError("forward: empty batch");
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceInput& seq = batch[s];
    if (seq.tokens.empty()) return absl::InvalidArgumentError(absl::StrCat("forward: sequence ", s, " has no tokens"));
    if (seq.start_pos < 0) return absl::InvalidArgumentError(absl::StrCat("forward: sequence ", s, " start_pos < 0"));
    for (int32_t id : seq.tokens) {
      if (id < 0 || id >= config_.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("forward: sequence ", s, ": token id ", id,
                                                       " outside vocabulary [0, ", config_.vocab_size, ")"));
      }
    }
    const int64_t end = seq.start_pos + static_cast<int64_t>(seq.tokens.size());
    if (static_cast<int64_t>(seq.block_table.size()) < cache.BlocksFor(end)) {
      return absl::InvalidArgumentError(absl::StrCat("forward: sequence ", s, ": block table of ",
                                                     seq.block_table.size(), " blocks cannot hold ", end, " tokens"));
    }
    for (int32_t b : seq.block_table) {
      if (b < 0 || b >= cache.num_blocks()) {
        return absl::InvalidArgumentError(absl::StrCat("forward: sequence ", s, ": block ", b, " out of range"));
      }
    }
  }
  return absl::OkStatus();
}

void Model::Embed(std::span<const int32_t> tokens, float* x) const {
  for (size_t i = 0; i < tokens.size(); ++i) GatherRow(weights_.embed, tokens[i], x + i * config_.hidden_size);
}

void Model::ProjectQkv(int64_t layer, const float* x, int64_t n, const int32_t* positions, float* q, float* k,
                       float* v) {
  const ModelConfig& c = config_;
  const LayerWeights& lw = weights_.layers[layer];
  const AttentionWeights& a = lw.attn;
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  const float eps = static_cast<float>(c.rms_norm_eps);
  std::vector<float> h(n * c.hidden_size);
  kernels::RmsNorm(x, lw.input_norm.data(), n, c.hidden_size, eps, h.data());
  const LinearWeight* qkv[] = {&a.q, &a.k, &a.v};
  float* qkv_out[] = {q, k, v};
  ApplyLinears(pool(), h.data(), n, qkv, qkv_out);
  if (!a.q_norm.empty()) {
    kernels::RmsNorm(q, a.q_norm.data(), n * nh, hd, eps, q);
    kernels::RmsNorm(k, a.k_norm.data(), n * nkv, hd, eps, k);
  }
  if (rope_interleaved_) {
    RopeInterleaved(q, n, nh, hd, rot_dim_, positions, inv_freq_.data());
    RopeInterleaved(k, n, nkv, hd, rot_dim_, positions, inv_freq_.data());
  } else {
    kernels::RopeNeox(q, n, nh, hd, rot_dim_, positions, inv_freq_.data());
    kernels::RopeNeox(k, n, nkv, hd, rot_dim_, positions, inv_freq_.data());
  }
}

void Model::FinishLayer(int64_t layer, const float* attn, int64_t n, float* x) {
  const ModelConfig& c = config_;
  const LayerWeights& lw = weights_.layers[layer];
  const int64_t hidden = c.hidden_size;
  std::vector<float> h(n * hidden), ff(n * hidden);
  ApplyLinear(pool(), attn, n, lw.attn.o, ff.data());
  for (int64_t i = 0; i < n * hidden; ++i) x[i] += ff[i];
  kernels::RmsNorm(x, lw.post_attention_norm.data(), n, hidden, static_cast<float>(c.rms_norm_eps), h.data());
  if (lw.moe) {
    RunMoe(pool(), *lw.moe, h.data(), n, ff.data());
  } else {
    RunMlp(pool(), *lw.mlp, h.data(), n, ff.data());
  }
  for (int64_t i = 0; i < n * hidden; ++i) x[i] += ff[i];
}

void Model::Logits(const float* x, int64_t n, float* logits) {
  std::vector<float> h(n * config_.hidden_size);
  kernels::RmsNorm(x, weights_.final_norm.data(), n, config_.hidden_size, static_cast<float>(config_.rms_norm_eps),
                   h.data());
  ApplyLinear(pool(), h.data(), n, weights_.lm_head, logits);
}

absl::Status Model::Forward(std::span<const SequenceInput> batch, PagedKvCache& cache, std::vector<float>* logits) {
  TS_RETURN_IF_ERROR(Validate(batch, cache));
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size;
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;

  std::vector<int64_t> offsets(batch.size() + 1, 0);
  for (size_t s = 0; s < batch.size(); ++s) offsets[s + 1] = offsets[s] + static_cast<int64_t>(batch[s].tokens.size());
  const int64_t total = offsets.back();
  std::vector<int32_t> positions(total);
  std::vector<float> x(total * hidden);
  for (size_t s = 0; s < batch.size(); ++s) {
    Embed(batch[s].tokens, &x[offsets[s] * hidden]);
    for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i)
      positions[i] = static_cast<int32_t>(batch[s].start_pos + i - offsets[s]);
  }
  std::vector<float> q(total * nh * hd), k(total * nkv * hd), v(total * nkv * hd), attn(total * nh * hd);

  auto run_sequence = [&](int64_t layer, size_t s, kernels::ThreadPool* pool) {
    const SequenceInput& seq = batch[s];
    kernels::AttentionParams p;
    p.q = &q[offsets[s] * nh * hd];
    p.num_q = offsets[s + 1] - offsets[s];
    p.n_heads = nh;
    p.n_kv_heads = nkv;
    p.head_dim = hd;
    p.k = cache.keys(layer);
    p.v = cache.values(layer);
    p.num_kv = seq.start_pos + p.num_q;
    p.block_table = seq.block_table.data();
    p.block_size = cache.block_size();
    p.q_pos0 = seq.start_pos;
    p.k_pos0 = 0;
    p.causal = true;
    p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    p.out = &attn[offsets[s] * nh * hd];
    kernels::AttentionWithLse(pool, p);
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    ProjectQkv(l, x.data(), total, positions.data(), q.data(), k.data(), v.data());
    // Append the new keys and values to each sequence's blocks.
    for (size_t s = 0; s < batch.size(); ++s) {
      for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
        std::memcpy(cache.KeySlot(l, batch[s].block_table.data(), positions[i]), &k[i * nkv * hd],
                    sizeof(float) * nkv * hd);
        std::memcpy(cache.ValueSlot(l, batch[s].block_table.data(), positions[i]), &v[i * nkv * hd],
                    sizeof(float) * nkv * hd);
      }
    }
    // Many short sequences (decode): one sequence per task. Few long ones: split inside each.
    if (static_cast<int64_t>(batch.size()) >= pool()->num_threads() &&
        total <= 4 * static_cast<int64_t>(batch.size())) {
      pool()->ParallelFor(static_cast<int64_t>(batch.size()), [&](int64_t b, int64_t e) {
        for (int64_t s = b; s < e; ++s) run_sequence(l, s, nullptr);
      });
    } else {
      for (size_t s = 0; s < batch.size(); ++s) run_sequence(l, s, pool());
    }
    FinishLayer(l, attn.data(), total, x.data());
  }

  // Final norm and lm_head only on the rows whose logits are wanted.
  std::vector<int64_t> rows;
  for (size_t s = 0; s < batch.size(); ++s) {
    if (batch[s].all_logits) {
      for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i) rows.push_back(i);
    } else {
      rows.push_back(offsets[s + 1] - 1);
    }
  }
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<float> last(n * hidden);
  for (int64_t r = 0; r < n; ++r) std::memcpy(&last[r * hidden], &x[rows[r] * hidden], sizeof(float) * hidden);
  logits->resize(n * c.vocab_size);
  Logits(last.data(), n, logits->data());
  return absl::OkStatus();
}

}  // namespace tessera::llm
