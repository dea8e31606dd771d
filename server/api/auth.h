// API keys: a request is authorized when it carries "Bearer <key>" for one of the configured keys
// (REST: the Authorization header; gRPC: the `authorization` metadata). Keys are compared in
// constant time. With no keys configured every request is authorized.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::server {

class ApiKeys {
 public:
  ApiKeys() = default;
  explicit ApiKeys(std::vector<std::string> keys) : keys_(std::move(keys)) {}
  // One key per line; blank lines and lines starting with '#' are skipped.
  static absl::StatusOr<ApiKeys> FromFile(const std::string& path);
  void Add(std::string key) { keys_.push_back(std::move(key)); }

  bool enabled() const { return !keys_.empty(); }
  // `authorization` is the header value, e.g. "Bearer sk-123".
  bool Authorized(std::string_view authorization) const;

 private:
  std::vector<std::string> keys_;
};

// Equal in time independent of where the strings differ (length differences are not hidden).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace tessera::server
