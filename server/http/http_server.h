// The HTTP face of tesserad (cpp-httplib): OpenAI REST (/v1/completions, /v1/chat/completions with
// SSE, /v1/models), health (/health, /v2/health/live, /v2/health/ready) and /metrics.
//
// Every request runs on one thread of a fixed pool (--http-threads; a streaming response holds its
// thread until it ends). A client that disconnects is noticed between tokens (poll on the
// connection's socket for POLLRDHUP) and its sequences are aborted; a non-streaming call whose
// client left is aborted the same way.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "server/api/auth.h"
#include "server/metrics/metrics.h"
#include "server/pipeline/pipeline.h"

namespace httplib {
class Server;
}

namespace tessera::server {

struct HttpOptions {
  std::string host = "0.0.0.0";
  int port = 8000;
  int threads = 512;
  size_t max_body_bytes = 8 << 20;
  int32_t max_tokens_cap = 0;
  std::string tls_cert, tls_key, tls_client_ca;  // HTTPS when cert and key are set; mTLS with CA
};

class HttpServer {
 public:
  HttpServer(const HttpOptions& options, Pipeline* pipeline, Metrics* metrics, const ApiKeys* keys);
  ~HttpServer();
  // Binds (port 0 picks one; see port()). INVALID_ARGUMENT for bad TLS files, UNAVAILABLE when the
  // port cannot be bound.
  absl::Status Start();
  int port() const { return port_; }
  void Stop();

 private:
  void Routes();
  HttpOptions options_;
  Pipeline* pipeline_;
  Metrics* metrics_;
  const ApiKeys* keys_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace tessera::server
