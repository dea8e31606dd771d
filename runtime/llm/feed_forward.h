// The feed-forward half of a decoder block: dense SwiGLU MLP or a mixture of experts, as backend ops.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/llm/weights.h"

namespace tessera::llm {

// out[T, hidden] = down(silu(gate(x)) ⊙ up(x)); x: [T, hidden]. out must not alias x.
// Uses the scratch slots kMlpGate and kMlpUp.
absl::Status RunMlp(const Exec& exec, const MlpWeights& w, const float* x, int64_t tokens, float* out);

// out[T, hidden] = Σ_{e ∈ topk(softmax(router(x)))} w_e · expert_e(x)  (+ gated shared expert)
// The routing comes back to the host, which groups tokens by expert so that each expert runs one
// matmul over all the tokens routed to it; experts add into out in ascending order.
// x: [T, hidden]; out must not alias x. Uses the kMoe* and kShared* scratch slots and RunMlp's.
absl::Status RunMoe(const Exec& exec, const MoeWeights& w, const float* x, int64_t tokens, float* out);

}  // namespace tessera::llm
