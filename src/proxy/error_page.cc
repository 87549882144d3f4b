#include "proxy/error_page.h"

#include "core/strings.h"

namespace mitmd::proxy {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
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

std::string ErrorResponse(int status, std::string_view message, std::string_view detail,
                          std::string_view extra_headers) {
  std::string body = StrCat("mitmd: ", message, "\n");
  if (!detail.empty()) body += StrCat("\n", detail, "\n");
  return StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n",
                "Content-Type: text/plain; charset=utf-8\r\n",
                "Content-Length: ", body.size(), "\r\n",
                "Connection: close\r\n",
                "Cache-Control: no-store\r\n",
                "X-Mitmd-Error: ", status, "\r\n", extra_headers, "\r\n", body);
}

}  // namespace mitmd::proxy
