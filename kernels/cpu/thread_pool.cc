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

void ThreadPool::RunChunks() {
  for (;;) {
    int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= num_chunks_) return;
    int64_t begin = c * chunk_;
    int64_t end = std::min(n_, begin + chunk_);
    (*fn_)(begin, end);
  }
}

void ThreadPool::WorkerLoop(int /*index*/) {
  uint64_t seen = 0;
  for (;;) {
    // Poll for the next loop for kSpinFor, then sleep. The generation is read with acquire, so the
    // loop's fields (written before the release increment) are visible once it changes.
    const auto deadline = std::chrono::steady_clock::now() + kSpinFor;
    for (int i = 0; generation_.load(std::memory_order_acquire) == seen; ++i) {
      _mm_pause();
      if (i % 64 == 63 && std::chrono::steady_clock::now() > deadline) break;
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_relaxed);
    }
    tls_in_parallel_region = true;
    RunChunks();
    tls_in_parallel_region = false;
    if (pending_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
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
  const int64_t num_chunks = std::min<int64_t>(max_chunks, int64_t{num_threads_} * 4);
  std::lock_guard<std::mutex> call_lock(call_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    chunk_ = (n + num_chunks - 1) / num_chunks;
    num_chunks_ = (n + chunk_ - 1) / chunk_;
    next_chunk_.store(0, std::memory_order_relaxed);
    pending_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();
  tls_in_parallel_region = true;
  RunChunks();
  tls_in_parallel_region = false;
  // The workers' last chunks end soon after ours: poll, then sleep.
  const auto deadline = std::chrono::steady_clock::now() + kSpinFor;
  for (int i = 0; pending_workers_.load(std::memory_order_acquire) != 0; ++i) {
    _mm_pause();
    if (i % 64 == 63 && std::chrono::steady_clock::now() > deadline) break;
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_workers_.load(std::memory_order_acquire) == 0; });
  fn_ = nullptr;
}

}  // namespace tessera::kernels
