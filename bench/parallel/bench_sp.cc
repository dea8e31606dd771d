// Sequence-parallel attention on the CPU: TokenRing (pass-Q) and zigzag Ring (pass-KV) side by
// side, with single-pass attention measured in the same run as the reference, and a discrete-event
// replay of both schedules (runtime/parallel/sp_replay.h) over modelled links.
//
//   bench_sp                                  # all three parts with the defaults below
//   bench_sp --parts=real --tokens=4096:8,8192:4 --ranks=2,4,8
//   bench_sp --parts=replay,paper
//
// Part "real": N ranks as threads (LocalComm), one thread of compute each, causal zigzag.
//   layer      wall time of the layer (all ranks share this machine's cores)
//   compute    the busiest rank's compute (thread CPU time)
//   exposed    the largest per-rank time blocked in Wait
//   eff        single-pass time (1 thread) / (N · busiest rank's compute): parallel efficiency if
//              every rank had its own core and communication were free
//   balance    mean / max rank compute
//   bytes      MB sent per rank per direction (max over ranks), from the implementation's counters
// Part "replay": the recorded schedules (N=4) replayed at 1, 10, 100, 450 GB/s per link direction on
//   a ring and on a full mesh, for H/H_kv = 1, 2, 4, 8; compute per step as measured here, and the
//   same measured steps scaled to a GPU's attention rate (--gpu_tflops).
// Part "paper": the TokenRing README setup (4×A10 over PCIe, LLaMA-2-7B attention: 32 heads, d=128,
//   MHA, fp16, 24,000 tokens) as a dry-run schedule replayed with compute calibrated to the README's
//   3.5 ms per step and a 12.9 GB/s link.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "kernels/cpu/ops.h"
#include "runtime/base/status_macros.h"
#include "runtime/parallel/local_comm.h"
#include "runtime/parallel/sp_attention.h"
#include "runtime/parallel/sp_internal.h"
#include "runtime/parallel/sp_replay.h"

ABSL_FLAG(std::string, parts, "real,replay,paper", "which parts to run");
ABSL_FLAG(std::string, tokens, "4096:8,8192:4,16384:2,32768:1,65536:1",
          "tokens:heads pairs for the real runs (fewer heads at long lengths keep the run short)");
ABSL_FLAG(std::string, ranks, "2,4,8", "rank counts for the real runs");
ABSL_FLAG(int64_t, head_dim, 64, "head dimension for the real runs");
ABSL_FLAG(int64_t, replay_tokens, 8192, "tokens of the recorded schedules for the replay part");
ABSL_FLAG(int64_t, replay_heads, 8, "query heads of the recorded schedules for the replay part");
ABSL_FLAG(double, gpu_tflops, 84.0,
          "attention TFLOP/s the replay scales measured compute to (84: the A10 rate implied by the "
          "TokenRing README's 3.5 ms zigzag step at 24k tokens)");

namespace tessera::parallel {
namespace {

struct SpRun {
  std::vector<SpStats> stats;
  double wall = 0;
};

absl::StatusOr<SpRun> RunSp(int N, int64_t S, int64_t H, int64_t Hkv, int64_t D, SpAlgorithm alg, bool dry_run) {
  TS_ASSIGN_OR_RETURN(SpLayout layout, SpLayout::Make({.total_tokens = S, .world = N, .causal = true}));
  TS_ASSIGN_OR_RETURN(auto group, LocalCommGroup::Create({.size = N}));
  SpRun run;
  run.stats.resize(N);
  const int64_t L = layout.local_tokens;
  // Inputs are made before the clock starts.
  std::vector<std::vector<float>> q(N), k(N), v(N), out(N);
  for (int r = 0; r < N; ++r) {
    q[r].assign(L * H * D, 0.0f);
    k[r].assign(L * Hkv * D, 0.0f);
    v[r].assign(L * Hkv * D, 0.0f);
    out[r].assign(L * H * D, 0.0f);
    for (size_t i = 0; i < q[r].size(); ++i) q[r][i] = 0.01f * static_cast<float>((i * 7 + r) % 13) - 0.06f;
    for (size_t i = 0; i < k[r].size(); ++i) k[r][i] = 0.01f * static_cast<float>((i * 5 + r) % 11) - 0.05f;
    for (size_t i = 0; i < v[r].size(); ++i) v[r][i] = 0.01f * static_cast<float>((i * 3 + r) % 17);
  }
  internal::WallTimer t;
  TS_RETURN_IF_ERROR(group->RunOnAllRanks([&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    TS_ASSIGN_OR_RETURN(auto sp, SequenceParallelAttention::Create(
                                     &comm, {.n_heads = H, .n_kv_heads = Hkv, .head_dim = D, .dry_run = dry_run}));
    TS_RETURN_IF_ERROR(
        sp->Prefill(layout, {.q = q[r].data(), .k = k[r].data(), .v = v[r].data(), .out = out[r].data()}, alg));
    run.stats[r] = sp->last_stats();
    return absl::OkStatus();
  }));
  run.wall = t.Seconds();
  return run;
}

double SinglePass(int64_t S, int64_t H, int64_t D) {
  std::vector<float> q(S * H * D), k(S * H * D), v(S * H * D), out(S * H * D), lse(S * H);
  for (size_t i = 0; i < q.size(); ++i) {
    q[i] = 0.01f * static_cast<float>(i % 13) - 0.06f;
    k[i] = 0.01f * static_cast<float>(i % 11) - 0.05f;
    v[i] = 0.01f * static_cast<float>(i % 17);
  }
  kernels::AttentionParams p;
  p.q = q.data();
  p.num_q = S;
  p.n_heads = H;
  p.n_kv_heads = H;
  p.head_dim = D;
  p.k = k.data();
  p.v = v.data();
  p.num_kv = S;
  p.causal = true;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  p.out = out.data();
  p.lse = lse.data();
  internal::ComputeTimer t(false);
  kernels::AttentionWithLse(nullptr, p);
  return t.Seconds();
}

double MaxOver(const std::vector<SpStats>& st, double (*f)(const SpStats&)) {
  double m = 0;
  for (const auto& s : st) m = std::max(m, f(s));
  return m;
}

double MaxBytes(const std::vector<SpStats>& st, SpDirection d) {
  int64_t m = 0;
  for (const auto& s : st) m = std::max(m, s.BytesSent(d));
  return m / 1e6;
}

int PartReal() {
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (absl::string_view item : absl::StrSplit(absl::GetFlag(FLAGS_tokens), ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(item, ':');
    int64_t s = 0, h = 0;
    if (kv.size() != 2 || !absl::SimpleAtoi(kv[0], &s) || !absl::SimpleAtoi(kv[1], &h) || s < 1 || h < 1) {
      std::fprintf(stderr, "--tokens: bad item '%s' (want tokens:heads)\n", std::string(item).c_str());
      return 1;
    }
    shapes.push_back({s, h});
  }
  std::vector<int> ranks;
  for (absl::string_view item : absl::StrSplit(absl::GetFlag(FLAGS_ranks), ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(item, &n) || n < 1) {
      std::fprintf(stderr, "--ranks: bad item '%s'\n", std::string(item).c_str());
      return 1;
    }
    ranks.push_back(n);
  }
  const int64_t D = absl::GetFlag(FLAGS_head_dim);
  std::printf("\n## Real runs (LocalComm, causal zigzag, MHA, head_dim %ld, 1 compute thread per rank)\n\n",
              static_cast<long>(D));
  std::printf(
      "| N | tokens | heads | algorithm | layer s | single-pass s | compute s | exposed s | eff | balance "
      "| flop balance | q MB | out MB | kv MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [S, H] : shapes) {
    const double t1 = SinglePass(S, H, D);
    for (int N : ranks) {
      for (SpAlgorithm alg : {SpAlgorithm::kTokenRing, SpAlgorithm::kRing}) {
        auto run = RunSp(N, S, H, H, D, alg, false);
        if (!run.ok()) {
          std::fprintf(stderr, "%s\n", run.status().ToString().c_str());
          return 1;
        }
        const double cmax = MaxOver(run->stats, [](const SpStats& s) { return s.TotalComputeSeconds(); });
        double csum = 0;
        for (const auto& s : run->stats) csum += s.TotalComputeSeconds();
        const double exposed = MaxOver(run->stats, [](const SpStats& s) { return s.TotalWaitSeconds(); });
        double fmax = 0, fsum = 0;
        for (const auto& s : run->stats) {
          const double f = std::accumulate(s.flops.begin(), s.flops.end(), 0.0);
          fmax = std::max(fmax, f);
          fsum += f;
        }
        std::printf("| %d | %ld | %ld | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f | %.2f |\n",
                    N, static_cast<long>(S), static_cast<long>(H), std::string(SpAlgorithmName(alg)).c_str(), run->wall,
                    t1, cmax, exposed, t1 / (N * cmax), csum / N / cmax, fsum / N / fmax,
                    MaxBytes(run->stats, SpDirection::kQuery), MaxBytes(run->stats, SpDirection::kOutput),
                    MaxBytes(run->stats, SpDirection::kKv));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

const char* TopoName(SpTopology t) {
  return t == SpTopology::kRing ? "ring" : (t == SpTopology::kMesh ? "mesh" : "switch");
}

// Replays TokenRing and Ring schedules over the given bandwidths and topologies and prints one row
// per case, with the policy's pick and its cost relative to the better of the two.
void ReplayTable(const char* label, const std::vector<SpStats>& tr, const std::vector<SpStats>& ring, SpShape shape,
                 const std::vector<double>& gbps, const std::vector<SpTopology>& topos, SpReplayOptions base,
                 double policy_flops, int* policy_worse) {
  for (SpTopology topo : topos) {
    for (double g : gbps) {
      SpReplayOptions o = base;
      o.link_bytes_per_second = g * 1e9;
      o.topology = topo;
      auto a = ReplaySchedule(tr, o);
      auto b = ReplaySchedule(ring, o);
      if (!a.ok() || !b.ok()) {
        std::fprintf(stderr, "replay failed: %s %s\n", a.status().ToString().c_str(), b.status().ToString().c_str());
        continue;
      }
      const SpPolicyDecision d = ChooseAlgorithm({.link_bytes_per_second = g * 1e9,
                                                  .attention_flops_per_second = policy_flops,
                                                  .topology = topo,
                                                  .element_bytes = o.element_bytes},
                                                 shape);
      const double best = std::min(a->layer_seconds, b->layer_seconds);
      const double picked = d.algorithm == SpAlgorithm::kTokenRing ? a->layer_seconds : b->layer_seconds;
      if (picked > best * (1 + 1e-9)) ++*policy_worse;
      const double ratio = b->exposed_seconds > 0 ? a->exposed_seconds / b->exposed_seconds : NAN;
      std::printf("| %s | %ld | %s | %g | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %s | %.3f |\n", label,
                  static_cast<long>(shape.n_heads / shape.n_kv_heads), TopoName(topo), g, 1e3 * a->compute_seconds,
                  1e3 * a->layer_seconds, 1e3 * a->exposed_seconds, 1e3 * b->layer_seconds, 1e3 * b->exposed_seconds,
                  ratio, d.algorithm == SpAlgorithm::kTokenRing ? "TR" : "Ring", picked / best);
    }
  }
}

void ReplayHeader() {
  std::printf(
      "| compute | H/H_kv | topology | GB/s | compute ms | TR layer ms | TR exposed ms | Ring layer ms "
      "| Ring exposed ms | TR/Ring exposed | policy | policy/best |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

int PartReplay() {
  const int N = 4;
  const int64_t S = absl::GetFlag(FLAGS_replay_tokens), H = absl::GetFlag(FLAGS_replay_heads), D = 64;
  const double gpu = absl::GetFlag(FLAGS_gpu_tflops) * 1e12;
  std::printf("\n## Replay of measured schedules (N=4, %ld tokens, %ld heads, d=%ld, f32 on the wire)\n\n",
              static_cast<long>(S), static_cast<long>(H), static_cast<long>(D));
  std::printf(
      "\"measured\": per-step compute as measured here (CPU). \"gpu-scaled\": the same measured steps "
      "scaled by (measured flop rate / %.0f TFLOP/s).\n\n",
      gpu / 1e12);
  ReplayHeader();
  int worse = 0;
  for (int64_t g : {1, 2, 4, 8}) {
    if (H % g != 0) continue;
    auto tr = RunSp(N, S, H, H / g, D, SpAlgorithm::kTokenRing, false);
    auto ring = RunSp(N, S, H, H / g, D, SpAlgorithm::kRing, false);
    if (!tr.ok() || !ring.ok()) {
      std::fprintf(stderr, "run failed\n");
      return 1;
    }
    // Both algorithms compute the same blocks at every step, so give both schedules the mean of the
    // two measurements of each (rank, step); otherwise run-to-run noise decides the comparison.
    for (int r = 0; r < N; ++r) {
      for (int s = 0; s < N; ++s) {
        const double m = 0.5 * (tr->stats[r].compute_seconds[s] + ring->stats[r].compute_seconds[s]);
        tr->stats[r].compute_seconds[s] = m;
        ring->stats[r].compute_seconds[s] = m;
      }
    }
    double flops = 0, secs = 0;
    for (const auto* run : {&*tr, &*ring}) {
      for (const auto& s : run->stats) {
        flops += std::accumulate(s.flops.begin(), s.flops.end(), 0.0);
        secs += s.TotalComputeSeconds();
      }
    }
    const double cpu_rate = flops / secs;
    const SpShape shape{.n_heads = H,
                        .n_kv_heads = H / g,
                        .head_dim = D,
                        .tokens_per_rank = 2 * ((S + 2 * N - 1) / (2 * N)),
                        .world = N,
                        .causal = true};
    ReplayTable("measured", tr->stats, ring->stats, shape, {1, 10, 100, 450}, {SpTopology::kRing, SpTopology::kMesh},
                {}, cpu_rate, &worse);
    ReplayTable("gpu-scaled", tr->stats, ring->stats, shape, {1, 10, 100, 450}, {SpTopology::kRing, SpTopology::kMesh},
                {.compute_scale = cpu_rate / gpu}, gpu, &worse);
    std::fflush(stdout);
  }
  std::printf("\npolicy slower than the better algorithm in %d cases\n", worse);
  return 0;
}

// Durations of rank 0's steps (the last entry is the final output exchange, if any), in ms.
std::string StepList(const SpReplayResult& r) {
  std::string out;
  double prev = 0;
  for (double end : r.step_end[0]) {
    if (end - prev > 1e-9 || out.empty()) out += absl::StrFormat("%s%.2f", out.empty() ? "" : " ", 1e3 * (end - prev));
    prev = end;
  }
  return out;
}

int PartPaper() {
  const int N = 4;
  const int64_t S = 24000, H = 32, D = 128;
  // Calibrate the attention rate so that one zigzag off-diagonal step, (S/N)·(S/2N) pairs per head,
  // takes the README's 3.5 ms.
  const double step_flops = double(S / N) * double(S / (2 * N)) * H * 4 * D;
  const double F = step_flops / 3.5e-3;
  std::printf(
      "\n## TokenRing README setup: N=4, 24000 tokens, 32 heads, d=128, fp16 on the wire, attention at "
      "%.1f TFLOP/s (3.5 ms per zigzag step)\n\n",
      F / 1e12);
  std::printf(
      "| H/H_kv | topology | GB/s | TR layer/N ms | Ring layer/N ms | TR exposed ms | Ring exposed ms "
      "| TR/Ring exposed | TR step ms (rank 0) | Ring step ms (rank 0) | policy | policy/best |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t g : {1, 2, 4, 8}) {
    auto tr = RunSp(N, S, H, H / g, D, SpAlgorithm::kTokenRing, true);
    auto ring = RunSp(N, S, H, H / g, D, SpAlgorithm::kRing, true);
    if (!tr.ok() || !ring.ok()) {
      std::fprintf(stderr, "dry run failed\n");
      return 1;
    }
    for (SpTopology topo : {SpTopology::kSwitch, SpTopology::kRing, SpTopology::kMesh}) {
      for (double gbps : {1.0, 10.0, 12.9, 100.0, 450.0}) {
        SpReplayOptions o{
            .link_bytes_per_second = gbps * 1e9, .topology = topo, .attention_flops_per_second = F, .element_bytes = 2};
        auto a = ReplaySchedule(tr->stats, o);
        auto b = ReplaySchedule(ring->stats, o);
        if (!a.ok() || !b.ok()) return 1;
        const SpPolicyDecision d = ChooseAlgorithm(
            {.link_bytes_per_second = gbps * 1e9,
             .attention_flops_per_second = F,
             .topology = topo,
             .element_bytes = 2},
            {.n_heads = H, .n_kv_heads = H / g, .head_dim = D, .tokens_per_rank = S / N, .world = N, .causal = true});
        const double best = std::min(a->layer_seconds, b->layer_seconds);
        const double picked = d.algorithm == SpAlgorithm::kTokenRing ? a->layer_seconds : b->layer_seconds;
        std::printf("| %ld | %s | %g | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %.3f |\n",
                    static_cast<long>(g), TopoName(topo), gbps, 1e3 * a->layer_seconds / N, 1e3 * b->layer_seconds / N,
                    1e3 * a->exposed_seconds, 1e3 * b->exposed_seconds,
                    b->exposed_seconds > 0 ? a->exposed_seconds / b->exposed_seconds : NAN, StepList(*a).c_str(),
                    StepList(*b).c_str(), d.algorithm == SpAlgorithm::kTokenRing ? "TR" : "Ring", picked / best);
      }
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace tessera::parallel

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string parts = absl::GetFlag(FLAGS_parts);
  int rc = 0;
  if (rc == 0 && parts.find("real") != std::string::npos) rc = tessera::parallel::PartReal();
  if (rc == 0 && parts.find("replay") != std::string::npos) rc = tessera::parallel::PartReplay();
  if (rc == 0 && parts.find("paper") != std::string::npos) rc = tessera::parallel::PartPaper();
  return rc;
}
