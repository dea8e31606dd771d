// tessera-echo-server: the reference for the "frontend cost" figure. A plain synchronous gRPC
// server (the same server type tesserad uses) whose tessera.v1.Inference/Tokenize answers every
// request with one fixed TokenizeResponse, doing no work. Driving it and tesserad's Tokenize with
// the same load shows what tesserad's unary path costs on top of bare gRPC.
//
//   tessera-echo-server --port 0 --port-file /tmp/echo.port
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "tessera/v1/inference.grpc.pb.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int32_t, port, 0, "port; 0 = any free port");
ABSL_FLAG(std::string, port_file, "", "write the bound port here once listening");

namespace {

class EchoService final : public tessera::v1::Inference::Service {
 public:
  EchoService() {
    // What tesserad answers for "hello world" with a byte-level BPE tokenizer, give or take ids.
    reply_.add_token_ids(14990);
    reply_.add_token_ids(1879);
    reply_.add_tokens("hello");
    reply_.add_tokens("\xC4\xA0world");
    reply_.set_max_model_len(4096);
  }
  grpc::Status Tokenize(grpc::ServerContext*, const tessera::v1::TokenizeRequest*,
                        tessera::v1::TokenizeResponse* resp) override {
    *resp = reply_;
    return grpc::Status::OK;
  }

 private:
  tessera::v1::TokenizeResponse reply_;
};

std::unique_ptr<grpc::Server> g_server;

void OnSignal(int) {
  static std::atomic<bool> once{false};
  if (once.exchange(true)) return;
  std::thread([] { g_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1)); }).detach();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("tessera-echo-server [--port N] [--port-file F]: fixed-reply Tokenize for comparisons");
  absl::ParseCommandLine(argc, argv);
  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_host) + ":" + std::to_string(absl::GetFlag(FLAGS_port)),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  g_server = builder.BuildAndStart();
  if (!g_server || port == 0) {
    std::fprintf(stderr, "tessera-echo-server: cannot listen on %s:%d\n", absl::GetFlag(FLAGS_host).c_str(),
                 absl::GetFlag(FLAGS_port));
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    const std::string path = absl::GetFlag(FLAGS_port_file);
    std::ofstream(path + ".tmp") << port << "\n";
    std::rename((path + ".tmp").c_str(), path.c_str());
  }
  std::fprintf(stderr, "tessera-echo-server: listening on %s:%d\n", absl::GetFlag(FLAGS_host).c_str(), port);
  g_server->Wait();
  return 0;
}
