#include "rules/edit.h"

#include "core/strings.h"
#include "flow/json_fields.h"

namespace mitmd::rules {
namespace {

Status ReadHeaders(JsonFields& fields, std::optional<HeaderList>& out) {
  const nlohmann::json* arr = fields.Array("headers");
  if (arr == nullptr) return {};
  HeaderList headers;
  for (size_t i = 0; i < arr->size(); ++i) {
    const nlohmann::json& h = (*arr)[i];
    std::string path = StrCat(fields.PathOf("headers"), "[", i, "]");
    if (!h.is_array() || h.size() != 2 || !h[0].is_string() || !h[1].is_string()) {
      return Fail(StrCat(path, ": expected [\"name\", \"value\"]"));
    }
    const std::string& name = h[0].get_ref<const std::string&>();
    const std::string& value = h[1].get_ref<const std::string&>();
    if (!IsValidHeaderName(name)) return Fail(StrCat(path, ": '", name, "' is not a header name"));
    if (!IsValidHeaderValue(value)) {
      return Fail(
          StrCat(path, ": the value of ", name, " holds a line break or control character"));
    }
    headers.emplace_back(name, value);
  }
  out = std::move(headers);
  return {};
}

void ReadOptional(JsonFields& fields, std::string_view key, std::optional<std::string>& out) {
  if (!fields.Has(key)) return;
  std::string value;
  fields.String(key, value);
  out = std::move(value);
}

// "body" (text) or "body_base64" (any bytes: what the editor sends for a binary body).
Status ReadBody(JsonFields& fields, std::string_view side, std::optional<std::string>& out) {
  ReadOptional(fields, "body", out);
  if (!fields.Has("body_base64")) return {};
  if (out) return Fail(StrCat(side, ": give body or body_base64, not both"));
  std::string encoded;
  fields.String("body_base64", encoded);
  std::optional<std::string> bytes = Base64Decode(encoded);
  if (!bytes) return Fail(StrCat(side, ".body_base64: not valid base64"));
  out = std::move(*bytes);
  return {};
}

}  // namespace

Result<Edit> EditFromJson(const nlohmann::json& j) {
  if (j.is_null()) return Edit{};
  if (!j.is_object()) return Fail("the edit must be a JSON object");
  std::string error;
  JsonFields top(j, "", error);
  Edit edit;
  if (auto r = top.Object("request")) {
    RequestEdit e;
    ReadOptional(*r, "method", e.method);
    ReadOptional(*r, "url", e.url);
    if (auto st = ReadBody(*r, "request", e.body); !st) return std::unexpected(st.error());
    if (!error.empty()) return Fail(error);
    if (auto st = ReadHeaders(*r, e.headers); !st) return std::unexpected(st.error());
    if (!error.empty()) return Fail(error);
    if (e.method && (e.method->empty() || !IsValidHeaderName(*e.method))) {
      return Fail(StrCat("request.method: '", *e.method, "' is not a method name"));
    }
    if (e.url && !e.url->starts_with("http://") && !e.url->starts_with("https://")) {
      return Fail(StrCat("request.url: '", *e.url, "' is not an http:// or https:// URL"));
    }
    edit.request = std::move(e);
  }
  if (auto r = top.Object("response")) {
    ResponseEdit e;
    if (r->Has("status")) {
      int status = 0;
      r->Integer("status", status);
      if (error.empty() && (status < 200 || status > 999)) {
        return Fail(StrCat("response.status: ", status, " is not a final status (200-999)"));
      }
      e.status = status;
    }
    ReadOptional(*r, "reason", e.reason);
    if (auto st = ReadBody(*r, "response", e.body); !st) return std::unexpected(st.error());
    if (!error.empty()) return Fail(error);
    if (auto st = ReadHeaders(*r, e.headers); !st) return std::unexpected(st.error());
    if (!error.empty()) return Fail(error);
    if (e.reason && !IsValidHeaderValue(*e.reason)) {
      return Fail("response.reason: holds a line break or control character");
    }
    edit.response = std::move(e);
  }
  if (!error.empty()) return Fail(error);
  return edit;
}

}  // namespace mitmd::rules
