// A fixed set of worker threads that run data-parallel loops.
//
//   ThreadPool pool(2);                       // the calling thread counts as one of the 2
//   pool.ParallelFor(rows, [&](int64_t begin, int64_t end) { for (...) ... });
//
// ParallelFor splits [0, n) into contiguous chunks, runs them on the workers and on the calling
// thread, and returns when all are done. Calls from inside a running loop run inline (no nesting);
// concurrent calls from different threads take turns.
#pragma once

#include <atomic>
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
  int pending_workers_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace tessera::kernels
