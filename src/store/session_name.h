#pragma once
// Session names: what `--session NAME`, `mitmd sessions` and the viewer's ?session= accept.
// A name becomes a file name (<confdir>/sessions/<NAME>.sqlite), so it can never climb out of
// the directory or hide: letters, digits, '-', '_' and '.', 1 to 64 of them, no leading '.'.

#include <algorithm>
#include <cctype>
#include <string_view>

namespace mitmd {

inline bool IsValidSessionName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace mitmd
