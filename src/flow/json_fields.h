#pragma once
// Reading untrusted JSON (session logs, uploads, HAR files from other tools) member by member with
// every type checked and no exceptions: nlohmann's get<T>() and value() throw on a wrong type, and
// one such line used to abort the whole process.
//
//   std::string error;
//   JsonFields request(j["request"], "request", error);
//   request.String("method", req.method);      // absent or null: left as it was
//   request.Integer("port", req.port);          // range-checked against uint16_t
//   if (!error.empty()) return Fail(error);     // "request.port: expected an integer from 0 to
//                                               //  65535, got string"
// Only the first problem is kept; later reads still run but change nothing once one is recorded.

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace mitmd {

class JsonFields {
 public:
  // |object| must outlive this; |error| (borrowed) collects the first problem. A non-object (other
  // than null, which reads as empty) is itself a problem.
  JsonFields(const nlohmann::json& object, std::string path, std::string& error);

  bool ok() const { return error_.empty(); }
  const std::string& path() const { return path_; }
  // "path.key" (or "key" at the top).
  std::string PathOf(std::string_view key) const;

  // The member, or null when absent or JSON null (or when this is not an object).
  const nlohmann::json* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  // Records "<path.key> is missing" when absent.
  bool Require(std::string_view key);

  void String(std::string_view key, std::string& out);
  void Bool(std::string_view key, bool& out);
  void Double(std::string_view key, double& out);
  template <typename T>
  void Integer(std::string_view key, T& out);
  void StringList(std::string_view key, std::vector<std::string>& out);
  void IntList(std::string_view key, std::vector<int>& out);

  // A member that must be an object: nullopt when absent (or wrong, recorded).
  std::optional<JsonFields> Object(std::string_view key);
  // Fields of another value (an array element, say) sharing this one's error.
  JsonFields Nested(const nlohmann::json& value, std::string path) const {
    return JsonFields(value, std::move(path), error_);
  }
  // A member that must be an array: null when absent (or wrong, recorded).
  const nlohmann::json* Array(std::string_view key);

  // Records "<path>: <what>" unless a problem is already recorded.
  void Bad(std::string_view path, std::string_view what);
  // "expected <want>, got <JSON type>" at path.key.
  void WrongType(std::string_view key, std::string_view want, const nlohmann::json& got);

  // Converts |v| to T when it is an integral number within T's range.
  template <typename T>
  static std::optional<T> AsInteger(const nlohmann::json& v);

 private:
  const nlohmann::json& object_;
  std::string path_;
  std::string& error_;
};

template <typename T>
std::optional<T> JsonFields::AsInteger(const nlohmann::json& v) {
  using Limits = std::numeric_limits<T>;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(Limits::max())) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i >= static_cast<int64_t>(Limits::min()) &&
        (i < 0 || static_cast<uint64_t>(i) <= static_cast<uint64_t>(Limits::max()))) {
      return static_cast<T>(i);
    }
  } else if (v.is_number_float()) {
    // Other tools write 200.0; max() + 1 is a power of two, exact as a double.
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && d >= static_cast<double>(Limits::min()) &&
        d < static_cast<double>(Limits::max()) + 1.0) {
      return static_cast<T>(d);
    }
  }
  return std::nullopt;
}

template <typename T>
void JsonFields::Integer(std::string_view key, T& out) {
  const nlohmann::json* v = Find(key);
  if (v == nullptr) return;
  if (auto n = AsInteger<T>(*v)) {
    if (ok()) out = *n;
    return;
  }
  WrongType(key,
            StrCat("an integer from ", std::to_string(std::numeric_limits<T>::min()), " to ",
                   std::to_string(std::numeric_limits<T>::max())),
            *v);
}

}  // namespace mitmd
