// The feed-forward half of a decoder block: dense SwiGLU MLP or a mixture of experts.
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "runtime/llm/weights.h"

namespace tessera::llm {

// out[T, hidden] = down(silu(gate(x)) ⊙ up(x)); x: [T, hidden]. out must not alias x.
void RunMlp(kernels::ThreadPool* pool, const MlpWeights& w, const float* x, int64_t tokens, float* out);

// out[T, hidden] = Σ_{e ∈ topk(softmax(router(x)))} w_e · expert_e(x)  (+ gated shared expert)
// Tokens are grouped by expert so each expert runs one matmul over all the tokens routed to it.
// x: [T, hidden]; out must not alias x.
void RunMoe(kernels::ThreadPool* pool, const MoeWeights& w, const float* x, int64_t tokens, float* out);

}  // namespace tessera::llm
