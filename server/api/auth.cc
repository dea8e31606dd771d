#include "server/api/auth.h"

#include <cctype>
#include <fstream>

namespace tessera::server {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool StartsWithBearer(std::string_view s) {
  if (s.size() < 7) return false;
  for (size_t i = 0; i < 6; ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != "bearer"[i]) return false;
  }
  return s[6] == ' ';
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = static_cast<unsigned char>(diff | (a[i] ^ b[i]));
  // Keep the compiler from turning the loop into an early-exit comparison.
  asm volatile("" : "+r"(diff));
  return diff == 0;
}

absl::StatusOr<ApiKeys> ApiKeys::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read API key file " + path);
  ApiKeys keys;
  std::string line;
  while (std::getline(in, line)) {
    std::string key(Trim(line));
    if (key.empty() || key[0] == '#') continue;
    keys.Add(std::move(key));
  }
  if (!keys.enabled()) return absl::InvalidArgumentError("API key file " + path + " holds no key");
  return keys;
}

bool ApiKeys::Authorized(std::string_view authorization) const {
  if (keys_.empty()) return true;
  authorization = Trim(authorization);
  if (!StartsWithBearer(authorization)) return false;
  const std::string_view token = Trim(authorization.substr(7));
  bool ok = false;
  for (const std::string& k : keys_) ok |= ConstantTimeEquals(token, k);  // no early exit
  return ok;
}

}  // namespace tessera::server
