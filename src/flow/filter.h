#pragma once
// The filter language, parsed and matched on the server so that the viewer's table, live stream
// and HAR export, and the proxy's hooks, all follow the same filter. Sans-I/O.
//
//   host:example.com status:>=400 method:POST ~body:token -type:image
//
// Terms separated by spaces must all match; `OR` (or `|`) between terms means either; `-term`
// negates; parentheses group; "double quotes" keep spaces and parentheses in a value. A word
// without a field searches the URL. Fields (case-insensitive):
//   host:H        the host or any subdomain of it; `*` and `?` are wildcards (host:*.example.*)
//   method:M      exactly M (GET, POST, ...)
//   status:S      404, 4xx, >=400, <300, 500-599
//   type:T        response media type: a family (image, json, html, js, css, font, xml, text,
//                 video, audio, media, form), a full type (image/png) or a subtype (png)
//   path:P        the path and query start with P (`*` wildcards allowed)
//   url:U         the URL contains U
//   header:N      a request or response header named N; header:N=V one whose value contains V
//   reqheader:, resheader:   the same on one side only
//   body:B        the request or response body (decoded) contains B
//   reqbody:, resbody:       the same on one side only
//   size:S        response body size: >10k, <=2m, 100-200 (k, m, g are binary units)
//   dur:D         duration from request start to response end: >500ms, >=1.5s, <20 (ms)
//   conn:N        client connection id; upstream:N the upstream connection id
//   error:E       the failure's phase or message contains E
//   client:A      the client address contains A
//   id:X          the flow id starts with X
//   is:K          error, tls, tunnel, http, insecure, truncated, reused, h2 (HTTP/2 on either
//                 side), ws (a WebSocket), grpc (a gRPC call)
//   ws:T          a WebSocket message contains T
// A `~` before a field (~host:ample, ~body:token) makes its value a plain "contains" match.
// Text matching ignores case.
//
// A filter comes from a URL any web page can make a browser request, so parsing is bounded: at
// most 32 levels of groups and negations, 256 terms and 16 KiB of text; beyond that Parse fails
// with the reason, and matching (which recurses once per level) stays shallow.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "flow/flow.h"

namespace mitmd {

class Filter {
 public:
  // The empty filter: matches every flow.
  Filter();
  ~Filter();
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

  // Parses |text|. The error names the offending term and its column (1-based), or the limit
  // the filter exceeds.
  static Result<Filter> Parse(std::string_view text);

  bool Matches(const Flow& flow) const;
  bool empty() const { return root_ == nullptr; }
  // The text it was parsed from.
  const std::string& text() const { return text_; }

  struct Node;

 private:
  std::unique_ptr<Node> root_;
  std::string text_;
};

// Glob match of |text| against |pattern| (`*` any run, `?` one character), ignoring ASCII case.
bool GlobMatch(std::string_view pattern, std::string_view text);

// True when |haystack| contains |needle|, ignoring ASCII case.
bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle);

}  // namespace mitmd
