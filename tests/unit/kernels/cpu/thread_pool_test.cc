#include "kernels/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace tessera::kernels {
namespace {

// Every index is visited exactly once, for sizes below, at and above the thread count.
TEST(ThreadPoolTest, CoversEachIndexOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 5, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, [&](int64_t b, int64_t e) {
        ASSERT_LE(0, b);
        ASSERT_LE(b, e);
        ASSERT_LE(e, n);
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads=" << threads << " n=" << n;
    }
  }
}

// Many short loops back to back, some with a worker held up mid-chunk and some that the caller
// finishes alone: a worker that arrives late must not run a chunk of a loop that is over (its
// lambda and vector are gone), and every loop must see each index once.
TEST(ThreadPoolTest, BackToBackLoopsWithLateWorkers) {
  ThreadPool pool(3);
  for (int iter = 0; iter < 3000; ++iter) {
    const int64_t n = 1 + iter % 13;
    std::vector<std::atomic<int>> hits(n);
    pool.ParallelFor(n, [&](int64_t b, int64_t e) {
      if (iter % 100 == 0 && b == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "iteration " << iter << " index " << i;
    if (iter % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let workers fall asleep
  }
}

TEST(ThreadPoolTest, GrainBoundsChunkSize) {
  ThreadPool pool(2);
  std::atomic<int64_t> min_chunk{1 << 30};
  pool.ParallelFor(
      100,
      [&](int64_t b, int64_t e) {
        int64_t cur = min_chunk.load();
        while (e - b < cur && !min_chunk.compare_exchange_weak(cur, e - b)) {
        }
      },
      40);
  EXPECT_GE(min_chunk.load(), 20);  // the last chunk may be the remainder of 100 / chunk
}

TEST(ThreadPoolTest, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  pool.ParallelFor(8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      pool.ParallelFor(10, [&](int64_t b2, int64_t e2) { total.fetch_add(e2 - b2); });
    }
  });
  EXPECT_EQ(total.load(), 80);
}

TEST(ThreadPoolTest, ConcurrentCallersTakeTurns) {
  ThreadPool pool(2);
  std::atomic<int64_t> sums[2] = {0, 0};
  auto caller = [&](int c) {
    for (int rep = 0; rep < 200; ++rep) {
      pool.ParallelFor(64, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) sums[c].fetch_add(i);
      });
    }
  };
  std::thread t0(caller, 0);
  std::thread t1(caller, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(sums[0].load(), 200 * 64 * 63 / 2);
  EXPECT_EQ(sums[1].load(), 200 * 64 * 63 / 2);
}

}  // namespace
}  // namespace tessera::kernels
