// tessera-worker: one rank of a worker group. Rank 0 serves tessera.engine.v1.Engine on
// --host:--port (token ids in, token ids out) and runs the engine's scheduler; under mpirun with
// more than one rank the others follow rank 0's step plans and the model runs sequence-parallel
// across all of them (worker/group). Launched by tesserad's supervisor (which reads the bound port
// from --port-file) or by hand for `tesserad --engine`.
//
//   tessera-worker --model DIR --port 7001 --threads 2
//   mpirun -np 4 tessera-worker --model DIR --port 7001 --threads 1   # one group of 4 ranks
//
// Start-up: the gRPC server comes up first (Health says ready=false), then the model loads and one
// warm-up step runs, then Health says ready. A model that cannot load ends the process with exit
// code 2 and the cause on stderr. SIGTERM/SIGINT stop it (in-flight calls are cancelled).
#include <grpcpp/grpcpp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "kernels/backend_registry.h"
#include "kernels/dtype.h"
#include "runtime/llm/model.h"
#include "runtime/parallel/mpi_comm.h"
#include "worker/engine/engine.h"
#include "worker/group/worker_group.h"
#include "worker/service/engine_service.h"

ABSL_FLAG(std::string, model, "", "model directory (Hugging Face) or GGUF file");
ABSL_FLAG(std::string, model_name, "", "name reported to the frontend; default: the model path's last component");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int32_t, port, 0, "port to listen on; 0 = any free port");
ABSL_FLAG(std::string, port_file, "", "write the bound port to this file once listening");
ABSL_FLAG(int32_t, threads, 0, "CPU threads for the model; 0 = all");
ABSL_FLAG(int64_t, block_size, 16, "KV cache block size in tokens");
ABSL_FLAG(int64_t, kv_cache_bytes, 256ll << 20, "KV cache size in bytes (when --num-kv-blocks is 0)");
ABSL_FLAG(int64_t, num_kv_blocks, 0, "KV cache blocks; 0 = from --kv-cache-bytes");
ABSL_FLAG(int64_t, max_num_seqs, 64, "most sequences in one step");
ABSL_FLAG(int64_t, max_num_batched_tokens, 0,
          "most new tokens in one step (prefill is chunked to fit); 0 = 512 for one rank, the context length for a "
          "worker group (only a prefill's first chunk is split across the ranks)");
ABSL_FLAG(int64_t, max_model_len, 0, "context length; 0 = the model's");
ABSL_FLAG(bool, enable_prefix_caching, true, "reuse KV blocks of shared prompt prefixes");
ABSL_FLAG(bool, exit_with_parent, true, "exit when the launching process dies");
ABSL_FLAG(std::string, sp_policy, "auto",
          "worker groups: prefill attention across ranks: auto (cost model), token_ring (pass-Q) or ring (pass-KV)");
ABSL_FLAG(double, sp_link_gbps, 0,
          "worker groups: link bandwidth per direction in GB/s for the auto policy; 0 = measured at start");
ABSL_FLAG(std::string, activations, "int8", tessera::kernels::kActivationsFlagHelp);
ABSL_FLAG(std::string, device, "cpu", tessera::kernels::kDeviceFlagHelp);

namespace tessera {
namespace {

std::unique_ptr<grpc::Server> g_server;

void OnSignal(int) {
  // Shutdown from a helper thread: grpc::Server::Shutdown is not async-signal-safe.
  static std::atomic<bool> once{false};
  if (once.exchange(true)) return;
  std::thread([] {
    if (g_server) g_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }).detach();
}

std::string BaseName(std::string path) {
  while (!path.empty() && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// More than one rank under mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE for every process it starts).
bool InMpiGroup() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  return size != nullptr && std::atoi(size) > 1;
}

absl::StatusOr<worker::GroupOptions> GroupOptionsFromFlags() {
  worker::GroupOptions g;
  const std::string mode = absl::GetFlag(FLAGS_sp_policy);
  if (mode == "auto") {
    g.sp.policy.mode = parallel::SpPolicy::Mode::kAuto;
  } else if (mode == "token_ring") {
    g.sp.policy.mode = parallel::SpPolicy::Mode::kTokenRing;
  } else if (mode == "ring") {
    g.sp.policy.mode = parallel::SpPolicy::Mode::kRing;
  } else {
    return absl::InvalidArgumentError("--sp_policy: expected auto, token_ring or ring, got '" + mode + "'");
  }
  g.sp.policy.link_bytes_per_second = absl::GetFlag(FLAGS_sp_link_gbps) * 1e9;
  return g;
}

int Run(int* argc, char*** argv) {
  if (absl::GetFlag(FLAGS_exit_with_parent)) prctl(PR_SET_PDEATHSIG, SIGKILL);
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  if (model_dir.empty()) {
    std::fprintf(stderr, "tessera-worker: --model is required\n");
    return 2;
  }
  kernels::Activations activations;
  if (!kernels::ParseActivations(absl::GetFlag(FLAGS_activations), &activations)) {
    std::fprintf(stderr, "tessera-worker: %s\n",
                 kernels::ActivationsFlagError(absl::GetFlag(FLAGS_activations)).c_str());
    return 2;
  }
  auto group_opts = GroupOptionsFromFlags();
  if (!group_opts.ok()) {
    std::fprintf(stderr, "tessera-worker: %s\n", std::string(group_opts.status().message()).c_str());
    return 2;
  }
  std::unique_ptr<parallel::MpiEnvironment> mpi;
  std::unique_ptr<parallel::Communicator> comm;
  if (InMpiGroup()) {
    auto env = parallel::MpiEnvironment::Init(argc, argv);
    auto world = env.ok() ? parallel::MpiComm::CreateWorld() : env.status();
    if (!world.ok()) {
      std::fprintf(stderr, "tessera-worker: cannot join the MPI group: %s\n",
                   std::string(world.status().message()).c_str());
      return 2;
    }
    mpi = *std::move(env);
    comm = *std::move(world);
  }
  const int rank = comm ? comm->rank() : 0;
  const absl::StatusOr<kernels::Device> device = kernels::ParseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::fprintf(stderr, "tessera-worker: --device: %s\n", std::string(device.status().message()).c_str());
    return 2;
  }
  auto model = llm::Model::Load(
      model_dir, {.num_threads = absl::GetFlag(FLAGS_threads), .activations = activations, .device = *device});
  if (!model.ok()) {
    std::fprintf(stderr, "tessera-worker: rank %d cannot load model: %s\n", rank,
                 std::string(model.status().message()).c_str());
    return 2;
  }
  if (rank != 0) {
    // Followers: rank 0 drains and sends stop on SIGTERM; mpirun ends the job if rank 0 dies.
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGINT, SIG_IGN);
    absl::Status s = worker::RunFollower(model->get(), comm.get(), *group_opts);
    if (!s.ok()) {
      std::fprintf(stderr, "tessera-worker: rank %d: %s\n", rank, std::string(s.message()).c_str());
      comm->Abort(s);
      return 1;
    }
    return 0;
  }
  engine::Options opts;
  opts.block_size = absl::GetFlag(FLAGS_block_size);
  opts.kv_cache_bytes = absl::GetFlag(FLAGS_kv_cache_bytes);
  opts.num_blocks = absl::GetFlag(FLAGS_num_kv_blocks);
  opts.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  opts.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  if (opts.max_num_batched_tokens == 0) {
    const int64_t context = absl::GetFlag(FLAGS_max_model_len) > 0 ? absl::GetFlag(FLAGS_max_model_len)
                                                                   : (*model)->config().max_position_embeddings;
    opts.max_num_batched_tokens = comm ? std::max<int64_t>(512, context) : 512;
  }
  opts.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  opts.enable_prefix_caching = absl::GetFlag(FLAGS_enable_prefix_caching);
  std::unique_ptr<worker::GroupLeader> leader;
  if (comm) {
    leader = std::make_unique<worker::GroupLeader>(model->get(), comm.get(), *group_opts);
    opts.enable_prefix_caching = false;  // a cached block's rank depends on the sequence that wrote it
    opts.forward = [l = leader.get()](std::span<const llm::SequenceInput> batch, llm::PagedKvCache& cache,
                                      std::vector<float>* logits) { return l->Forward(batch, cache, logits); };
  }
  auto eng = engine::Engine::Create(model->get(), opts);
  if (!eng.ok()) {
    std::fprintf(stderr, "tessera-worker: cannot create engine: %s\n", std::string(eng.status().message()).c_str());
    return 2;
  }
  if (leader) {
    if (absl::Status s = leader->Start((*eng)->num_blocks(), opts.block_size); !s.ok()) {
      std::fprintf(stderr, "tessera-worker: cannot start the worker group: %s\n", std::string(s.message()).c_str());
      return 2;
    }
    const auto d = leader->runner()->PrefillChoice(2048);
    const parallel::SpPolicy& p = leader->policy();
    const bool timed = p.link_bytes_per_second > 0 && p.attention_flops_per_second > 0;
    const std::string estimate =
        timed ? absl::StrFormat("est. token_ring %.3g ms, ring %.3g ms", d.token_ring_cost * 1e3, d.ring_cost * 1e3)
              : absl::StrFormat("busiest link per step: token_ring %.3g MB, ring %.3g MB", d.token_ring_cost / 1e6,
                                d.ring_cost / 1e6);
    std::fprintf(stderr,
                 "tessera-worker: worker group of %d ranks (%s), sequence-parallel attention; prefill policy %s "
                 "(link %.2f GB/s, attention %.1f GFLOP/s; a 2048-token prefill: %s, %s), decode pass-Q\n",
                 comm->size(), std::string(comm->backend()).c_str(), absl::GetFlag(FLAGS_sp_policy).c_str(),
                 p.link_bytes_per_second / 1e9, p.attention_flops_per_second / 1e9,
                 std::string(parallel::SpAlgorithmName(d.algorithm)).c_str(), estimate.c_str());
  }

  const llm::ModelConfig& cfg = (*model)->config();
  worker::ServiceInfo info;
  if (leader) {
    info.group_size = comm->size();
    info.sp_totals = [l = leader.get()] { return l->totals(); };
  }
  info.model_name = absl::GetFlag(FLAGS_model_name).empty() ? BaseName(model_dir) : absl::GetFlag(FLAGS_model_name);
  info.vocab_size = cfg.vocab_size;
  info.max_model_len = opts.max_model_len > 0 ? opts.max_model_len : cfg.max_position_embeddings;
  for (int64_t id : (*model)->generation_defaults().eos_token_ids)
    info.eos_token_ids.push_back(static_cast<int32_t>(id));
  info.device_memory = [m = model->get(), e = eng->get(), name = kernels::PhysicalDeviceName(*device)] {
    return std::vector<worker::ServiceInfo::DeviceMemory>{{name, "weights", m->weight_bytes()},
                                                          {name, "kv", e->kv_cache_bytes()},
                                                          {name, "workspace", m->workspace_bytes()}};
  };
  worker::EngineService service(eng->get(), info);

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_host) + ":" + std::to_string(absl::GetFlag(FLAGS_port)),
                           grpc::InsecureServerCredentials(), &bound_port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);
  g_server = builder.BuildAndStart();
  if (!g_server || bound_port == 0) {
    std::fprintf(stderr, "tessera-worker: cannot listen on %s:%d\n", absl::GetFlag(FLAGS_host).c_str(),
                 absl::GetFlag(FLAGS_port));
    return 2;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  (*eng)->Start();
  // Warm-up: one short greedy sequence through the whole path before reporting ready.
  {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    absl::Status warm_status;
    engine::Request warm;
    warm.id = "__warmup__";
    warm.prompt = {0, 1, 2, 3};
    for (int32_t& t : warm.prompt) t = t % static_cast<int32_t>(cfg.vocab_size);
    warm.params.temperature = 0;
    warm.params.max_tokens = 2;
    absl::Status added = (*eng)->Add(std::move(warm), [&](const engine::Event& e) {
      if (e.finish == engine::FinishReason::kNone) return;
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      warm_status = e.error;
      cv.notify_all();
    });
    if (added.ok()) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
    }
    if (!added.ok() || !warm_status.ok()) {
      const absl::Status& s = added.ok() ? warm_status : added;
      std::fprintf(stderr, "tessera-worker: warm-up failed: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  service.SetReady(true);

  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    const std::string path = absl::GetFlag(FLAGS_port_file);
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << bound_port << "\n";
    std::rename(tmp.c_str(), path.c_str());
  }
  std::fprintf(stderr, "tessera-worker: serving %s on %s:%d (pid %d)\n", info.model_name.c_str(),
               absl::GetFlag(FLAGS_host).c_str(), bound_port, getpid());
  g_server->Wait();
  (*eng)->Stop();
  if (leader) leader->Stop();
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("tessera-worker --model DIR [--port N] [--port-file F]: a Tessera engine process");
  absl::ParseCommandLine(argc, argv);
  return tessera::Run(&argc, &argv);
}
