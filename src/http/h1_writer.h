#pragma once
// HTTP/1.1 head encoding: the raw bytes when a head still has them, else a canonical head
// (start line, the headers in their order and case, CRLF endings).

#include <string>

#include "http/message.h"

namespace mitmd::http {

std::string EncodeHead(const Request& request);
std::string EncodeHead(const Response& response);

}  // namespace mitmd::http
