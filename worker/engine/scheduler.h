// Continuous-batching scheduler (vLLM V1 style): decides, once per step, which tokens of which
// sequences go through the model, and owns the KV block manager that backs them.
//
//   Scheduler sched({.max_num_seqs = 64, .max_num_batched_tokens = 512,
//                    .blocks = {.num_blocks = 1024, .block_size = 16}});
//   sched.AddWaiting(&seq);
//   SchedulerOutput plan = sched.Schedule();
//   // run plan.chunks through Model::Forward, then for each chunk:
//   sched.OnComputed(chunk);
//   if (seq done) sched.Remove(&seq);
//
// One step: (1) every running sequence with one token pending (a decode) gets it, in admission
// order; (2) running sequences part-way through their prefill get the next chunk, in admission
// order; (3) unless (1)-(2) had to preempt, waiting sequences are admitted first-in first-out, each
// starting from its longest cached prefix. The step's new tokens stay within
// max_num_batched_tokens (a prefill is cut into chunks to fit) and at most max_num_seqs sequences
// hold blocks.
//
// Preemption by recompute: when a running sequence needs a block and none is free (after evicting
// unused cached blocks), the most recently admitted running sequence loses its blocks and goes to
// the front of the waiting queue, to re-prefill prompt and output so far. If that is the sequence
// itself it waits for the next step. Every sequence that fits the cache alone can therefore always
// make progress: the oldest one can take the whole cache.
//
// Not thread-safe: owned by the engine's step thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/llm/sequence.h"
#include "worker/engine/block_manager.h"

namespace tessera::engine {

// A request inside the engine: its token state, its blocks, and where it is in its lifecycle.
struct SequenceState {
  enum class Phase { kWaiting, kRunning, kFinished };

  SequenceState(std::string id, llm::Sequence seq) : id(std::move(id)), seq(std::move(seq)) {}

  std::string id;
  llm::Sequence seq;
  BlockManager::Table table;
  Phase phase = Phase::kWaiting;
  bool admitted_before = false;      // set on first admission: prefix-cache statistics count once
  int64_t cached_prompt_tokens = 0;  // prompt tokens found in the prefix cache at first admission
  int64_t num_preemptions = 0;
  int64_t scheduled_tokens = 0;  // in the current step's plan; 0 = not scheduled
};

struct ScheduledChunk {
  SequenceState* seq = nullptr;
  int64_t num_tokens = 0;  // tokens [seq->seq.num_computed(), + num_tokens) run this step
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;
  int64_t num_preempted = 0;
  int64_t num_tokens = 0;  // sum of chunks' num_tokens
  bool empty() const { return chunks.empty(); }
};

struct SchedulerStats {
  int64_t preemptions = 0;
  int64_t prefix_cache_queries = 0;  // tokens looked up, once per request
  int64_t prefix_cache_hits = 0;     // of those, tokens found cached
};

class Scheduler {
 public:
  struct Options {
    int64_t max_num_seqs = 64;
    int64_t max_num_batched_tokens = 512;
    BlockManager::Options blocks;
  };

  explicit Scheduler(const Options& options) : options_(options), blocks_(options.blocks) {}

  // Appends to the waiting queue (phase must be kWaiting, no blocks).
  void AddWaiting(SequenceState* seq);
  // Takes the sequence out of whichever queue holds it and frees its blocks; phase becomes kFinished.
  void Remove(SequenceState* seq);

  // Plans one step. The chunks point into sequences owned by the caller.
  [[nodiscard]] SchedulerOutput Schedule();
  // After the step's forward pass: advances the sequence's computed tokens by the chunk and
  // makes its newly full blocks findable in the prefix cache.
  void OnComputed(const ScheduledChunk& chunk);

  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  const std::deque<SequenceState*>& waiting() const { return waiting_; }
  const std::vector<SequenceState*>& running() const { return running_; }
  const BlockManager& blocks() const { return blocks_; }
  const SchedulerStats& stats() const { return stats_; }

 private:
  // Gives `seq` room for `n` more tokens, preempting newer sequences as needed; false if `seq`
  // itself had to be preempted.
  bool Reserve(SequenceState* seq, int64_t n, SchedulerOutput& out, int64_t& budget);
  void Preempt(SequenceState* victim, SchedulerOutput& out, int64_t& budget);
  void AdmitWaiting(SchedulerOutput& out, int64_t& budget);

  Options options_;
  BlockManager blocks_;
  std::deque<SequenceState*> waiting_;
  std::vector<SequenceState*> running_;  // admission order: back = most recently admitted
  SchedulerStats stats_;
};

}  // namespace tessera::engine
