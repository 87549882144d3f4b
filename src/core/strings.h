#pragma once
// String building without <format> (GCC 12's libstdc++ does not have it).

#include <charconv>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace mitmd {
namespace strings_internal {

inline void Append(std::string& out, std::string_view s) { out.append(s); }
inline void Append(std::string& out, const char* s) { out.append(s); }
inline void Append(std::string& out, const std::string& s) { out.append(s); }
inline void Append(std::string& out, char c) { out.push_back(c); }
template <std::integral T>
  requires(!std::same_as<T, char> && !std::same_as<T, bool>)
void Append(std::string& out, T v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}
inline void Append(std::string& out, bool v) { out.append(v ? "true" : "false"); }

}  // namespace strings_internal

// Concatenates strings, string_views, chars and integers.
template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (strings_internal::Append(out, args), ...);
  return out;
}

// Whether |s| is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Standard base64 with padding.
std::string Base64Encode(std::string_view bytes);
// Standard base64 with padding, the inverse of Base64Encode; nullopt for anything else.
std::optional<std::string> Base64Decode(std::string_view text);

// Lower-case hex of |len| bytes.
std::string HexEncode(const unsigned char* data, size_t len);

}  // namespace mitmd
