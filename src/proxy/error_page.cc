#include "proxy/error_page.h"

#include "core/strings.h"
#include "http/h1_writer.h"
#include "http/status.h"

namespace mitmd::proxy {

http::Response LocalResponse::Head() const {
  http::Response r;
  r.head.version = "HTTP/1.1";
  r.head.status = status;
  r.head.reason = std::string(http::ReasonPhrase(status));
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
