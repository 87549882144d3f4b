#pragma once
// Header lists as sent on the wire (order and case kept) and the small RFC 9110 field helpers the
// HTTP/1.1 codec and the proxy share.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mitmd {

// Headers keep their order and the case they were sent in.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive ASCII comparison, for header names and tokens.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// The first header named |name| (case-insensitive), or nullptr.
const std::string* FindHeader(const HeaderList& headers, std::string_view name);

// True when a comma-separated header (e.g. Connection) lists |token| (case-insensitive), across
// every header of that name.
bool HeaderHasToken(const HeaderList& headers, std::string_view name, std::string_view token);

// RFC 9110 tchar: the characters of a token (method, header name, transfer coding).
bool IsTokenChar(char c);
// A non-empty token: what a header name must be.
bool IsValidHeaderName(std::string_view name);
// No control characters other than HTAB (so no CR, LF or NUL); obs-text (0x80-0xFF) is allowed.
bool IsValidHeaderValue(std::string_view value);

// |s| without leading and trailing spaces and tabs (RFC 9110 OWS).
std::string_view TrimOws(std::string_view s);

// Calls |fn(element)| for each non-empty, OWS-trimmed element of a comma-separated list value
// (RFC 9110 section 5.6.1). |fn| returns false to stop early.
template <typename Fn>
void ForEachListElement(std::string_view value, Fn&& fn) {
  while (true) {
    size_t comma = value.find(',');
    std::string_view element = TrimOws(value.substr(0, comma));
    if (!element.empty() && !fn(element)) return;
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

// Removes every header named |name|; returns how many were removed.
size_t RemoveHeader(HeaderList& headers, std::string_view name);

// Gives |name| the single value |value|: the first header of that name keeps its position and
// the case of its name, later ones are removed; when there is none, it is appended.
void SetHeader(HeaderList& headers, std::string_view name, std::string_view value);

// Appends "Name: value\r\n" for each header, in order: the header block of an HTTP/1.1 head
// without its terminating empty line.
void AppendHeaderLines(std::string& out, const HeaderList& headers);

}  // namespace mitmd
