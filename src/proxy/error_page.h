#pragma once
// The responses mitmd itself sends to a client: error pages whose first line says what went
// wrong in words a user understands ("mitmd: <message>"), and the pages mitmd serves (the root
// CA at http://mitmd.cert/). One structure is both recorded and encoded, so the flow and the
// wire cannot differ.

#include <string>
#include <string_view>

#include "http/headers.h"
#include "http/message.h"

namespace mitmd::proxy {

struct LocalResponse {
  int status = 200;
  HeaderList headers;
  std::string body;

  // The head as an http::Response (HTTP/1.1, the standard reason phrase).
  http::Response Head() const;
};

// A plain-text error page, always "Connection: close". |extra_headers| are appended.
LocalResponse ErrorPage(int status, std::string_view message, std::string_view detail = {},
                        HeaderList extra_headers = {});

// The complete HTTP/1.1 bytes; without the body when answering HEAD.
std::string Encode(const LocalResponse& response, bool head_only = false);

}  // namespace mitmd::proxy
