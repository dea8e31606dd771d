#include "server/pipeline/stop_matcher.h"

#include <algorithm>

namespace tessera::server {

StopMatcher::StopMatcher(std::vector<std::string> stops, bool include_stop) : include_stop_(include_stop) {
  for (std::string& s : stops) {
    if (s.empty()) continue;
    max_len_ = std::max(max_len_, s.size());
    stops_.push_back(std::move(s));
  }
}

std::string StopMatcher::Feed(std::string_view text) {
  if (matched_) return "";
  if (stops_.empty()) return std::string(text);
  pending_.append(text);
  // The stop string that is complete first (earliest end; at the same end the longer one, which
  // starts earlier). This makes the result independent of how the text was split into pieces.
  size_t best = std::string::npos;  // start of the match
  size_t best_end = std::string::npos;
  const std::string* best_stop = nullptr;
  for (const std::string& s : stops_) {
    const size_t at = pending_.find(s);
    if (at == std::string::npos) continue;
    const size_t end = at + s.size();
    if (end < best_end || (end == best_end && at < best)) {
      best = at;
      best_end = end;
      best_stop = &s;
    }
  }
  if (best_stop != nullptr) {
    matched_ = *best_stop;
    std::string out = pending_.substr(0, best + (include_stop_ ? best_stop->size() : 0));
    pending_.clear();
    return out;
  }
  // Hold back the longest suffix of pending_ that is a proper prefix of some stop string.
  size_t hold = 0;
  const size_t limit = std::min(pending_.size(), max_len_ - 1);
  for (size_t len = limit; len > 0; --len) {
    const std::string_view tail(pending_.data() + pending_.size() - len, len);
    const bool is_prefix = std::any_of(stops_.begin(), stops_.end(), [&](const std::string& s) {
      return s.size() > len && std::string_view(s).substr(0, len) == tail;
    });
    if (is_prefix) {
      hold = len;
      break;
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::Flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  return matched_ ? std::string() : out;
}

}  // namespace tessera::server
