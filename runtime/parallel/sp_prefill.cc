// Prefill schedules: TokenRing (pass-Q) and zigzag Ring attention (pass-KV). See seeds.md §1.3–1.4
// for the schedules; the comments below give the case analysis each branch relies on.
//
// Zigzag notation: N ranks, chunk c tokens, rank r holds chunk r (rows [0,c), "first half") and
// chunk 2N−1−r (rows [c,2c), "second half"). For chunks a < b every query of b sees all of a.
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/parallel/sp_attention.h"
#include "runtime/parallel/sp_internal.h"
#include "runtime/parallel/sp_merge.h"

namespace tessera::parallel {
namespace {

using internal::AttendBlock;
using internal::BlockArgs;
using internal::ComputeTimer;
using internal::WallTimer;

// Per-call bookkeeping shared by both algorithms.
class StepRecorder {
 public:
  explicit StepRecorder(SpStats* stats) : stats_(stats) {}

  absl::StatusOr<CommRequest> Send(Communicator* comm, int step, const float* buf, int64_t data_elems,
                                   int64_t lse_elems, int peer, SpDirection dir, Channel ch) {
    stats_->transfers.push_back({step, peer, dir, true, data_elems, lse_elems});
    return comm->Isend(buf, sizeof(float) * (data_elems + lse_elems), peer, ch);
  }
  absl::StatusOr<CommRequest> Recv(Communicator* comm, int step, float* buf, int64_t data_elems, int64_t lse_elems,
                                   int peer, SpDirection dir, Channel ch) {
    stats_->transfers.push_back({step, peer, dir, false, data_elems, lse_elems});
    return comm->Irecv(buf, sizeof(float) * (data_elems + lse_elems), peer, ch);
  }
  absl::Status WaitAll(int step, std::vector<CommRequest>& reqs) {
    WallTimer t;
    absl::Status first;
    for (CommRequest& r : reqs) {
      absl::Status s = r.Wait();
      if (first.ok() && !s.ok()) first = s;
    }
    reqs.clear();
    stats_->wait_seconds[step] += t.Seconds();
    return first;
  }

 private:
  SpStats* stats_;
};

// Local causal zigzag block (step 0): rows [0,c) see chunk r causally; rows [c,2c) see all of chunk
// r and chunk 2N−1−r causally. Non-causal: all local rows see all local keys.
int64_t LocalStep(const SpAttentionOptions& o, float scale, const SpLayout& layout, int rank, const float* q,
                  const float* k, const float* v, float* out, float* lse, float* tmp_out, float* tmp_lse) {
  const int64_t H = o.n_heads, Hkv = o.n_kv_heads, D = o.head_dim;
  const int64_t c = layout.chunk;
  const auto segs = layout.Segments(rank);
  int64_t flops = 0;
  if (!layout.causal) {
    flops += AttendBlock(o.pool, H, Hkv, D, scale, o.dry_run,
                         {.q = q,
                          .q_rows = c,
                          .q_pos0 = segs[0].pos_begin,
                          .k = k,
                          .v = v,
                          .kv_rows = layout.ValidCount(segs[0].pos_begin, c),
                          .k_pos0 = segs[0].pos_begin,
                          .causal = false,
                          .out = out,
                          .lse = lse});
    return flops;
  }
  const int64_t va = layout.ValidCount(segs[0].pos_begin, c);
  const int64_t vb = layout.ValidCount(segs[1].pos_begin, c);
  flops += AttendBlock(o.pool, H, Hkv, D, scale, o.dry_run,
                       {.q = q,
                        .q_rows = c,
                        .q_pos0 = segs[0].pos_begin,
                        .k = k,
                        .v = v,
                        .kv_rows = va,
                        .k_pos0 = segs[0].pos_begin,
                        .causal = true,
                        .out = out,
                        .lse = lse});
  flops += AttendBlock(o.pool, H, Hkv, D, scale, o.dry_run,
                       {.q = q + c * H * D,
                        .q_rows = c,
                        .q_pos0 = segs[1].pos_begin,
                        .k = k,
                        .v = v,
                        .kv_rows = va,
                        .k_pos0 = segs[0].pos_begin,
                        .causal = false,
                        .out = out + c * H * D,
                        .lse = lse + c * H});
  flops += AttendBlock(o.pool, H, Hkv, D, scale, o.dry_run,
                       {.q = q + c * H * D,
                        .q_rows = c,
                        .q_pos0 = segs[1].pos_begin,
                        .k = k + c * Hkv * D,
                        .v = v + c * Hkv * D,
                        .kv_rows = vb,
                        .k_pos0 = segs[1].pos_begin,
                        .causal = true,
                        .out = tmp_out,
                        .lse = tmp_lse});
  if (!o.dry_run) MergePartial(out + c * H * D, lse + c * H, tmp_out, tmp_lse, c, H, D);
  return flops;
}

// Output rows of padding positions: 0 with lse = −inf.
void ClearPadding(const SpLayout& layout, int rank, int64_t H, int64_t D, float* out, float* lse) {
  for (const auto& s : layout.Segments(rank)) {
    const int64_t valid = layout.ValidCount(s.pos_begin, s.length);
    for (int64_t i = s.local_begin + valid; i < s.local_begin + s.length; ++i) {
      std::memset(out + i * H * D, 0, sizeof(float) * H * D);
      for (int64_t h = 0; h < H; ++h) lse[i * H + h] = -INFINITY;
    }
  }
}

}  // namespace

// TokenRing. Rank r at step s holds the queries of origin o = (r+s) mod N and sends them on to
// r−1; the partial it computes goes back to o one step later (channel kOutput).
// Causal zigzag, s ≥ 1 (seeds.md §1.4):
//   o > r ("non-wrapped", r+s < N): both chunks of o lie after chunk r and before chunk 2N−1−r, so
//     the full query block attends to the first half of the local KV only.
//   o < r ("wrapped"): chunk o precedes everything local; chunk 2N−1−o follows everything local, so
//     only the second half of the queries is needed, against the full local KV.
// Hence the query message r → r−1 at step s is full iff the receiver is non-wrapped at s+1, i.e.
// r ≥ 1 and r+s < N, and a partial is half-size (second-half rows) iff its holder was wrapped.
absl::Status SequenceParallelAttention::RunTokenRing(const SpLayout& layout, const SpPrefillArgs& args) {
  const SpAttentionOptions& o = options_;
  const int64_t H = o.n_heads, Hkv = o.n_kv_heads, D = o.head_dim;
  const int N = comm_->size();
  const int r = comm_->rank();
  const int64_t L = layout.local_tokens;
  const int64_t c = layout.chunk;
  const bool zz = layout.causal;
  const float scale = o.scale;
  const int64_t row_q = H * D;
  const int64_t part_floats = L * row_q + L * H;

  std::vector<float> lse_store;
  float* acc_lse = args.lse;
  if (acc_lse == nullptr) {
    lse_store.assign(L * H, -INFINITY);
    acc_lse = lse_store.data();
  }
  float* acc_out = args.out;
  std::vector<float> qbuf[2];
  qbuf[0].resize(L * row_q);
  qbuf[1].resize(L * row_q);
  std::vector<float> part[2] = {std::vector<float>(part_floats), std::vector<float>(part_floats)};
  std::vector<float> recv_part(part_floats);
  std::vector<float> tmp(c * row_q + c * H);
  StepRecorder rec(&stats_);

  const int prev = (r - 1 + N) % N;
  const int next = (r + 1) % N;
  const float* q_cur = args.q;
  auto wrapped = [&](int s) { return zz && s > 0 && r + s >= N; };
  auto partial_rows = [&](int s) -> int64_t { return wrapped(s) ? c : L; };

  for (int s = 0; s < N; ++s) {
    std::vector<CommRequest> q_reqs, out_reqs;
    // 1. Queries for step s+1.
    if (s < N - 1) {
      const bool send_full = !zz || (r >= 1 && r + s < N);
      const float* src = send_full ? q_cur : q_cur + c * row_q;
      TS_ASSIGN_OR_RETURN(CommRequest sreq, rec.Send(comm_, s, src, (send_full ? L : c) * row_q, 0, prev,
                                                     SpDirection::kQuery, Channel::kQuery));
      q_reqs.push_back(std::move(sreq));
      const bool recv_full = !wrapped(s + 1);
      float* dst = qbuf[(s + 1) % 2].data() + (recv_full ? 0 : c * row_q);
      TS_ASSIGN_OR_RETURN(CommRequest rreq, rec.Recv(comm_, s, dst, (recv_full ? L : c) * row_q, 0, next,
                                                     SpDirection::kQuery, Channel::kQuery));
      q_reqs.push_back(std::move(rreq));
    }
    // 2. The partial of step s−1 back to its owner; ours from the rank that held our queries.
    int64_t in_rows = 0;
    if (s >= 2) {
      const int owner = (r + s - 1) % N;
      const int64_t rows = partial_rows(s - 1);
      const std::vector<float>& p = part[(s - 1) % 2];
      TS_ASSIGN_OR_RETURN(CommRequest sreq, rec.Send(comm_, s, p.data(), rows * row_q, rows * H, owner,
                                                     SpDirection::kOutput, Channel::kOutput));
      out_reqs.push_back(std::move(sreq));
      const int holder = (r - (s - 1) + N) % N;
      in_rows = (!zz || r >= s - 1) ? L : c;
      TS_ASSIGN_OR_RETURN(CommRequest rreq, rec.Recv(comm_, s, recv_part.data(), in_rows * row_q, in_rows * H, holder,
                                                     SpDirection::kOutput, Channel::kOutput));
      out_reqs.push_back(std::move(rreq));
    }
    // 3. Compute step s.
    {
      ComputeTimer t(o.pool != nullptr);
      if (s == 0) {
        stats_.flops[0] += LocalStep(o, scale, layout, r, args.q, args.k, args.v, acc_out, acc_lse, tmp.data(),
                                     tmp.data() + c * row_q);
      } else {
        const int origin = (r + s) % N;
        const auto origin_segs = layout.Segments(origin);
        const auto segs = layout.Segments(r);
        float* p = part[s % 2].data();
        if (!wrapped(s)) {
          const int64_t rows = L;
          const int64_t kv = layout.ValidCount(segs[0].pos_begin, c);
          // Non-causal layout: one segment, all visible. Zigzag: full q × first half, all visible.
          stats_.flops[s] += AttendBlock(o.pool, H, Hkv, D, scale, o.dry_run,
                                         {.q = q_cur,
                                          .q_rows = rows,
                                          .q_pos0 = origin_segs[0].pos_begin,
                                          .k = args.k,
                                          .v = args.v,
                                          .kv_rows = kv,
                                          .k_pos0 = segs[0].pos_begin,
                                          .causal = false,
                                          .out = p,
                                          .lse = p + rows * row_q});
        } else {
          const int64_t kv = layout.ValidCount(segs[0].pos_begin, c) + layout.ValidCount(segs[1].pos_begin, c);
          stats_.flops[s] += AttendBlock(o.pool, H, Hkv, D, scale, o.dry_run,
                                         {.q = q_cur + c * row_q,
                                          .q_rows = c,
                                          .q_pos0 = origin_segs[1].pos_begin,
                                          .k = args.k,
                                          .v = args.v,
                                          .kv_rows = kv,
                                          .k_pos0 = segs[0].pos_begin,
                                          .causal = false,
                                          .out = p,
                                          .lse = p + c * row_q});
        }
      }
      stats_.compute_seconds[s] += t.Seconds();
    }
    // 4. Wait, then merge the partial that came back.
    TS_RETURN_IF_ERROR(rec.WaitAll(s, q_reqs));
    // A half-size query block (wrapped(s+1)) sits in rows [c, 2c) of the buffer.
    if (s < N - 1) q_cur = qbuf[(s + 1) % 2].data();
    TS_RETURN_IF_ERROR(rec.WaitAll(s, out_reqs));
    if (in_rows > 0 && !o.dry_run) {
      ComputeTimer t(o.pool != nullptr);
      const int64_t row0 = L - in_rows;  // half-size partials cover the second-half rows
      MergePartial(acc_out + row0 * row_q, acc_lse + row0 * H, recv_part.data(), recv_part.data() + in_rows * row_q,
                   in_rows, H, D);
      stats_.compute_seconds[s] += t.Seconds();
    }
  }
  // Tail: the last step's partial goes to r−1 (= r+N−1); ours comes from r+1. Not overlapped.
  if (N >= 2) {
    std::vector<CommRequest> reqs;
    const int64_t rows = partial_rows(N - 1);
    TS_ASSIGN_OR_RETURN(CommRequest sreq, rec.Send(comm_, N, part[(N - 1) % 2].data(), rows * row_q, rows * H, prev,
                                                   SpDirection::kOutput, Channel::kOutput));
    reqs.push_back(std::move(sreq));
    const int64_t in_rows = (!zz || r >= N - 1) ? L : c;
    TS_ASSIGN_OR_RETURN(CommRequest rreq, rec.Recv(comm_, N, recv_part.data(), in_rows * row_q, in_rows * H, next,
                                                   SpDirection::kOutput, Channel::kOutput));
    reqs.push_back(std::move(rreq));
    TS_RETURN_IF_ERROR(rec.WaitAll(N, reqs));
    if (!o.dry_run) {
      ComputeTimer t(o.pool != nullptr);
      const int64_t row0 = L - in_rows;
      MergePartial(acc_out + row0 * row_q, acc_lse + row0 * H, recv_part.data(), recv_part.data() + in_rows * row_q,
                   in_rows, H, D);
      stats_.compute_seconds[N] += t.Seconds();
    }
  }
  if (!o.dry_run) ClearPadding(layout, r, H, D, acc_out, acc_lse);
  return absl::OkStatus();
}

// Ring attention (pass-KV). Rank r at step s holds the K/V of origin o = (r−s) mod N, received
// from r−1, and forwards it to r+1. Causal zigzag, s ≥ 1:
//   o < r: chunk o precedes both local query chunks; chunk 2N−1−o follows both. Full q × first half.
//   o > r: chunk o and chunk 2N−1−o both lie between chunk r and chunk 2N−1−r, so only the second
//     half of the queries sees them, and sees all of them. Second-half q × full KV.
absl::Status SequenceParallelAttention::RunRing(const SpLayout& layout, const SpPrefillArgs& args) {
  const SpAttentionOptions& o = options_;
  const int64_t H = o.n_heads, Hkv = o.n_kv_heads, D = o.head_dim;
  const int N = comm_->size();
  const int r = comm_->rank();
  const int64_t L = layout.local_tokens;
  const int64_t c = layout.chunk;
  const bool zz = layout.causal;
  const float scale = o.scale;
  const int64_t row_q = H * D;
  const int64_t kv_floats = L * Hkv * D;  // one of K or V

  std::vector<float> lse_store;
  float* acc_lse = args.lse;
  if (acc_lse == nullptr) {
    lse_store.assign(L * H, -INFINITY);
    acc_lse = lse_store.data();
  }
  float* acc_out = args.out;
  // K and V travel together as one message [2][L, H_kv, D].
  std::vector<float> kvbuf[2] = {std::vector<float>(2 * kv_floats), std::vector<float>(N > 1 ? 2 * kv_floats : 0)};
  std::memcpy(kvbuf[0].data(), args.k, sizeof(float) * kv_floats);
  std::memcpy(kvbuf[0].data() + kv_floats, args.v, sizeof(float) * kv_floats);
  std::vector<float> tmp(L * row_q + L * H);
  StepRecorder rec(&stats_);
  const int prev = (r - 1 + N) % N;
  const int next = (r + 1) % N;

  for (int s = 0; s < N; ++s) {
    std::vector<CommRequest> reqs;
    const float* kv_cur = kvbuf[s % 2].data();
    if (s < N - 1) {
      TS_ASSIGN_OR_RETURN(CommRequest sreq,
                          rec.Send(comm_, s, kv_cur, 2 * kv_floats, 0, next, SpDirection::kKv, Channel::kKv));
      reqs.push_back(std::move(sreq));
      TS_ASSIGN_OR_RETURN(CommRequest rreq, rec.Recv(comm_, s, kvbuf[(s + 1) % 2].data(), 2 * kv_floats, 0, prev,
                                                     SpDirection::kKv, Channel::kKv));
      reqs.push_back(std::move(rreq));
    }
    {
      ComputeTimer t(o.pool != nullptr);
      if (s == 0) {
        stats_.flops[0] += LocalStep(o, scale, layout, r, args.q, args.k, args.v, acc_out, acc_lse, tmp.data(),
                                     tmp.data() + c * row_q);
      } else {
        const int origin = (r - s + N) % N;
        const auto osegs = layout.Segments(origin);
        const float* k = kv_cur;
        const float* v = kv_cur + kv_floats;
        int64_t q_row0 = 0, rows = L, kv = 0;
        if (!zz || origin < r) {
          kv = layout.ValidCount(osegs[0].pos_begin, c);
        } else {
          q_row0 = c;
          rows = c;
          kv = layout.ValidCount(osegs[0].pos_begin, c) + layout.ValidCount(osegs[1].pos_begin, c);
        }
        float* po = tmp.data();
        float* pl = tmp.data() + rows * row_q;
        stats_.flops[s] += AttendBlock(o.pool, H, Hkv, D, scale, o.dry_run,
                                       {.q = args.q + q_row0 * row_q,
                                        .q_rows = rows,
                                        .q_pos0 = 0,
                                        .k = k,
                                        .v = v,
                                        .kv_rows = kv,
                                        .k_pos0 = 0,
                                        .causal = false,
                                        .out = po,
                                        .lse = pl});
        if (!o.dry_run) MergePartial(acc_out + q_row0 * row_q, acc_lse + q_row0 * H, po, pl, rows, H, D);
      }
      stats_.compute_seconds[s] += t.Seconds();
    }
    TS_RETURN_IF_ERROR(rec.WaitAll(s, reqs));
  }
  if (!o.dry_run) ClearPadding(layout, r, H, D, acc_out, acc_lse);
  return absl::OkStatus();
}

}  // namespace tessera::parallel
