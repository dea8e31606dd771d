// Measures what the prefill policy (ChooseAlgorithm) needs on the group it runs on: the achieved
// link bandwidth between ranks and this machine's attention throughput. Collective: every rank of
// the group calls it, and every rank gets rank 0's figures, so that all ranks choose alike.
//
//   SpPolicy policy;   // mode kAuto
//   TS_ASSIGN_OR_RETURN(SpCalibration cal, CalibrateSp(comm, {.n_heads = 32, .n_kv_heads = 8, .head_dim = 128}, pool));
//   policy.link_bytes_per_second = cal.link_bytes_per_second;
//   policy.attention_flops_per_second = cal.attention_flops_per_second;
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/cpu/thread_pool.h"
#include "runtime/parallel/comm.h"

namespace tessera::parallel {

struct SpCalibration {
  double link_bytes_per_second = 0;       // slowest rank-0 link, one direction (ping-pong median)
  double attention_flops_per_second = 0;  // rank 0's attention kernel on its pool
};

struct SpCalibrationShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t message_bytes = 8 << 20;  // ping-pong message size
};

absl::StatusOr<SpCalibration> CalibrateSp(Communicator* comm, const SpCalibrationShape& shape,
                                          kernels::ThreadPool* pool);

}  // namespace tessera::parallel
