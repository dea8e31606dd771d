#include "runtime/parallel/sp_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/parallel/sp_internal.h"
#include "runtime/parallel/sp_merge.h"

namespace tessera::parallel {

std::string_view SpAlgorithmName(SpAlgorithm a) { return a == SpAlgorithm::kTokenRing ? "token_ring" : "ring"; }

std::string_view SpDirectionName(SpDirection d) {
  switch (d) {
    case SpDirection::kQuery:
      return "q";
    case SpDirection::kOutput:
      return "out";
    case SpDirection::kKv:
      return "kv";
  }
  return "unknown";
}

int64_t SpStats::BytesSent(SpDirection d) const {
  int64_t n = 0;
  for (const auto& t : transfers) n += (t.is_send && t.direction == d) ? t.bytes() : 0;
  return n;
}

int64_t SpStats::BytesReceived(SpDirection d) const {
  int64_t n = 0;
  for (const auto& t : transfers) n += (!t.is_send && t.direction == d) ? t.bytes() : 0;
  return n;
}

double SpStats::TotalWaitSeconds() const {
  double s = 0;
  for (double x : wait_seconds) s += x;
  return s;
}

double SpStats::TotalComputeSeconds() const {
  double s = 0;
  for (double x : compute_seconds) s += x;
  return s;
}

// ---- Policy ----------------------------------------------------------------------------------

SpPolicyDecision ChooseAlgorithm(const SpPolicy& policy, const SpShape& shape) {
  SpPolicyDecision d;
  const int N = std::max(shape.world, 1);
  const double T = static_cast<double>(shape.tokens_per_rank);
  const double H = shape.n_heads, Hkv = shape.n_kv_heads, D = shape.head_dim, b = policy.element_bytes;
  // Bytes of the largest message of each kind (one step).
  const double kv_bytes = 2 * T * Hkv * D * b;
  const double q_bytes = T * H * D * b;
  const double out_bytes = T * H * (D * b + 4);
  // Off-diagonal step flops (zigzag steps do half of a non-causal step) and the local step.
  const double step_flops = (shape.causal ? 0.5 : 1.0) * T * T * H * 4 * D;
  const double local_flops = 0.5 * T * T * H * 4 * D;
  // Seconds (or bytes when untimed) the busiest link needs for TokenRing's traffic of step s: the
  // query message (one hop back, r → r−1) and the outputs of step s−1 (offset k = s−1 forward).
  auto tr_comm = [&](int s) -> double {
    const double q = s < N - 1 ? q_bytes : 0.0;
    const int k = s - 1;
    const double out = (s >= 2 && s <= N) ? out_bytes : 0.0;
    switch (policy.topology) {
      case SpTopology::kMesh:
        return std::max(q, out);
      case SpTopology::kSwitch:
        return q + out;  // both leave through this rank's uplink
      case SpTopology::kRing:
        if (out == 0) return q;
        if (k <= N - k) return std::max(q, k * out);  // forward: k messages share each forward link
        return q + (N - k) * out;                     // backward: shares the query direction
    }
    return q + out;
  };
  const bool timed = policy.link_bytes_per_second > 0 && policy.attention_flops_per_second > 0;
  if (timed) {
    const double B = policy.link_bytes_per_second, F = policy.attention_flops_per_second;
    double ring = 0, tr = 0;
    for (int s = 0; s < N; ++s) {
      const double tc = (s == 0 ? local_flops : step_flops) / F;
      ring += std::max(tc, s < N - 1 ? kv_bytes / B : 0.0);
      tr += std::max(tc, tr_comm(s) / B);
    }
    if (N >= 2) tr += tr_comm(N) / B;  // the final output exchange is not overlapped
    d.ring_cost = ring;
    d.token_ring_cost = tr;
  } else {
    // Bytes on the busiest link in any step.
    d.ring_cost = N > 1 ? kv_bytes : 0.0;
    d.token_ring_cost = 0;
    for (int s = 0; s <= N; ++s) d.token_ring_cost = std::max(d.token_ring_cost, tr_comm(s));
  }
  switch (policy.mode) {
    case SpPolicy::Mode::kTokenRing:
      d.algorithm = SpAlgorithm::kTokenRing;
      break;
    case SpPolicy::Mode::kRing:
      d.algorithm = SpAlgorithm::kRing;
      break;
    case SpPolicy::Mode::kAuto: {
      if (timed) {
        const double margin = policy.topology == SpTopology::kSwitch ? policy.token_ring_margin : 0.0;
        d.algorithm = d.token_ring_cost < (1.0 - margin) * d.ring_cost ? SpAlgorithm::kTokenRing : SpAlgorithm::kRing;
      } else {
        d.algorithm = d.token_ring_cost < d.ring_cost ? SpAlgorithm::kTokenRing : SpAlgorithm::kRing;
      }
      break;
    }
  }
  return d;
}

// ---- SequenceParallelAttention ----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SequenceParallelAttention>> SequenceParallelAttention::Create(
    Communicator* comm, const SpAttentionOptions& options) {
  if (comm == nullptr) return absl::InvalidArgumentError("SequenceParallelAttention: comm is null");
  if (options.n_heads < 1 || options.n_kv_heads < 1 || options.head_dim < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("SequenceParallelAttention: n_heads=%d, n_kv_heads=%d, head_dim=%d must all be >= 1",
                        options.n_heads, options.n_kv_heads, options.head_dim));
  }
  if (options.n_heads % options.n_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "SequenceParallelAttention: n_kv_heads=%d does not divide n_heads=%d", options.n_kv_heads, options.n_heads));
  }
  if (!(options.scale >= 0.0f) || std::isinf(options.scale)) {
    return absl::InvalidArgumentError("SequenceParallelAttention: scale must be finite and >= 0");
  }
  if (options.policy.element_bytes < 1) {
    return absl::InvalidArgumentError("SequenceParallelAttention: policy.element_bytes must be >= 1");
  }
  SpAttentionOptions o = options;
  if (o.scale == 0.0f) o.scale = 1.0f / std::sqrt(static_cast<float>(o.head_dim));
  return std::unique_ptr<SequenceParallelAttention>(new SequenceParallelAttention(comm, o));
}

SequenceParallelAttention::SequenceParallelAttention(Communicator* comm, const SpAttentionOptions& options)
    : comm_(comm), options_(options) {}
SequenceParallelAttention::~SequenceParallelAttention() = default;

SpAlgorithm SequenceParallelAttention::ChooseFor(const SpLayout& layout) const {
  return ChooseAlgorithm(options_.policy, {.n_heads = options_.n_heads,
                                           .n_kv_heads = options_.n_kv_heads,
                                           .head_dim = options_.head_dim,
                                           .tokens_per_rank = layout.local_tokens,
                                           .world = layout.world,
                                           .causal = layout.causal})
      .algorithm;
}

absl::Status SequenceParallelAttention::CheckPrefill(const SpLayout& layout, const SpPrefillArgs& args) const {
  if (layout.world != comm_->size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("Prefill: layout.world=%d but the communicator has %d ranks", layout.world, comm_->size()));
  }
  const int64_t parts = layout.causal ? 2 * int64_t{layout.world} : layout.world;
  if (layout.chunk < 1 || layout.chunk * parts != layout.padded_tokens || layout.padded_tokens < layout.total_tokens ||
      layout.local_tokens != (layout.causal ? 2 : 1) * layout.chunk) {
    return absl::InvalidArgumentError("Prefill: layout is inconsistent (make it with SpLayout::Make)");
  }
  if (args.q == nullptr) return absl::InvalidArgumentError("Prefill: q is null");
  if (args.k == nullptr) return absl::InvalidArgumentError("Prefill: k is null");
  if (args.v == nullptr) return absl::InvalidArgumentError("Prefill: v is null");
  if (args.out == nullptr) return absl::InvalidArgumentError("Prefill: out is null");
  if (args.positions != nullptr) {
    const std::vector<int32_t> expect = layout.Positions(comm_->rank());
    for (int64_t i = 0; i < layout.local_tokens; ++i) {
      if (args.positions[i] != expect[i]) {
        return absl::InvalidArgumentError(
            absl::StrFormat("Prefill: positions[%d] = %d but the %s layout puts position %d on rank %d row %d", i,
                            args.positions[i], layout.causal ? "zigzag" : "contiguous", expect[i], comm_->rank(), i));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status SequenceParallelAttention::Prefill(const SpLayout& layout, const SpPrefillArgs& args) {
  return Prefill(layout, args, ChooseFor(layout));
}

absl::Status SequenceParallelAttention::Prefill(const SpLayout& layout, const SpPrefillArgs& args,
                                                SpAlgorithm algorithm) {
  internal::WallTimer total;
  stats_ = SpStats();
  stats_.algorithm = algorithm;
  stats_.rank = comm_->rank();
  stats_.world = comm_->size();
  stats_.compute_seconds.assign(comm_->size() + 1, 0.0);
  stats_.wait_seconds.assign(comm_->size() + 1, 0.0);
  stats_.flops.assign(comm_->size() + 1, 0);
  TS_RETURN_IF_ERROR(CheckPrefill(layout, args));
  absl::Status s = algorithm == SpAlgorithm::kTokenRing ? RunTokenRing(layout, args) : RunRing(layout, args);
  stats_.total_seconds = total.Seconds();
  if (!s.ok()) {
    return absl::Status(
        s.code(), absl::StrFormat("%s prefill on rank %d: %s", SpAlgorithmName(algorithm), comm_->rank(), s.message()));
  }
  return s;
}

// Pass-Q decode: step 0 sends the root's queries to every rank and computes the local partial;
// step 1 returns the partials (out + lse, one message per rank) to the root, which merges them in
// rank order.
absl::Status SequenceParallelAttention::Decode(const SpDecodeArgs& args) {
  internal::WallTimer total;
  const SpAttentionOptions& o = options_;
  const int64_t H = o.n_heads, Hkv = o.n_kv_heads, D = o.head_dim;
  const int N = comm_->size();
  const int r = comm_->rank();
  stats_ = SpStats();
  stats_.algorithm = SpAlgorithm::kTokenRing;
  stats_.rank = r;
  stats_.world = N;
  stats_.compute_seconds.assign(2, 0.0);
  stats_.wait_seconds.assign(2, 0.0);
  stats_.flops.assign(2, 0);
  if (args.root < 0 || args.root >= N) {
    return absl::InvalidArgumentError(absl::StrFormat("Decode: root %d out of range [0, %d)", args.root, N));
  }
  if (args.num_q < 1) return absl::InvalidArgumentError(absl::StrFormat("Decode: num_q %d < 1", args.num_q));
  if (args.q_pos0 < 0) return absl::InvalidArgumentError("Decode: q_pos0 < 0");
  const bool root = r == args.root;
  if (root && args.q == nullptr) return absl::InvalidArgumentError("Decode: q is null on the root");
  if ((root || args.broadcast_output) && args.out == nullptr) return absl::InvalidArgumentError("Decode: out is null");
  for (size_t i = 0; i < args.shards.size(); ++i) {
    const SpKvShard& sh = args.shards[i];
    if (sh.num_kv < 0 || (sh.num_kv > 0 && (sh.k == nullptr || sh.v == nullptr)) ||
        (sh.block_table != nullptr && sh.block_size < 1)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("Decode: shards[%d] is malformed (num_kv=%d, block_size=%d)", i, sh.num_kv, sh.block_size));
    }
  }
  const int64_t q_elems = args.num_q * H * D;
  const int64_t l_elems = args.num_q * H;
  std::vector<float> qbuf(root ? 0 : q_elems);
  const float* q = root ? args.q : qbuf.data();
  std::vector<CommRequest> reqs;
  auto wait_all = [&](int step) -> absl::Status {
    internal::WallTimer t;
    absl::Status first;
    for (CommRequest& rq : reqs) {
      absl::Status s = rq.Wait();
      if (first.ok() && !s.ok()) first = s;
    }
    reqs.clear();
    stats_.wait_seconds[step] += t.Seconds();
    return first;
  };
  // Step 0: the queries reach every rank.
  std::vector<std::vector<float>> incoming;
  if (root) {
    for (int p = 0; p < N; ++p) {
      if (p == r) continue;
      stats_.transfers.push_back({0, p, SpDirection::kQuery, true, q_elems, 0});
      TS_ASSIGN_OR_RETURN(CommRequest rq, comm_->Isend(args.q, sizeof(float) * q_elems, p, Channel::kQuery));
      reqs.push_back(std::move(rq));
    }
    // Post the partial receives early so they can land while the root computes.
    incoming.resize(N);
    for (int p = 0; p < N; ++p) {
      if (p == r) continue;
      incoming[p].resize(q_elems + l_elems);
      stats_.transfers.push_back({1, p, SpDirection::kOutput, false, q_elems, l_elems});
      TS_ASSIGN_OR_RETURN(CommRequest rq,
                          comm_->Irecv(incoming[p].data(), sizeof(float) * (q_elems + l_elems), p, Channel::kOutput));
      reqs.push_back(std::move(rq));
    }
  } else {
    stats_.transfers.push_back({0, args.root, SpDirection::kQuery, false, q_elems, 0});
    TS_ASSIGN_OR_RETURN(CommRequest rq, comm_->Irecv(qbuf.data(), sizeof(float) * q_elems, args.root, Channel::kQuery));
    TS_RETURN_IF_ERROR(rq.Wait());
  }
  // Local partial over this rank's shards: acc = [out | lse].
  std::vector<float> acc(q_elems + l_elems, 0.0f);
  std::fill(acc.begin() + q_elems, acc.end(), -INFINITY);
  {
    internal::ComputeTimer t(o.pool != nullptr);
    std::vector<float> tmp(q_elems + l_elems);
    for (const SpKvShard& sh : args.shards) {
      if (sh.num_kv == 0) continue;
      stats_.flops[0] += internal::AttendBlock(o.pool, H, Hkv, D, o.scale, o.dry_run,
                                               {.q = q,
                                                .q_rows = args.num_q,
                                                .q_pos0 = args.q_pos0,
                                                .k = sh.k,
                                                .v = sh.v,
                                                .kv_rows = sh.num_kv,
                                                .k_pos0 = sh.k_pos0,
                                                .block_table = sh.block_table,
                                                .block_size = sh.block_size,
                                                .causal = true,
                                                .out = tmp.data(),
                                                .lse = tmp.data() + q_elems});
      if (!o.dry_run)
        MergePartial(acc.data(), acc.data() + q_elems, tmp.data(), tmp.data() + q_elems, args.num_q, H, D);
    }
    stats_.compute_seconds[0] += t.Seconds();
  }
  // Step 1: partials return to the root.
  if (!root) {
    stats_.transfers.push_back({1, args.root, SpDirection::kOutput, true, q_elems, l_elems});
    TS_ASSIGN_OR_RETURN(CommRequest rq,
                        comm_->Isend(acc.data(), sizeof(float) * (q_elems + l_elems), args.root, Channel::kOutput));
    reqs.push_back(std::move(rq));
    TS_RETURN_IF_ERROR(wait_all(1));
  } else {
    TS_RETURN_IF_ERROR(wait_all(1));
    internal::ComputeTimer t(o.pool != nullptr);
    if (!o.dry_run) {
      for (int p = 0; p < N; ++p) {
        if (p == r) continue;
        MergePartial(acc.data(), acc.data() + q_elems, incoming[p].data(), incoming[p].data() + q_elems, args.num_q, H,
                     D);
      }
    }
    stats_.compute_seconds[1] += t.Seconds();
  }
  if (args.broadcast_output) TS_RETURN_IF_ERROR(comm_->Broadcast(acc.data(), sizeof(float) * acc.size(), args.root));
  if (root || args.broadcast_output) {
    std::memcpy(args.out, acc.data(), sizeof(float) * q_elems);
    if (args.lse != nullptr) std::memcpy(args.lse, acc.data() + q_elems, sizeof(float) * l_elems);
  }
  stats_.total_seconds = total.Seconds();
  return absl::OkStatus();
}

}  // namespace tessera::parallel
