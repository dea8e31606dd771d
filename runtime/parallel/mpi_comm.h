// MpiComm: the Communicator backend for one process per rank under mpirun (host buffers).
//
// MpiEnvironment initializes MPI once per process (asking for MPI_THREAD_MULTIPLE; with a lower
// level every MPI call is serialized behind one mutex) and finalizes it when destroyed. Each MpiComm
// works on its own duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so MPI errors come back as
// absl::Status carrying the call and MPI's error string instead of killing the process. Channels
// are MPI tags. Abort() calls MPI_Abort, which makes mpirun terminate every rank of the job.
//
//   TS_ASSIGN_OR_RETURN(auto env, MpiEnvironment::Init(&argc, &argv));
//   TS_ASSIGN_OR_RETURN(auto comm, MpiComm::CreateWorld());
//   ... comm->Isend(...) ...
//
// Progress: Open MPI advances nonblocking transfers inside MPI calls, so large messages posted
// before a long compute may move only when the compute ends and Wait runs.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/parallel/comm.h"

namespace tessera::parallel {

// True when this build has MPI (TESSERA_MPI=1); otherwise every call returns UNIMPLEMENTED.
bool MpiAvailable();

class MpiEnvironment {
 public:
  // Initializes MPI unless it already is (then the returned object does not finalize it).
  static absl::StatusOr<std::unique_ptr<MpiEnvironment>> Init(int* argc, char*** argv);
  ~MpiEnvironment();
  bool thread_multiple() const { return thread_multiple_; }

 private:
  MpiEnvironment(bool owns, bool thread_multiple) : owns_(owns), thread_multiple_(thread_multiple) {}
  bool owns_;
  bool thread_multiple_;
};

class MpiComm {
 public:
  // A communicator over all processes of the job. MPI must be initialized (MpiEnvironment).
  static absl::StatusOr<std::unique_ptr<Communicator>> CreateWorld();
};

}  // namespace tessera::parallel
