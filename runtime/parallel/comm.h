// Communicator: point-to-point and collective messaging between the ranks of one worker group.
//
// One interface, three backends:
//   LocalComm  (local_comm.h) ranks are threads of one process; host buffers; for tests and benches.
//   MpiComm    (mpi_comm.h)   one process per rank under mpirun; host buffers.
//   NcclComm   (nccl_comm.h)  one process per GPU; device buffers; bootstrapped over MPI.
//
// Point-to-point calls are nonblocking and return a completion handle. Messages between one pair of
// ranks on one channel are matched in posting order (MPI's non-overtaking rule); different channels
// are independent, so query traffic and partial-output traffic can be in flight at the same time.
// A receive must name the exact size of the message it matches; a mismatch is an error.
//
//   TS_ASSIGN_OR_RETURN(CommRequest send, comm->Isend(q, q_bytes, comm->rank() - 1, Channel::kQuery));
//   TS_ASSIGN_OR_RETURN(CommRequest recv, comm->Irecv(q_next, q_bytes, comm->rank() + 1, Channel::kQuery));
//   Compute(...);                                  // overlaps the transfers
//   TS_RETURN_IF_ERROR(send.Wait());
//   TS_RETURN_IF_ERROR(recv.Wait());
//
// Every error names the failing call, e.g. "MPI_Isend(peer=1, channel=query, bytes=4096): ...".
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::parallel {

// Independent message streams (MPI tags, one NCCL communicator each).
enum class Channel : int {
  kQuery = 0,    // TokenRing: travelling queries
  kOutput = 1,   // TokenRing: partial outputs + lse returning to their owner
  kKv = 2,       // Ring attention: travelling keys and values
  kControl = 3,  // collectives and anything else
};
inline constexpr int kNumChannels = 4;
std::string_view ChannelName(Channel channel);

// Backend half of a completion handle.
class RequestImpl {
 public:
  virtual ~RequestImpl() = default;
  // Blocks until the operation completed (or failed).
  virtual absl::Status Wait() = 0;
  // true when complete; never blocks.
  virtual absl::StatusOr<bool> Test() = 0;
  // (optional) Withdraws an operation that nobody will wait for, so that an error path never blocks
  // on a peer that will not answer; afterwards the buffer is no longer touched. Defaults to Wait().
  virtual void Cancel() { (void)Wait(); }
};

// Completion handle of a nonblocking send or receive. Move-only. A default-constructed handle is
// already complete. Destroying (or overwriting) a handle that was never waited on cancels the
// operation (RequestImpl::Cancel), so an early error return neither hangs nor leaves a transfer
// writing into a released buffer.
class CommRequest {
 public:
  CommRequest() = default;
  explicit CommRequest(std::unique_ptr<RequestImpl> impl) : impl_(std::move(impl)) {}
  CommRequest(CommRequest&&) noexcept = default;
  CommRequest& operator=(CommRequest&& other) noexcept;
  ~CommRequest();

  absl::Status Wait();
  absl::StatusOr<bool> Test();
  bool pending() const { return impl_ != nullptr; }

 private:
  std::unique_ptr<RequestImpl> impl_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string_view backend() const = 0;  // "local", "mpi", "nccl"

  // Nonblocking send of `bytes` from `buf` to `peer`. `buf` must stay valid and unchanged until the
  // request completes.
  virtual absl::StatusOr<CommRequest> Isend(const void* buf, size_t bytes, int peer, Channel channel) = 0;
  // Nonblocking receive of exactly `bytes` into `buf` from `peer`.
  virtual absl::StatusOr<CommRequest> Irecv(void* buf, size_t bytes, int peer, Channel channel) = 0;

  // Blocking collectives over all ranks (every rank must call them in the same order).
  // buf: [bytes]; root's contents are copied to every rank.
  virtual absl::Status Broadcast(void* buf, size_t bytes, int root) = 0;
  // data: [count] f32, replaced by the element-wise sum over ranks (identical on every rank).
  virtual absl::Status AllreduceSum(float* data, size_t count) = 0;
  // send: [bytes_per_rank]; recv: [size() * bytes_per_rank], rank i's block at offset i·bytes_per_rank.
  virtual absl::Status Allgather(const void* send, size_t bytes_per_rank, void* recv) = 0;
  virtual absl::Status Barrier() = 0;

  // Brings the whole group down after an unrecoverable error: pending and future operations on
  // every rank fail (LocalComm) or every process is terminated (MPI, NCCL). Returns only for
  // LocalComm.
  virtual void Abort(const absl::Status& reason) = 0;

 protected:
  // Checks a point-to-point call's arguments; `call` names it in the error.
  absl::Status CheckPeer(std::string_view call, const void* buf, size_t bytes, int peer, Channel channel) const;
};

}  // namespace tessera::parallel
