#pragma once
// Edit: what the user changed in a held (or replayed) message, as the API sends it:
//   {"request": {"method", "url", "headers": [[n, v], ...], "body"}}
//   {"response": {"status", "reason", "headers", "body"}}
// Every member is optional; a given "headers" list replaces the whole list. "body_base64" in
// place of "body" carries bytes that are not text (JSON strings cannot). Sans-I/O.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/result.h"
#include "http/headers.h"

namespace mitmd::rules {

struct RequestEdit {
  std::optional<std::string> method;
  std::optional<std::string> url;  // absolute: scheme://host[:port]/path
  std::optional<HeaderList> headers;
  std::optional<std::string> body;
};

struct ResponseEdit {
  std::optional<int> status;
  std::optional<std::string> reason;
  std::optional<HeaderList> headers;
  std::optional<std::string> body;
};

struct Edit {
  std::optional<RequestEdit> request;
  std::optional<ResponseEdit> response;
  bool empty() const { return !request && !response; }
};

// Validates types and values (a method is a token, header names and values are valid, a status
// is 100-999 and not 1xx, a URL is http(s)://...). The error names the member.
Result<Edit> EditFromJson(const nlohmann::json& j);

}  // namespace mitmd::rules
