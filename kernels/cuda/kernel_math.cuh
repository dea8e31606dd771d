// The per-element arithmetic of the CUDA kernels (kernels/cuda/*.cu), as __host__ __device__ inline
// functions: the kernels only decide which thread computes what, and host code and tests
// (tests/unit/kernels/cuda/kernel_math_test.cc, which runs without a GPU) reuse exactly the
// arithmetic the device runs. Each function quotes the formula of the backend.h op it serves.
//
// Plain C++17 that g++ also compiles: CUDA-only spellings sit behind __CUDA_ARCH__.
//
//   float y = tessera::kernels::gpu::Silu(g) * up;            // SiluMul
//   uint16_t h = tessera::kernels::gpu::F32ToBf16Bits(x);     // the activation copy for cuBLASLt
#pragma once

#include <math.h>

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define TS_HOST_DEVICE __host__ __device__
#else
#define TS_HOST_DEVICE
#endif

namespace tessera::kernels::gpu {

// ---- Bit casts and bf16 ---------------------------------------------------------------------------

TS_HOST_DEVICE inline float BitsToF32(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
#endif
}

TS_HOST_DEVICE inline uint32_t F32ToBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
#endif
}

// bf16 (its 16 bits) → f32, exact.
TS_HOST_DEVICE inline float Bf16BitsToF32(uint16_t h) { return BitsToF32(static_cast<uint32_t>(h) << 16); }

// f32 → bf16 bits, round to nearest even, NaN stays NaN: the same bits as dtype.h's F32ToBf16 (and
// torch's cast), so activations cast on the device equal those cast on the host.
TS_HOST_DEVICE inline uint16_t F32ToBf16Bits(float f) {
  uint32_t bits = F32ToBits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// ---- Elementwise ----------------------------------------------------------------------------------

// silu(g) = g / (1 + e^−g)  (SiluMulParams)
TS_HOST_DEVICE inline float Silu(float g) { return g / (1.0f + expf(-g)); }

// sigmoid(g) = 1 / (1 + e^−g)  (SigmoidGateAddParams)
TS_HOST_DEVICE inline float Sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

// 1 / sqrt(mean(x²) + eps) from Σx² over `dim` elements  (RmsNormParams; LlamaRMSNorm in f32)
TS_HOST_DEVICE inline float RmsInvScale(float sum_sq, int64_t dim, float eps) {
  return 1.0f / sqrtf(sum_sq / static_cast<float>(dim) + eps);
}

// ---- Rotary embedding -----------------------------------------------------------------------------

// θ_i = pos · inv_freq[i], in f32 exactly as the CPU computes it.
TS_HOST_DEVICE inline float RopeAngle(int32_t pos, float inv_freq) { return static_cast<float>(pos) * inv_freq; }

// For a pair (a, b) and angle θ (c = cos θ, s = sin θ): a' = a·c − b·s, b' = b·c + a·s.
TS_HOST_DEVICE inline void RotatePair(float a, float b, float c, float s, float* a_out, float* b_out) {
  *a_out = a * c - b * s;
  *b_out = b * c + a * s;
}

// Offsets within a head of pair i (i < rot_dim / 2): kNeox (rotate_half) pairs (i, i + rot_dim/2),
// interleaved (GPT-J) pairs (2i, 2i + 1).
struct PairOffsets {
  int64_t a;
  int64_t b;
};
TS_HOST_DEVICE inline PairOffsets RopePairOffsets(bool interleaved, int64_t i, int64_t rot_dim) {
  if (interleaved) return {2 * i, 2 * i + 1};
  return {i, i + rot_dim / 2};
}

// ---- Attention ------------------------------------------------------------------------------------

// Keys query row qi sees (AttentionParams): with causal, keys j with k_pos0 + j <= q_pos0 + qi,
// clamped to [0, num_kv]; without, all num_kv.
TS_HOST_DEVICE inline int64_t VisibleKeys(bool causal, int64_t num_kv, int64_t q_pos0, int64_t k_pos0, int64_t qi) {
  if (!causal) return num_kv;
  const int64_t n = q_pos0 + qi - k_pos0 + 1;
  return n < 0 ? 0 : (n > num_kv ? num_kv : n);
}

// The cache slot of key j: j itself for contiguous keys (block_table null), else
// block_table[j / block_size] · block_size + j % block_size.
TS_HOST_DEVICE inline int64_t KvSlot(const int32_t* block_table, int64_t block_size, int64_t j) {
  if (block_table == nullptr) return j;
  return static_cast<int64_t>(block_table[j / block_size]) * block_size + j % block_size;
}

// Running state of an online softmax over scores s_j: m = max s_j, l = Σ exp(s_j − m).
struct SoftmaxState {
  float m = -INFINITY;
  float l = 0.0f;
};

// Folds score s into `st`. The running output acc = Σ exp(s_j − m) v_j must then become
// acc · *rescale + *weight · v (rescale = exp(m_old − m_new) when the max grows, else 1). The same
// steps as the CPU reference (kernels/cpu/ref/attention_ref.cc).
TS_HOST_DEVICE inline void OnlineSoftmaxAdd(SoftmaxState* st, float s, float* rescale, float* weight) {
  *rescale = 1.0f;
  if (s > st->m) {
    *rescale = expf(st->m - s);
    st->l *= *rescale;
    st->m = s;
  }
  *weight = expf(s - st->m);
  st->l += *weight;
}

// When partial states over disjoint key sets are merged under the overall max m_total, the factor
// for a partial with max m_part: exp(m_part − m_total), 0 for a partial that saw no key.
TS_HOST_DEVICE inline float PartialWeight(float m_part, float m_total) {
  return m_part == -INFINITY ? 0.0f : expf(m_part - m_total);
}

// lse = log Σ exp(s_j) = m + log l; −inf for a row that saw no key (l = 0).
TS_HOST_DEVICE inline float LogSumExp(float m, float l) { return l > 0.0f ? m + logf(l) : -INFINITY; }

// ---- MoE routing ----------------------------------------------------------------------------------

// Top-k order (MoeRouteParams): larger value first, then lower index; NaN ranks below every number.
TS_HOST_DEVICE inline bool RanksBefore(float va, int64_t ia, float vb, int64_t ib) {
  const bool an = va != va;
  const bool bn = vb != vb;
  if (an != bn) return bn;
  if (!an && va != vb) return va > vb;
  return ia < ib;
}

// x = exp(x − max x) / Σ exp(x − max x) over one row of n, in place (NaN-ignoring max, as fmax).
TS_HOST_DEVICE inline void SoftmaxRow(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = fmaxf(mx, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = expf(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// The k best of p[0..n) in RanksBefore order, best first, into ids/weights [k]; when `renormalize`,
// the weights are then divided by their sum. Requires 1 <= k <= n. Pick j is the best entry ranked
// strictly after pick j − 1, so no per-row marks are needed: O(k·n), for the few experts of a router.
TS_HOST_DEVICE inline void TopKRow(const float* p, int64_t n, int64_t k, bool renormalize, int32_t* ids,
                                   float* weights) {
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = -1;
    for (int64_t i = 0; i < n; ++i) {
      if (j > 0 && !RanksBefore(weights[j - 1], ids[j - 1], p[i], i)) continue;
      if (best < 0 || RanksBefore(p[i], i, p[best], best)) best = i;
    }
    if (best < 0) {  // k > n: a caller error; leave no read out of bounds
      ids[j] = -1;
      weights[j] = 0.0f;
      break;
    }
    ids[j] = static_cast<int32_t>(best);
    weights[j] = p[best];
  }
  if (renormalize) {
    float sum = 0.0f;
    for (int64_t j = 0; j < k; ++j) sum += weights[j];
    for (int64_t j = 0; j < k; ++j) weights[j] /= sum;
  }
}

}  // namespace tessera::kernels::gpu
