#include "runtime/llm/model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/backend_registry.h"
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
    m->rope_style_ = kernels::RopeStyle::kInterleaved;
  } else {
    TS_ASSIGN_OR_RETURN(m->config_, loader::LoadHfConfig(dir + "/config.json"));
    TS_ASSIGN_OR_RETURN(m->generation_, loader::LoadGenerationConfig(dir + "/generation_config.json"));
    if (m->generation_.eos_token_ids.empty()) m->generation_.eos_token_ids = m->config_.eos_token_ids;
    TS_ASSIGN_OR_RETURN(m->checkpoint_, loader::Checkpoint::Open(dir));
    TS_ASSIGN_OR_RETURN(m->weights_, LoadModelWeights(m->config_, *m->checkpoint_));
    TS_RETURN_IF_ERROR(m->checkpoint_->CheckAllUsed({"rotary_emb.inv_freq"}));
  }
  const ModelConfig& c = m->config_;
  TS_ASSIGN_OR_RETURN(m->backend_,
                      kernels::CreateBackend({.device = options.device, .num_threads = options.num_threads}));
  kernels::Backend& be = *m->backend_;
  for (const kernels::OpDesc& op : {kernels::OpDesc{.op = kernels::OpKind::kAttention, .head_dim = c.head_dim},
                                    kernels::OpDesc{.op = kernels::OpKind::kRope, .head_dim = c.head_dim}}) {
    if (!be.Supports(op)) {
      return absl::InvalidArgumentError(absl::StrCat("the ", std::string(be.name()), " backend has no ",
                                                     std::string(kernels::OpKindName(op.op)), " kernel for head_dim ",
                                                     c.head_dim));
    }
  }
  TS_ASSIGN_OR_RETURN(m->ctx_, be.CreateContext());
  m->scratch_ = std::make_unique<Scratch>(&be);
  TS_RETURN_IF_ERROR(PrepareWeights(m->weights_, be, *m->ctx_, options.activations));
  m->weight_bytes_ = PreparedWeightBytes(m->weights_);
  m->rot_dim_ = RopeDim(c);
  TS_ASSIGN_OR_RETURN(m->inv_freq_, be.UploadF32(*m->ctx_, RopeInvFreq(c)));
  TS_RETURN_IF_ERROR(be.Synchronize(*m->ctx_));
  return m;
}

PagedKvCache::Options Model::KvCacheOptions(int64_t num_blocks, int64_t block_size) const {
  return {.num_layers = config_.num_hidden_layers,
          .num_kv_heads = config_.num_key_value_heads,
          .head_dim = config_.head_dim,
          .num_blocks = num_blocks,
          .block_size = block_size};
}

absl::StatusOr<PagedKvCache> Model::CreateKvCache(int64_t num_blocks, int64_t block_size) const {
  return PagedKvCache::Create(*backend_, KvCacheOptions(num_blocks, block_size));
}

absl::Status Model::Validate(std::span<const SequenceInput> batch, const PagedKvCache& cache) const {
  if (batch.empty()) return absl::InvalidArgumentError("forward: empty batch");
  if (cache.backend() != backend_.get()) {
    return absl::InvalidArgumentError("forward: the KV cache belongs to another backend than the model's");
  }
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

absl::Status Model::Embed(std::span<const int32_t> tokens, float* x) {
  const auto n = static_cast<int64_t>(tokens.size());
  TS_ASSIGN_OR_RETURN(int32_t * ids, scratch_->Get<int32_t>(Scratch::kTokenIds, n));
  backend_->CopyToDevice(*ctx_, ids, tokens.data(), sizeof(int32_t) * n);
  backend_->Embedding(*ctx_, {.table = weights_.embed.prepared.get(), .ids = ids, .n = n, .out = x});
  return absl::OkStatus();
}

absl::StatusOr<const int32_t*> Model::UploadPositions(const int32_t* positions, int64_t n) {
  TS_ASSIGN_OR_RETURN(int32_t * dev, scratch_->Get<int32_t>(Scratch::kPositions, n));
  backend_->CopyToDevice(*ctx_, dev, positions, sizeof(int32_t) * n);
  return dev;
}

absl::Status Model::ProjectQkv(int64_t layer, const float* x, int64_t n, const int32_t* positions, float* q, float* k,
                               float* v) {
  TS_ASSIGN_OR_RETURN(const int32_t* pos, UploadPositions(positions, n));
  return ProjectQkvAt(layer, x, n, pos, q, k, v);
}

absl::Status Model::ProjectQkvAt(int64_t layer, const float* x, int64_t n, const int32_t* positions_dev, float* q,
                                 float* k, float* v) {
  const ModelConfig& c = config_;
  const LayerWeights& lw = weights_.layers[layer];
  const AttentionWeights& a = lw.attn;
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  const auto eps = static_cast<float>(c.rms_norm_eps);
  kernels::Backend& be = *backend_;
  TS_ASSIGN_OR_RETURN(float* h, scratch_->Get<float>(Scratch::kNormed, n * c.hidden_size));
  be.RmsNorm(*ctx_, {.x = x, .weight = lw.input_norm.data(), .rows = n, .dim = c.hidden_size, .eps = eps, .y = h});
  const LinearWeight* qkv[] = {&a.q, &a.k, &a.v};
  float* qkv_out[] = {q, k, v};
  ApplyLinears(exec(), h, n, qkv, qkv_out);
  if (!a.q_norm.empty()) {
    be.RmsNorm(*ctx_, {.x = q, .weight = a.q_norm.data(), .rows = n * nh, .dim = hd, .eps = eps, .y = q});
    be.RmsNorm(*ctx_, {.x = k, .weight = a.k_norm.data(), .rows = n * nkv, .dim = hd, .eps = eps, .y = k});
  }
  for (auto [x_rot, heads] : {std::pair{q, nh}, std::pair{k, nkv}}) {
    be.Rope(*ctx_, {.x = x_rot,
                    .tokens = n,
                    .heads = heads,
                    .head_dim = hd,
                    .rot_dim = rot_dim_,
                    .positions = positions_dev,
                    .inv_freq = inv_freq_.as<const float>(),
                    .style = rope_style_});
  }
  return absl::OkStatus();
}

absl::Status Model::FinishLayer(int64_t layer, const float* attn, int64_t n, float* x) {
  const ModelConfig& c = config_;
  const LayerWeights& lw = weights_.layers[layer];
  const int64_t hidden = c.hidden_size;
  kernels::Backend& be = *backend_;
  TS_ASSIGN_OR_RETURN(float* h, scratch_->Get<float>(Scratch::kNormed, n * hidden));
  TS_ASSIGN_OR_RETURN(float* ff, scratch_->Get<float>(Scratch::kFfOut, n * hidden));
  ApplyLinear(exec(), attn, n, lw.attn.o, ff);
  be.Add(*ctx_, {.x = x, .y = ff, .n = n * hidden});
  be.RmsNorm(*ctx_, {.x = x,
                     .weight = lw.post_attention_norm.data(),
                     .rows = n,
                     .dim = hidden,
                     .eps = static_cast<float>(c.rms_norm_eps),
                     .y = h});
  if (lw.moe) {
    TS_RETURN_IF_ERROR(RunMoe(exec(), *lw.moe, h, n, ff));
  } else {
    TS_RETURN_IF_ERROR(RunMlp(exec(), *lw.mlp, h, n, ff));
  }
  be.Add(*ctx_, {.x = x, .y = ff, .n = n * hidden});
  return absl::OkStatus();
}

absl::StatusOr<float*> Model::LogitsOnDevice(const float* x, int64_t n) {
  TS_ASSIGN_OR_RETURN(float* h, scratch_->Get<float>(Scratch::kNormed, n * config_.hidden_size));
  TS_ASSIGN_OR_RETURN(float* logits, scratch_->Get<float>(Scratch::kLogits, n * config_.vocab_size));
  backend_->RmsNorm(*ctx_, {.x = x,
                            .weight = weights_.final_norm.data(),
                            .rows = n,
                            .dim = config_.hidden_size,
                            .eps = static_cast<float>(config_.rms_norm_eps),
                            .y = h});
  ApplyLinear(exec(), h, n, weights_.lm_head, logits);
  return logits;
}

absl::Status Model::Logits(const float* x, int64_t n, float* logits) {
  TS_ASSIGN_OR_RETURN(float* dev, LogitsOnDevice(x, n));
  return backend_->CopyToHost(*ctx_, logits, dev, sizeof(float) * n * config_.vocab_size);
}

absl::Status Model::Forward(std::span<const SequenceInput> batch, PagedKvCache& cache, std::vector<float>* logits) {
  TS_RETURN_IF_ERROR(Validate(batch, cache));
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size;
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  kernels::Backend& be = *backend_;

  // The step's host-side plan: rows of each sequence, their positions, cache slots and block tables.
  std::vector<int64_t> offsets(batch.size() + 1, 0);
  std::vector<int64_t> table_offsets(batch.size() + 1, 0);
  for (size_t s = 0; s < batch.size(); ++s) {
    offsets[s + 1] = offsets[s] + static_cast<int64_t>(batch[s].tokens.size());
    table_offsets[s + 1] = table_offsets[s] + static_cast<int64_t>(batch[s].block_table.size());
  }
  const int64_t total = offsets.back();
  std::vector<int32_t> tokens(total), positions(total), slots(total), tables(table_offsets.back());
  std::vector<int32_t> rows;  // whose logits are wanted
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceInput& seq = batch[s];
    std::copy(seq.tokens.begin(), seq.tokens.end(), tokens.begin() + offsets[s]);
    std::copy(seq.block_table.begin(), seq.block_table.end(), tables.begin() + table_offsets[s]);
    for (int64_t i = offsets[s]; i < offsets[s + 1]; ++i) {
      positions[i] = static_cast<int32_t>(seq.start_pos + i - offsets[s]);
      slots[i] = cache.Slot(seq.block_table.data(), positions[i]);
      if (seq.all_logits || i == offsets[s + 1] - 1) rows.push_back(static_cast<int32_t>(i));
    }
  }
  TS_ASSIGN_OR_RETURN(float* x, scratch_->Get<float>(Scratch::kHidden, total * hidden));
  TS_ASSIGN_OR_RETURN(float* q, scratch_->Get<float>(Scratch::kQ, total * nh * hd));
  TS_ASSIGN_OR_RETURN(float* k, scratch_->Get<float>(Scratch::kK, total * nkv * hd));
  TS_ASSIGN_OR_RETURN(float* v, scratch_->Get<float>(Scratch::kV, total * nkv * hd));
  TS_ASSIGN_OR_RETURN(float* attn, scratch_->Get<float>(Scratch::kAttn, total * nh * hd));
  TS_ASSIGN_OR_RETURN(int32_t * slots_dev, scratch_->Get<int32_t>(Scratch::kSlots, total));
  TS_ASSIGN_OR_RETURN(int32_t * tables_dev, scratch_->Get<int32_t>(Scratch::kBlockTables, table_offsets.back()));
  TS_ASSIGN_OR_RETURN(const int32_t* pos_dev, UploadPositions(positions.data(), total));
  be.CopyToDevice(*ctx_, slots_dev, slots.data(), sizeof(int32_t) * total);
  be.CopyToDevice(*ctx_, tables_dev, tables.data(), sizeof(int32_t) * tables.size());
  TS_RETURN_IF_ERROR(Embed(tokens, x));

  std::vector<kernels::AttentionParams> attention(batch.size());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    TS_RETURN_IF_ERROR(ProjectQkvAt(l, x, total, pos_dev, q, k, v));
    be.KvWrite(*ctx_, {.k_cache = cache.keys(l),
                       .v_cache = cache.values(l),
                       .k = k,
                       .v = v,
                       .slots = slots_dev,
                       .n = total,
                       .kv_dim = nkv * hd});
    for (size_t s = 0; s < batch.size(); ++s) {
      const int64_t num_q = offsets[s + 1] - offsets[s];
      attention[s] = {.q = q + offsets[s] * nh * hd,
                      .num_q = num_q,
                      .n_heads = nh,
                      .n_kv_heads = nkv,
                      .head_dim = hd,
                      .k = cache.keys(l),
                      .v = cache.values(l),
                      .num_kv = batch[s].start_pos + num_q,
                      .block_table = tables_dev + table_offsets[s],
                      .block_size = cache.block_size(),
                      .q_pos0 = batch[s].start_pos,
                      .k_pos0 = 0,
                      .causal = true,
                      .scale = 1.0f / std::sqrt(static_cast<float>(hd)),
                      .out = attn + offsets[s] * nh * hd};
    }
    be.Attention(*ctx_, {.sequences = attention});
    TS_RETURN_IF_ERROR(FinishLayer(l, attn, total, x));
  }

  // Final norm and lm_head only on the rows whose logits are wanted.
  const auto n = static_cast<int64_t>(rows.size());
  TS_ASSIGN_OR_RETURN(int32_t * rows_dev, scratch_->Get<int32_t>(Scratch::kRowIds, n));
  TS_ASSIGN_OR_RETURN(float* last, scratch_->Get<float>(Scratch::kLast, n * hidden));
  be.CopyToDevice(*ctx_, rows_dev, rows.data(), sizeof(int32_t) * n);
  be.GatherRows(*ctx_, {.src = x, .rows = rows_dev, .n = n, .dim = hidden, .dst = last});
  logits->resize(n * c.vocab_size);
  return Logits(last, n, logits->data());
}

}  // namespace tessera::llm
