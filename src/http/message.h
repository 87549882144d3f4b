#pragma once
// Structured HTTP message heads with a raw fast path: a head read from an HTTP/1 peer keeps the
// exact bytes it arrived as, so that an unchanged head is forwarded byte for byte (header order,
// case and whitespace survive). Whoever changes a head clears |raw|; the writer then encodes it.

#include <string>

#include "http/h1_parser.h"

namespace mitmd::http {

struct Request {
  RequestHead head;
  std::string raw;  // the head as received (start line to the empty line); empty once changed
};

struct Response {
  ResponseHead head;
  std::string raw;
  bool interim() const { return head.status >= 100 && head.status < 200 && head.status != 101; }
};

}  // namespace mitmd::http
