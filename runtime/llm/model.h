// A decoder-only transformer loaded from a Hugging Face model directory or a GGUF file, run on a
// kernels::Backend (the CPU, or a GPU) over a ragged batch of sequences with a paged KV cache.
// The model describes the forward pass as backend ops; it never runs arithmetic itself.
//
//   TS_ASSIGN_OR_RETURN(auto model, Model::Load("/models/tiny-llama", {.num_threads = 2}));
//   TS_ASSIGN_OR_RETURN(PagedKvCache cache, model->CreateKvCache(/*num_blocks=*/64, /*block_size=*/16));
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
#include "kernels/backend.h"
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
    // Where the model runs. A device this build or machine lacks, or weights it cannot hold, is an
    // error from Load (FAILED_PRECONDITION, INVALID_ARGUMENT, RESOURCE_EXHAUSTED), never a fallback.
    kernels::Device device = kernels::Device::Cpu();
  };

  // `path`: a Hugging Face directory (config.json + safetensors), a .gguf file, or a directory
  // without config.json holding exactly one .gguf file (loader::FindGgufModelFile).
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path, const Options& options);

  const ModelConfig& config() const { return config_; }
  const GenerationDefaults& generation_defaults() const { return generation_; }
  kernels::Backend* backend() const { return backend_.get(); }
  // The context the model's ops run on (executors that add ops of their own enqueue them here).
  kernels::ExecContext* context() const { return ctx_.get(); }
  // The host thread pool (the CPU backend computes on it; host-side work on every backend).
  kernels::ThreadPool* pool() const { return backend_->host_pool(); }
  PagedKvCache::Options KvCacheOptions(int64_t num_blocks, int64_t block_size) const;
  // Bytes the weights take in the backend's memory (prepared copies, device vectors, and the mapped
  // originals that ops still read in place), fixed at load.
  int64_t weight_bytes() const { return weight_bytes_; }
  // Bytes of the forward pass's activation buffers (they grow with the largest step so far).
  // Thread-safe.
  int64_t workspace_bytes() const { return scratch_->bytes(); }
  // A KV cache of this shape in the backend's memory.
  absl::StatusOr<PagedKvCache> CreateKvCache(int64_t num_blocks, int64_t block_size) const;

  // Runs the new tokens of every sequence, writing their K/V into `cache`, and returns logits
  // [rows, vocab] where each sequence contributes n rows (all_logits) or 1 row, in batch order.
  // INVALID_ARGUMENT for token ids out of range, empty sequences or block tables that do not cover
  // the positions.
  absl::Status Forward(std::span<const SequenceInput> batch, PagedKvCache& cache, std::vector<float>* logits);

  // ---- The pieces Forward is made of, for executors that place rows and attention differently
  // (runtime/llm/sp_runner.h runs them on each rank's share of a sequence). Rows are tokens;
  // pointers other than host spans are in the backend's memory. Not reentrant: one caller at a time
  // (they share the model's activation buffers).

  // The checks Forward makes: INVALID_ARGUMENT naming the sequence.
  absl::Status Validate(std::span<const SequenceInput> batch, const PagedKvCache& cache) const;
  // x: [n, hidden] ← the embedding rows of `tokens` (host; ids already validated).
  absl::Status Embed(std::span<const int32_t> tokens, float* x);
  // Input norm, q/k/v projections, q/k norms and RoPE of the rows x: [n, hidden] at `positions`
  // (host, [n]): q [n, n_heads, head_dim], k and v [n, n_kv_heads, head_dim].
  absl::Status ProjectQkv(int64_t layer, const float* x, int64_t n, const int32_t* positions, float* q, float* k,
                          float* v);
  // The rest of the layer: x += o_proj(attn); x += MLP or MoE of the post-attention norm of x.
  // attn: [n, n_heads * head_dim].
  absl::Status FinishLayer(int64_t layer, const float* attn, int64_t n, float* x);
  // Final norm and lm_head: logits [n, vocab] (host) of rows x: [n, hidden].
  absl::Status Logits(const float* x, int64_t n, float* logits);

 private:
  Model() = default;
  Exec exec() { return {.backend = backend_.get(), .ctx = ctx_.get(), .scratch = scratch_.get()}; }
  // Positions (host) into the kPositions slot.
  absl::StatusOr<const int32_t*> UploadPositions(const int32_t* positions, int64_t n);
  // ProjectQkv on positions already in the backend's memory.
  absl::Status ProjectQkvAt(int64_t layer, const float* x, int64_t n, const int32_t* positions_dev, float* q, float* k,
                            float* v);
  // Logits [n, vocab] of rows x into the kLogits slot.
  absl::StatusOr<float*> LogitsOnDevice(const float* x, int64_t n);

  ModelConfig config_;
  GenerationDefaults generation_;
  std::unique_ptr<loader::Checkpoint> checkpoint_;
  std::unique_ptr<loader::GgufFile> gguf_;                     // GGUF models: owns the mapping the weights point into
  kernels::RopeStyle rope_style_ = kernels::RopeStyle::kNeox;  // GGUF llama: interleaved (models/gguf_llama.h)
  // Declared before everything that holds its memory, so that it is destroyed after them.
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<kernels::ExecContext> ctx_;
  std::unique_ptr<Scratch> scratch_;
  ModelWeights weights_;
  kernels::DeviceBuffer inv_freq_;  // [rot_dim / 2] f32
  int64_t rot_dim_ = 0;
  int64_t weight_bytes_ = 0;
};

}  // namespace tessera::llm
