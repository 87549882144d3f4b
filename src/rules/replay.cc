#include "rules/replay.h"

#include "core/strings.h"

namespace mitmd::rules {
namespace {

// Hop-by-hop and framing headers: the replaying connection sets its own.
constexpr std::string_view kDropped[] = {
    "Connection",          "Keep-Alive",       "Transfer-Encoding", "TE",         "Upgrade",
    "Proxy-Authorization", "Proxy-Connection", "Content-Length",    kReplayHeader};

}  // namespace

Result<std::string> BuildReplayRequest(const Flow& flow, const Edit& edit,
                                       std::string_view replay_header) {
  if (flow.kind != Flow::Kind::kHttp || !flow.request || flow.request->method.empty()) {
    return Fail(StrCat("flow ", flow.id,
                       " has no HTTP request to replay (a tunnel or a refused "
                       "connection)"));
  }
  const HttpRequest& r = *flow.request;
  if (EqualsIgnoreCase(r.method, "CONNECT")) {
    return Fail(StrCat("flow ", flow.id, " is a CONNECT request: replay its requests instead"));
  }
  if (r.scheme != "http" && r.scheme != "https") {
    return Fail(StrCat("flow ", flow.id, " has no http(s) URL to replay"));
  }
  const RequestEdit none;
  const RequestEdit& e = edit.request ? *edit.request : none;
  if (r.body.truncated && !e.body) {
    return Fail(StrCat("flow ", flow.id, "'s request body was cut at --max-body-record (",
                       r.body.content.size(), " of ", r.body.size,
                       " bytes kept): it cannot be replayed as it was; give a new body to send "
                       "an edited request"));
  }
  std::string method = e.method ? *e.method : r.method;
  std::string url = e.url ? *e.url : r.Url();
  std::string_view body = e.body ? std::string_view(*e.body) : std::string_view(r.body.content);
  HeaderList headers = e.headers ? *e.headers : r.headers;
  for (std::string_view name : kDropped) RemoveHeader(headers, name);
  // HTTP/2 flows record pseudo-headers; an HTTP/1 request carries Host instead.
  std::erase_if(headers, [](const auto& h) { return h.first.starts_with(':'); });
  if (!FindHeader(headers, "Host") || (e.url && !e.headers)) {
    std::string_view rest = std::string_view(url).substr(url.find("://") + 3);
    SetHeader(headers, "Host", rest.substr(0, rest.find_first_of("/?#")));
  }
  bool had_length =
      FindHeader(r.headers, "Content-Length") || FindHeader(r.headers, "Transfer-Encoding");
  if (!body.empty() || had_length || e.body)
    headers.emplace_back("Content-Length", StrCat(body.size()));
  headers.emplace_back("Connection", "close");
  headers.emplace_back(std::string(kReplayHeader), std::string(replay_header));
  for (const auto& [name, value] : headers) {
    if (!IsValidHeaderName(name) || !IsValidHeaderValue(value)) {
      return Fail(
          StrCat("flow ", flow.id, " has a header that cannot be sent again: '", name, "'"));
    }
  }
  if (!IsValidHeaderName(method) || url.find_first_of(" \r\n") != std::string::npos) {
    return Fail(StrCat("flow ", flow.id, ": the method or URL cannot be sent"));
  }
  std::string out = StrCat(method, " ", url, " HTTP/1.1\r\n");
  AppendHeaderLines(out, headers);
  out += "\r\n";
  out.append(body);
  return out;
}

}  // namespace mitmd::rules
