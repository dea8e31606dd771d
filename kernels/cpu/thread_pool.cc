#include "kernels/cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>

namespace tessera::kernels {
namespace {
thread_local bool tls_in_parallel_region = false;
}  // namespace

ThreadPool::ThreadPool(int num_threads)
    : num_threads_(num_threads > 0 ? num_threads : std::max(1u, std::thread::hardware_concurrency())) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunChunks(uint64_t gen) {
  uint64_t s = state_.load(std::memory_order_acquire);
  while (Generation(s) == gen && Next(s) < Total(s)) {
    if (!state_.compare_exchange_weak(s, s + kNextOne, std::memory_order_acq_rel, std::memory_order_acquire)) {
      continue;  // s now holds the current state
    }
    const int64_t total = Total(s);
    const int64_t begin = Next(s) * chunk_;
    (*fn_)(begin, std::min(n_, begin + chunk_));
    if (done_chunks_.fetch_add(1, std::memory_order_acq_rel) + 1 == total) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::WorkerLoop(int /*index*/) {
  uint64_t seen = 0;
  for (;;) {
    // Poll for the next loop for kSpinFor, then sleep.
    const auto deadline = std::chrono::steady_clock::now() + kSpinFor;
    for (int i = 0; Generation(state_.load(std::memory_order_acquire)) == seen; ++i) {
      _mm_pause();
      if (i % 64 == 63 && std::chrono::steady_clock::now() > deadline) break;
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || Generation(state_.load(std::memory_order_acquire)) != seen; });
      if (stop_) return;
      seen = Generation(state_.load(std::memory_order_acquire));
    }
    tls_in_parallel_region = true;
    RunChunks(seen);
    tls_in_parallel_region = false;
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_chunks = (n + grain - 1) / grain;
  if (num_threads_ == 1 || max_chunks == 1 || tls_in_parallel_region) {
    fn(0, n);
    return;
  }
  // A few chunks per thread balances uneven rows without much claiming overhead.
  const int64_t num_chunks = std::min<int64_t>({max_chunks, int64_t{num_threads_} * 4, 0xffff});
  std::lock_guard<std::mutex> call_lock(call_mu_);
  const int64_t chunk = (n + num_chunks - 1) / num_chunks;
  const int64_t total = (n + chunk - 1) / chunk;
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    chunk_ = chunk;
    done_chunks_.store(0, std::memory_order_relaxed);
    gen = Generation(state_.load(std::memory_order_relaxed)) + 1;
    state_.store(gen << 32 | static_cast<uint64_t>(total), std::memory_order_release);
  }
  work_cv_.notify_all();
  tls_in_parallel_region = true;
  RunChunks(gen);
  tls_in_parallel_region = false;
  // Chunks that workers claimed end soon after ours: poll, then sleep.
  const auto deadline = std::chrono::steady_clock::now() + kSpinFor;
  for (int i = 0; done_chunks_.load(std::memory_order_acquire) != total; ++i) {
    _mm_pause();
    if (i % 64 == 63 && std::chrono::steady_clock::now() > deadline) break;
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return done_chunks_.load(std::memory_order_acquire) == total; });
  fn_ = nullptr;
}

}  // namespace tessera::kernels
