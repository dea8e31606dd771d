// Launches and watches the local worker groups of tesserad (one tessera-worker process per
// replica, or one mpirun job of N ranks per replica). A worker reports readiness by writing its bound port to a file;
// the supervisor then hands a client for it to the router. When a worker exits (crash, SIGKILL) or stops answering (the
// router's heartbeat timeout; the process is then killed), its in-flight requests fail with UNAVAILABLE through the
// router, and it is relaunched after a backoff (0.5 s doubling to 8 s). `max_crashes` exits within `crash_window` are
// fatal, as is a worker that fails to start the first time (bad model path, corrupt weights): on_fatal is called with
// the reason.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "server/metrics/metrics.h"
#include "server/router/router.h"

namespace tessera::server {

class Supervisor {
 public:
  struct Options {
    std::string worker_binary;
    std::vector<std::string> worker_args;  // without --port / --port-file
    // Runs the worker through this command, e.g. {"mpirun", "-np", "4", "--oversubscribe"} for a
    // group of 4 ranks (rank 0 writes the port file; the group lives and dies with mpirun).
    std::vector<std::string> launcher;
    int replicas = 1;
    // Empty, or one "NAME=value" per replica set in that worker's environment (for example
    // CUDA_VISIBLE_DEVICES=i: one GPU per worker).
    std::vector<std::string> replica_env;
    std::chrono::seconds startup_timeout{600};
    int max_crashes = 5;
    std::chrono::seconds crash_window{60};
    std::string run_dir;  // where port files go
  };
  Supervisor(Options options, Router* router, Metrics* metrics);
  ~Supervisor();

  // Launches every replica and waits until each has written its port (or failed): an error names
  // the replica and its exit status; the worker's own stderr carries the cause.
  absl::Status Start();
  // Starts the monitor thread (relaunches). on_fatal runs on it.
  void Watch(std::function<void(const std::string& reason)> on_fatal);
  // SIGTERM every worker, then SIGKILL after `grace`.
  void Shutdown(std::chrono::milliseconds grace);
  // Called by the router when a slot's engine stopped answering: kill the process so it restarts.
  void KillHung(size_t slot);

  // Finds tessera-worker next to the running executable, or in ../worker/, or on PATH.
  static std::string FindWorkerBinary();

 private:
  struct Slot {
    pid_t pid = -1;
    std::string port_file;
    bool running = false;  // port known, handed to the router
    std::chrono::steady_clock::time_point restart_at{};
    std::chrono::milliseconds backoff{500};
  };
  absl::Status Launch(size_t i);
  bool PollPortFile(size_t i);
  void Monitor();

  Options options_;
  Router* router_;
  Metrics* metrics_;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::deque<std::chrono::steady_clock::time_point> crashes_;
  std::function<void(const std::string&)> on_fatal_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace tessera::server
