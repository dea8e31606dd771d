// GGUF models of llama.cpp's `llama` architecture: config from the file's metadata, weights read in
// place from the mapping (quantized matrices stay quantized; kernels::Linear reads them).
//
//   TS_ASSIGN_OR_RETURN(auto file, loader::GgufFile::Open("SmolLM2-135M-Instruct.Q4_1.gguf"));
//   TS_ASSIGN_OR_RETURN(ModelConfig config, GgufLlamaConfig(*file));
//   TS_ASSIGN_OR_RETURN(ModelWeights weights, LoadGgufLlamaWeights(config, *file));
//   // weights point into `file`, which must outlive them; q/k use interleaved RoPE (see below).
//
// Metadata read (prefix "llama."): block_count, embedding_length, feed_forward_length,
// attention.head_count, attention.head_count_kv (default head_count), attention.key_length
// (default embedding_length / head_count), attention.layer_norm_rms_epsilon, rope.freq_base
// (default 10000), rope.dimension_count (default head_dim), rope.scaling.type/factor (none or
// linear), context_length; vocabulary size from token_embd (checked against tokenizer.ggml.tokens
// and llama.vocab_size when present); bos/eos/eot ids from tokenizer.ggml.*.
// Tensors: token_embd, output_norm, output (absent: tied to token_embd), blk.N.{attn_norm, attn_q,
// attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight, optional
// blk.N.attn_{q,k,v,output}.bias. Any other tensor is an error naming it.
//
// RoPE layout. llama.cpp's converter permutes the rows of attn_q and attn_k within each head so that
// the pairs rotated together are adjacent: GGUF row 2i of a head is Hugging Face row i, row 2i+1 is
// HF row i + head_dim/2 (for i < head_dim/2). We keep the file's row order (quantized rows are
// whole, but reordering them would mean copying the two matrices out of the mapping) and rotate
// adjacent pairs instead (kernels::RopeStyle::kInterleaved, ggml's "normal" mode, GPT-J style). The result is the HF
// model's q and k with the same permutation applied to each head's dimensions, so every q·k dot
// product, hence attention, is unchanged; v and the output projection are not permuted. The K cache
// holds keys in the permuted order, which only this model reads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/llm/model_config.h"
#include "runtime/llm/weights.h"
#include "runtime/loader/gguf.h"

namespace tessera::llm {

absl::StatusOr<ModelConfig> GgufLlamaConfig(const loader::GgufFile& file);
// eos/bos from the tokenizer metadata and sampling defaults from general.sampling.* when present.
absl::StatusOr<GenerationDefaults> GgufGenerationDefaults(const loader::GgufFile& file, const ModelConfig& config);
absl::StatusOr<ModelWeights> LoadGgufLlamaWeights(const ModelConfig& config, const loader::GgufFile& file);

// kernels::DType of a GGUF tensor type, or an error naming the tensor for types the kernels lack.
absl::StatusOr<kernels::DType> GgufTensorDType(const loader::GgufTensorInfo& t, const std::string& file);

}  // namespace tessera::llm
