#include "kernels/cpu/packed_linear.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/avx512/packed_vnni.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/ops.h"

namespace tessera::kernels {
namespace {

thread_local std::vector<avx512::PackedXGroup> tls_xg;
thread_local std::vector<float> tls_xf;

// Weight rows in L1-sized tiles, each run against all rows of x four at a time (LinearDriver's int8
// path does the same); at least 64 KiB of weights per claimed chunk. rows_of(m, n0, n1) computes
// rows [m, m + 4) of y for outputs [n0, n1).
template <class F>
void OverRowTiles(ThreadPool* pool, int64_t M, const PackedLinear& w, F&& rows_of) {
  const int64_t tile = std::max<int64_t>(1, 16384 / w.row_bytes);
  const int64_t grain = std::max<int64_t>(1, 65536 / w.row_bytes);
  auto rows = [&](int64_t n0, int64_t n1) {
    for (int64_t t0 = n0; t0 < n1; t0 += tile) {
      const int64_t t1 = std::min(n1, t0 + tile);
      for (int64_t m = 0; m < M; m += 4) rows_of(m, t0, t1);
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(w.n, rows, M <= 4 ? grain : std::min(grain, tile));
  } else {
    rows(0, w.n);
  }
}

// f32 rows of x for PackedRowsF32: [M, groups · 128] with zeros past K, then the block sums
// [M, groups · 4].
void PadActivations(const float* x, int64_t M, const PackedLinear& w, float* out) {
  const int64_t width = w.groups * 128;
  float* sums = out + M * width;
  for (int64_t m = 0; m < M; ++m) {
    float* row = out + m * width;
    std::memcpy(row, x + m * w.k, sizeof(float) * w.k);
    std::memset(row + w.k, 0, sizeof(float) * (width - w.k));
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

void LinearPacked(ThreadPool* pool, const float* x, int64_t M, const PackedLinear& w, float* y, Activations act) {
  if (M <= 0 || w.n <= 0) return;
  const int64_t G = w.groups;
  if (act == Activations::kF32) {
    if (M > 4) return Linear(pool, x, M, w.k, w.original, w.dtype, w.n, y, Activations::kF32);
    tls_xf.resize(M * G * (128 + 4));
    float* xf = tls_xf.data();
    PadActivations(x, M, w, xf);
    const float* sums = xf + M * G * 128;
    return OverRowTiles(
        pool, M, w, [&](int64_t m, int64_t n0, int64_t n1) { avx512::PackedRowsF32(w, xf, sums, M, n0, n1, y, w.n); });
  }
  if (static_cast<int64_t>(tls_xg.size()) < M * G) tls_xg.resize(M * G);
  avx512::PackedXGroup* xg = tls_xg.data();
  auto quantize = [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) avx512::PackActivations(w, x + m * w.k, xg + m * G);
  };
  if (pool != nullptr && M > 1) {
    pool->ParallelFor(M, quantize, std::max<int64_t>(1, 16384 / w.k));
  } else {
    quantize(0, M);
  }
  OverRowTiles(pool, M, w, [&](int64_t m, int64_t n0, int64_t n1) {
    avx512::PackedRows(w, xg + m * G, std::min<int64_t>(4, M - m), n0, n1, y + m * w.n, w.n);
  });
}

}  // namespace tessera::kernels
