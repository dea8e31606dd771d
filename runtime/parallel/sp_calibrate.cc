#include "runtime/parallel/sp_calibrate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/ops.h"
#include "runtime/base/status_macros.h"

namespace tessera::parallel {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

absl::StatusOr<SpCalibration> CalibrateSp(Communicator* comm, const SpCalibrationShape& shape,
                                          kernels::ThreadPool* pool) {
  if (shape.n_heads < 1 || shape.n_kv_heads < 1 || shape.head_dim < 1 || shape.n_heads % shape.n_kv_heads != 0 ||
      shape.message_bytes < 1) {
    return absl::InvalidArgumentError("CalibrateSp: bad shape");
  }
  const int N = comm->size(), me = comm->rank();
  double figures[2] = {0, 0};  // bytes/s, flop/s (rank 0's, broadcast)

  // Link: rank 0 ping-pongs with every other rank in turn; one direction moves `bytes` in half a
  // round trip. The slowest peer's median counts.
  const size_t bytes = static_cast<size_t>(shape.message_bytes);
  std::vector<char> buf(bytes, 1);
  constexpr int kRounds = 5;
  double slowest = INFINITY;
  for (int peer = 1; peer < N; ++peer) {
    std::vector<double> rates;
    for (int round = 0; round < kRounds; ++round) {
      if (me == 0) {
        const auto t0 = std::chrono::steady_clock::now();
        TS_ASSIGN_OR_RETURN(CommRequest s, comm->Isend(buf.data(), bytes, peer, Channel::kControl));
        TS_RETURN_IF_ERROR(s.Wait());
        TS_ASSIGN_OR_RETURN(CommRequest r, comm->Irecv(buf.data(), bytes, peer, Channel::kControl));
        TS_RETURN_IF_ERROR(r.Wait());
        rates.push_back(2.0 * static_cast<double>(bytes) / Seconds(t0));
      } else if (me == peer) {
        TS_ASSIGN_OR_RETURN(CommRequest r, comm->Irecv(buf.data(), bytes, 0, Channel::kControl));
        TS_RETURN_IF_ERROR(r.Wait());
        TS_ASSIGN_OR_RETURN(CommRequest s, comm->Isend(buf.data(), bytes, 0, Channel::kControl));
        TS_RETURN_IF_ERROR(s.Wait());
      }
    }
    if (me == 0) {
      std::nth_element(rates.begin(), rates.begin() + kRounds / 2, rates.end());
      slowest = std::min(slowest, rates[kRounds / 2]);
    }
  }

  if (me == 0) {
    figures[0] = N > 1 ? slowest : 0;
    // Attention: 256 queries over 1,024 keys, no mask; 4·D flops per (query, key, head). Best of 3.
    const int64_t nq = 256, nk = 1024, H = shape.n_heads, Hkv = shape.n_kv_heads, D = shape.head_dim;
    std::vector<float> q(nq * H * D, 0.01f), k(nk * Hkv * D, 0.02f), v(nk * Hkv * D, 0.03f), out(nq * H * D),
        lse(nq * H);
    kernels::AttentionParams p{.q = q.data(),
                               .num_q = nq,
                               .n_heads = H,
                               .n_kv_heads = Hkv,
                               .head_dim = D,
                               .k = k.data(),
                               .v = v.data(),
                               .num_kv = nk,
                               .causal = false,
                               .scale = 1.0f / std::sqrt(static_cast<float>(D)),
                               .out = out.data(),
                               .lse = lse.data()};
    double best = INFINITY;
    for (int i = 0; i < 3; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      kernels::AttentionWithLse(pool, p);
      best = std::min(best, Seconds(t0));
    }
    figures[1] = 4.0 * static_cast<double>(D * H * nq * nk) / best;
  }
  TS_RETURN_IF_ERROR(comm->Broadcast(figures, sizeof(figures), 0));
  return SpCalibration{.link_bytes_per_second = figures[0], .attention_flops_per_second = figures[1]};
}

}  // namespace tessera::parallel
