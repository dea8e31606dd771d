// The error type the chat template interpreter throws internally; ChatTemplate converts it to an
// absl::Status at its boundary, so no exception leaves the module.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"

namespace tessera::chat_template {

enum class ErrorKind {
  kTemplate,          // the template misused a value (undefined attribute, bad operand types...)
  kRaised,            // raise_exception(message) in the template
  kResourceExhausted  // a step, output, size or recursion limit was hit
};

class RenderError : public std::exception {
 public:
  RenderError(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  bool has_location() const { return has_location_; }
  void AddLocation(int line, int column) {
    if (has_location_ || kind_ == ErrorKind::kRaised) return;
    has_location_ = true;
    message_ = std::to_string(line) + ":" + std::to_string(column) + ": " + message_;
  }

 private:
  ErrorKind kind_;
  std::string message_;
  bool has_location_ = false;
};

[[noreturn]] inline void ThrowTemplateError(std::string message) {
  throw RenderError(ErrorKind::kTemplate, std::move(message));
}

}  // namespace tessera::chat_template
