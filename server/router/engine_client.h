// The frontend's handle on one engine (rank 0 of a worker group) at host:port: its gRPC channel,
// what it serves (from Health), its last reported load, and the calls in flight on it so they can
// all be failed at once when the engine goes down.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "tessera/engine/v1/engine.grpc.pb.h"

namespace tessera::server {

class EngineClient {
 public:
  explicit EngineClient(std::string address, std::string group = "0");

  const std::string& address() const { return address_; }
  const std::string& group() const { return group_; }
  tessera::engine::v1::Engine::Stub* stub() { return stub_.get(); }

  // Health, load and stats polls with a deadline; false when the engine did not answer.
  bool PollHealth(std::chrono::milliseconds timeout);
  bool PollLoad(std::chrono::milliseconds timeout);
  bool PollStats(std::chrono::milliseconds timeout, tessera::engine::v1::Stats* stats);

  // Ready: answered Health with ready=true, and not marked down since.
  bool ready() const { return ready_.load(); }
  void SetReady(bool ready) { ready_.store(ready); }
  // Marks the engine down and cancels every call registered on it; the callers see CANCELLED from
  // gRPC and `down_generation()` tells them it was the engine that failed.
  void MarkDown();
  int64_t down_generation() const { return down_generation_.load(); }
  std::chrono::steady_clock::time_point last_heartbeat() const;

  tessera::engine::v1::HealthResponse info() const;
  tessera::engine::v1::Load load() const;

  // In-flight call bookkeeping (routing weight and cancellation on MarkDown).
  void Register(grpc::ClientContext* ctx);
  void Unregister(grpc::ClientContext* ctx);
  int64_t inflight() const { return inflight_.load(); }

  // A routing cost: in-flight calls the frontend knows of, plus the engine's reported waiting.
  double Cost() const;

 private:
  std::string address_;
  std::string group_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tessera::engine::v1::Engine::Stub> stub_;
  std::atomic<bool> ready_{false};
  std::atomic<int64_t> inflight_{0};
  std::atomic<int64_t> down_generation_{0};
  mutable std::mutex mu_;
  tessera::engine::v1::HealthResponse info_;
  tessera::engine::v1::Load load_;
  std::chrono::steady_clock::time_point last_heartbeat_{};
  std::set<grpc::ClientContext*> calls_;
};

}  // namespace tessera::server
