#pragma once
// Error handling for request paths: no exceptions, a small set of codes (DESIGN.md section 5).
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace sw {

enum class Code {
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kUnauthenticated,
  kPermissionDenied,
  kResourceExhausted,
  kUnavailable,
  kInternal,
};

// Stable, machine-readable name of a code ("invalid_argument", ...), used in problem+json.
std::string_view codeName(Code code);

struct Error {
  Code code = Code::kInternal;
  std::string message;  // written for the operator / API user
  std::string field;    // the offending input field, when there is one
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(Code code, std::string message, std::string field = {}) {
  return std::unexpected<Error>(Error{code, std::move(message), std::move(field)});
}

inline Status ok() {
  return {};
}

}  // namespace sw
