// ops.h entry points: each forwards to the table of the ISA chosen at start-up (see isa.h).
#include "kernels/cpu/ops.h"

#include "kernels/cpu/isa.h"

namespace tessera::kernels {

void Linear(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N, float* y,
            Activations act, CpuWorkspace* ws) {
  if (ws == nullptr) {
    CpuWorkspace local;
    return ActiveOps().linear(pool, x, M, K, w, w_dtype, N, y, act, &local);
  }
  ActiveOps().linear(pool, x, M, K, w, w_dtype, N, y, act, ws);
}

void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  ActiveOps().rms_norm(x, weight, rows, dim, eps, y);
}

void RopeNeox(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim, const int32_t* positions,
              const float* inv_freq) {
  ActiveOps().rope_neox(x, tokens, heads, head_dim, rot_dim, positions, inv_freq);
}

void RopeInterleaved(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim,
                     const int32_t* positions, const float* inv_freq) {
  ActiveOps().rope_interleaved(x, tokens, heads, head_dim, rot_dim, positions, inv_freq);
}

void Add(float* x, const float* y, int64_t n) { ActiveOps().add(x, y, n); }

void SiluMul(const float* gate, const float* up, int64_t n, float* out) { ActiveOps().silu_mul(gate, up, n, out); }

void Softmax(float* x, int64_t rows, int64_t n) { ActiveOps().softmax(x, rows, n); }

void TopK(const float* x, int64_t n, int64_t k, int32_t* idx, float* val) { ActiveOps().top_k(x, n, k, idx, val); }

void AttentionWithLse(ThreadPool* pool, const AttentionParams& p) { ActiveOps().attention_with_lse(pool, p); }

}  // namespace tessera::kernels
