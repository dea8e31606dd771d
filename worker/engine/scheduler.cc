#include "worker/engine/scheduler.h"

#include <algorithm>

namespace tessera::engine {

void Scheduler::AddWaiting(SequenceState* seq) {
  seq->phase = SequenceState::Phase::kWaiting;
  waiting_.push_back(seq);
}

void Scheduler::Remove(SequenceState* seq) {
  if (auto it = std::find(running_.begin(), running_.end(), seq); it != running_.end()) running_.erase(it);
  if (auto it = std::find(waiting_.begin(), waiting_.end(), seq); it != waiting_.end()) waiting_.erase(it);
  blocks_.Free(seq->table);
  seq->phase = SequenceState::Phase::kFinished;
  seq->scheduled_tokens = 0;
}

void Scheduler::Preempt(SequenceState* victim, SchedulerOutput& out, int64_t& budget) {
  running_.erase(std::find(running_.begin(), running_.end(), victim));
  if (victim->scheduled_tokens > 0) {
    // Planned earlier in this step: take its chunk back out.
    budget += victim->scheduled_tokens;
    out.num_tokens -= victim->scheduled_tokens;
    std::erase_if(out.chunks, [victim](const ScheduledChunk& c) { return c.seq == victim; });
    victim->scheduled_tokens = 0;
  }
  blocks_.Free(victim->table);
  victim->seq.set_num_computed(0);
  victim->phase = SequenceState::Phase::kWaiting;
  ++victim->num_preemptions;
  waiting_.push_front(victim);
  ++out.num_preempted;
  ++stats_.preemptions;
}

bool Scheduler::Reserve(SequenceState* seq, int64_t n, SchedulerOutput& out, int64_t& budget) {
  for (;;) {
    if (blocks_.Allocate(seq->table, seq->seq.num_computed() + n)) return true;
    SequenceState* victim = running_.back();
    Preempt(victim, out, budget);
    if (victim == seq) return false;
  }
}

SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput out;
  int64_t budget = options_.max_num_batched_tokens;
  for (SequenceState* s : running_) s->scheduled_tokens = 0;

  // Decodes first, then the next chunks of partial prefills, each pass in admission order. The
  // snapshot stays valid: preemption only removes sequences, which are then skipped.
  const std::vector<SequenceState*> snapshot = running_;
  for (int pass = 0; pass < 2; ++pass) {
    for (SequenceState* s : snapshot) {
      if (budget <= 0) break;
      if (s->phase != SequenceState::Phase::kRunning || s->scheduled_tokens > 0) continue;
      const int64_t pending = s->seq.num_pending();
      if (pending <= 0 || (pass == 0) != (pending == 1)) continue;
      const int64_t n = std::min(pending, budget);
      if (!Reserve(s, n, out, budget)) continue;
      s->scheduled_tokens = n;
      out.chunks.push_back({.seq = s, .num_tokens = n});
      out.num_tokens += n;
      budget -= n;
    }
  }
  if (out.num_preempted == 0) AdmitWaiting(out, budget);
  return out;
}

void Scheduler::AdmitWaiting(SchedulerOutput& out, int64_t& budget) {
  while (!waiting_.empty() && budget > 0 && num_running() < options_.max_num_seqs) {
    SequenceState* s = waiting_.front();
    const llm::Sequence& seq = s->seq;
    // At least the last token is computed again: its logits give the next token.
    const BlockManager::Prefix prefix = blocks_.FindCachedPrefix(seq.tokens(), seq.num_tokens() - 1);
    const int64_t n = std::min(seq.num_tokens() - prefix.num_tokens, budget);
    if (!blocks_.Allocate(s->table, prefix, prefix.num_tokens + n)) break;  // wait for blocks to free up
    if (!s->admitted_before) {
      s->admitted_before = true;
      s->cached_prompt_tokens = std::min(prefix.num_tokens, seq.prompt_len());
      stats_.prefix_cache_queries += seq.num_tokens();
      stats_.prefix_cache_hits += prefix.num_tokens;
    }
    s->seq.set_num_computed(prefix.num_tokens);
    waiting_.pop_front();
    s->phase = SequenceState::Phase::kRunning;
    running_.push_back(s);
    s->scheduled_tokens = n;
    out.chunks.push_back({.seq = s, .num_tokens = n});
    out.num_tokens += n;
    budget -= n;
  }
}

void Scheduler::OnComputed(const ScheduledChunk& chunk) {
  SequenceState* s = chunk.seq;
  s->seq.set_num_computed(s->seq.num_computed() + chunk.num_tokens);
  s->scheduled_tokens = 0;
  blocks_.CacheFullBlocks(s->table, s->seq.tokens(), s->seq.num_computed());
}

}  // namespace tessera::engine
