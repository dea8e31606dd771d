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
    m->rot_dim_ = RopeDim(m->config_);
    m->inv_freq_ = RopeInvFreq(m->config_);
    m->pool_ = std::make_unique<kernels::ThreadPool>(options.num_threads);
    return m;
  }
  TS_ASSIGN_OR_RETURN(m->config_, loader::LoadHfConfig(dir + "/config.json"));
  TS_ASSIGN_OR_RETURN(m->generation_, loader::LoadGenerationConfig(dir + "/generation_config.json"));
  if (m->generation_.eos_token_ids.empty()) m->generation_.eos_token_ids = m->config_.eos_token_ids;
  TS_ASSIGN_OR_RETURN(m->checkpoint_, loader::Checkpoint::Open(dir));
  TS_ASSIGN_OR_RETURN(m->weights_, LoadModelWeights(m->config_, *m->checkpoint_));
  TS_RETURN_IF_ERROR(m->checkpoint_->CheckAllUsed({"rotary_emb.inv_freq"}));
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

// h: [T, hidden] normalized input; out: [T, n_heads * head_dim] attention output (before o_proj).
void Model::Attention(int64_t layer, std::span<const SequenceInput> batch, const std::vector<int64_t>& offsets,
                      PagedKvCache& cache, const float* h, float* out) {
  const ModelConfig& c = config_;
  const AttentionWeights& a = weights_.layers[layer].attn;
  const int64_t total = offsets.back();
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  std::vector<float> q(total * nh * hd), k(total * nkv * hd), v(total * nkv * hd);
  ApplyLinear(pool(), h, total, a.q, q.data());
  ApplyLinear(pool(), h, total, a.k, k.data());
  ApplyLinear(pool(), h, total, a.v, v.data());
  if (!a.q_norm.empty()) {
    kernels::RmsNorm(q.data(), a.q_norm.data(), total * nh, hd, static_cast<float>(c.rms_norm_eps), q.data());
    kernels::RmsNorm(k.data(), a.k_norm.data(), total * nkv, hd, static_cast<float>(c.rms_norm_eps), k.data());
  }
  std::vector<int32_t> positions(total);
  for (size_t s = 0; s < batch.size(); ++s) {
    for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i)
      positions[i] = static_cast<int32_t>(batch[s].start_pos + i - offsets[s]);
  }
  if (rope_interleaved_) {
    RopeInterleaved(q.data(), total, nh, hd, rot_dim_, positions.data(), inv_freq_.data());
    RopeInterleaved(k.data(), total, nkv, hd, rot_dim_, positions.data(), inv_freq_.data());
  } else {
    kernels::RopeNeox(q.data(), total, nh, hd, rot_dim_, positions.data(), inv_freq_.data());
    kernels::RopeNeox(k.data(), total, nkv, hd, rot_dim_, positions.data(), inv_freq_.data());
  }

  // Append the new keys and values to each sequence's blocks.
  for (size_t s = 0; s < batch.size(); ++s) {
    for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
      std::memcpy(cache.KeySlot(layer, batch[s].block_table.data(), positions[i]), &k[i * nkv * hd],
                  sizeof(float) * nkv * hd);
      std::memcpy(cache.ValueSlot(layer, batch[s].block_table.data(), positions[i]), &v[i * nkv * hd],
                  sizeof(float) * nkv * hd);
    }
  }

  auto run_sequence = [&](size_t s, kernels::ThreadPool* pool) {
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
    p.out = out + offsets[s] * nh * hd;
    kernels::AttentionWithLse(pool, p);
  };
  // Many short sequences (decode): one sequence per task. Few long ones: split inside each.
  if (static_cast<int64_t>(batch.size()) >= pool()->num_threads() && total <= 4 * static_cast<int64_t>(batch.size())) {
    pool()->ParallelFor(static_cast<int64_t>(batch.size()), [&](int64_t b, int64_t e) {
      for (int64_t s = b; s < e; ++s) run_sequence(s, nullptr);
    });
  } else {
    for (size_t s = 0; s < batch.size(); ++s) run_sequence(s, pool());
  }
}

absl::Status Model::Forward(std::span<const SequenceInput> batch, PagedKvCache& cache, std::vector<float>* logits) {
  TS_RETURN_IF_ERROR(Validate(batch, cache));
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);

  std::vector<int64_t> offsets(batch.size() + 1, 0);
  for (size_t s = 0; s < batch.size(); ++s) offsets[s + 1] = offsets[s] + static_cast<int64_t>(batch[s].tokens.size());
  const int64_t total = offsets.back();

  std::vector<float> x(total * hidden), h(total * hidden), ff(total * hidden);
  std::vector<float> attn(total * c.num_attention_heads * c.head_dim);
  for (size_t s = 0; s < batch.size(); ++s) {
    for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i)
      GatherRow(weights_.embed, batch[s].tokens[i - offsets[s]], &x[i * hidden]);
  }

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = weights_.layers[l];
    kernels::RmsNorm(x.data(), lw.input_norm.data(), total, hidden, eps, h.data());
    Attention(l, batch, offsets, cache, h.data(), attn.data());
    ApplyLinear(pool(), attn.data(), total, lw.attn.o, ff.data());
    for (int64_t i = 0; i < total * hidden; ++i) x[i] += ff[i];

    kernels::RmsNorm(x.data(), lw.post_attention_norm.data(), total, hidden, eps, h.data());
    if (lw.moe) {
      RunMoe(pool(), *lw.moe, h.data(), total, ff.data());
    } else {
      RunMlp(pool(), *lw.mlp, h.data(), total, ff.data());
    }
    for (int64_t i = 0; i < total * hidden; ++i) x[i] += ff[i];
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
  kernels::RmsNorm(last.data(), weights_.final_norm.data(), n, hidden, eps, last.data());
  logits->resize(n * c.vocab_size);
  ApplyLinear(pool(), last.data(), n, weights_.lm_head, logits->data());
  return absl::OkStatus();
}

}  // namespace tessera::llm
