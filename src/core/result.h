#pragma once
// Errors are values: a message a user can act on, never an exception on the data plane.

#include <expected>
#include <string>
#include <utility>

namespace mitmd {

struct Error {
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;

// Status is a Result without a value: success or an Error.
using Status = std::expected<void, Error>;

inline std::unexpected<Error> Fail(std::string message) {
  return std::unexpected(Error{std::move(message)});
}

}  // namespace mitmd
