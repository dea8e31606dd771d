// The tessera.engine.v1.Engine gRPC service of a worker: token ids in, token ids out, over one
// engine::Engine. Each Generate call adds a sequence to the engine and relays its events; a
// cancelled call (client gone, deadline passed) aborts the sequence, which the engine applies at
// its next step.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "runtime/llm/sp_runner.h"
#include "tessera/engine/v1/engine.grpc.pb.h"
#include "worker/engine/engine.h"

namespace tessera::worker {

struct ServiceInfo {
  std::string model_name;
  int64_t vocab_size = 0;
  int64_t max_model_len = 0;
  std::vector<int32_t> eos_token_ids;
  int32_t group_size = 1;
  // Worker groups of several ranks: the group's sequence-parallel totals (thread-safe).
  std::function<llm::SpTotals()> sp_totals;
  // The model's memory on its device, for tessera_device_memory_bytes (thread-safe).
  struct DeviceMemory {
    std::string device;  // "cpu", "cuda:0"
    std::string kind;    // "weights", "kv", "workspace"
    int64_t bytes = 0;
  };
  std::function<std::vector<DeviceMemory>()> device_memory;
};

class EngineService final : public tessera::engine::v1::Engine::Service {
 public:
  EngineService(engine::Engine* engine, ServiceInfo info) : engine_(engine), info_(std::move(info)) {}

  void SetReady(bool ready) { ready_.store(ready); }

  grpc::Status Generate(grpc::ServerContext* ctx, const tessera::engine::v1::GenerateRequest* req,
                        grpc::ServerWriter<tessera::engine::v1::GenerateResponse>* writer) override;
  grpc::Status Abort(grpc::ServerContext* ctx, const tessera::engine::v1::AbortRequest* req,
                     tessera::engine::v1::AbortResponse* resp) override;
  grpc::Status GetLoad(grpc::ServerContext* ctx, const tessera::engine::v1::GetLoadRequest* req,
                       tessera::engine::v1::Load* resp) override;
  grpc::Status Health(grpc::ServerContext* ctx, const tessera::engine::v1::HealthRequest* req,
                      tessera::engine::v1::HealthResponse* resp) override;
  grpc::Status GetStats(grpc::ServerContext* ctx, const tessera::engine::v1::GetStatsRequest* req,
                        tessera::engine::v1::Stats* resp) override;

 private:
  engine::Engine* engine_;
  ServiceInfo info_;
  std::atomic<bool> ready_{false};
};

// absl → gRPC status, same code and message.
grpc::Status ToGrpc(const absl::Status& s);

}  // namespace tessera::worker
