// A decoder-only transformer loaded from a Hugging Face model directory or a GGUF file, run on the
// CPU over a ragged batch of sequences with a paged KV cache.
//
//   TS_ASSIGN_OR_RETURN(auto model, Model::Load("/models/tiny-llama", {.num_threads = 2}));
//   PagedKvCache cache(model->KvCacheOptions(/*num_blocks=*/64, /*block_size=*/16));
//   std::vector<int32_t> table = {0, 1};            // blocks owned by this sequence
//   SequenceInput seq{.tokens = prompt, .start_pos = 0, .block_table = table};
//   std::vector<float> logits;                      // [1, vocab]: the last position's logits
//   TS_RETURN_IF_ERROR(model->Forward({&seq, 1}, cache, &logits));
//
// One Forward call may mix prefill chunks (many new tokens) and decode steps (one new token) of
// different sequences; all new tokens go through the projections and MLPs as one matrix.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/thread_pool.h"
#include "runtime/llm/kv_cache.h"
#include "runtime/llm/model_config.h"
#include "runtime/llm/weights.h"
#include "runtime/loader/gguf.h"
#include "runtime/loader/safetensors.h"

namespace tessera::llm {

struct SequenceInput {
  std::span<const int32_t> tokens;       // the new tokens of this step, [n]
  int64_t start_pos = 0;                 // how many tokens of the sequence are already cached
  std::span<const int32_t> block_table;  // blocks covering positions [0, start_pos + n)
  bool all_logits = false;               // logits for every new token, else only for the last
};

class Model {
 public:
  struct Options {
    int num_threads = 0;  // 0: all hardware threads
    // How quantized (GGUF) weights meet the activations: kInt8 as llama.cpp (fast), kF32 for
    // x·dequant(w)ᵀ as transformers computes the dequantized model (see kernels::Linear).
    kernels::Activations activations = kernels::Activations::kInt8;
  };

  // `path`: a Hugging Face directory (config.json + safetensors), a .gguf file, or a directory
  // without config.json holding exactly one .gguf file (loader::FindGgufModelFile).
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path, const Options& options);

  const ModelConfig& config() const { return config_; }
  const GenerationDefaults& generation_defaults() const { return generation_; }
  kernels::ThreadPool* pool() { return pool_.get(); }
  PagedKvCache::Options KvCacheOptions(int64_t num_blocks, int64_t block_size) const;

  // Runs the new tokens of every sequence, writing their K/V into `cache`, and returns logits
  // [rows, vocab] where each sequence contributes n rows (all_logits) or 1 row, in batch order.
  // INVALID_ARGUMENT for token ids out of range, empty sequences or block tables that do not cover
  // the positions.
  absl::Status Forward(std::span<const SequenceInput> batch, PagedKvCache& cache, std::vector<float>* logits);

  // ---- The pieces Forward is made of, for executors that place rows and attention differently
  // (runtime/llm/sp_runner.h runs them on each rank's share of a sequence). Rows are tokens.

  // The checks Forward makes: INVALID_ARGUMENT naming the sequence.
  absl::Status Validate(std::span<const SequenceInput> batch, const PagedKvCache& cache) const;
  // x: [n, hidden] ← the embedding rows of `tokens` (ids already validated).
  void Embed(std::span<const int32_t> tokens, float* x) const;
  // Input norm, q/k/v projections, q/k norms and RoPE of the rows x: [n, hidden] at `positions`
  // [n]: q [n, n_heads, head_dim], k and v [n, n_kv_heads, head_dim].
  void ProjectQkv(int64_t layer, const float* x, int64_t n, const int32_t* positions, float* q, float* k, float* v);
  // The rest of the layer: x += o_proj(attn); x += MLP or MoE of the post-attention norm of x.
  // attn: [n, n_heads * head_dim].
  void FinishLayer(int64_t layer, const float* attn, int64_t n, float* x);
  // Final norm and lm_head: logits [n, vocab] of rows x: [n, hidden].
  void Logits(const float* x, int64_t n, float* logits);

 private:
  Model() = default;

  ModelConfig config_;
  GenerationDefaults generation_;
  std::unique_ptr<loader::Checkpoint> checkpoint_;
  std::unique_ptr<loader::GgufFile> gguf_;  // GGUF models: owns the mapping the weights point into
  bool rope_interleaved_ = false;           // GGUF llama: adjacent-pair RoPE (models/gguf_llama.h)
  ModelWeights weights_;
  std::vector<float> inv_freq_;  // [rot_dim / 2]
  int64_t rot_dim_ = 0;
  std::unique_ptr<kernels::ThreadPool> pool_;
};

}  // namespace tessera::llm
