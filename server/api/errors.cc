#include "server/api/errors.h"

#include "absl/strings/cord.h"
#include "nlohmann/json.hpp"

namespace tessera::server {
namespace {

constexpr std::string_view kParamUrl = "tessera.dev/param";
constexpr std::string_view kHttpUrl = "tessera.dev/http_status";

// Debian's Abseil has its own string_view type, not std::string_view.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

absl::Status InvalidParam(std::string_view param, std::string_view message) {
  absl::Status s = absl::InvalidArgumentError(Sv(message));
  s.SetPayload(Sv(kParamUrl), absl::Cord(Sv(param)));
  return s;
}

absl::Status TooLarge(std::string_view message) {
  absl::Status s = absl::ResourceExhaustedError(Sv(message));
  s.SetPayload(Sv(kHttpUrl), absl::Cord("413"));
  return s;
}

absl::Status Overloaded(std::string_view message) {
  absl::Status s = absl::ResourceExhaustedError(Sv(message));
  s.SetPayload(Sv(kHttpUrl), absl::Cord("429"));
  return s;
}

std::string ParamOf(const absl::Status& status) {
  auto p = status.GetPayload(Sv(kParamUrl));
  return p ? std::string(*p) : std::string();
}

int HttpStatusOf(const absl::Status& status) {
  if (auto p = status.GetPayload(Sv(kHttpUrl))) {
    const std::string v(*p);
    if (v == "413") return 413;
    if (v == "429") return 429;
  }
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string OpenAiErrorType(const absl::Status& status) {
  switch (HttpStatusOf(status)) {
    case 400:
      return "invalid_request_error";
    case 401:
    case 403:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    case 504:
      return "timeout_error";
    default:
      return "internal_server_error";
  }
}

std::string OpenAiErrorBody(const absl::Status& status) {
  const std::string param = ParamOf(status);
  nlohmann::json err = {{"message", std::string(status.message())},
                        {"type", OpenAiErrorType(status)},
                        {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
                        {"code", HttpStatusOf(status)}};
  return nlohmann::json{{"error", err}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace tessera::server
