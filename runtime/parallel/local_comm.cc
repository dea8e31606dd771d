#include "runtime/parallel/local_comm.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"

namespace tessera::parallel {
namespace {

struct PendingRecv {
  void* buf = nullptr;
  size_t bytes = 0;
  bool done = false;
  absl::Status status;
};

}  // namespace

struct LocalCommGroup::State {
  int size = 1;
  absl::Duration timeout = absl::InfiniteDuration();
  std::mutex mu;
  std::condition_variable cv;
  absl::Status aborted;  // non-OK once any rank aborted
  // Key: (src, dst, channel). Unmatched sends (payload copies) and unmatched receives, in order.
  std::map<std::tuple<int, int, int>, std::deque<std::vector<char>>> sends;
  std::map<std::tuple<int, int, int>, std::deque<std::shared_ptr<PendingRecv>>> recvs;
  std::vector<std::unique_ptr<Communicator>> comms;

  void Abort(const absl::Status& reason) {
    std::lock_guard<std::mutex> lock(mu);
    if (aborted.ok()) aborted = absl::AbortedError(absl::StrCat("group aborted: ", reason.ToString()));
    cv.notify_all();
  }
};

namespace {

absl::Status Complete(PendingRecv& r, const char* data, size_t bytes, int src, Channel ch) {
  if (bytes != r.bytes) {
    return absl::InternalError(absl::StrFormat("Irecv(peer=%d, channel=%s, bytes=%zu): matched a message of %zu bytes",
                                               src, ChannelName(ch), r.bytes, bytes));
  }
  if (bytes > 0) std::memcpy(r.buf, data, bytes);
  return absl::OkStatus();
}

class LocalRecvRequest : public RequestImpl {
 public:
  LocalRecvRequest(LocalCommGroup::State* state, std::shared_ptr<PendingRecv> recv, int peer, Channel ch)
      : state_(state), recv_(std::move(recv)), peer_(peer), channel_(ch) {}

  absl::Status Wait() override {
    std::unique_lock<std::mutex> lock(state_->mu);
    auto ready = [&] { return recv_->done || !state_->aborted.ok(); };
    if (state_->timeout == absl::InfiniteDuration()) {
      state_->cv.wait(lock, ready);
    } else if (!state_->cv.wait_for(lock, absl::ToChronoNanoseconds(state_->timeout), ready)) {
      lock.unlock();
      absl::Status s = absl::DeadlineExceededError(
          absl::StrFormat("Irecv(peer=%d, channel=%s, bytes=%zu): no message within %s", peer_, ChannelName(channel_),
                          recv_->bytes, absl::FormatDuration(state_->timeout)));
      state_->Abort(s);
      return s;
    }
    if (recv_->done) return recv_->status;
    return absl::Status(state_->aborted.code(), absl::StrFormat("Irecv(peer=%d, channel=%s): %s", peer_,
                                                                ChannelName(channel_), state_->aborted.message()));
  }

  // Removes the receive from its queue if no message matched it yet.
  void Cancel() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (recv_->done) return;
    for (auto& [key, queue] : state_->recvs) {
      for (auto it = queue.begin(); it != queue.end(); ++it) {
        if (*it == recv_) {
          queue.erase(it);
          recv_->done = true;
          recv_->status = absl::CancelledError("cancelled");
          return;
        }
      }
    }
  }

  absl::StatusOr<bool> Test() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (recv_->done) {
      if (!recv_->status.ok()) return recv_->status;
      return true;
    }
    if (!state_->aborted.ok()) return state_->aborted;
    return false;
  }

 private:
  LocalCommGroup::State* state_;
  std::shared_ptr<PendingRecv> recv_;
  int peer_;
  Channel channel_;
};

class LocalComm : public Communicator {
 public:
  LocalComm(LocalCommGroup::State* state, int rank) : state_(state), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return state_->size; }
  std::string_view backend() const override { return "local"; }

  absl::StatusOr<CommRequest> Isend(const void* buf, size_t bytes, int peer, Channel channel) override {
    TS_RETURN_IF_ERROR(CheckPeer("Isend", buf, bytes, peer, channel));
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->aborted.ok()) {
      return absl::Status(state_->aborted.code(), absl::StrFormat("Isend(peer=%d, channel=%s): %s", peer,
                                                                  ChannelName(channel), state_->aborted.message()));
    }
    const auto key = std::make_tuple(rank_, peer, static_cast<int>(channel));
    auto& waiting = state_->recvs[key];
    const char* data = static_cast<const char*>(buf);
    if (!waiting.empty()) {
      std::shared_ptr<PendingRecv> r = waiting.front();
      waiting.pop_front();
      r->status = Complete(*r, data, bytes, rank_, channel);
      r->done = true;
      state_->cv.notify_all();
      if (!r->status.ok()) {
        return absl::InternalError(absl::StrFormat("Isend(peer=%d, channel=%s, bytes=%zu): receiver expected %zu bytes",
                                                   peer, ChannelName(channel), bytes, r->bytes));
      }
    } else {
      state_->sends[key].emplace_back(data, data + bytes);
    }
    return CommRequest();
  }

  absl::StatusOr<CommRequest> Irecv(void* buf, size_t bytes, int peer, Channel channel) override {
    TS_RETURN_IF_ERROR(CheckPeer("Irecv", buf, bytes, peer, channel));
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->aborted.ok()) {
      return absl::Status(state_->aborted.code(), absl::StrFormat("Irecv(peer=%d, channel=%s): %s", peer,
                                                                  ChannelName(channel), state_->aborted.message()));
    }
    const auto key = std::make_tuple(peer, rank_, static_cast<int>(channel));
    auto r = std::make_shared<PendingRecv>();
    r->buf = buf;
    r->bytes = bytes;
    auto& queued = state_->sends[key];
    if (!queued.empty()) {
      std::vector<char> msg = std::move(queued.front());
      queued.pop_front();
      r->status = Complete(*r, msg.data(), msg.size(), peer, channel);
      if (!r->status.ok()) return r->status;
      return CommRequest();
    }
    state_->recvs[key].push_back(r);
    return CommRequest(std::make_unique<LocalRecvRequest>(state_, std::move(r), peer, channel));
  }

  // Collectives over point-to-point messages on the control channel; rank 0 combines in rank
  // order, so results are identical on every rank and independent of timing.
  absl::Status Broadcast(void* buf, size_t bytes, int root) override {
    if (root < 0 || root >= size()) {
      return absl::InvalidArgumentError(absl::StrFormat("Broadcast: root %d out of range [0, %d)", root, size()));
    }
    if (rank_ == root) {
      for (int p = 0; p < size(); ++p) {
        if (p == root) continue;
        TS_ASSIGN_OR_RETURN(CommRequest req, Isend(buf, bytes, p, Channel::kControl));
        TS_RETURN_IF_ERROR(req.Wait());
      }
      return absl::OkStatus();
    }
    TS_ASSIGN_OR_RETURN(CommRequest req, Irecv(buf, bytes, root, Channel::kControl));
    return req.Wait();
  }

  absl::Status AllreduceSum(float* data, size_t count) override {
    const size_t bytes = count * sizeof(float);
    if (rank_ == 0) {
      std::vector<float> part(count);
      for (int p = 1; p < size(); ++p) {
        TS_ASSIGN_OR_RETURN(CommRequest req, Irecv(part.data(), bytes, p, Channel::kControl));
        TS_RETURN_IF_ERROR(req.Wait());
        for (size_t i = 0; i < count; ++i) data[i] += part[i];
      }
    } else {
      TS_ASSIGN_OR_RETURN(CommRequest req, Isend(data, bytes, 0, Channel::kControl));
      TS_RETURN_IF_ERROR(req.Wait());
    }
    return Broadcast(data, bytes, 0);
  }

  absl::Status Allgather(const void* send, size_t bytes_per_rank, void* recv) override {
    char* out = static_cast<char*>(recv);
    if (bytes_per_rank > 0) std::memcpy(out + rank_ * bytes_per_rank, send, bytes_per_rank);
    for (int p = 0; p < size(); ++p) {
      if (p == rank_) continue;
      TS_ASSIGN_OR_RETURN(CommRequest req, Isend(send, bytes_per_rank, p, Channel::kControl));
      TS_RETURN_IF_ERROR(req.Wait());
    }
    for (int p = 0; p < size(); ++p) {
      if (p == rank_) continue;
      TS_ASSIGN_OR_RETURN(CommRequest req, Irecv(out + p * bytes_per_rank, bytes_per_rank, p, Channel::kControl));
      TS_RETURN_IF_ERROR(req.Wait());
    }
    return absl::OkStatus();
  }

  absl::Status Barrier() override {
    float one = 1.0f;
    return AllreduceSum(&one, 1);
  }

  void Abort(const absl::Status& reason) override { state_->Abort(reason); }

 private:
  LocalCommGroup::State* state_;
  const int rank_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LocalCommGroup>> LocalCommGroup::Create(const Options& options) {
  if (options.size < 1 || options.size > 1024) {
    return absl::InvalidArgumentError(absl::StrFormat("LocalCommGroup: size %d out of range [1, 1024]", options.size));
  }
  auto state = std::make_unique<State>();
  state->size = options.size;
  state->timeout = options.timeout;
  for (int r = 0; r < options.size; ++r) state->comms.push_back(std::make_unique<LocalComm>(state.get(), r));
  return std::unique_ptr<LocalCommGroup>(new LocalCommGroup(std::move(state)));
}

LocalCommGroup::LocalCommGroup(std::unique_ptr<State> state) : state_(std::move(state)) {}
LocalCommGroup::~LocalCommGroup() = default;

int LocalCommGroup::size() const { return state_->size; }

Communicator* LocalCommGroup::comm(int rank) {
  if (rank < 0 || rank >= state_->size) return nullptr;
  return state_->comms[rank].get();
}

absl::Status LocalCommGroup::RunOnAllRanks(const std::function<absl::Status(Communicator&)>& fn) {
  std::vector<absl::Status> results(state_->size);
  std::vector<std::thread> threads;
  threads.reserve(state_->size);
  for (int r = 0; r < state_->size; ++r) {
    threads.emplace_back([&, r] {
      results[r] = fn(*state_->comms[r]);
      if (!results[r].ok())
        state_->Abort(absl::Status(results[r].code(), absl::StrCat("rank ", r, ": ", results[r].message())));
    });
  }
  for (auto& t : threads) t.join();
  // Prefer the root cause over the ABORTED errors it caused on the other ranks.
  for (int r = 0; r < state_->size; ++r) {
    if (!results[r].ok() && results[r].code() != absl::StatusCode::kAborted) {
      return absl::Status(results[r].code(), absl::StrCat("rank ", r, ": ", results[r].message()));
    }
  }
  for (int r = 0; r < state_->size; ++r) {
    if (!results[r].ok()) return absl::Status(results[r].code(), absl::StrCat("rank ", r, ": ", results[r].message()));
  }
  return absl::OkStatus();
}

}  // namespace tessera::parallel
