// SpRunner: Model forward passes across the ranks of a worker group, with each sequence split
// across the ranks (sequence parallelism; docs/sequence_parallel.md).
//
// Every rank holds the whole model (weights replicated) and a KV cache of the same shape. Rank 0's
// scheduler owns the block tables; every rank calls Forward with the same batch, in the same order
// (the step plan rank 0 broadcasts, worker/group/step_plan.h). Per sequence of the batch:
//   * a prefill from position 0 is laid out zigzag (SpLayout, chunks a multiple of the block size):
//     each rank embeds, projects and runs the MLP on its own rows only, keeps its rows' K/V in its
//     cache, and attention runs TokenRing (pass-Q) or Ring (pass-KV) as the policy chooses;
//   * a continuation (a decode step, or a later chunk of a chunked prefill) computes its few new rows
//     on every rank alike; each new cache block goes to the rank holding the fewest blocks of the
//     sequence, and attention is pass-Q over the blocks of every rank.
// So no rank holds a sequence's whole K/V. Which rank holds a block is replicated state that every
// rank derives from the same batches. Prefix caching must be off (a cached block's rank would
// depend on the layout of the sequence that wrote it). Rank 0 gets the logits.
//
//   TS_ASSIGN_OR_RETURN(auto sp, SpRunner::Create(model, comm, cache.num_blocks(), {}));
//   TS_RETURN_IF_ERROR(sp->Forward(batch, cache, &logits));   // on every rank, same batch
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/llm/model.h"
#include "runtime/parallel/comm.h"
#include "runtime/parallel/sp_attention.h"

namespace tessera::llm {

// Group-wide totals of the sequence-parallel attention calls (summed over ranks), for metrics.
struct SpTotals {
  // Upper bounds (seconds) of the per-step time histograms; the last bucket is +Inf.
  static constexpr std::array<double, 10> kStepBuckets = {1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0};
  struct Histogram {
    std::array<int64_t, kStepBuckets.size() + 1> counts{};  // per bucket (not cumulative)
    double sum = 0;
    void Observe(double seconds);
    void Add(const Histogram& other);
  };
  struct Algo {
    std::array<int64_t, 3> bytes{};   // sent, by parallel::SpDirection (q, out, kv)
    Histogram compute;                // per rank and step: time in kernels and merges
    Histogram wait;                   // per rank and step: time blocked on transfers
    double exposed_comm_seconds = 0;  // sum of the waits
    int64_t calls = 0;                // attention calls (layers × sequences), counted once per group
  };
  std::array<Algo, 2> algo;  // by parallel::SpAlgorithm (token_ring, ring)
  int64_t prefill_sequences = 0, decode_sequences = 0;

  void Add(const SpTotals& other);
};

class SpRunner {
 public:
  struct Options {
    parallel::SpPolicy policy{};
  };
  // `num_blocks` and `block_size`: the shape of the KV cache Forward will be given (the same on
  // every rank).
  static absl::StatusOr<std::unique_ptr<SpRunner>> Create(Model* model, parallel::Communicator* comm,
                                                          int64_t num_blocks, int64_t block_size,
                                                          const Options& options);

  // Collective: every rank calls it with the same batch. Rank 0 gets logits as Model::Forward
  // returns them; other ranks get none. The batch must pass Model::Validate (check it on rank 0
  // before sending the plan: a failure here after the first transfer leaves the group out of step,
  // and the caller must bring it down).
  absl::Status Forward(std::span<const SequenceInput> batch, PagedKvCache& cache, std::vector<float>* logits);

  // Rank 0: totals over every rank since Create. Other ranks: zero.
  const SpTotals& totals() const { return totals_; }
  // The policy's choice for a prefill of `tokens`, with its cost estimates (for start-up reports).
  parallel::SpPolicyDecision PrefillChoice(int64_t tokens) const;
  int world() const { return comm_->size(); }

 private:
  SpRunner(Model* model, parallel::Communicator* comm, int64_t num_blocks, int64_t block_size)
      : model_(model), comm_(comm), owner_(num_blocks, 0), block_size_(block_size) {}
  struct Plan;
  void Record(const parallel::SpStats& stats, SpTotals& delta) const;
  absl::Status ShareTotals(const SpTotals& delta);

  Model* model_;
  parallel::Communicator* comm_;
  std::unique_ptr<parallel::SequenceParallelAttention> attn_;
  parallel::SpPolicy policy_;
  std::vector<int32_t> owner_;  // rank holding each cache block (replicated)
  int64_t block_size_;
  SpTotals totals_;
};

}  // namespace tessera::llm
