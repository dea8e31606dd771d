#include "runtime/parallel/nccl_comm.h"

#if TESSERA_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

#include <cstdio>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace tessera::parallel {

#if TESSERA_NCCL

namespace {

// Adds the failing call and the enclosing function to the error, like NCCLCHECK's call chain.
#define TS_NCCL_RETURN_IF_ERROR(expr)                                                                                \
  do {                                                                                                               \
    const ncclResult_t ts_nccl_rc_ = (expr);                                                                         \
    if (ts_nccl_rc_ != ncclSuccess) {                                                                                \
      return absl::InternalError(absl::StrFormat("%s: %s in %s", #expr, ncclGetErrorString(ts_nccl_rc_), __func__)); \
    }                                                                                                                \
  } while (0)

#define TS_CUDA_RETURN_IF_ERROR(expr)                                                                                \
  do {                                                                                                               \
    const cudaError_t ts_cuda_rc_ = (expr);                                                                          \
    if (ts_cuda_rc_ != cudaSuccess) {                                                                                \
      return absl::InternalError(absl::StrFormat("%s: %s in %s", #expr, cudaGetErrorString(ts_cuda_rc_), __func__)); \
    }                                                                                                                \
  } while (0)

class NcclCommImpl;

class NcclRequest : public RequestImpl {
 public:
  NcclRequest(NcclCommImpl* comm, cudaEvent_t event, std::string desc)
      : comm_(comm), event_(event), desc_(std::move(desc)) {}
  ~NcclRequest() override {
    if (event_ != nullptr && cudaEventDestroy(event_) != cudaSuccess) {
      std::fprintf(stderr, "[comm] cudaEventDestroy failed for %s\n", desc_.c_str());
    }
  }
  absl::Status Wait() override;
  absl::StatusOr<bool> Test() override;

 private:
  NcclCommImpl* comm_;
  cudaEvent_t event_;
  std::string desc_;
};

class NcclCommImpl : public Communicator {
 public:
  NcclCommImpl(Communicator* bootstrap, int device) : bootstrap_(bootstrap), device_(device) {}

  ~NcclCommImpl() override {
    for (ncclComm_t c : comms_) {
      if (c != nullptr && ncclCommDestroy(c) != ncclSuccess) std::fprintf(stderr, "[comm] ncclCommDestroy failed\n");
    }
    for (cudaStream_t s : streams_) {
      if (s != nullptr && cudaStreamDestroy(s) != cudaSuccess)
        std::fprintf(stderr, "[comm] cudaStreamDestroy failed\n");
    }
    if (scratch_ != nullptr && cudaFree(scratch_) != cudaSuccess) std::fprintf(stderr, "[comm] cudaFree failed\n");
  }

  absl::Status Init() {
    TS_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
    std::vector<ncclUniqueId> ids(kNumChannels);
    if (bootstrap_->rank() == 0) {
      for (auto& id : ids) TS_NCCL_RETURN_IF_ERROR(ncclGetUniqueId(&id));
    }
    TS_RETURN_IF_ERROR(bootstrap_->Broadcast(ids.data(), ids.size() * sizeof(ncclUniqueId), 0));
    comms_.assign(kNumChannels, nullptr);
    streams_.assign(kNumChannels, nullptr);
    for (auto& s : streams_) TS_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    TS_NCCL_RETURN_IF_ERROR(ncclGroupStart());
    for (int c = 0; c < kNumChannels; ++c) {
      TS_NCCL_RETURN_IF_ERROR(ncclCommInitRank(&comms_[c], bootstrap_->size(), ids[c], bootstrap_->rank()));
    }
    TS_NCCL_RETURN_IF_ERROR(ncclGroupEnd());
    TS_CUDA_RETURN_IF_ERROR(cudaMalloc(&scratch_, sizeof(float)));
    return absl::OkStatus();
  }

  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }
  std::string_view backend() const override { return "nccl"; }

  absl::StatusOr<CommRequest> Isend(const void* buf, size_t bytes, int peer, Channel channel) override {
    TS_RETURN_IF_ERROR(CheckPeer("ncclSend", buf, bytes, peer, channel));
    const int c = static_cast<int>(channel);
    TS_NCCL_RETURN_IF_ERROR(ncclSend(buf, bytes, ncclUint8, peer, comms_[c], streams_[c]));
    return Record(c, absl::StrFormat("ncclSend(peer=%d, channel=%s, bytes=%zu)", peer, ChannelName(channel), bytes));
  }

  absl::StatusOr<CommRequest> Irecv(void* buf, size_t bytes, int peer, Channel channel) override {
    TS_RETURN_IF_ERROR(CheckPeer("ncclRecv", buf, bytes, peer, channel));
    const int c = static_cast<int>(channel);
    TS_NCCL_RETURN_IF_ERROR(ncclRecv(buf, bytes, ncclUint8, peer, comms_[c], streams_[c]));
    return Record(c, absl::StrFormat("ncclRecv(peer=%d, channel=%s, bytes=%zu)", peer, ChannelName(channel), bytes));
  }

  absl::Status Broadcast(void* buf, size_t bytes, int root) override {
    const int c = static_cast<int>(Channel::kControl);
    TS_NCCL_RETURN_IF_ERROR(ncclBroadcast(buf, buf, bytes, ncclUint8, root, comms_[c], streams_[c]));
    return SyncControl();
  }

  absl::Status AllreduceSum(float* data, size_t count) override {
    const int c = static_cast<int>(Channel::kControl);
    TS_NCCL_RETURN_IF_ERROR(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comms_[c], streams_[c]));
    return SyncControl();
  }

  absl::Status Allgather(const void* send, size_t bytes_per_rank, void* recv) override {
    const int c = static_cast<int>(Channel::kControl);
    TS_NCCL_RETURN_IF_ERROR(ncclAllGather(send, recv, bytes_per_rank, ncclUint8, comms_[c], streams_[c]));
    return SyncControl();
  }

  absl::Status Barrier() override { return AllreduceSum(scratch_, 1); }

  void Abort(const absl::Status& reason) override {
    for (ncclComm_t& c : comms_) {
      if (c != nullptr) ncclCommAbort(c);
      c = nullptr;
    }
    bootstrap_->Abort(reason);
  }

  // Polls every channel's asynchronous error; on error aborts the group (never returns for MPI).
  absl::Status CheckAsync() {
    for (ncclComm_t c : comms_) {
      ncclResult_t async = ncclSuccess;
      TS_NCCL_RETURN_IF_ERROR(ncclCommGetAsyncError(c, &async));
      if (async != ncclSuccess) {
        absl::Status s = absl::InternalError(absl::StrFormat("ncclCommGetAsyncError: %s", ncclGetErrorString(async)));
        Abort(s);
        return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<CommRequest> Record(int c, std::string desc) {
    cudaEvent_t ev = nullptr;
    TS_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    const cudaError_t rc = cudaEventRecord(ev, streams_[c]);
    if (rc != cudaSuccess) {
      cudaEventDestroy(ev);
      return absl::InternalError(absl::StrFormat("cudaEventRecord for %s: %s", desc, cudaGetErrorString(rc)));
    }
    return CommRequest(std::make_unique<NcclRequest>(this, ev, std::move(desc)));
  }

  absl::Status SyncControl() {
    TS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(streams_[static_cast<int>(Channel::kControl)]));
    return CheckAsync();
  }

  Communicator* bootstrap_;
  int device_;
  std::vector<ncclComm_t> comms_;
  std::vector<cudaStream_t> streams_;
  float* scratch_ = nullptr;
};

absl::Status NcclRequest::Wait() {
  for (;;) {
    TS_ASSIGN_OR_RETURN(bool done, Test());
    if (done) return absl::OkStatus();
  }
}

absl::StatusOr<bool> NcclRequest::Test() {
  const cudaError_t rc = cudaEventQuery(event_);
  if (rc == cudaSuccess) return true;
  if (rc != cudaErrorNotReady) {
    return absl::InternalError(absl::StrFormat("%s: %s", desc_, cudaGetErrorString(rc)));
  }
  TS_RETURN_IF_ERROR(comm_->CheckAsync());
  return false;
}

}  // namespace

bool NcclAvailable() { return true; }

int NcclComm::DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

absl::StatusOr<std::unique_ptr<Communicator>> NcclComm::Create(const Options& options) {
  if (options.bootstrap == nullptr) return absl::InvalidArgumentError("NcclComm::Create: bootstrap is null");
  const int devices = DeviceCount();
  if (devices == 0) return absl::FailedPreconditionError("NcclComm::Create: no CUDA device");
  int device = options.device;
  if (device < 0) device = options.bootstrap->rank() % devices;
  if (device >= devices) {
    return absl::InvalidArgumentError(
        absl::StrFormat("NcclComm::Create: device %d >= device count %d", device, devices));
  }
  auto comm = std::make_unique<NcclCommImpl>(options.bootstrap, device);
  TS_RETURN_IF_ERROR(comm->Init());
  return std::unique_ptr<Communicator>(std::move(comm));
}

#else  // !TESSERA_NCCL

bool NcclAvailable() { return false; }
int NcclComm::DeviceCount() { return 0; }
absl::StatusOr<std::unique_ptr<Communicator>> NcclComm::Create(const Options&) {
  return absl::UnimplementedError("NcclComm::Create: built without NCCL (TESSERA_NCCL=0)");
}

#endif  // TESSERA_NCCL

}  // namespace tessera::parallel
