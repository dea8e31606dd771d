// CPU kernels: the operator surface that runtime/ calls.
//
// Every op here is plain C++ over raw pointers with the shape of each buffer written beside it.
// Shapes are validated by the caller (runtime/); kernels never see outside input directly.
// Activations are always f32; large weight matrices may be f32, bf16, f16 or one of ggml's block-
// quantized types (DType::kQ8_0 ... kQ6_K, see dtype.h) and are read in place (mmapped),
// accumulated in f32 (or int32 within a quantized block). Each op is implemented three times — scalar reference (ref/),
// AVX2+FMA (avx2/), AVX-512 (avx512/) — and the fastest one the CPU supports is chosen once at
// start-up (see isa.h; TESSERA_CPU_ISA=scalar|avx2|avx512 overrides).
//
//   tessera::kernels::ThreadPool pool(2);
//   // y[M,N] = x[M,K] · w[N,K]ᵀ, w in bf16 as nn.Linear stores it
//   tessera::kernels::Linear(&pool, x, M, K, w, DType::kBF16, N, y);
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/workspace.h"
#include "kernels/dtype.h"

namespace tessera::kernels {

// y[M,N] = x[M,K] · w[N,K]ᵀ   (torch: y = x @ w.T, i.e. nn.Linear without bias)
// Float weights: small M takes the matvec (decode) path, larger M the blocked f32 matmul (prefill).
// x, y: f32 row-major; w: `w_dtype`, row-major [N, K]: for a quantized type each of the N rows is
// DTypeRowBytes(w_dtype, K) bytes of blocks (a GGUF tensor of ne0 = K, ne1 = N), read in place.
// `pool` may be null (single thread). Requires LinearSupports(w_dtype, K).
//
// Quantized weights with Activations::kF32: small M dequantizes each weight block in registers
// and multiplies it with the f32 rows of x; larger M dequantizes weight blocks into the f32 GEMM's
// packed panels. Either way the result is x·dequant(w)ᵀ with f32 rounding only (as transformers
// computes a GGUF model it dequantized), at the cost of the int8 path's speed.
//
// Quantized weights with Activations::kInt8 (the default; any M): each row of x is quantized to int8 per block of 32
// and multiplied with the weight blocks in integer arithmetic, with llama.cpp's numerics: for Q8_0, Q4_0, Q5_0, Q4_1
// and Q5_1 weights the activations are exactly ggml's block_q8_0 / block_q8_1 (d = max|x|/127 rounded to f16, q =
// round(x·127/max|x|), s = d·Σq rounded to f16; see Q8Block in linear_driver.h), and each block contributes d_w·d·Σ
// q_w·q (+ m_w·s), as ggml_vec_dot_<type>_q8_<0|1> does, prompt rows included (ggml quantizes src1 of every quantized
// mul_mat). The result differs from x·dequant(w)ᵀ by at most
//     Σ_blocks b  Σ_{k in b} |dequant(w)[n, k]|·|x_k − d·q_k|  +  |m_w|·|s − d·Σq|   (+ f32 rounding),
// with |x_k − d·q_k| <= d/2 + 127·|d − max|x|/127| ≈ 0.56·d (d here before its f16 rounding), i.e. about 2⁻⁸·Σ|x·w| at
// worst and far less as the errors cancel: for Gaussian x and random blocks, K = 2048, the RMS error is about 0.5% of
// the RMS of y.
// `ws`: the caller's scratch (workspace.h), kept between calls; nullptr: a workspace local to this
// call (it allocates).
void Linear(ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w, DType w_dtype, int64_t N, float* y,
            Activations act = Activations::kInt8, CpuWorkspace* ws = nullptr);

// Whether Linear accepts weights of `w_dtype` with rows of K elements: every DType, with K a
// multiple of DTypeBlockSize(w_dtype) (32 or 256 for quantized types) and K >= 0.
constexpr bool LinearSupports(DType w_dtype, int64_t K) { return DTypeRowValid(w_dtype, K); }

// y[r,:] = x[r,:] / sqrt(mean(x[r,:]²) + eps) * weight[:]   (LlamaRMSNorm, computed in f32)
// x, y: [rows, dim] (may alias); weight: [dim].
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y);

// Rotary embedding in place, "rotate_half" (GPT-NeoX / HF Llama) layout:
//   x' [..., :d/2] = x1·cos − x2·sin ;  x'[..., d/2:] = x2·cos + x1·sin
// with θ_i = pos · inv_freq[i], i < rot_dim/2. Dimensions past rot_dim are left untouched.
// x: [tokens, heads, head_dim]; positions: [tokens]; inv_freq: [rot_dim/2].
void RopeNeox(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim, const int32_t* positions,
              const float* inv_freq);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(−g)). n elements; out may alias gate.
void SiluMul(const float* gate, const float* up, int64_t n, float* out);

// Rotary embedding in place on adjacent pairs (GPT-J / ggml "normal" mode), same angles as RopeNeox:
//   x'[..., 2i] = x[2i]·cos − x[2i+1]·sin ;  x'[..., 2i+1] = x[2i+1]·cos + x[2i]·sin
void RopeInterleaved(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dim,
                     const int32_t* positions, const float* inv_freq);

// x[i] += y[i] for i < n (the residual connection).
void Add(float* x, const float* y, int64_t n);

// Softmax over each row in place: x: [rows, n].
void Softmax(float* x, int64_t rows, int64_t n);

// The k largest of x[0..n) (ties: lower index first), written in descending order.
// idx: [k], val: [k]. Requires 1 <= k <= n.
void TopK(const float* x, int64_t n, int64_t k, int32_t* idx, float* val);

// AttentionParams: kernels/backend.h.
// Parallelizes over (query, head) pairs when pool is non-null.
void AttentionWithLse(ThreadPool* pool, const AttentionParams& p);

}  // namespace tessera::kernels
