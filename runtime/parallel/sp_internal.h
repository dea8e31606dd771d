// Helpers shared by the sequence-parallel attention files (not a public interface).
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera::parallel::internal {

// Thread CPU time when the compute runs on the calling thread (so ranks that share cores are not
// charged for each other's time); wall time when a pool spreads it over other threads.
class ComputeTimer {
 public:
  explicit ComputeTimer(bool wall) : wall_(wall), start_(Now(wall)) {}
  double Seconds() const { return Now(wall_) - start_; }

 private:
  static double Now(bool wall) {
    if (wall) {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    }
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  }
  bool wall_;
  double start_;
};

class WallTimer {
 public:
  WallTimer() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// One attention block: queries [q_rows, H, D] at positions q_pos0.. against a contiguous prefix of
// kv_rows keys [kv_rows, H_kv, D] at positions k_pos0.. . Returns the flop count
// (4·D per visible (query, key) pair and head) and runs the kernel unless dry_run.
struct BlockArgs {
  const float* q = nullptr;
  int64_t q_rows = 0;
  int64_t q_pos0 = 0;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t kv_rows = 0;
  int64_t k_pos0 = 0;
  const int32_t* block_table = nullptr;
  int64_t block_size = 0;
  bool causal = false;
  float* out = nullptr;  // [q_rows, H, D]
  float* lse = nullptr;  // [q_rows, H]
};

inline int64_t AttendBlock(kernels::ThreadPool* pool, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                           float scale, bool dry_run, const BlockArgs& b) {
  int64_t pairs = 0;
  if (!b.causal) {
    pairs = b.q_rows * b.kv_rows;
  } else {
    for (int64_t i = 0; i < b.q_rows; ++i) {
      int64_t n = b.q_pos0 + i - b.k_pos0 + 1;
      n = n < 0 ? 0 : (n > b.kv_rows ? b.kv_rows : n);
      pairs += n;
    }
  }
  if (!dry_run && b.q_rows > 0) {
    kernels::AttentionParams p;
    p.q = b.q;
    p.num_q = b.q_rows;
    p.n_heads = n_heads;
    p.n_kv_heads = n_kv_heads;
    p.head_dim = head_dim;
    p.k = b.k;
    p.v = b.v;
    p.num_kv = b.kv_rows;
    p.block_table = b.block_table;
    p.block_size = b.block_size;
    p.q_pos0 = b.q_pos0;
    p.k_pos0 = b.k_pos0;
    p.causal = b.causal;
    p.scale = scale;
    p.out = b.out;
    p.lse = b.lse;
    kernels::AttentionWithLse(pool, p);
  }
  return pairs * n_heads * 4 * head_dim;
}

}  // namespace tessera::parallel::internal
