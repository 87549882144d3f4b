#pragma once
// A complete HTTP response to serve as is (a page or a download), built without I/O. The viewer
// serves these, and so does the proxy for http://mitmd.cert/.

#include <string>

namespace mitmd::http {

struct StaticResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::string filename;  // non-empty: send as an attachment with this name
};

}  // namespace mitmd::http
