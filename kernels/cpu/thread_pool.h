// A fixed set of worker threads that run data-parallel loops.
//
//   ThreadPool pool(2);                       // the calling thread counts as one of the 2
//   pool.ParallelFor(rows, [&](int64_t begin, int64_t end) { for (...) ... });
//
// ParallelFor splits [0, n) into contiguous chunks, runs them on the workers and on the calling
// thread, and returns when all are done. Calls from inside a running loop run inline (no nesting);
// concurrent calls from different threads take turns.
//
// Waking a sleeping thread costs tens of microseconds (a futex round trip, more in a VM), as much as
// a whole decode-step matvec. So after each loop the workers spin for a short while (kSpinFor)
// watching for the next one before they block, and the caller spins for the workers' last chunks
// before it blocks: back-to-back loops (the ~200 of one decode step) never sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera::kernels {

class ThreadPool {
 public:
  // num_threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // fn(begin, end) over contiguous chunks of [0, n). `grain` is the smallest chunk worth a thread.
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // How long an idle worker keeps polling for the next loop before it sleeps.
  static constexpr std::chrono::microseconds kSpinFor{200};

 private:
  void WorkerLoop(int index);
  void RunChunks();

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // held by the ParallelFor in flight, so that callers take turns
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  // The loop in flight (guarded by mu_ for publication; chunks are claimed atomically).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 0;
  int64_t num_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  // Workers still running the loop in flight; the last one to finish notifies done_cv_ under mu_.
  std::atomic<int> pending_workers_{0};
  // Bumped (under mu_) to publish a loop; workers poll it, then sleep on work_cv_.
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;  // guarded by mu_
};

}  // namespace tessera::kernels
