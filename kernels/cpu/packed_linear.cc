#include "kernels/cpu/packed_linear.h"

#include <algorithm>
#include <cstring>

#include "absl/container/inlined_vector.h"
#include "kernels/cpu/avx512/packed_vnni.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/linear_driver.h"
#include "kernels/cpu/ops.h"

namespace tessera::kernels {
namespace {

// ForEachRowTile over the rows of all matrices in ws.
template <class F>
void OverRowTiles(ThreadPool* pool, int64_t M, std::span<const PackedLinear* const> ws, F&& rows_of) {
  absl::InlinedVector<int64_t, 4> heights;
  for (const PackedLinear* w : ws) heights.push_back(w->n);
  ForEachRowTile(pool, M, heights, ws[0]->row_bytes, rows_of);
}

// f32 rows of x for PackedRowsF32: [M, groups · 128] with zeros past K, then, for Q4_1 (whose
// mins multiply them), the block sums [M, groups · 4].
void PadActivations(const float* x, int64_t M, const PackedLinear& w, float* out) {
  const int64_t width = w.groups * 128;
  float* sums = out + M * width;
  for (int64_t m = 0; m < M; ++m) {
    float* row = out + m * width;
    std::memcpy(row, x + m * w.k, sizeof(float) * w.k);
    std::memset(row + w.k, 0, sizeof(float) * (width - w.k));
    if (w.dtype != DType::kQ4_1) continue;
    for (int64_t b = 0; b < w.groups * 4; ++b) {
      float sum = 0.0f;
      for (int i = 0; i < 32; ++i) sum += row[32 * b + i];
      sums[m * w.groups * 4 + b] = sum;
    }
  }
}

}  // namespace

int64_t PackedGroupBytes(DType dt) {
  switch (dt) {
    case DType::kQ4_1:
      return 80;
    case DType::kQ8_0:
      return 136;
    default:
      return 0;
  }
}

bool PackedLinearAvailable() {
  static const bool available = ActiveIsa() == Isa::kAvx512 && __builtin_cpu_supports("avx512vnni");
  return available;
}

std::unique_ptr<PackedLinear> PackForLinear(const void* w, DType dt, int64_t N, int64_t K) {
  const int64_t group_bytes = PackedGroupBytes(dt);
  if (group_bytes == 0 || !PackedLinearAvailable() || N <= 0 || K <= 0) return nullptr;
  auto p = std::make_unique<PackedLinear>();
  p->dtype = dt;
  p->original = w;
  p->n = N;
  p->k = K;
  const int64_t nb = K / 32;
  p->groups = (nb + 3) / 4;
  p->row_bytes = p->groups * group_bytes;
  p->data.assign(N * p->row_bytes, 0);
  const int64_t src_row_bytes = DTypeRowBytes(dt, K);
  const int64_t block_bytes = DTypeBlockBytes(dt);
  const int64_t quant_bytes = dt == DType::kQ4_1 ? 16 : 32;
  const int64_t scale_offset = dt == DType::kQ4_1 ? 4 : 2;  // where a block's quants start
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* src = static_cast<const uint8_t*>(w) + n * src_row_bytes;
    uint8_t* dst = p->data.data() + n * p->row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = src + b * block_bytes;
      uint8_t* group = dst + (b / 4) * group_bytes;
      const int64_t j = b % 4;
      std::memcpy(group + j * quant_bytes, blk + scale_offset, quant_bytes);
      std::memcpy(group + 4 * quant_bytes + 2 * j, blk, 2);                                  // d
      if (dt == DType::kQ4_1) std::memcpy(group + 4 * quant_bytes + 8 + 2 * j, blk + 2, 2);  // m
    }
  }
  return p;
}

void LinearPacked(ThreadPool* pool, const float* x, int64_t M, const PackedLinear& w, float* y, Activations act,
                  CpuWorkspace* workspace) {
  const PackedLinear* ws[] = {&w};
  float* ys[] = {y};
  LinearPackedMany(pool, x, M, ws, ys, act, workspace);
}

void LinearPackedMany(ThreadPool* pool, const float* x, int64_t M, std::span<const PackedLinear* const> ws,
                      std::span<float* const> ys, Activations act, CpuWorkspace* workspace) {
  if (M <= 0 || ws.empty()) return;
  CpuWorkspace local;
  CpuWorkspace& scratch = workspace != nullptr ? *workspace : local;
  const PackedLinear& w0 = *ws[0];
  const int64_t G = w0.groups;
  if (act == Activations::kF32) {
    if (M > kQuantRowsMaxM) {
      for (size_t i = 0; i < ws.size(); ++i) {
        Linear(pool, x, M, ws[i]->k, ws[i]->original, ws[i]->dtype, ws[i]->n, ys[i], Activations::kF32, &scratch);
      }
      return;
    }
    float* xf = scratch.activations().Get<float>(M * G * (128 + 4));
    PadActivations(x, M, w0, xf);
    const float* sums = xf + M * G * 128;
    return OverRowTiles(pool, M, ws, [&](size_t i, int64_t, int64_t n0, int64_t n1) {
      avx512::PackedRowsF32(*ws[i], xf, sums, M, n0, n1, ys[i], ws[i]->n);
    });
  }
  avx512::PackedXGroup* xg = scratch.activations().Get<avx512::PackedXGroup>(M * G);
  const int64_t nb = w0.k / 32;
  Q8Block* blocks = scratch.row_blocks().Get<Q8Block>(M * nb);
  ForEachXRow(pool, M, w0.k,
              [&](int64_t m) { avx512::PackActivations(w0, x + m * w0.k, blocks + m * nb, xg + m * G); });
  OverRowTiles(pool, M, ws, [&](size_t i, int64_t m, int64_t n0, int64_t n1) {
    const int64_t n = ws[i]->n;
    avx512::PackedRows(*ws[i], xg + m * G, std::min(kQuantRowsMaxM, M - m), n0, n1, ys[i] + m * n, n);
  });
}

}  // namespace tessera::kernels
