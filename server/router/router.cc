#include "server/router/router.h"

#include <limits>

namespace tessera::server {

Router::~Router() { Stop(); }

size_t Router::AddSlot(std::shared_ptr<EngineClient> client) {
  std::lock_guard<std::mutex> lock(mu_);
  slots_.push_back(std::move(client));
  return slots_.size() - 1;
}

void Router::Replace(size_t slot, std::shared_ptr<EngineClient> client) {
  std::lock_guard<std::mutex> lock(mu_);
  slots_[slot] = std::move(client);
}

std::shared_ptr<EngineClient> Router::Get(size_t slot) const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_[slot];
}

size_t Router::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.size();
}

void Router::Start() {
  const size_t n = size();
  for (size_t i = 0; i < n; ++i) threads_.emplace_back([this, i] { Monitor(i); });
}

void Router::Stop() {
  stop_.store(true);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

absl::StatusOr<std::shared_ptr<EngineClient>> Router::Pick() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<EngineClient> best;
  double best_cost = std::numeric_limits<double>::infinity();
  for (const auto& c : slots_) {
    if (!c || !c->ready()) continue;
    const double cost = c->Cost();
    if (cost < best_cost) {
      best_cost = cost;
      best = c;
    }
  }
  if (!best) return absl::UnavailableError("no engine is ready");
  return best;
}

bool Router::AnyReady() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : slots_) {
    if (c && c->ready()) return true;
  }
  return false;
}

bool Router::AllReady() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (slots_.empty()) return false;
  for (const auto& c : slots_) {
    if (!c || !c->ready()) return false;
  }
  return true;
}

namespace {

EngineCounters CountersOf(const tessera::engine::v1::Stats& stats) {
  EngineCounters c{.preemptions = stats.preemptions(),
                   .prefix_cache_queries = stats.prefix_cache_queries(),
                   .prefix_cache_hits = stats.prefix_cache_hits()};
  for (const tessera::engine::v1::DeviceMemory& m : stats.device_memory()) {
    c.device_memory[{m.device(), m.kind()}] = m.bytes();
  }
  for (const tessera::engine::v1::SpAlgoStats& a : stats.sp()) {
    SpCounters& sp = c.sp[a.algo()];
    for (const auto& [dir, bytes] : a.bytes_sent()) sp.bytes[dir] = bytes;
    sp.bounds.assign(a.compute().bounds().begin(), a.compute().bounds().end());
    sp.compute_counts.assign(a.compute().counts().begin(), a.compute().counts().end());
    sp.wait_counts.assign(a.wait().counts().begin(), a.wait().counts().end());
    sp.compute_sum = a.compute().sum();
    sp.wait_sum = a.wait().sum();
    sp.exposed_comm_seconds = a.exposed_comm_seconds();
  }
  return c;
}

}  // namespace

void Router::Monitor(size_t slot) {
  while (!stop_.load()) {
    const auto started = std::chrono::steady_clock::now();
    std::shared_ptr<EngineClient> c = Get(slot);
    if (c) {
      const bool answered = c->PollHealth(options_.heartbeat_timeout);
      if (answered) {
        if (c->info().ready() && !c->ready()) c->SetReady(true);
        if (c->ready() && c->PollLoad(options_.poll_interval)) {
          tessera::engine::v1::Stats stats;
          if (c->PollStats(options_.poll_interval, &stats)) {
            metrics_->AddEngineCounters(c->address(), CountersOf(stats));
          }
        }
      } else if (c->ready() && std::chrono::steady_clock::now() - c->last_heartbeat() > options_.heartbeat_timeout) {
        c->MarkDown();
        if (on_down_) on_down_(slot);
      }
      metrics_->SetWorkerUp(c->group(), 0, c->ready());
      if (slot == 0) PublishLoad();
    }
    const auto next = started + options_.poll_interval;
    while (!stop_.load() && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

void Router::PublishLoad() {
  std::vector<std::shared_ptr<EngineClient>> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    clients = slots_;
  }
  int64_t running = 0, waiting = 0;
  double kv = 0;
  int n = 0;
  for (const auto& c : clients) {
    if (!c || !c->ready()) continue;
    const auto l = c->load();
    running += l.running();
    waiting += l.waiting();
    kv += l.kv_usage();
    ++n;
  }
  metrics_->SetEngineLoad(running, waiting, n ? kv / n : 0.0);
}

}  // namespace tessera::server
