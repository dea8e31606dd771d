// One error model for every API: an absl::Status whose code picks the gRPC status, plus optional
// payloads for what the code alone cannot say (the offending request field, an HTTP status that
// differs from the code's default). Table: ARCHITECTURE.md §6.
//
//   return InvalidParam("temperature", "temperature must be in [0, 2], got 3");
//   ...
//   res.status = HttpStatusOf(status);
//   res.set_content(OpenAiErrorBody(status), "application/json");
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace tessera::server {

// INVALID_ARGUMENT naming the request field (`param` in the OpenAI error body).
absl::Status InvalidParam(std::string_view param, std::string_view message);
// RESOURCE_EXHAUSTED shown as HTTP 413 (body or message too large).
absl::Status TooLarge(std::string_view message);
// RESOURCE_EXHAUSTED shown as HTTP 429 (queue full / over the token budget).
absl::Status Overloaded(std::string_view message);

// The request field an error names, or "" when none.
std::string ParamOf(const absl::Status& status);
// HTTP status for an error: 400 INVALID_ARGUMENT/FAILED_PRECONDITION/OUT_OF_RANGE, 401
// UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 413/429 RESOURCE_EXHAUSTED, 499 CANCELLED,
// 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED, 500 otherwise.
int HttpStatusOf(const absl::Status& status);
// OpenAI error "type": invalid_request_error, authentication_error, not_found_error,
// rate_limit_error (429), request_too_large (413), service_unavailable_error, timeout_error,
// internal_server_error.
std::string OpenAiErrorType(const absl::Status& status);
// {"error":{"message":...,"type":...,"param":...|null,"code":<http status>}}
std::string OpenAiErrorBody(const absl::Status& status);

}  // namespace tessera::server
