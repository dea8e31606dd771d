// The protocol side of tessera-bench: one Client per worker thread sends one request at a time and
// times what comes back. Implementations: OpenAI REST with SSE (rest_client.cc), tessera.v1 gRPC
// Generate/Chat, tessera.engine.v1 Generate, and unary tessera.v1 Tokenize (grpc_client.cc).
#ifndef TESSERA_BENCH_SERVE_CLIENT_H_
#define TESSERA_BENCH_SERVE_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/serve/dataset.h"
#include "bench/serve/sse.h"

namespace tessera::bench {

// Seconds on the steady clock.
inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

enum class Api { kRest, kGrpc, kEngine, kTokenize };

struct RequestResult {
  bool ok = false;
  std::string error_kind;    // "HTTP 429", "gRPC RESOURCE_EXHAUSTED", "stream error", "connection: ..."
  std::string error_detail;  // first part of the server's message
  double start = 0;          // send time, seconds on the steady clock
  double ttft = 0;           // seconds from send to the first chunk that carries tokens
  std::vector<double> itl;   // seconds between consecutive chunks that carry tokens
  double e2e = 0;            // seconds from send to the end of the stream
  int prompt_tokens = -1;    // from usage; -1 when the server did not say
  int output_tokens = 0;     // from usage, else counted from the chunks
  int chunks = 0;            // chunks that carried tokens
};

struct TargetOptions {
  Api api = Api::kRest;
  Endpoint endpoint = Endpoint::kCompletions;
  std::string url;          // REST base, "http://host:port"
  std::string grpc_target;  // "host:port"
  std::string model;        // empty: ask the server
  std::string api_key;
  float temperature = 0;
  bool ignore_eos = true;
  double timeout_s = 600;
  int grpc_channels = 1;        // TCP connections shared by the worker threads (gRPC APIs)
  bool rest_keep_alive = true;  // reuse each worker's connection (REST)
};

// What the target says about itself before the run.
struct TargetInfo {
  std::string model;
  int64_t vocab_size = 0;  // 0 when unknown (REST)
};

class Client {
 public:
  virtual ~Client() = default;
  // Sends one request and waits for the whole answer. Never throws; failures are in the result.
  virtual RequestResult Send(const RequestSpec& spec, const std::string& request_id) = 0;
};

class ClientFactory {
 public:
  virtual ~ClientFactory() = default;
  virtual TargetInfo info() const = 0;
  // One client per worker thread (each REST client holds its own keep-alive connection).
  virtual std::unique_ptr<Client> NewClient(int worker) = 0;
};

// Connects (or checks that it can), and learns the model name when `opts.model` is empty.
absl::StatusOr<std::unique_ptr<ClientFactory>> MakeRestClientFactory(const TargetOptions& opts);
absl::StatusOr<std::unique_ptr<ClientFactory>> MakeGrpcClientFactory(const TargetOptions& opts);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_SERVE_CLIENT_H_
