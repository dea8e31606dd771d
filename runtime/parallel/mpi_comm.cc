#include "runtime/parallel/mpi_comm.h"

#if TESSERA_MPI
#include <mpi.h>
#endif

#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace tessera::parallel {

#if TESSERA_MPI

namespace {

// With less than MPI_THREAD_MULTIPLE every MPI call in the process goes through this mutex.
std::mutex g_mpi_mu;
bool g_serialize = true;

std::string MpiErrorString(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return absl::StrFormat("MPI error %d", code);
  return std::string(text, len);
}

absl::Status MpiError(std::string_view call, int code) {
  return absl::InternalError(absl::StrFormat("%s: %s", call, MpiErrorString(code)));
}

// Runs one MPI call, serialized when the thread level demands it.
template <class F>
int Locked(F&& f) {
  if (g_serialize) {
    std::lock_guard<std::mutex> lock(g_mpi_mu);
    return f();
  }
  return f();
}

#define TS_MPI_RETURN_IF_ERROR(call_desc, expr)                              \
  do {                                                                       \
    const int ts_mpi_rc_ = (expr);                                           \
    if (ts_mpi_rc_ != MPI_SUCCESS) return MpiError((call_desc), ts_mpi_rc_); \
  } while (0)

class MpiRequest : public RequestImpl {
 public:
  MpiRequest(MPI_Request req, std::string desc, int expected_bytes, bool is_recv)
      : req_(req), desc_(std::move(desc)), expected_bytes_(expected_bytes), is_recv_(is_recv) {}
  ~MpiRequest() override = default;

  absl::Status Wait() override {
    if (!g_serialize) {
      MPI_Status st;
      TS_MPI_RETURN_IF_ERROR(desc_, MPI_Wait(&req_, &st));
      return CheckCount(st);
    }
    // Serialized: poll with MPI_Test so other threads can use MPI between polls.
    for (;;) {
      absl::StatusOr<bool> done = Test();
      if (!done.ok()) return done.status();
      if (*done) return absl::OkStatus();
      std::this_thread::yield();
    }
  }

  // MPI_Cancel, then wait for the request to finish (cancelled or completed).
  void Cancel() override {
    if (req_ == MPI_REQUEST_NULL) return;
    Locked([&] { return MPI_Cancel(&req_); });
    for (;;) {
      int flag = 0;
      MPI_Status st;
      if (Locked([&] { return MPI_Test(&req_, &flag, &st); }) != MPI_SUCCESS || flag) return;
      std::this_thread::yield();
    }
  }

  absl::StatusOr<bool> Test() override {
    if (req_ == MPI_REQUEST_NULL) return true;
    int flag = 0;
    MPI_Status st;
    TS_MPI_RETURN_IF_ERROR(desc_, Locked([&] { return MPI_Test(&req_, &flag, &st); }));
    if (!flag) return false;
    TS_RETURN_IF_ERROR(CheckCount(st));
    return true;
  }

 private:
  absl::Status CheckCount(const MPI_Status& st) {
    if (!is_recv_) return absl::OkStatus();
    int count = 0;
    MPI_Status copy = st;
    TS_MPI_RETURN_IF_ERROR(desc_, MPI_Get_count(&copy, MPI_BYTE, &count));
    if (count != expected_bytes_) {
      return absl::InternalError(absl::StrFormat("%s: matched a message of %d bytes", desc_, count));
    }
    return absl::OkStatus();
  }

  MPI_Request req_;
  std::string desc_;
  int expected_bytes_;
  bool is_recv_;
};

class MpiCommImpl : public Communicator {
 public:
  MpiCommImpl(MPI_Comm comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {}
  ~MpiCommImpl() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) Locked([&] { return MPI_Comm_free(&comm_); });
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string_view backend() const override { return "mpi"; }

  absl::StatusOr<CommRequest> Isend(const void* buf, size_t bytes, int peer, Channel channel) override {
    TS_RETURN_IF_ERROR(CheckPeer("MPI_Isend", buf, bytes, peer, channel));
    TS_RETURN_IF_ERROR(CheckSize("MPI_Isend", bytes));
    std::string desc = absl::StrFormat("MPI_Isend(peer=%d, channel=%s, bytes=%zu)", peer, ChannelName(channel), bytes);
    MPI_Request req;
    TS_MPI_RETURN_IF_ERROR(desc, Locked([&] {
                             return MPI_Isend(buf, static_cast<int>(bytes), MPI_BYTE, peer, static_cast<int>(channel),
                                              comm_, &req);
                           }));
    return CommRequest(std::make_unique<MpiRequest>(req, std::move(desc), static_cast<int>(bytes), false));
  }

  absl::StatusOr<CommRequest> Irecv(void* buf, size_t bytes, int peer, Channel channel) override {
    TS_RETURN_IF_ERROR(CheckPeer("MPI_Irecv", buf, bytes, peer, channel));
    TS_RETURN_IF_ERROR(CheckSize("MPI_Irecv", bytes));
    std::string desc = absl::StrFormat("MPI_Irecv(peer=%d, channel=%s, bytes=%zu)", peer, ChannelName(channel), bytes);
    MPI_Request req;
    TS_MPI_RETURN_IF_ERROR(desc, Locked([&] {
                             return MPI_Irecv(buf, static_cast<int>(bytes), MPI_BYTE, peer, static_cast<int>(channel),
                                              comm_, &req);
                           }));
    return CommRequest(std::make_unique<MpiRequest>(req, std::move(desc), static_cast<int>(bytes), true));
  }

  absl::Status Broadcast(void* buf, size_t bytes, int root) override {
    if (root < 0 || root >= size_) {
      return absl::InvalidArgumentError(absl::StrFormat("MPI_Bcast: root %d out of range [0, %d)", root, size_));
    }
    TS_RETURN_IF_ERROR(CheckSize("MPI_Bcast", bytes));
    TS_MPI_RETURN_IF_ERROR(absl::StrFormat("MPI_Bcast(root=%d, bytes=%zu)", root, bytes),
                           Locked([&] { return MPI_Bcast(buf, static_cast<int>(bytes), MPI_BYTE, root, comm_); }));
    return absl::OkStatus();
  }

  absl::Status AllreduceSum(float* data, size_t count) override {
    TS_RETURN_IF_ERROR(CheckSize("MPI_Allreduce", count * sizeof(float)));
    TS_MPI_RETURN_IF_ERROR(
        absl::StrFormat("MPI_Allreduce(count=%zu, op=sum, f32)", count),
        Locked([&] { return MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM, comm_); }));
    return absl::OkStatus();
  }

  absl::Status Allgather(const void* send, size_t bytes_per_rank, void* recv) override {
    TS_RETURN_IF_ERROR(CheckSize("MPI_Allgather", bytes_per_rank * size_));
    TS_MPI_RETURN_IF_ERROR(absl::StrFormat("MPI_Allgather(bytes_per_rank=%zu)", bytes_per_rank), Locked([&] {
                             return MPI_Allgather(send, static_cast<int>(bytes_per_rank), MPI_BYTE, recv,
                                                  static_cast<int>(bytes_per_rank), MPI_BYTE, comm_);
                           }));
    return absl::OkStatus();
  }

  absl::Status Barrier() override {
    TS_MPI_RETURN_IF_ERROR("MPI_Barrier", Locked([&] { return MPI_Barrier(comm_); }));
    return absl::OkStatus();
  }

  void Abort(const absl::Status& reason) override {
    std::fprintf(stderr, "[comm] rank %d aborts the MPI job: %s\n", rank_, reason.ToString().c_str());
    std::fflush(stderr);
    MPI_Abort(comm_, 1);
  }

 private:
  static absl::Status CheckSize(std::string_view call, size_t bytes) {
    if (bytes > static_cast<size_t>(INT32_MAX)) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: %zu bytes exceeds MPI's int count", call, bytes));
    }
    return absl::OkStatus();
  }

  MPI_Comm comm_;
  int rank_;
  int size_;
};

}  // namespace

bool MpiAvailable() { return true; }

absl::StatusOr<std::unique_ptr<MpiEnvironment>> MpiEnvironment::Init(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = MPI_THREAD_SINGLE;
  bool owns = false;
  if (initialized) {
    MPI_Query_thread(&provided);
  } else {
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) return MpiError("MPI_Init_thread", rc);
    owns = true;
  }
  g_serialize = provided < MPI_THREAD_MULTIPLE;
  return std::unique_ptr<MpiEnvironment>(new MpiEnvironment(owns, provided >= MPI_THREAD_MULTIPLE));
}

MpiEnvironment::~MpiEnvironment() {
  if (!owns_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

absl::StatusOr<std::unique_ptr<Communicator>> MpiComm::CreateWorld() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return absl::FailedPreconditionError("MpiComm::CreateWorld: MPI is not initialized");
  MPI_Comm dup;
  TS_MPI_RETURN_IF_ERROR("MPI_Comm_dup(MPI_COMM_WORLD)", Locked([&] { return MPI_Comm_dup(MPI_COMM_WORLD, &dup); }));
  TS_MPI_RETURN_IF_ERROR("MPI_Comm_set_errhandler", MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
  int rank = 0;
  int size = 0;
  TS_MPI_RETURN_IF_ERROR("MPI_Comm_rank", MPI_Comm_rank(dup, &rank));
  TS_MPI_RETURN_IF_ERROR("MPI_Comm_size", MPI_Comm_size(dup, &size));
  return std::unique_ptr<Communicator>(new MpiCommImpl(dup, rank, size));
}

#else  // !TESSERA_MPI

bool MpiAvailable() { return false; }

absl::StatusOr<std::unique_ptr<MpiEnvironment>> MpiEnvironment::Init(int*, char***) {
  return absl::UnimplementedError("MpiEnvironment::Init: built without MPI (TESSERA_MPI=0)");
}
MpiEnvironment::~MpiEnvironment() = default;

absl::StatusOr<std::unique_ptr<Communicator>> MpiComm::CreateWorld() {
  return absl::UnimplementedError("MpiComm::CreateWorld: built without MPI (TESSERA_MPI=0)");
}

#endif  // TESSERA_MPI

}  // namespace tessera::parallel
