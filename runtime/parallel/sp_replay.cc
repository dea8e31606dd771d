#include "runtime/parallel/sp_replay.h"

#include <algorithm>
#include <map>
#include <queue>
#include <tuple>

#include "absl/strings/str_format.h"

namespace tessera::parallel {
namespace {

struct Message {
  int src = 0, dst = 0;
  int send_step = 0, recv_step = 0;
  double bytes = 0;
  double send_posted = -1, recv_posted = -1;
  double done = -1;
};

enum class EventKind { kStepStart, kComputeDone, kMessageReady, kMessageDone };

struct Event {
  double time;
  long seq;  // tie-break: insertion order
  EventKind kind;
  int a;  // rank or message index
  int b;  // step
  bool operator>(const Event& o) const { return std::tie(time, seq) > std::tie(o.time, o.seq); }
};

}  // namespace

absl::StatusOr<SpReplayResult> ReplaySchedule(const std::vector<SpStats>& ranks, const SpReplayOptions& options) {
  const int N = static_cast<int>(ranks.size());
  if (N < 1) return absl::InvalidArgumentError("ReplaySchedule: no ranks");
  if (!(options.link_bytes_per_second > 0)) {
    return absl::InvalidArgumentError("ReplaySchedule: link_bytes_per_second must be > 0");
  }
  const int steps = static_cast<int>(ranks[0].compute_seconds.size());
  for (int r = 0; r < N; ++r) {
    if (ranks[r].rank != r || ranks[r].world != N) {
      return absl::InvalidArgumentError(
          absl::StrFormat("ReplaySchedule: stats[%d] is rank %d of %d", r, ranks[r].rank, ranks[r].world));
    }
    if (static_cast<int>(ranks[r].compute_seconds.size()) != steps ||
        static_cast<int>(ranks[r].flops.size()) != steps) {
      return absl::InvalidArgumentError(absl::StrFormat("ReplaySchedule: stats[%d] has a different step count", r));
    }
  }
  // Pair sends with receives per (src, dst, direction) in posting order.
  std::vector<Message> msgs;
  std::map<std::tuple<int, int, int>, std::vector<int>> send_q, recv_q;
  // step_msgs[r][s]: messages rank r posted at step s (as sender or receiver).
  std::vector<std::vector<std::vector<int>>> step_msgs(N, std::vector<std::vector<int>>(steps));
  for (int r = 0; r < N; ++r) {
    for (const SpTransfer& t : ranks[r].transfers) {
      if (t.step < 0 || t.step >= steps || t.peer < 0 || t.peer >= N) {
        return absl::InvalidArgumentError(
            absl::StrFormat("ReplaySchedule: rank %d has a transfer at step %d to %d", r, t.step, t.peer));
      }
      if (t.is_send) send_q[{r, t.peer, static_cast<int>(t.direction)}].push_back(static_cast<int>(msgs.size()));
      Message m;
      m.src = t.is_send ? r : t.peer;
      m.dst = t.is_send ? t.peer : r;
      m.bytes = static_cast<double>(t.data_elems) * options.element_bytes + 4.0 * t.lse_elems;
      if (t.is_send) {
        m.send_step = t.step;
        msgs.push_back(m);
      } else {
        recv_q[{t.peer, r, static_cast<int>(t.direction)}].push_back(-1 - t.step);  // resolved below
      }
    }
  }
  // Resolve receive steps, then register each message with both ranks' steps.
  for (auto& [key, sends] : send_q) {
    auto it = recv_q.find(key);
    if (it == recv_q.end() || it->second.size() != sends.size()) {
      return absl::InvalidArgumentError(absl::StrFormat("ReplaySchedule: %d→%d sends and receives do not pair up",
                                                        std::get<0>(key), std::get<1>(key)));
    }
    for (size_t i = 0; i < sends.size(); ++i) {
      Message& m = msgs[sends[i]];
      m.recv_step = -1 - it->second[i];
      step_msgs[m.src][m.send_step].push_back(sends[i]);
      step_msgs[m.dst][m.recv_step].push_back(sends[i]);
    }
  }
  for (auto& [key, recvs] : recv_q) {
    if (!send_q.count(key)) return absl::InvalidArgumentError("ReplaySchedule: a receive has no send");
  }

  auto compute_time = [&](int r, int s) {
    if (options.attention_flops_per_second > 0) return ranks[r].flops[s] / options.attention_flops_per_second;
    return ranks[r].compute_seconds[s] * options.compute_scale;
  };
  // Directed links as (from, to) pairs.
  auto route = [&](int a, int b) {
    std::vector<std::pair<int, int>> links;
    if (options.topology == SpTopology::kSwitch) {
      links.push_back({a, N});  // uplink of a
      links.push_back({N, b});  // downlink of b
      return links;
    }
    if (options.topology == SpTopology::kMesh || N <= 2) {
      links.push_back({a, b});
      return links;
    }
    const int fwd = ((b - a) % N + N) % N;
    const int dir = fwd <= N - fwd ? 1 : -1;
    for (int x = a; x != b; x = ((x + dir) % N + N) % N) links.push_back({x, ((x + dir) % N + N) % N});
    return links;
  };
  std::map<std::pair<int, int>, double> link_free;

  SpReplayResult res;
  res.rank_seconds.assign(N, 0);
  res.step_end.assign(N, std::vector<double>(steps, 0));
  std::vector<std::vector<int>> pending(N, std::vector<int>(steps, 0));  // compute + messages outstanding
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;
  long seq = 0;
  for (int r = 0; r < N; ++r) events.push({0.0, seq++, EventKind::kStepStart, r, 0});

  auto finish_part = [&](int r, int s, double t) {
    if (--pending[r][s] > 0) return;
    res.step_end[r][s] = t;
    if (s + 1 < steps) {
      events.push({t, seq++, EventKind::kStepStart, r, s + 1});
    } else {
      res.rank_seconds[r] = t;
    }
  };

  while (!events.empty()) {
    const Event e = events.top();
    events.pop();
    switch (e.kind) {
      case EventKind::kStepStart: {
        const int r = e.a, s = e.b;
        pending[r][s] = 1 + static_cast<int>(step_msgs[r][s].size());
        events.push({e.time + compute_time(r, s), seq++, EventKind::kComputeDone, r, s});
        for (int mi : step_msgs[r][s]) {
          Message& m = msgs[mi];
          if (m.src == r && m.send_step == s && m.send_posted < 0) {
            m.send_posted = e.time;
          } else {
            m.recv_posted = e.time;
          }
          if (m.send_posted >= 0 && m.recv_posted >= 0) {
            events.push({std::max(m.send_posted, m.recv_posted), seq++, EventKind::kMessageReady, mi, 0});
          }
        }
        break;
      }
      case EventKind::kComputeDone:
        finish_part(e.a, e.b, e.time);
        break;
      case EventKind::kMessageReady: {
        Message& m = msgs[e.a];
        const auto links = route(m.src, m.dst);
        double start = e.time;
        for (const auto& l : links) start = std::max(start, link_free[l]);
        const double end = start + m.bytes / options.link_bytes_per_second + options.latency_seconds;
        for (const auto& l : links) link_free[l] = end;
        events.push({end, seq++, EventKind::kMessageDone, e.a, 0});
        break;
      }
      case EventKind::kMessageDone: {
        Message& m = msgs[e.a];
        m.done = e.time;
        finish_part(m.src, m.send_step, e.time);
        finish_part(m.dst, m.recv_step, e.time);
        break;
      }
    }
  }
  for (int r = 0; r < N; ++r) {
    double c = 0;
    for (int s = 0; s < steps; ++s) c += compute_time(r, s);
    res.compute_seconds = std::max(res.compute_seconds, c);
    res.layer_seconds = std::max(res.layer_seconds, res.rank_seconds[r]);
  }
  for (const Message& m : msgs) {
    if (m.done < 0) return absl::InternalError("ReplaySchedule: a message never completed (schedule deadlocks)");
  }
  res.exposed_seconds = res.layer_seconds - res.compute_seconds;
  return res;
}

}  // namespace tessera::parallel
