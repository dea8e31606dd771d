#include "server/supervisor/supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tessera::server {
namespace fs = std::filesystem;

Supervisor::Supervisor(Options options, Router* router, Metrics* metrics)
    : options_(std::move(options)), router_(router), metrics_(metrics) {
  if (options_.run_dir.empty()) {
    options_.run_dir = (fs::temp_directory_path() / absl::StrCat("tesserad-", getpid())).string();
  }
  fs::create_directories(options_.run_dir);
  slots_.resize(static_cast<size_t>(options_.replicas));
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].port_file = absl::StrCat(options_.run_dir, "/worker-", i, ".port");
    router_->AddSlot(nullptr);
  }
}

Supervisor::~Supervisor() {
  Shutdown(std::chrono::milliseconds(2000));
  std::error_code ec;
  fs::remove_all(options_.run_dir, ec);
}

std::string Supervisor::FindWorkerBinary() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& p : {self.parent_path() / "tessera-worker", self.parent_path() / "../worker/tessera-worker"}) {
      if (fs::exists(p, ec)) return fs::canonical(p, ec).string();
    }
  }
  const char* path = std::getenv("PATH");
  if (path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      const fs::path p = fs::path(std::string(dir)) / "tessera-worker";
      if (access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return "";
}

absl::Status Supervisor::Launch(size_t i) {
  Slot& s = slots_[i];
  std::error_code ec;
  fs::remove(s.port_file, ec);
  std::vector<std::string> args = options_.launcher;
  args.push_back(options_.worker_binary);
  args.insert(args.end(), options_.worker_args.begin(), options_.worker_args.end());
  args.push_back("--port=0");
  args.push_back("--port_file=" + s.port_file);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    if (i < options_.replica_env.size()) {
      const std::string& kv = options_.replica_env[i];
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
    }
    if (!options_.launcher.empty()) {
      // Open MPI refuses root without these, and containers often forbid its single-copy path.
      setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
      setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
      setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
      execvp(argv[0], argv.data());
    }
    execv(argv[0], argv.data());
    std::fprintf(stderr, "tesserad: cannot execute %s\n", argv[0]);
    _exit(127);
  }
  s.pid = pid;
  s.running = false;
  return absl::OkStatus();
}

bool Supervisor::PollPortFile(size_t i) {
  Slot& s = slots_[i];
  std::ifstream in(s.port_file);
  int port = 0;
  if (!(in >> port) || port <= 0) return false;
  s.running = true;
  router_->Replace(i, std::make_shared<EngineClient>(absl::StrCat("127.0.0.1:", port), std::to_string(i)));
  return true;
}

absl::Status Supervisor::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (auto s = Launch(i); !s.ok()) return s;
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.startup_timeout;
  for (;;) {
    bool all = true;
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = slots_[i];
      if (s.running) continue;
      int status = 0;
      if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
        s.pid = -1;
        const std::string how = WIFEXITED(status) ? absl::StrCat("exited with code ", WEXITSTATUS(status))
                                                  : absl::StrCat("was killed by signal ", WTERMSIG(status));
        return absl::FailedPreconditionError(
            absl::StrCat("worker ", i, " ", how, " during start-up (see its message above)"));
      }
      if (!PollPortFile(i)) all = false;
    }
    if (all) return absl::OkStatus();
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("workers did not become ready within the start-up timeout");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Supervisor::Watch(std::function<void(const std::string&)> on_fatal) {
  on_fatal_ = std::move(on_fatal);
  thread_ = std::thread([this] { Monitor(); });
}

void Supervisor::KillHung(size_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  if (slot < slots_.size() && slots_[slot].pid > 0) {
    std::fprintf(stderr, "tesserad: worker %zu (pid %d) stopped answering; killing it\n", slot, slots_[slot].pid);
    kill(slots_[slot].pid, SIGKILL);
  }
}

void Supervisor::Monitor() {
  while (!stop_.load()) {
    std::string fatal;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto now = std::chrono::steady_clock::now();
      for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& s = slots_[i];
        if (s.pid > 0) {
          int status = 0;
          if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
            std::fprintf(stderr, "tesserad: worker %zu (pid %d) %s\n", i, s.pid,
                         WIFEXITED(status) ? absl::StrCat("exited with code ", WEXITSTATUS(status)).c_str()
                                           : absl::StrCat("was killed by signal ", WTERMSIG(status)).c_str());
            s.pid = -1;
            s.running = false;
            if (auto c = router_->Get(i)) c->MarkDown();
            metrics_->SetWorkerUp(std::to_string(i), 0, false);
            crashes_.push_back(now);
            while (!crashes_.empty() && now - crashes_.front() > options_.crash_window) crashes_.pop_front();
            if (static_cast<int>(crashes_.size()) >= options_.max_crashes) {
              fatal = absl::StrCat(crashes_.size(), " worker crashes within ", options_.crash_window.count(),
                                   " s; giving up");
            }
            s.restart_at = now + s.backoff;
            s.backoff = std::min(s.backoff * 2, std::chrono::milliseconds(8000));
          } else if (!s.running && PollPortFile(i)) {
            std::fprintf(stderr, "tesserad: worker %zu (pid %d) is back\n", i, s.pid);
          } else if (s.running && now - s.restart_at > std::chrono::seconds(60)) {
            s.backoff = std::chrono::milliseconds(500);  // stable for a minute: reset the backoff
          }
        } else if (now >= s.restart_at && !stop_.load()) {
          metrics_->WorkerRestarted(std::to_string(i));
          if (auto st = Launch(i); !st.ok()) fatal = std::string(st.message());
        }
      }
    }
    if (!fatal.empty()) {
      if (on_fatal_) on_fatal_(fatal);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

void Supervisor::Shutdown(std::chrono::milliseconds grace) {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (Slot& s : slots_) {
    if (s.pid > 0) kill(s.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (Slot& s : slots_) {
    while (s.pid > 0) {
      int status = 0;
      if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
        s.pid = -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, &status, 0);
        s.pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace tessera::server
