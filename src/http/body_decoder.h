#pragma once
// Content-Encoding decoding for viewing recorded bodies (gzip, deflate, br, zstd). Never used on
// the relay path: the proxy forwards bodies as they came. Sans-I/O and allocation-bounded, so a
// small compressed body cannot expand without limit (a "zip bomb" stops at |max_output|).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "http/headers.h"

namespace mitmd {

// The codings of a Content-Encoding value in the order they were applied, lower-cased, with
// "identity" and empty items dropped: "gzip, br" -> {"gzip", "br"}.
std::vector<std::string> ParseContentEncoding(std::string_view value);

// True for a coding DecodeBody understands ("gzip", "x-gzip", "deflate", "br", "zstd", "identity").
bool IsSupportedCoding(std::string_view coding);

struct DecodedBody {
  std::string data;
  // True when decoding stopped at the output cap or the compressed input ended early (for
  // example a recorded copy cut at --max-body-record): |data| holds what could be decoded.
  bool partial = false;
};

// Undoes |codings| (as returned by ParseContentEncoding), last applied first. Input that ends
// early decodes as far as it goes and is marked partial; corrupt input or an unknown coding is an
// error naming the coding. |max_output| bounds the decoded size.
Result<DecodedBody> DecodeBody(std::string_view body, const std::vector<std::string>& codings,
                               size_t max_output);

// Decodes per the Content-Encoding header of |headers| (unchanged when there is none).
Result<DecodedBody> DecodeBodyForHeaders(std::string_view body, const HeaderList& headers,
                                         size_t max_output);

}  // namespace mitmd
