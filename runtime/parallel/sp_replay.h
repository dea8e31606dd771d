// Discrete-event replay of a sequence-parallel attention schedule on a modelled network.
//
// Input: the SpStats of every rank from one real (or dry) run, i.e. the transfers each rank posted
// per step and the compute of each step. The replay re-times that schedule as the code executes it:
// at the start of step s a rank posts its step-s sends and receives, computes, and starts step s+1
// once the compute is done and every transfer it posted at step s has completed. A transfer starts
// when both its send and its receive are posted and every link on its route is free, and holds those
// links for bytes / bandwidth (cut-through) plus a fixed latency. Links are directed; "ring" routes a
// message over the shorter way round (ties go forward), "mesh" gives every ordered pair its own link
// (NVLink/NVSwitch), and "switch" gives each rank one uplink and one downlink to a shared switch
// (GPUs behind a PCIe switch), so all of a rank's sends share its uplink.
//
//   std::vector<SpStats> stats = ...;   // one per rank
//   SpReplayResult r = ReplaySchedule(stats, {.link_bytes_per_second = 10e9, .topology = SpTopology::kRing});
//   r.exposed_seconds;                  // layer time − the busiest rank's compute
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "runtime/parallel/sp_attention.h"

namespace tessera::parallel {

struct SpReplayOptions {
  double link_bytes_per_second = 10e9;  // per link and direction
  double latency_seconds = 0;           // per transfer
  SpTopology topology = SpTopology::kRing;
  // Compute time of a step: flops / attention_flops_per_second when > 0, else the recorded
  // compute_seconds times compute_scale.
  double attention_flops_per_second = 0;
  double compute_scale = 1.0;
  // Bytes per q / kv / out element on the wire (the recording is f32; lse stays f32).
  int element_bytes = 4;
};

struct SpReplayResult {
  double layer_seconds = 0;    // until the last rank is done
  double compute_seconds = 0;  // the busiest rank's total compute
  double exposed_seconds = 0;  // layer_seconds − compute_seconds
  std::vector<double> rank_seconds;
  std::vector<std::vector<double>> step_end;  // [rank][step] end time of each step
};

absl::StatusOr<SpReplayResult> ReplaySchedule(const std::vector<SpStats>& ranks, const SpReplayOptions& options);

}  // namespace tessera::parallel
