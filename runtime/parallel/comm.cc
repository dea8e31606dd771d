#include "runtime/parallel/comm.h"

#include "absl/strings/str_format.h"

namespace tessera::parallel {

std::string_view ChannelName(Channel channel) {
  switch (channel) {
    case Channel::kQuery:
      return "query";
    case Channel::kOutput:
      return "output";
    case Channel::kKv:
      return "kv";
    case Channel::kControl:
      return "control";
  }
  return "unknown";
}

CommRequest& CommRequest::operator=(CommRequest&& other) noexcept {
  if (this != &other) {
    if (impl_ != nullptr) impl_->Cancel();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

CommRequest::~CommRequest() {
  if (impl_ != nullptr) impl_->Cancel();
}

absl::Status CommRequest::Wait() {
  if (impl_ == nullptr) return absl::OkStatus();
  absl::Status s = impl_->Wait();
  impl_.reset();
  return s;
}

absl::StatusOr<bool> CommRequest::Test() {
  if (impl_ == nullptr) return true;
  absl::StatusOr<bool> done = impl_->Test();
  if (!done.ok() || *done) impl_.reset();
  return done;
}

absl::Status Communicator::CheckPeer(std::string_view call, const void* buf, size_t bytes, int peer,
                                     Channel channel) const {
  const int ch = static_cast<int>(channel);
  if (ch < 0 || ch >= kNumChannels) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: channel %d out of range", call, ch));
  }
  if (peer < 0 || peer >= size()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s(peer=%d, channel=%s): peer out of range [0, %d)", call, peer,
                                                      ChannelName(channel), size()));
  }
  if (bytes > 0 && buf == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s(peer=%d, channel=%s, bytes=%zu): null buffer", call, peer, ChannelName(channel), bytes));
  }
  return absl::OkStatus();
}

}  // namespace tessera::parallel
