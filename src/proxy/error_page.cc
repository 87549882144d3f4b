#include "proxy/error_page.h"

#include "core/strings.h"
#include "http/h1_writer.h"

namespace mitmd::proxy {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

http::Response LocalResponse::Head() const {
  http::Response r;
  r.head.version = "HTTP/1.1";
  r.head.status = status;
  r.head.reason = std::string(ReasonPhrase(status));
  r.head.headers = headers;
  return r;
}

LocalResponse ErrorPage(int status, std::string_view message, std::string_view detail,
                        HeaderList extra_headers) {
  LocalResponse r;
  r.status = status;
  r.body = StrCat("mitmd: ", message, "\n");
  if (!detail.empty()) r.body += StrCat("\n", detail, "\n");
  r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
               {"Content-Length", StrCat(r.body.size())},
               {"Connection", "close"},
               {"Cache-Control", "no-store"},
               {"X-Mitmd-Error", StrCat(status)}};
  for (auto& h : extra_headers) r.headers.push_back(std::move(h));
  return r;
}

std::string Encode(const LocalResponse& response, bool head_only) {
  std::string out = http::EncodeHead(response.Head());
  if (!head_only) out += response.body;
  return out;
}

}  // namespace mitmd::proxy
