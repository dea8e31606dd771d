// Scheduler policy without a model: each test is a table of the chunks every step must plan.
// "Sampling" picks a fixed token from one-hot logits, so only the scheduling is under test.
#include "worker/engine/scheduler.h"

#include <map>
#include <memory>
#include <utility>

#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

constexpr int64_t kVocab = 16;
using Plan = std::vector<std::pair<std::string, int64_t>>;

class Sim {
 public:
  explicit Sim(const Scheduler::Options& options) : sched_(options) {}

  SequenceState* Add(const std::string& id, int32_t prompt_len, int32_t max_tokens) {
    std::vector<int32_t> prompt;
    for (int32_t i = 0; i < prompt_len; ++i) prompt.push_back((i * 7 + static_cast<int32_t>(id[0])) % kVocab);
    auto seq =
        llm::Sequence::Create(prompt, {.temperature = 0, .ignore_eos = true, .max_tokens = max_tokens}, kVocab, {});
    EXPECT_TRUE(seq.ok()) << seq.status();
    auto& s = seqs_[id];
    s = std::make_unique<SequenceState>(id, *std::move(seq));
    sched_.AddWaiting(s.get());
    return s.get();
  }

  // One step: plan, "run", sample where complete, drop finished sequences.
  Plan Step(int64_t* preempted = nullptr) {
    SchedulerOutput out = sched_.Schedule();
    if (preempted != nullptr) *preempted = out.num_preempted;
    Plan plan;
    int64_t total = 0;
    for (const ScheduledChunk& c : out.chunks) {
      plan.emplace_back(c.seq->id, c.num_tokens);
      total += c.num_tokens;
    }
    EXPECT_EQ(total, out.num_tokens);
    for (const ScheduledChunk& c : out.chunks) {
      sched_.OnComputed(c);
      if (c.seq->seq.num_pending() > 0) continue;
      std::vector<float> logits(kVocab, 0.0f);
      logits[3] = 1.0f;
      auto tok = c.seq->seq.Sample(sampler_, logits);
      EXPECT_TRUE(tok.ok()) << tok.status();
      if (c.seq->seq.finish() != llm::FinishReason::kNone) sched_.Remove(c.seq);
    }
    return plan;
  }

  Scheduler& sched() { return sched_; }
  SequenceState* get(const std::string& id) { return seqs_.at(id).get(); }

 private:
  Scheduler sched_;
  llm::Sampler sampler_;
  std::map<std::string, std::unique_ptr<SequenceState>> seqs_;
};

TEST(SchedulerTest, DecodesFirstThenPartialPrefillsThenWaitingFifo) {
  Sim sim({.max_num_seqs = 8, .max_num_batched_tokens = 8, .blocks = {.num_blocks = 64, .block_size = 4}});
  sim.Add("A", 3, 10);
  EXPECT_EQ(sim.Step(), (Plan{{"A", 3}}));
  sim.Add("B", 20, 10);
  EXPECT_EQ(sim.Step(), (Plan{{"A", 1}, {"B", 7}}));
  sim.Add("C", 2, 10);
  EXPECT_EQ(sim.Step(), (Plan{{"A", 1}, {"B", 7}}));  // no budget left for C
  EXPECT_EQ(sim.sched().num_waiting(), 1);
  EXPECT_EQ(sim.Step(), (Plan{{"A", 1}, {"B", 6}, {"C", 1}}));  // C's prompt is chunked too
  EXPECT_EQ(sim.Step(), (Plan{{"A", 1}, {"B", 1}, {"C", 1}}));
  EXPECT_EQ(sim.get("B")->seq.num_output(), 2);
  EXPECT_EQ(sim.get("C")->seq.num_output(), 1);
}

TEST(SchedulerTest, DecodesKeepGoingWhileALongPromptIsChunked) {
  Sim sim({.max_num_seqs = 8, .max_num_batched_tokens = 5, .blocks = {.num_blocks = 64, .block_size = 4}});
  sim.Add("B", 1, 6);
  EXPECT_EQ(sim.Step(), (Plan{{"B", 1}}));
  sim.Add("A", 10, 4);
  EXPECT_EQ(sim.Step(), (Plan{{"B", 1}, {"A", 4}}));
  EXPECT_EQ(sim.Step(), (Plan{{"B", 1}, {"A", 4}}));
  EXPECT_EQ(sim.Step(), (Plan{{"B", 1}, {"A", 2}}));
  EXPECT_EQ(sim.Step(), (Plan{{"B", 1}, {"A", 1}}));
  EXPECT_EQ(sim.get("A")->seq.num_output(), 2);
}

TEST(SchedulerTest, RespectsMaxNumSeqs) {
  Sim sim({.max_num_seqs = 2, .max_num_batched_tokens = 100, .blocks = {.num_blocks = 64, .block_size = 4}});
  sim.Add("A", 2, 1);
  sim.Add("B", 2, 3);
  sim.Add("C", 2, 3);
  EXPECT_EQ(sim.Step(), (Plan{{"A", 2}, {"B", 2}}));  // A is done after its first token
  EXPECT_EQ(sim.Step(), (Plan{{"B", 1}, {"C", 2}}));
}

TEST(SchedulerTest, PreemptsTheNewestSequenceAndRecomputesItsOutput) {
  Sim sim({.max_num_seqs = 8,
           .max_num_batched_tokens = 100,
           .blocks = {.num_blocks = 4, .block_size = 2, .enable_prefix_caching = false}});
  sim.Add("A", 3, 4);
  sim.Add("B", 3, 10);
  EXPECT_EQ(sim.Step(), (Plan{{"A", 3}, {"B", 3}}));  // 2 blocks each: the cache is full
  EXPECT_EQ(sim.Step(), (Plan{{"A", 1}, {"B", 1}}));  // position 3 still fits
  int64_t preempted = 0;
  EXPECT_EQ(sim.Step(&preempted), (Plan{{"A", 1}}));  // A needs a third block: B goes
  EXPECT_EQ(preempted, 1);
  SequenceState* b = sim.get("B");
  EXPECT_EQ(b->phase, SequenceState::Phase::kWaiting);
  EXPECT_EQ(b->seq.num_computed(), 0);
  EXPECT_EQ(b->seq.num_output(), 2);  // its tokens are kept
  EXPECT_TRUE(b->table.blocks.empty());
  EXPECT_EQ(sim.sched().stats().preemptions, 1);
  EXPECT_EQ(sim.Step(), (Plan{{"A", 1}}));  // B (5 tokens, 3 blocks) does not fit next to A yet
  EXPECT_EQ(sim.sched().num_running(), 0);  // A finished with its 4th token
  EXPECT_EQ(sim.Step(), (Plan{{"B", 5}}));  // prompt + 2 outputs again, then the 3rd token
  EXPECT_EQ(b->seq.num_output(), 3);
  EXPECT_EQ(sim.sched().blocks().num_free(), 1);
}

TEST(SchedulerTest, SequenceThatCannotGrowPreemptsItselfWhenNewest) {
  Sim sim({.max_num_seqs = 8,
           .max_num_batched_tokens = 100,
           .blocks = {.num_blocks = 3, .block_size = 2, .enable_prefix_caching = false}});
  sim.Add("A", 4, 10);  // 2 blocks
  sim.Add("B", 2, 10);  // 1 block
  EXPECT_EQ(sim.Step(), (Plan{{"A", 4}, {"B", 2}}));
  int64_t preempted = 0;
  // A needs a block for position 4: B (newest) is preempted; B then waits since the step preempted.
  EXPECT_EQ(sim.Step(&preempted), (Plan{{"A", 1}}));
  EXPECT_EQ(preempted, 1);
  EXPECT_EQ(sim.sched().waiting().front(), sim.get("B"));
}

TEST(SchedulerTest, AdmissionStartsFromTheCachedPrefix) {
  Sim sim({.max_num_seqs = 8, .max_num_batched_tokens = 100, .blocks = {.num_blocks = 16, .block_size = 2}});
  sim.Add("A", 7, 1);
  EXPECT_EQ(sim.Step(), (Plan{{"A", 7}}));  // finished; its 3 full blocks stay cached
  sim.Add("A2", 7, 1);                      // same prompt (ids derive from the first letter)
  EXPECT_EQ(sim.Step(), (Plan{{"A2", 1}}));
  EXPECT_EQ(sim.get("A2")->cached_prompt_tokens, 6);
  EXPECT_EQ(sim.sched().stats().prefix_cache_queries, 14);
  EXPECT_EQ(sim.sched().stats().prefix_cache_hits, 6);
}

}  // namespace
}  // namespace tessera::engine
