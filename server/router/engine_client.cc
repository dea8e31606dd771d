#include "server/router/engine_client.h"

namespace tessera::server {
namespace pb = tessera::engine::v1;

EngineClient::EngineClient(std::string address, std::string group)
    : address_(std::move(address)), group_(std::move(group)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // Fail fast while the engine is down instead of queueing calls on the channel.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
  stub_ = pb::Engine::NewStub(channel_);
}

bool EngineClient::PollHealth(std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::HealthRequest req;
  pb::HealthResponse resp;
  if (!stub_->Health(&ctx, req, &resp).ok()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  info_ = resp;
  last_heartbeat_ = std::chrono::steady_clock::now();
  return true;
}

bool EngineClient::PollLoad(std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::GetLoadRequest req;
  pb::Load resp;
  if (!stub_->GetLoad(&ctx, req, &resp).ok()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  load_ = resp;
  return true;
}

bool EngineClient::PollStats(std::chrono::milliseconds timeout, pb::Stats* stats) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::GetStatsRequest req;
  return stub_->GetStats(&ctx, req, stats).ok();
}

void EngineClient::MarkDown() {
  ready_.store(false);
  down_generation_.fetch_add(1);
  std::lock_guard<std::mutex> lock(mu_);
  for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
}

std::chrono::steady_clock::time_point EngineClient::last_heartbeat() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_heartbeat_;
}

pb::HealthResponse EngineClient::info() const {
  std::lock_guard<std::mutex> lock(mu_);
  return info_;
}

pb::Load EngineClient::load() const {
  std::lock_guard<std::mutex> lock(mu_);
  return load_;
}

void EngineClient::Register(grpc::ClientContext* ctx) {
  inflight_.fetch_add(1);
  std::lock_guard<std::mutex> lock(mu_);
  calls_.insert(ctx);
}

void EngineClient::Unregister(grpc::ClientContext* ctx) {
  inflight_.fetch_sub(1);
  std::lock_guard<std::mutex> lock(mu_);
  calls_.erase(ctx);
}

double EngineClient::Cost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<double>(inflight_.load()) + 0.5 * static_cast<double>(load_.waiting()) + load_.kv_usage();
}

}  // namespace tessera::server
