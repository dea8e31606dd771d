// Routes requests across engines (one per worker group): each request goes to the ready engine
// with the lowest cost (in-flight calls + reported queue + KV use). A monitor thread per engine
// polls Health every `poll_interval`; an engine that has not answered for `heartbeat_timeout` is
// marked down (its calls are cancelled and fail with UNAVAILABLE) until it answers ready again.
// Load and counters from the same polls feed the metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "server/metrics/metrics.h"
#include "server/router/engine_client.h"

namespace tessera::server {

class Router {
 public:
  struct Options {
    std::chrono::milliseconds poll_interval{200};
    std::chrono::milliseconds heartbeat_timeout{2000};
  };
  Router(const Options& options, Metrics* metrics) : options_(options), metrics_(metrics) {}
  ~Router();

  // Adds a slot (one worker group). Returns its index.
  size_t AddSlot(std::shared_ptr<EngineClient> client);
  // Replaces the client of a slot (a relaunched group listens on a new port).
  void Replace(size_t slot, std::shared_ptr<EngineClient> client);
  std::shared_ptr<EngineClient> Get(size_t slot) const;
  size_t size() const;

  void Start();
  void Stop();

  // The least loaded ready engine; UNAVAILABLE when none is ready.
  absl::StatusOr<std::shared_ptr<EngineClient>> Pick() const;
  bool AnyReady() const;
  bool AllReady() const;
  // Called by a monitor thread when a slot's engine stops answering (the supervisor restarts it).
  void SetOnDown(std::function<void(size_t slot)> on_down) { on_down_ = std::move(on_down); }

 private:
  void Monitor(size_t slot);
  void PublishLoad();

  Options options_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<EngineClient>> slots_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::function<void(size_t)> on_down_;
};

}  // namespace tessera::server
