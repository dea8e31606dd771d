// LocalComm: the Communicator backend whose ranks are threads of one process (host buffers).
//
// A LocalCommGroup owns the shared mailboxes and hands out one Communicator per rank. Sends are
// eager (the payload is copied at Isend, so a send completes at once); receives complete when the
// matching message arrives. Abort() on any rank makes every pending and future call of the group fail
// with ABORTED, so one failing rank never leaves the others blocked.
//
//   TS_ASSIGN_OR_RETURN(auto group, LocalCommGroup::Create({.size = 4}));
//   absl::Status s = group->RunOnAllRanks([&](Communicator& comm) -> absl::Status {
//     float x = comm.rank();
//     return comm.AllreduceSum(&x, 1);
//   });
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/parallel/comm.h"

namespace tessera::parallel {

class LocalCommGroup {
 public:
  struct Options {
    int size = 1;
    // A Wait that blocks longer than this fails with DEADLINE_EXCEEDED and aborts the group.
    absl::Duration timeout = absl::InfiniteDuration();
  };
  static absl::StatusOr<std::unique_ptr<LocalCommGroup>> Create(const Options& options);
  ~LocalCommGroup();

  int size() const;
  Communicator* comm(int rank);

  // Runs fn(comm(r)) for every rank r on its own thread and joins them. A rank whose fn fails
  // aborts the group (so the others cannot hang) and the first failing rank's error is returned.
  absl::Status RunOnAllRanks(const std::function<absl::Status(Communicator&)>& fn);

  struct State;

 private:
  explicit LocalCommGroup(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tessera::parallel
