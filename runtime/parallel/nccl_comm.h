// NcclComm: the Communicator backend for device buffers, one process per GPU.
//
// Every buffer passed to it is a CUDA device pointer. Each channel gets its own NCCL communicator
// and CUDA stream, so query and partial-output transfers proceed independently (one NCCL
// communicator must not be used from two streams at once). The ncclUniqueIds are made by rank 0
// and shared through the bootstrap communicator (an MpiComm, i.e. MPI_Bcast). A request completes
// when its CUDA event does; Wait also polls ncclCommGetAsyncError and aborts the group on error.
// Built only with TESSERA_NCCL=1 (CUDA + NCCL found); otherwise Create returns UNIMPLEMENTED.
//
//   TS_ASSIGN_OR_RETURN(auto mpi, MpiComm::CreateWorld());
//   TS_ASSIGN_OR_RETURN(auto nccl, NcclComm::Create({.bootstrap = mpi.get()}));
//   TS_ASSIGN_OR_RETURN(CommRequest r, nccl->Isend(d_q, bytes, peer, Channel::kQuery));
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/parallel/comm.h"

namespace tessera::parallel {

// True when this build has NCCL (TESSERA_NCCL=1).
bool NcclAvailable();

class NcclComm {
 public:
  struct Options {
    Communicator* bootstrap = nullptr;  // host communicator over the same ranks (not owned)
    int device = -1;                    // CUDA device; -1: rank % device count
  };
  static absl::StatusOr<std::unique_ptr<Communicator>> Create(const Options& options);

  // Number of CUDA devices; 0 when there is no driver or no device (never an error).
  static int DeviceCount();
};

}  // namespace tessera::parallel
