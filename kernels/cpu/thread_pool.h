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
// watching for the next one before they block, and the caller spins for the last chunks before it
// blocks: back-to-back loops (the ~200 of one decode step) never sleep. A loop is over when all of
// its chunks have run, whoever ran them: a worker that the OS has not scheduled (the machine is
// busy) costs nothing, since the caller claims the chunks it has not started.
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
  // Claim state of the loop in flight, one atomic word: generation (bits 32..63), next chunk
  // (bits 16..31), number of chunks (bits 0..15). A claim is a compare-and-swap that succeeds only
  // within the generation it read, so a late worker never runs a chunk of a finished loop.
  static constexpr uint64_t kNextOne = uint64_t{1} << 16;
  static uint64_t Generation(uint64_t s) { return s >> 32; }
  static int64_t Next(uint64_t s) { return static_cast<int64_t>((s >> 16) & 0xffff); }
  static int64_t Total(uint64_t s) { return static_cast<int64_t>(s & 0xffff); }

  void WorkerLoop(int index);
  // Claims and runs chunks of the loop of generation `gen` until none is left.
  void RunChunks(uint64_t gen);

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // held by the ParallelFor in flight, so that callers take turns
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  // The loop in flight: written before its state is published (release), read by whoever claims
  // one of its chunks (acquire), unchanged until all of its chunks are done.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 0;
  std::atomic<uint64_t> state_{0};
  // Chunks of the loop in flight that have finished; the one that completes the loop notifies
  // done_cv_ under mu_.
  std::atomic<int64_t> done_chunks_{0};
  bool stop_ = false;  // guarded by mu_
};

}  // namespace tessera::kernels
