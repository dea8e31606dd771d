// Engine end to end on the tiny fixture models. The reference for every output is llm::Generator
// running each request alone (its own KV cache, no chunking limits that matter, no prefix cache,
// no preemption), so batching, chunking, preemption and prefix reuse must not change a token.
#include "worker/engine/engine.h"

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "runtime/llm/generator.h"

namespace tessera::engine {
namespace {

using llm::SamplingParams;

// Every event of every request, checked for the per-request contract as it arrives.
class Collector {
 public:
  EventSink Sink() {
    return [this](const Event& e) {
      absl::MutexLock lock(&mu_);
      Result& r = results_[e.id];
      EXPECT_EQ(r.finish, FinishReason::kNone) << e.id << ": event after the final one";
      for (const llm::SampledToken& t : e.tokens) r.tokens.push_back(t.id);
      EXPECT_EQ(e.completion_tokens, static_cast<int32_t>(r.tokens.size())) << e.id;
      r.finish = e.finish;
      r.error = e.error;
      r.prompt_tokens = e.prompt_tokens;
      r.cached_prompt_tokens = e.cached_prompt_tokens;
      ++r.events;
      if (e.finish != FinishReason::kNone) ++finished_;
    };
  }
  struct Result {
    std::vector<int32_t> tokens;
    FinishReason finish = FinishReason::kNone;
    absl::Status error;
    int32_t prompt_tokens = 0, cached_prompt_tokens = 0;
    int events = 0;
  };
  Result Get(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return results_[id];
  }
  int finished() {
    absl::MutexLock lock(&mu_);
    return finished_;
  }
  // Waits until n requests have finished; false after `timeout` (a hang, not a speed check).
  bool WaitFinished(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, Result> results_ ABSL_GUARDED_BY(mu_);
  int finished_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Case {
  std::string id;
  std::vector<int32_t> prompt;
  SamplingParams params;
};

// Drives the engine on this thread until it has nothing left to do.
void RunToCompletion(Engine& engine) {
  for (int i = 0; i < 100000; ++i) {
    absl::StatusOr<bool> r = engine.Step();
    ASSERT_TRUE(r.ok()) << r.status();
    if (!*r) return;
  }
  FAIL() << "engine did not become idle";
}

class EngineTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto m = llm::Model::Load(std::string("tests/fixtures/models/") + GetParam(), {.num_threads = 2});
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *std::move(m);
  }

  std::vector<int32_t> RandomPrompt(std::mt19937& rng, int64_t len) {
    std::vector<int32_t> p;
    for (int64_t i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(3 + rng() % (model_->config().vocab_size - 3)));
    return p;
  }

  // n requests with prompt lengths 1..~40 and max_tokens 1..~24; seeded sampling when !greedy.
  std::vector<Case> MakeCases(int n, bool greedy, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<Case> cases;
    for (int i = 0; i < n; ++i) {
      Case c;
      c.id = "req-" + std::to_string(i);
      c.prompt = RandomPrompt(rng, 1 + static_cast<int64_t>(rng() % 40));
      c.params.max_tokens = 1 + static_cast<int32_t>(rng() % 24);
      c.params.ignore_eos = true;
      if (greedy) {
        c.params.temperature = 0;
      } else {
        c.params.temperature = 0.8f;
        c.params.top_p = 0.9f;
        c.params.seed = 1000 + i;
      }
      cases.push_back(std::move(c));
    }
    return cases;
  }

  // The independent path: Generator, one request at a time.
  std::vector<int32_t> Alone(const Case& c) {
    llm::Generator gen(model_.get(), {.block_size = 4});
    std::vector<int32_t> out;
    absl::Status s = gen.Run({{.prompt = c.prompt, .params = c.params}},
                             [&](const llm::Generator::TokenEvent& e) { out.push_back(e.token.id); });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  std::unique_ptr<Engine> MakeEngine(const Options& options) {
    auto e = Engine::Create(model_.get(), options);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }

  // Adds every case at once, runs to completion and compares each output with Alone().
  void ExpectSameAsAlone(Engine& engine, const std::vector<Case>& cases) {
    Collector col;
    const Counters before = engine.GetCounters();
    for (const Case& c : cases) {
      ASSERT_TRUE(
          engine.Add({.id = c.id, .prompt = c.prompt, .params = c.params, .deadline = std::nullopt}, col.Sink()).ok());
    }
    RunToCompletion(engine);
    int64_t generated = 0, prompts = 0;
    for (const Case& c : cases) {
      const std::vector<int32_t> want = Alone(c);
      ASSERT_EQ(static_cast<int32_t>(want.size()), c.params.max_tokens);
      Collector::Result r = col.Get(c.id);
      EXPECT_EQ(r.tokens, want) << c.id << " (prompt " << c.prompt.size() << ", max_tokens " << c.params.max_tokens
                                << ")";
      EXPECT_EQ(r.finish, FinishReason::kLength) << c.id;
      EXPECT_EQ(r.prompt_tokens, static_cast<int32_t>(c.prompt.size()));
      generated += static_cast<int64_t>(want.size());
      prompts += static_cast<int64_t>(c.prompt.size());
    }
    EXPECT_EQ(col.finished(), static_cast<int>(cases.size()));
    const Load load = engine.GetLoad();
    EXPECT_EQ(load.running, 0);
    EXPECT_EQ(load.waiting, 0);
    EXPECT_EQ(load.kv_blocks_free, load.kv_blocks_total);
    const Counters k = engine.GetCounters();
    EXPECT_EQ(k.generation_tokens - before.generation_tokens, generated);
    EXPECT_EQ(k.prompt_tokens - before.prompt_tokens, prompts);
    EXPECT_EQ(k.finished_length - before.finished_length, static_cast<int64_t>(cases.size()));
  }

  std::unique_ptr<llm::Model> model_;
};

struct Mix {
  int n;
  bool greedy;
};

TEST_P(EngineTest, ConcurrentRequestsMatchRunningAloneUnderChunking) {
  for (const Mix mix : {Mix{1, true}, Mix{4, true}, Mix{16, true}, Mix{1, false}, Mix{4, false}, Mix{16, false}}) {
    SCOPED_TRACE(testing::Message() << mix.n << " requests, " << (mix.greedy ? "greedy" : "seeded"));
    auto engine = MakeEngine({.block_size = 4, .num_blocks = 512, .max_num_batched_tokens = 7});
    ASSERT_NE(engine, nullptr);
    ExpectSameAsAlone(*engine, MakeCases(mix.n, mix.greedy, 17 + mix.n));
    EXPECT_EQ(engine->GetCounters().preemptions, 0);
  }
}

TEST_P(EngineTest, PreemptionUnderASmallCacheKeepsOutputs) {
  for (const bool greedy : {true, false}) {
    SCOPED_TRACE(greedy ? "greedy" : "seeded");
    // 16 blocks of 4 = 64 tokens: any one request fits (<= 64 tokens), 16 of them do not.
    auto engine = MakeEngine({.block_size = 4, .num_blocks = 16, .max_num_batched_tokens = 16});
    ASSERT_NE(engine, nullptr);
    EXPECT_EQ(engine->max_model_len(), 64);
    ExpectSameAsAlone(*engine, MakeCases(16, greedy, 5));
    EXPECT_GT(engine->GetCounters().preemptions, 0);
  }
}

TEST_P(EngineTest, PreemptionWithoutPrefixCaching) {
  auto engine =
      MakeEngine({.block_size = 4, .num_blocks = 16, .max_num_batched_tokens = 9, .enable_prefix_caching = false});
  ASSERT_NE(engine, nullptr);
  ExpectSameAsAlone(*engine, MakeCases(16, false, 9));
  EXPECT_GT(engine->GetCounters().preemptions, 0);
  EXPECT_EQ(engine->GetCounters().prefix_cache_hits, 0);
}

TEST_P(EngineTest, SharedPrefixIsReusedWithIdenticalOutput) {
  auto engine = MakeEngine({.block_size = 4, .num_blocks = 64, .max_num_batched_tokens = 16});
  ASSERT_NE(engine, nullptr);
  std::mt19937 rng(3);
  const std::vector<int32_t> prefix = RandomPrompt(rng, 30);
  Case a{.id = "a", .prompt = prefix, .params = {.temperature = 0, .ignore_eos = true, .max_tokens = 6}};
  a.prompt.push_back(11);
  Case b{.id = "b", .prompt = prefix, .params = {.temperature = 0.7f, .seed = 5, .ignore_eos = true, .max_tokens = 6}};
  b.prompt.push_back(12);
  b.prompt.push_back(13);
  ExpectSameAsAlone(*engine, {a});
  const Counters before = engine->GetCounters();
  EXPECT_EQ(before.prefix_cache_queries, 31);
  EXPECT_EQ(before.prefix_cache_hits, 0);
  Collector col;
  ASSERT_TRUE(
      engine->Add({.id = b.id, .prompt = b.prompt, .params = b.params, .deadline = std::nullopt}, col.Sink()).ok());
  RunToCompletion(*engine);
  Collector::Result r = col.Get("b");
  EXPECT_EQ(r.tokens, Alone(b));
  EXPECT_EQ(r.cached_prompt_tokens, 28);  // the 7 full blocks of the shared 30 tokens
  const Counters after = engine->GetCounters();
  EXPECT_EQ(after.prefix_cache_queries - before.prefix_cache_queries, 32);
  EXPECT_EQ(after.prefix_cache_hits, 28);
  // Only the uncached part of b's prompt went through the model.
  EXPECT_EQ(after.computed_tokens - before.computed_tokens, 32 - 28 + 5);

  // The very same prompt again: everything but the last block's tokens comes from the cache.
  Collector col2;
  ASSERT_TRUE(
      engine->Add({.id = "a2", .prompt = a.prompt, .params = a.params, .deadline = std::nullopt}, col2.Sink()).ok());
  RunToCompletion(*engine);
  EXPECT_EQ(col2.Get("a2").tokens, Alone(a));
  EXPECT_EQ(col2.Get("a2").cached_prompt_tokens, 28);
}

TEST_P(EngineTest, CachedPrefixIsEvictedUnderPressure) {
  auto engine = MakeEngine({.block_size = 4, .num_blocks = 16, .max_num_batched_tokens = 64});
  ASSERT_NE(engine, nullptr);
  std::mt19937 rng(8);
  Case a{.id = "a", .prompt = RandomPrompt(rng, 21), .params = {.temperature = 0, .ignore_eos = true, .max_tokens = 3}};
  ExpectSameAsAlone(*engine, {a});
  EXPECT_GT(engine->GetLoad().kv_blocks_free, 0);
  // Two 32-token requests need all 16 blocks at once: a's cached blocks must go.
  std::vector<Case> big;
  for (int i = 0; i < 2; ++i) {
    big.push_back({.id = "big" + std::to_string(i),
                   .prompt = RandomPrompt(rng, 28),
                   .params = {.temperature = 0, .ignore_eos = true, .max_tokens = 4}});
  }
  ExpectSameAsAlone(*engine, big);
  Collector col;
  a.id = "a-again";
  ASSERT_TRUE(
      engine->Add({.id = a.id, .prompt = a.prompt, .params = a.params, .deadline = std::nullopt}, col.Sink()).ok());
  RunToCompletion(*engine);
  EXPECT_EQ(col.Get(a.id).tokens, Alone(a));
  EXPECT_EQ(col.Get(a.id).cached_prompt_tokens, 0);
}

TEST_P(EngineTest, AbortFreesBlocks) {
  auto engine = MakeEngine({.block_size = 4, .num_blocks = 64, .max_num_seqs = 1});
  ASSERT_NE(engine, nullptr);
  Collector col;
  std::mt19937 rng(1);
  const std::vector<int32_t> prompt = RandomPrompt(rng, 13);
  ASSERT_TRUE(
      engine->Add({.id = "run", .prompt = prompt, .params = {.ignore_eos = true, .max_tokens = 50}}, col.Sink()).ok());
  ASSERT_TRUE(
      engine->Add({.id = "wait", .prompt = prompt, .params = {.ignore_eos = true, .max_tokens = 50}}, col.Sink()).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(engine->Step().ok());
  Load load = engine->GetLoad();
  EXPECT_EQ(load.running, 1);
  EXPECT_EQ(load.waiting, 1);
  EXPECT_LT(load.kv_blocks_free, load.kv_blocks_total);
  EXPECT_GT(load.kv_usage, 0.0);
  engine->Abort("run");
  engine->Abort("wait");
  engine->Abort("no-such-request");
  ASSERT_TRUE(engine->Step().ok());
  for (const char* id : {"run", "wait"}) {
    Collector::Result r = col.Get(id);
    EXPECT_EQ(r.finish, FinishReason::kAbort) << id;
    EXPECT_TRUE(r.error.ok());
  }
  EXPECT_EQ(col.Get("run").tokens.size(), 3u);
  EXPECT_TRUE(col.Get("wait").tokens.empty());
  load = engine->GetLoad();
  EXPECT_EQ(load.running, 0);
  EXPECT_EQ(load.waiting, 0);
  EXPECT_EQ(load.kv_blocks_free, load.kv_blocks_total);
  EXPECT_EQ(load.kv_usage, 0.0);
  EXPECT_EQ(engine->GetCounters().finished_abort, 2);
  EXPECT_FALSE(*engine->Step());
  // The id can be used again once its request is over.
  EXPECT_TRUE(engine->Add({.id = "run", .prompt = prompt, .params = {.max_tokens = 1}}, col.Sink()).ok());
}

TEST_P(EngineTest, DeadlineEndsTheRequestWithDeadlineExceeded) {
  auto engine = MakeEngine({.block_size = 4, .num_blocks = 64});
  ASSERT_NE(engine, nullptr);
  Collector col;
  const auto now = std::chrono::steady_clock::now();
  ASSERT_TRUE(engine
                  ->Add({.id = "late",
                         .prompt = {5, 6, 7},
                         .params = {.max_tokens = 4},
                         .deadline = now - std::chrono::seconds(1)},
                        col.Sink())
                  .ok());
  ASSERT_TRUE(engine
                  ->Add({.id = "ok",
                         .prompt = {5, 6, 7},
                         .params = {.temperature = 0, .ignore_eos = true, .max_tokens = 4},
                         .deadline = now + std::chrono::hours(1)},
                        col.Sink())
                  .ok());
  RunToCompletion(*engine);
  Collector::Result late = col.Get("late");
  EXPECT_EQ(late.finish, FinishReason::kError);
  EXPECT_EQ(late.error.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(late.tokens.empty());
  EXPECT_EQ(late.events, 1);
  EXPECT_EQ(col.Get("ok").finish, FinishReason::kLength);
  EXPECT_EQ(col.Get("ok").tokens.size(), 4u);
  EXPECT_EQ(engine->GetCounters().finished_error, 1);
}

TEST_P(EngineTest, StopTokenFinishesWithStop) {
  auto engine = MakeEngine({.block_size = 4, .num_blocks = 64});
  ASSERT_NE(engine, nullptr);
  Case c{.id = "s", .prompt = {9, 8, 7, 6, 5}, .params = {.temperature = 0, .ignore_eos = true, .max_tokens = 20}};
  const std::vector<int32_t> full = Alone(c);
  c.params.stop_token_ids = {full[2]};
  Collector col;
  ASSERT_TRUE(engine->Add({.id = c.id, .prompt = c.prompt, .params = c.params}, col.Sink()).ok());
  RunToCompletion(*engine);
  Collector::Result r = col.Get("s");
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.tokens, Alone(c));
  EXPECT_EQ(r.tokens.back(), full[2]);
  EXPECT_EQ(engine->GetCounters().finished_stop, 1);
}

TEST_P(EngineTest, RejectsInvalidRequests) {
  auto engine = MakeEngine({.block_size = 4, .num_blocks = 8, .max_model_len = 32});
  ASSERT_NE(engine, nullptr);
  Collector col;
  auto add = [&](Request r) { return engine->Add(std::move(r), col.Sink()); };
  auto expect_invalid = [&](absl::Status s, const char* field) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find(field), std::string::npos) << s << " should name " << field;
  };
  const auto vocab = static_cast<int32_t>(model_->config().vocab_size);
  expect_invalid(add({.id = "", .prompt = {1}}), "id");
  expect_invalid(add({.id = "x", .prompt = {}}), "prompt");
  expect_invalid(add({.id = "x", .prompt = {1, vocab}}), "prompt[1]");
  expect_invalid(add({.id = "x", .prompt = {1, -1}}), "prompt[1]");
  expect_invalid(add({.id = "x", .prompt = std::vector<int32_t>(30, 1), .params = {.max_tokens = 3}}), "max_model_len");
  expect_invalid(add({.id = "x", .prompt = {1}, .params = {.temperature = -1}}), "temperature");
  expect_invalid(add({.id = "x", .prompt = {1}, .params = {.max_tokens = 0}}), "max_tokens");
  expect_invalid(add({.id = "x", .prompt = {1}, .params = {.stop_token_ids = {vocab}}}), "stop_token_ids");
  expect_invalid(engine->Add({.id = "x", .prompt = {1}}, nullptr), "sink");
  ASSERT_TRUE(add({.id = "x", .prompt = std::vector<int32_t>(29, 1), .params = {.max_tokens = 3}}).ok());
  EXPECT_EQ(add({.id = "x", .prompt = {1}}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine->GetCounters().requests_added, 1);
  EXPECT_EQ(col.finished(), 0);
}

TEST_P(EngineTest, RejectsInvalidOptions) {
  auto code = [&](const Options& o) { return Engine::Create(model_.get(), o).status().code(); };
  EXPECT_EQ(code({.block_size = 0}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.max_num_seqs = 0}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.max_num_batched_tokens = 0}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.num_blocks = -1}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.kv_cache_bytes = 16}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.block_size = 4, .num_blocks = 4, .max_model_len = 17}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.max_model_len = model_->config().max_position_embeddings + 1}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Engine::Create(nullptr, {}).status().code(), absl::StatusCode::kInvalidArgument);
  auto e = Engine::Create(model_.get(), {.block_size = 4, .num_blocks = 4});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->max_model_len(), 16);
  auto d = Engine::Create(model_.get(), {});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->max_model_len(), model_->config().max_position_embeddings);
  EXPECT_GT((*d)->num_blocks(), 0);
}

// Several client threads add (and abort) requests while the engine's own step loop runs.
TEST_P(EngineTest, AddFromSeveralThreadsWhileTheLoopRuns) {
  const std::vector<Case> cases = MakeCases(16, true, 77);
  std::vector<std::vector<int32_t>> want;
  for (const Case& c : cases) want.push_back(Alone(c));  // before the loop owns the model

  auto engine = MakeEngine({.block_size = 4, .num_blocks = 40, .max_num_seqs = 6, .max_num_batched_tokens = 8});
  ASSERT_NE(engine, nullptr);
  Collector col;
  engine->Start();
  std::atomic<int> rejected{0};
  const int32_t long_run = static_cast<int32_t>(engine->max_model_len()) - 3;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = t; i < 16; i += 4) {
        const Case& c = cases[i];
        if (!engine->Add({.id = c.id, .prompt = c.prompt, .params = c.params}, col.Sink()).ok()) ++rejected;
        (void)engine->GetLoad();
        (void)engine->GetCounters();
      }
      // One extra long request per thread, aborted at once (before or after it starts); a second
      // Add with its id while it lives is refused.
      const std::string id = "abort-" + std::to_string(t);
      if (!engine
               ->Add({.id = id, .prompt = {4, 5, 6}, .params = {.ignore_eos = true, .max_tokens = long_run}},
                     col.Sink())
               .ok()) {
        ++rejected;
      }
      if (engine->Add({.id = id, .prompt = {4, 5}, .params = {}}, col.Sink()).code() !=
              absl::StatusCode::kAlreadyExists &&
          col.Get(id).finish == FinishReason::kNone) {
        ++rejected;
      }
      engine->Abort(id);
    });
  }
  for (std::thread& c : clients) c.join();
  ASSERT_TRUE(col.WaitFinished(20, absl::Seconds(300))) << "requests did not finish: " << col.finished() << " of 20";
  engine->Stop();
  EXPECT_EQ(rejected.load(), 0);
  for (size_t i = 0; i < cases.size(); ++i) {
    Collector::Result r = col.Get(cases[i].id);
    EXPECT_EQ(r.tokens, want[i]) << cases[i].id;
  }
  for (int t = 0; t < 4; ++t) {
    // Aborted, unless the loop got through all of its tokens between Add and Abort.
    const Collector::Result r = col.Get("abort-" + std::to_string(t));
    EXPECT_TRUE(r.finish == FinishReason::kAbort ||
                (r.finish == FinishReason::kLength && r.tokens.size() == size_t(long_run)));
  }
  const Load load = engine->GetLoad();
  EXPECT_EQ(load.kv_blocks_free, load.kv_blocks_total);
  EXPECT_EQ(load.running + load.waiting, 0);
}

TEST_P(EngineTest, StopAndRestartTheLoop) {
  auto engine = MakeEngine({.block_size = 4, .num_blocks = 64});
  ASSERT_NE(engine, nullptr);
  engine->Start();
  engine->Stop();
  Collector col;
  ASSERT_TRUE(
      engine
          ->Add({.id = "r", .prompt = {3, 4}, .params = {.temperature = 0, .ignore_eos = true, .max_tokens = 2}},
                col.Sink())
          .ok());
  engine->Start();
  ASSERT_TRUE(col.WaitFinished(1, absl::Seconds(60)));
  engine->Stop();
  EXPECT_EQ(col.Get("r").tokens.size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Models, EngineTest, ::testing::Values("llama_gqa4_hd64_f32", "qwen2moe_shared_top2_bf16"));

}  // namespace
}  // namespace tessera::engine
