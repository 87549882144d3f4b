#include "http/h1_writer.h"

#include "core/strings.h"

namespace mitmd::http {

std::string EncodeHead(const Request& request) {
  if (!request.raw.empty()) return request.raw;
  const RequestHead& h = request.head;
  std::string out = StrCat(h.method, " ", h.target, " ", h.version.empty() ? "HTTP/1.1" : h.version,
                           "\r\n");
  AppendHeaderLines(out, h.headers);
  out += "\r\n";
  return out;
}

std::string EncodeHead(const Response& response) {
  if (!response.raw.empty()) return response.raw;
  const ResponseHead& h = response.head;
  std::string out = StrCat(h.version.empty() ? "HTTP/1.1" : h.version, " ", h.status, " ",
                           h.reason, "\r\n");
  AppendHeaderLines(out, h.headers);
  out += "\r\n";
  return out;
}

}  // namespace mitmd::http
