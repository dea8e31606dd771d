// A worker group: the ranks of one model replica, each a tessera-worker process under mpirun (or
// threads over LocalComm in tests), running every forward step together with llm::SpRunner.
//
// Rank 0 (GroupLeader) runs the engine's scheduler; for each step it checks the batch, sends the
// plan (the batch: tokens, positions, block tables) to every other rank, and runs its share of the
// forward pass. The other ranks (RunFollower) wait for plans and run their share, until the leader
// sends stop. A failure after a plan went out leaves the ranks out of step, so it brings the whole
// group down (Communicator::Abort: every process of the mpirun job ends) and the supervisor
// relaunches the group.
//
//   // every rank:
//   TS_ASSIGN_OR_RETURN(auto model, llm::Model::Load(path, {}));
//   if (comm->rank() == 0) {
//     GroupLeader leader(model.get(), comm.get(), {});
//     engine::Options opts;  opts.forward = leader.ForwardFn();  opts.enable_prefix_caching = false;
//     TS_ASSIGN_OR_RETURN(auto engine, engine::Engine::Create(model.get(), opts));
//     TS_RETURN_IF_ERROR(leader.Start(engine->num_blocks(), opts.block_size));   // followers allocate
//     ... serve ...
//     leader.Stop();
//   } else {
//     TS_RETURN_IF_ERROR(RunFollower(model.get(), comm.get(), {}));
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "runtime/llm/kv_cache.h"
#include "runtime/llm/model.h"
#include "runtime/llm/sp_runner.h"
#include "runtime/parallel/comm.h"

namespace tessera::worker {

// The step plan on the wire: int32 words. Decoding checks every length against the buffer.
std::vector<int32_t> EncodePlan(std::span<const llm::SequenceInput> batch);
struct DecodedPlan {
  std::vector<std::vector<int32_t>> tokens, tables;
  std::vector<llm::SequenceInput> batch;  // points into tokens and tables
};
absl::Status DecodePlan(std::span<const int32_t> words, DecodedPlan* out);

struct GroupOptions {
  // With policy.mode kAuto, the group measures its link bandwidth and attention throughput at start
  // (parallel::CalibrateSp); a link_bytes_per_second given here wins over the measured one.
  llm::SpRunner::Options sp{};
};

class GroupLeader {
 public:
  GroupLeader(llm::Model* model, parallel::Communicator* comm, const GroupOptions& options)
      : model_(model), comm_(comm), options_(options) {}
  ~GroupLeader();

  // Tells the other ranks the KV cache's shape (they allocate the same) and creates the runner.
  absl::Status Start(int64_t num_blocks, int64_t block_size);
  // The engine's forward pass (engine::Options::forward). Called from the step thread only.
  absl::Status Forward(std::span<const llm::SequenceInput> batch, llm::PagedKvCache& cache, std::vector<float>* logits);
  // Sends stop to the other ranks (they return from RunFollower). Idempotent.
  void Stop();

  // Group totals of the sequence-parallel attention (thread-safe copy).
  llm::SpTotals totals() const;
  llm::SpRunner* runner() { return runner_.get(); }
  // The policy in force after Start (with the calibrated figures).
  const parallel::SpPolicy& policy() const { return options_.sp.policy; }

 private:
  absl::Status SendToFollowers(int32_t kind, std::span<const int32_t> body);

  llm::Model* model_;
  parallel::Communicator* comm_;
  GroupOptions options_;
  std::unique_ptr<llm::SpRunner> runner_;
  bool stopped_ = false;
  mutable std::mutex mu_;
  llm::SpTotals totals_;  // copied after each step, under mu_
};

// Ranks 1..N−1: receive the cache shape, then run plans until stop. Returns OK on stop; on an error
// the caller should Abort the group.
absl::Status RunFollower(llm::Model* model, parallel::Communicator* comm, const GroupOptions& options);

}  // namespace tessera::worker
