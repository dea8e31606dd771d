// Sequence-parallel attention: one attention layer over a sequence split across the ranks of a
// Communicator, with partial results merged by log-sum-exp (sp_merge.h).
//
// Two prefill algorithms behind one interface (seeds.md §1):
//   kTokenRing (pass-Q): K/V stay put, queries travel one hop per step (to rank r−1), and each
//     partial (out, lse) goes straight back to the query owner on a second channel. In the causal
//     zigzag layout a holder that only needs the second half of a query block gets only that half,
//     and a half-size partial is merged into the owner's second-half rows.
//   kRing (pass-KV, ring-flash-attention's zigzag ring): queries stay, K+V travel to rank r+1.
// Each step posts the next transfers before computing the current block, so compute overlaps
// communication. Decode (a few new query tokens over a KV cache sharded across ranks) is always
// pass-Q: the owner sends its queries to every rank and merges the partials that come back.
//
// Model integration: for one layer, each rank calls Prefill with its local rows (layout order, see
// sp_layout.h) of Q [local_tokens, H, D], K and V [local_tokens, H_kv, D] and their absolute
// positions, and gets its local rows of the output back:
//
//   TS_ASSIGN_OR_RETURN(auto sp, SequenceParallelAttention::Create(comm, {.n_heads = 32, .n_kv_heads = 8,
//                                                                      .head_dim = 128}));
//   TS_ASSIGN_OR_RETURN(SpLayout layout, SpLayout::Make({.total_tokens = S, .world = comm->size()}));
//   TS_RETURN_IF_ERROR(sp->Prefill(layout, {.q = q, .k = k, .v = v, .positions = pos, .out = out}));
//   sp->last_stats();   // bytes per (step, direction), compute and wait time per step
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/thread_pool.h"
#include "runtime/parallel/comm.h"
#include "runtime/parallel/sp_layout.h"

namespace tessera::parallel {

enum class SpAlgorithm { kTokenRing, kRing };
std::string_view SpAlgorithmName(SpAlgorithm a);  // "token_ring", "ring"

// Traffic class of a transfer; the metric label of tessera_sp_bytes_total{direction}.
enum class SpDirection { kQuery, kOutput, kKv };
std::string_view SpDirectionName(SpDirection d);  // "q", "out", "kv"

// One send or receive posted by this rank.
struct SpTransfer {
  int step = 0;  // step at which it was posted; world_size for the final output exchange
  int peer = 0;
  SpDirection direction = SpDirection::kQuery;
  bool is_send = true;
  int64_t data_elems = 0;  // f32 elements of q / k+v / out
  int64_t lse_elems = 0;   // f32 lse elements carried with an output
  int64_t bytes() const { return 4 * (data_elems + lse_elems); }
};

// What one call did on this rank.
struct SpStats {
  SpAlgorithm algorithm = SpAlgorithm::kTokenRing;
  int rank = 0;
  int world = 1;
  std::vector<SpTransfer> transfers;
  // Per step s in [0, world]: index world is the final output exchange and merge.
  std::vector<double> compute_seconds;  // thread CPU time in kernels and merges
  std::vector<double> wait_seconds;     // wall time blocked in Wait (exposed communication)
  std::vector<int64_t> flops;           // attention flops of the step (4·D per visible (q, k) pair per head)
  double total_seconds = 0;             // wall time of the whole call

  int64_t BytesSent(SpDirection d) const;
  int64_t BytesReceived(SpDirection d) const;
  double TotalWaitSeconds() const;
  double TotalComputeSeconds() const;
};

// How the ranks are wired, for the policy and the replay (sp_replay.h). Links are per direction.
//   kRing:   rank r has links to r−1 and r+1; other traffic is forwarded over the shorter way round.
//   kMesh:   every ordered pair of ranks has its own link (NVLink/NVSwitch).
//   kSwitch: each rank has one uplink and one downlink to a shared switch (GPUs on one PCIe switch),
//            so all of a rank's sends share its uplink.
enum class SpTopology { kRing, kMesh, kSwitch };

// Chooses pass-Q (TokenRing) or pass-KV (Ring) for a prefill.
struct SpPolicy {
  enum class Mode { kAuto, kTokenRing, kRing };
  Mode mode = Mode::kAuto;
  // Achieved link bandwidth per direction (bytes/s) and attention throughput (flop/s). With either
  // unknown (0) the choice is by bytes on the busiest link per step.
  double link_bytes_per_second = 0;
  double attention_flops_per_second = 0;
  SpTopology topology = SpTopology::kRing;
  int element_bytes = 4;  // bytes per activation element on the wire
  // On kSwitch, TokenRing is chosen only when its estimate beats Ring's by this fraction: there a
  // rank's query and output messages share its uplink, and ranks drifting out of step (which the
  // estimate ignores) cost TokenRing a few percent (the replay shows up to 8 % at 1 GB/s). On
  // kRing and kMesh links are not shared that way and the estimates are compared as they are.
  double token_ring_margin = 0.05;
};

struct SpShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t tokens_per_rank = 0;
  int world = 1;
  bool causal = true;
};

// Estimated layer time of each algorithm (seconds, or bytes-per-link units when bandwidth or
// throughput is unknown) and the choice. Decode never goes through this: it is always pass-Q.
struct SpPolicyDecision {
  SpAlgorithm algorithm = SpAlgorithm::kTokenRing;
  double token_ring_cost = 0;
  double ring_cost = 0;
};
SpPolicyDecision ChooseAlgorithm(const SpPolicy& policy, const SpShape& shape);

struct SpAttentionOptions {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // divides n_heads (GQA); == n_heads for MHA
  int64_t head_dim = 0;
  float scale = 0.0f;  // 0: 1/sqrt(head_dim)
  SpPolicy policy{};
  kernels::ThreadPool* pool = nullptr;  // compute threads for this rank (null: the calling thread)
  // Moves every message with its real size but runs no kernel or merge (outputs unspecified).
  // For schedule analysis of shapes too large to compute (bench/parallel).
  bool dry_run = false;
};

struct SpPrefillArgs {
  const float* q = nullptr;            // [layout.local_tokens, n_heads, head_dim]
  const float* k = nullptr;            // [layout.local_tokens, n_kv_heads, head_dim]
  const float* v = nullptr;            // [layout.local_tokens, n_kv_heads, head_dim]
  const int32_t* positions = nullptr;  // [layout.local_tokens] or null; checked against the layout
  float* out = nullptr;                // [layout.local_tokens, n_heads, head_dim]
  float* lse = nullptr;                // [layout.local_tokens, n_heads] or null
};

// A part of this rank's KV cache: contiguous, or paged as in kernels::AttentionParams.
struct SpKvShard {
  const float* k = nullptr;  // contiguous: [num_kv, n_kv_heads, head_dim]; paged: cache base
  const float* v = nullptr;
  int64_t num_kv = 0;
  int64_t k_pos0 = 0;                    // absolute position of key 0
  const int32_t* block_table = nullptr;  // [ceil(num_kv / block_size)] or null
  int64_t block_size = 0;
};

struct SpDecodeArgs {
  int root = 0;                         // rank that owns the queries and receives the output
  const float* q = nullptr;             // [num_q, n_heads, head_dim], read on root only
  int64_t num_q = 0;                    // same on every rank
  int64_t q_pos0 = 0;                   // query i sits at q_pos0 + i (causal)
  std::span<const SpKvShard> shards{};  // this rank's keys (may be empty)
  float* out = nullptr;                 // [num_q, n_heads, head_dim] on root (every rank if broadcast_output)
  float* lse = nullptr;                 // [num_q, n_heads] or null
  bool broadcast_output = false;
};

class SequenceParallelAttention {
 public:
  static absl::StatusOr<std::unique_ptr<SequenceParallelAttention>> Create(Communicator* comm,
                                                                           const SpAttentionOptions& options);
  ~SequenceParallelAttention();

  // Attention of this rank's local queries over the whole sequence (causal per layout.causal).
  // The algorithm comes from options.policy unless `algorithm` is given. Every rank must call it
  // with the same layout and algorithm.
  absl::Status Prefill(const SpLayout& layout, const SpPrefillArgs& args);
  absl::Status Prefill(const SpLayout& layout, const SpPrefillArgs& args, SpAlgorithm algorithm);
  // Pass-Q decode over the KV shards of every rank.
  absl::Status Decode(const SpDecodeArgs& args);

  SpAlgorithm ChooseFor(const SpLayout& layout) const;
  const SpStats& last_stats() const { return stats_; }
  const SpAttentionOptions& options() const { return options_; }

 private:
  SequenceParallelAttention(Communicator* comm, const SpAttentionOptions& options);
  absl::Status CheckPrefill(const SpLayout& layout, const SpPrefillArgs& args) const;
  absl::Status RunTokenRing(const SpLayout& layout, const SpPrefillArgs& args);
  absl::Status RunRing(const SpLayout& layout, const SpPrefillArgs& args);

  Communicator* comm_;
  SpAttentionOptions options_;
  SpStats stats_;
};

}  // namespace tessera::parallel
