// tesserad: Tessera's serving daemon (frontend). Launches the worker processes (or attaches to
// engines started elsewhere), then serves the public gRPC and HTTP APIs over them.
//
//   tesserad --model DIR                       one local worker, HTTP :8000, gRPC :50051
//   tesserad --model DIR --replicas 2          two workers, least-loaded routing
//   tesserad --model DIR --engine host:7001    engines started by hand (DIR gives the tokenizer)
//   tesserad --config configs/tesserad.yaml    every flag can be set in YAML; flags override
//
// Flags may be written with dashes or underscores (--max-queued-requests = --max_queued_requests).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/backend_registry.h"
#include "kernels/dtype.h"
#include "server/api/auth.h"
#include "server/grpc/services.h"
#include "server/http/http_server.h"
#include "server/metrics/metrics.h"
#include "server/pipeline/model_assets.h"
#include "server/pipeline/pipeline.h"
#include "server/router/router.h"
#include "server/supervisor/supervisor.h"
#include "server/tokenizer/tokenizer.h"
#include "yaml-cpp/yaml.h"

ABSL_FLAG(std::string, config, "", "YAML file with any of these settings (keys as the flag names); flags override it");
ABSL_FLAG(std::string, model, "",
          "model directory (Hugging Face: config.json, safetensors, tokenizer.json) or GGUF file");
ABSL_FLAG(std::string, served_model_name, "", "model name in the APIs; default: the model path's last component");
ABSL_FLAG(std::string, host, "0.0.0.0", "address the HTTP and gRPC servers listen on");
ABSL_FLAG(int32_t, port, 8000, "HTTP port (OpenAI REST, health, metrics); 0 = any free port");
ABSL_FLAG(int32_t, grpc_port, 50051, "gRPC port (tessera.v1, KServe v2, health, reflection); 0 = any free port");
ABSL_FLAG(std::string, port_file, "", "write the bound ports here as 'http=<port> grpc=<port>' once ready");
ABSL_FLAG(int32_t, replicas, 1, "local worker processes to launch (data parallel)");
ABSL_FLAG(int32_t, sp, 1,
          "ranks per worker group (sequence parallelism): N > 1 launches each replica as mpirun -np N tessera-worker");
ABSL_FLAG(std::string, sp_policy, "auto", "worker groups: prefill attention across ranks: auto, token_ring or ring");
ABSL_FLAG(double, sp_link_gbps, 0,
          "worker groups: link bandwidth per direction (GB/s) for the auto policy; 0 = measured at start");
ABSL_FLAG(std::string, mpirun, "mpirun", "the mpirun that launches worker groups of --sp > 1 ranks");
ABSL_FLAG(std::vector<std::string>, engine, {},
          "engines started elsewhere (host:port, comma-separated); no local workers");
ABSL_FLAG(std::string, worker_binary, "", "path of tessera-worker; default: next to tesserad");
ABSL_FLAG(int32_t, threads, 0, "CPU threads per worker; 0 = all cores");
ABSL_FLAG(std::string, activations, "int8", tessera::kernels::kActivationsFlagHelp);
ABSL_FLAG(std::string, device, "cpu",
          "where the workers run the model: cpu, cuda or cuda:N. With --device cuda and --replicas N, worker i "
          "gets GPU i (CUDA_VISIBLE_DEVICES=i); every weight is held as bf16 on the GPU (GGUF weights are "
          "dequantized at load)");
ABSL_FLAG(int64_t, max_num_seqs, 64, "engine: most sequences in one step");
ABSL_FLAG(int64_t, max_num_batched_tokens, 0,
          "engine: most new tokens in one step (prefill is chunked); 0 = 512, or the context length for --sp > 1 "
          "(a prompt is split across the ranks in one step)");
ABSL_FLAG(int64_t, kv_cache_bytes, 256ll << 20, "engine: KV cache size in bytes");
ABSL_FLAG(int64_t, block_size, 16, "engine: KV cache block size in tokens");
ABSL_FLAG(int64_t, max_model_len, 0, "context length; 0 = the model's");
ABSL_FLAG(bool, enable_prefix_caching, true, "engine: reuse KV blocks of shared prompt prefixes");
ABSL_FLAG(int64_t, max_queued_requests, 1024, "requests waiting for their first token before 429");
ABSL_FLAG(int64_t, max_queued_tokens, 1 << 20, "prompt tokens waiting for a first token before 429");
ABSL_FLAG(int32_t, max_tokens_cap, 0, "largest max_tokens a request may ask for; 0 = the context length");
ABSL_FLAG(int64_t, max_body_bytes, 8 << 20, "largest HTTP body / gRPC message (413 / RESOURCE_EXHAUSTED)");
ABSL_FLAG(int32_t, http_threads, 512, "HTTP worker threads (each streaming response holds one)");
ABSL_FLAG(double, shutdown_timeout, 30, "seconds in-flight requests may take to finish after SIGTERM");
ABSL_FLAG(double, heartbeat_timeout, 2, "seconds without an engine heartbeat before it is declared down");
ABSL_FLAG(std::vector<std::string>, api_key, {},
          "API keys accepted as 'Authorization: Bearer <key>' (comma-separated)");
ABSL_FLAG(std::string, api_key_file, "", "file with one API key per line");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate for HTTPS and gRPC TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle: require client certificates signed by it (mutual TLS)");

namespace tessera::server {
namespace {

std::atomic<int> g_signal{0};
std::set<std::string> g_command_line_flags;  // names given on the command line (they beat the config)
void OnSignal(int sig) { g_signal.store(sig); }

std::string BaseName(std::string path) {
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string name = std::filesystem::path(path).filename().string();
  // "SmolLM2-135M-Instruct.Q4_1.gguf" → "SmolLM2-135M-Instruct.Q4_1"
  if (name.size() > 5 && name.substr(name.size() - 5) == ".gguf") name.resize(name.size() - 5);
  return name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Applies a YAML config: each key names a flag; flags given on the command line win.
absl::Status ApplyConfig(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": ", e.what()));
  }
  if (!root.IsMap())
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": expected a mapping of settings"));
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    for (char& c : key) c = c == '-' ? '_' : c;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(key);
    if (flag == nullptr || key == "config") {
      return absl::InvalidArgumentError(absl::StrCat("config ", path, ": unknown setting '", key, "'"));
    }
    if (g_command_line_flags.count(key) || g_command_line_flags.count("no" + key)) continue;
    std::string value;
    if (kv.second.IsSequence()) {
      std::vector<std::string> items;
      for (const auto& item : kv.second) items.push_back(item.as<std::string>());
      value = absl::StrJoin(items, ",");
    } else if (kv.second.IsScalar()) {
      value = kv.second.as<std::string>();
    } else if (!kv.second.IsNull()) {
      return absl::InvalidArgumentError(absl::StrCat("config ", path, ": '", key, "' must be a value or a list"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("config ", path, ": ", key, ": ", error));
    }
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> GrpcCredentials() {
  if (absl::GetFlag(FLAGS_tls_cert).empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions opts(absl::GetFlag(FLAGS_tls_client_ca).empty()
                                             ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                             : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  opts.pem_key_cert_pairs.push_back({ReadFile(absl::GetFlag(FLAGS_tls_key)), ReadFile(absl::GetFlag(FLAGS_tls_cert))});
  if (!absl::GetFlag(FLAGS_tls_client_ca).empty()) opts.pem_root_certs = ReadFile(absl::GetFlag(FLAGS_tls_client_ca));
  return grpc::SslServerCredentials(opts);
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "tesserad: %s\n", msg.c_str());
  return 1;
}

int Run() {
  if (!absl::GetFlag(FLAGS_config).empty()) {
    if (auto s = ApplyConfig(absl::GetFlag(FLAGS_config)); !s.ok()) return Fail(std::string(s.message()));
  }
  std::string model = absl::GetFlag(FLAGS_model);
  if (model.rfind("~/", 0) == 0 && std::getenv("HOME") != nullptr)
    model = std::string(std::getenv("HOME")) + model.substr(1);
  if (model.empty()) return Fail("--model is required (it also gives the tokenizer when --engine is used)");
  const std::string model_name =
      absl::GetFlag(FLAGS_served_model_name).empty() ? BaseName(model) : absl::GetFlag(FLAGS_served_model_name);
  // Worker settings are checked here, before any server starts, so that a bad one ends start-up at once.
  if (absl::GetFlag(FLAGS_replicas) < 1) return Fail("--replicas must be >= 1");
  if (absl::GetFlag(FLAGS_sp) < 1) return Fail("--sp must be >= 1");
  kernels::Activations activations;
  if (!kernels::ParseActivations(absl::GetFlag(FLAGS_activations), &activations)) {
    return Fail(kernels::ActivationsFlagError(absl::GetFlag(FLAGS_activations)));
  }
  const absl::StatusOr<kernels::Device> device = kernels::ParseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return Fail(absl::StrCat("--device: ", device.status().message()));
  if (!device->is_cpu() && absl::GetFlag(FLAGS_engine).empty()) {
    if (auto s = kernels::CheckDeviceAvailable(*device); !s.ok()) return Fail(std::string(s.message()));
    if (absl::GetFlag(FLAGS_sp) > 1) {
      return Fail("--sp > 1 runs on --device cpu only: sequence parallelism over NCCL is not built yet");
    }
    const int replicas = absl::GetFlag(FLAGS_replicas);
    if (replicas > 1 && device->index != 0) {
      return Fail("--replicas > 1 with --device cuda gives worker i GPU i; name --device cuda, not cuda:N");
    }
    if (replicas > kernels::CudaDevicesVisible()) {
      return Fail(absl::StrCat("--replicas ", replicas, " with --device cuda needs one GPU per worker; ",
                               kernels::CudaDevicesVisible(), " visible"));
    }
  }

  ApiKeys keys(absl::GetFlag(FLAGS_api_key));
  if (!absl::GetFlag(FLAGS_api_key_file).empty()) {
    auto file_keys = ApiKeys::FromFile(absl::GetFlag(FLAGS_api_key_file));
    if (!file_keys.ok()) return Fail(std::string(file_keys.status().message()));
    keys = std::move(*file_keys);
    for (const std::string& k : absl::GetFlag(FLAGS_api_key)) keys.Add(k);
  }
  for (const std::string& f :
       {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_tls_client_ca)}) {
    if (!f.empty() && access(f.c_str(), R_OK) != 0) return Fail("cannot read TLS file " + f);
  }

  auto assets = LoadModelAssets(model);
  if (!assets.ok())
    return Fail(absl::StrCat("cannot load the tokenizer or chat template: ", assets.status().message()));

  Metrics metrics(model_name, "0.1.0");
  Router router({.poll_interval = std::chrono::milliseconds(200),
                 .heartbeat_timeout =
                     std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_heartbeat_timeout) * 1000))},
                &metrics);
  Pipeline pipeline({.max_queued_requests = absl::GetFlag(FLAGS_max_queued_requests),
                     .max_queued_tokens = absl::GetFlag(FLAGS_max_queued_tokens),
                     .max_tokens_cap = absl::GetFlag(FLAGS_max_tokens_cap)},
                    model_name, assets->tokenizer.get(), &router, &metrics);
  if (assets->chat) {
    const ChatRenderer* chat = assets->chat.get();
    pipeline.SetChatRenderer([chat](const TextRequest& r) { return chat->Render(r); });
  }

  // Public servers first: they answer "not ready" until the engines are.
  InferenceService inference(&pipeline, &keys);
  KServeService kserve(&pipeline, &keys, "0.1.0");
  HealthService health(&pipeline);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_grpc_port)),
                           GrpcCredentials(), &grpc_port);
  builder.RegisterService(&inference);
  builder.RegisterService(&kserve);
  builder.RegisterService(&health);
  builder.SetMaxReceiveMessageSize(static_cast<int>(absl::GetFlag(FLAGS_max_body_bytes)));
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || grpc_port == 0) {
    return Fail(absl::StrCat("cannot start gRPC on ", absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_grpc_port)));
  }
  HttpServer http({.host = absl::GetFlag(FLAGS_host),
                   .port = absl::GetFlag(FLAGS_port),
                   .threads = absl::GetFlag(FLAGS_http_threads),
                   .max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_body_bytes)),
                   .max_tokens_cap = absl::GetFlag(FLAGS_max_tokens_cap),
                   .tls_cert = absl::GetFlag(FLAGS_tls_cert),
                   .tls_key = absl::GetFlag(FLAGS_tls_key),
                   .tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca)},
                  &pipeline, &metrics, &keys);
  if (auto s = http.Start(); !s.ok()) return Fail(std::string(s.message()));

  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Supervisor> supervisor;
  const std::vector<std::string> engines = absl::GetFlag(FLAGS_engine);
  if (engines.empty()) {
    Supervisor::Options sopts;
    sopts.worker_binary = absl::GetFlag(FLAGS_worker_binary).empty() ? Supervisor::FindWorkerBinary()
                                                                     : absl::GetFlag(FLAGS_worker_binary);
    if (sopts.worker_binary.empty()) return Fail("cannot find tessera-worker (use --worker-binary)");
    sopts.replicas = absl::GetFlag(FLAGS_replicas);
    sopts.worker_args = {
        "--model=" + model,
        "--model_name=" + model_name,
        absl::StrCat("--threads=", absl::GetFlag(FLAGS_threads)),
        "--activations=" + std::string(kernels::ActivationsName(activations)),
        "--device=" + (device->is_cpu() || sopts.replicas == 1 ? device->ToString() : std::string("cuda:0")),
        absl::StrCat("--max_num_seqs=", absl::GetFlag(FLAGS_max_num_seqs)),
        absl::StrCat("--max_num_batched_tokens=", absl::GetFlag(FLAGS_max_num_batched_tokens)),
        absl::StrCat("--kv_cache_bytes=", absl::GetFlag(FLAGS_kv_cache_bytes)),
        absl::StrCat("--block_size=", absl::GetFlag(FLAGS_block_size)),
        absl::StrCat("--max_model_len=", absl::GetFlag(FLAGS_max_model_len)),
        absl::StrCat("--enable_prefix_caching=", absl::GetFlag(FLAGS_enable_prefix_caching) ? "true" : "false")};
    const int sp = absl::GetFlag(FLAGS_sp);
    if (sp > 1) {
      sopts.launcher = {absl::GetFlag(FLAGS_mpirun), "-np", std::to_string(sp), "--oversubscribe"};
      sopts.worker_args.push_back("--sp_policy=" + absl::GetFlag(FLAGS_sp_policy));
      sopts.worker_args.push_back(absl::StrCat("--sp_link_gbps=", absl::GetFlag(FLAGS_sp_link_gbps)));
    }
    if (!device->is_cpu() && sopts.replicas > 1) {
      for (int i = 0; i < sopts.replicas; ++i) sopts.replica_env.push_back(absl::StrCat("CUDA_VISIBLE_DEVICES=", i));
    }
    supervisor = std::make_unique<Supervisor>(sopts, &router, &metrics);
    if (auto s = supervisor->Start(); !s.ok()) {
      http.Stop();
      grpc_server->Shutdown();
      return Fail(std::string(s.message()));
    }
  } else {
    for (size_t i = 0; i < engines.size(); ++i) {
      router.AddSlot(std::make_shared<EngineClient>(engines[i], std::to_string(i)));
    }
  }
  router.SetOnDown([&supervisor](size_t slot) {
    if (supervisor) supervisor->KillHung(slot);
  });
  router.Start();

  std::atomic<bool> fatal{false};
  std::string fatal_reason;
  std::mutex fatal_mu;
  if (supervisor) {
    supervisor->Watch([&](const std::string& reason) {
      std::lock_guard<std::mutex> lock(fatal_mu);
      fatal_reason = reason;
      fatal.store(true);
    });
  }

  bool announced = false;
  while (g_signal.load() == 0 && !fatal.load()) {
    if (!announced && pipeline.Ready()) {
      announced = true;
      std::fprintf(stderr, "tesserad: serving %s — HTTP %s:%d, gRPC %s:%d\n", model_name.c_str(),
                   absl::GetFlag(FLAGS_host).c_str(), http.port(), absl::GetFlag(FLAGS_host).c_str(), grpc_port);
      if (!absl::GetFlag(FLAGS_port_file).empty()) {
        const std::string path = absl::GetFlag(FLAGS_port_file);
        std::ofstream(path + ".tmp") << "http=" << http.port() << " grpc=" << grpc_port << "\n";
        std::rename((path + ".tmp").c_str(), path.c_str());
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  int code = 0;
  if (fatal.load()) {
    std::lock_guard<std::mutex> lock(fatal_mu);
    std::fprintf(stderr, "tesserad: %s\n", fatal_reason.c_str());
    pipeline.StartDrain();
    pipeline.CancelAll(absl::UnavailableError("the server is shutting down: " + fatal_reason));
    code = 1;
  } else {
    // Drain: not ready at once, new requests refused, in-flight ones get shutdown_timeout.
    std::fprintf(stderr, "tesserad: draining (%lld in flight)\n", static_cast<long long>(pipeline.InFlight()));
    pipeline.StartDrain();
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_shutdown_timeout) * 1000));
    while (pipeline.InFlight() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pipeline.CancelAll(absl::UnavailableError("the server is shutting down"));
  }
  // Let handlers deliver their final errors before the servers go away.
  const auto flush_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (pipeline.InFlight() > 0 && std::chrono::steady_clock::now() < flush_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  http.Stop();
  router.Stop();
  if (supervisor) supervisor->Shutdown(std::chrono::milliseconds(2000));
  return code;
}

// absl flags want underscores; accept --foo-bar for --foo_bar.
std::vector<char*> NormalizeFlagNames(int argc, char** argv, std::vector<std::string>* storage) {
  storage->reserve(static_cast<size_t>(argc));
  std::vector<char*> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.size() > 2 && a[0] == '-' && a[1] == '-') {
      const size_t eq = a.find('=');
      for (size_t j = 2; j < std::min(eq, a.size()); ++j) {
        if (a[j] == '-') a[j] = '_';
      }
      g_command_line_flags.insert(a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2));
    }
    storage->push_back(a);
  }
  for (std::string& s : *storage) out.push_back(s.data());
  return out;
}

}  // namespace
}  // namespace tessera::server

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tesserad --model DIR [--replicas N | --engine HOST:PORT] [--port 8000] [--grpc-port 50051] ...\n"
      "Tessera's serving daemon: OpenAI REST + SSE, tessera.v1 gRPC, KServe v2, health, reflection, /metrics.");
  std::vector<std::string> storage;
  std::vector<char*> args = tessera::server::NormalizeFlagNames(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return tessera::server::Run();
}
