#pragma once
// The responses mitmd itself sends to a client: a plain-text page whose first line says what
// went wrong in words a user understands ("mitmd: <message>"), then the optional detail.
// Always "Connection: close".

#include <string>
#include <string_view>

namespace mitmd::proxy {

// A complete HTTP/1.1 response. |extra_headers| are raw "Name: value\r\n" lines.
std::string ErrorResponse(int status, std::string_view message, std::string_view detail = {},
                          std::string_view extra_headers = {});

std::string_view ReasonPhrase(int status);

}  // namespace mitmd::proxy
