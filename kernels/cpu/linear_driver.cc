#include "kernels/cpu/linear_driver.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace tessera::kernels {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t RoundUp(int64_t a, int64_t b) { return CeilDiv(a, b) * b; }

// Splits `total` into ceil(total / cap) nearly equal blocks whose size is a multiple of `align`
// (cap must be one too) and returns that block size: K = 300, cap 256 → 152, not 256 + 44.
int64_t BalancedBlock(int64_t total, int64_t cap, int64_t align) {
  const int64_t parts = CeilDiv(total, cap);
  return std::min(cap, RoundUp(CeilDiv(total, parts), align));
}

// Byte offset of element (row, col) of a [*, K] matrix of `dt`; col on a block boundary.
int64_t ElementOffset(DType dt, int64_t K, int64_t row, int64_t col) {
  return row * DTypeRowBytes(dt, K) + DTypeRowBytes(dt, col);
}

// y[i, j] = Σ_k x[i, k] · w[j, k] for i < m, j < n: x [m, K] (row stride K), w [n, K] of `dt`
// (row stride K; a quantized dt is dequantized while packing), y row stride ldy. The loop nest of a
// BLIS-style GEMM.
void GemmTask(const LinearKernels& kern, const float* x, int64_t m, int64_t K, const char* w, DType dt, int64_t n,
              float* y, int64_t ldy, AlignedScratch& panel_a, AlignedScratch& panel_b) {
  const int64_t bs = DTypeBlockSize(dt);
  const int64_t kc = bs == 1 ? BalancedBlock(K, kern.kc, 8) : BalancedBlock(K, std::max(kern.kc, bs), bs);
  const int64_t nc = BalancedBlock(n, kern.nc, kern.nr);
  const int64_t mc = BalancedBlock(m, kern.mc, kern.mr);
  float* bp = panel_b.Get<float>(RoundUp(nc, kern.nr) * kc);
  float* ap = panel_a.Get<float>(RoundUp(mc, kern.mr) * kc);
  for (int64_t jc = 0; jc < n; jc += nc) {
    const int64_t ncur = std::min(nc, n - jc);
    for (int64_t pc = 0; pc < K; pc += kc) {
      const int64_t kcur = std::min(kc, K - pc);
      kern.pack_b(w + ElementOffset(dt, K, jc, pc), dt, K, ncur, kcur, bp);
      for (int64_t ic = 0; ic < m; ic += mc) {
        const int64_t mcur = std::min(mc, m - ic);
        kern.pack_a(x + ic * K + pc, K, mcur, kcur, ap);
        for (int64_t jr = 0; jr < ncur; jr += kern.nr) {
          for (int64_t ir = 0; ir < mcur; ir += kern.mr) {
            kern.micro(kcur, ap + ir * kcur, bp + jr * kcur, y + (ic + ir) * ldy + jc + jr, ldy,
                       std::min(kern.mr, mcur - ir), std::min(kern.nr, ncur - jr), pc > 0);
          }
        }
      }
    }
  }
}

}  // namespace

void QuantizeActivations(const float* x, int64_t K, DType w_dtype, Q8Block* xq) {
  const bool f16 = Q8ScalesAreF16(w_dtype);
  auto round_f16 = [](float v) { return F16ToF32(F32ToF16(v)); };
  for (int64_t b = 0; b < K / 32; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      // |x·id| <= 127 up to one rounding, so the result is within [−127, 127]; lrint rounds half to
      // even in the default rounding mode.
      const long q = std::lrint(xb[i] * id);
      xq[b].q[i] = static_cast<int8_t>(q);
      sum += static_cast<int>(q);
    }
    const float s = d * static_cast<float>(sum);
    xq[b].d = f16 ? round_f16(d) : d;
    xq[b].s = f16 ? round_f16(s) : s;
  }
}

void LinearDriver(const LinearKernels& kern, ThreadPool* pool, const float* x, int64_t M, int64_t K, const void* w,
                  DType w_dtype, int64_t N, float* y, Activations act, CpuWorkspace& ws) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    std::memset(y, 0, sizeof(float) * M * N);
    return;
  }
  const int64_t threads = pool != nullptr ? pool->num_threads() : 1;
  const int64_t row_bytes = DTypeRowBytes(w_dtype, K);
  // At least 64 KiB of weight rows per chunk, so that claiming a chunk costs nothing in comparison.
  const int64_t grain = std::max<int64_t>(1, 65536 / row_bytes);
  const bool quantized = DTypeIsQuantized(w_dtype);
  if (quantized && act == Activations::kInt8) {
    const int64_t nb = K / 32;
    Q8Block* xq = ws.activations().Get<Q8Block>(M * nb);
    ForEachXRow(pool, M, K, [&](int64_t m) { kern.quantize(x + m * K, K, w_dtype, xq + m * nb); });
    const auto* wq = static_cast<const uint8_t*>(w);
    const int64_t heights[] = {N};
    ForEachRowTile(pool, M, heights, row_bytes, [&](size_t, int64_t m, int64_t t0, int64_t t1) {
      kern.quant_rows(w_dtype, xq + m * nb, std::min(kQuantRowsMaxM, M - m), K, wq, row_bytes, t0, t1, y + m * N, N);
    });
    return;
  }
  if (M <= kern.max_skinny_m) {
    auto rows = [&](int64_t n0, int64_t n1) {
      if (quantized) {
        kern.quant_skinny(w_dtype, x, M, K, static_cast<const uint8_t*>(w), row_bytes, n0, n1, y, N);
      } else {
        kern.skinny(x, M, K, w, w_dtype, n0, n1, y, N);
      }
    };
    if (pool != nullptr) {
      pool->ParallelFor(N, rows, grain);
    } else {
      rows(0, N);
    }
    return;
  }
  // One task per thread: contiguous ranges of whole nr-panels of N, or of mr-panels of M when N has
  // too few panels to go round.
  const int64_t n_panels = CeilDiv(N, kern.nr);
  const int64_t m_panels = CeilDiv(M, kern.mr);
  const bool split_n = n_panels >= 4 * threads || n_panels >= m_panels;
  const int64_t panels = split_n ? n_panels : m_panels;
  const int64_t tasks = std::min(threads, panels);
  const char* wb = static_cast<const char*>(w);
  ws.ReserveTasks(tasks);
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p0 = panels * t / tasks;
      const int64_t p1 = panels * (t + 1) / tasks;
      if (split_n) {
        const int64_t n0 = p0 * kern.nr;
        const int64_t n1 = std::min(N, p1 * kern.nr);
        GemmTask(kern, x, M, K, wb + n0 * row_bytes, w_dtype, n1 - n0, y + n0, N, ws.PanelA(t), ws.PanelB(t));
      } else {
        const int64_t m0 = p0 * kern.mr;
        const int64_t m1 = std::min(M, p1 * kern.mr);
        GemmTask(kern, x + m0 * K, m1 - m0, K, wb, w_dtype, N, y + m0 * N, N, ws.PanelA(t), ws.PanelB(t));
      }
    }
  };
  if (pool != nullptr && tasks > 1) {
    pool->ParallelFor(tasks, run, 1);
  } else {
    run(0, tasks);
  }
}

}  // namespace tessera::kernels
