#include "http/headers.h"

#include <algorithm>
#include <array>

namespace mitmd {
namespace {
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

const std::string* FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

bool HeaderHasToken(const HeaderList& headers, std::string_view name, std::string_view token) {
  bool found = false;
  for (const auto& [k, v] : headers) {
    if (!EqualsIgnoreCase(k, name)) continue;
    ForEachListElement(v, [&](std::string_view element) {
      found = EqualsIgnoreCase(element, token);
      return !found;
    });
    if (found) return true;
  }
  return false;
}

namespace {
// RFC 9110 tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" /
// "|" / "~" / DIGIT / ALPHA, as a table: header names are checked on every head.
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kTokenChars = MakeTokenTable();
}  // namespace

bool IsTokenChar(char c) { return kTokenChars[static_cast<unsigned char>(c)]; }

bool IsValidHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), IsTokenChar);
}

bool IsValidHeaderValue(std::string_view value) {
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

size_t RemoveHeader(HeaderList& headers, std::string_view name) {
  size_t before = headers.size();
  std::erase_if(headers, [&](const auto& h) { return EqualsIgnoreCase(h.first, name); });
  return before - headers.size();
}

void SetHeader(HeaderList& headers, std::string_view name, std::string_view value) {
  auto first = std::find_if(headers.begin(), headers.end(),
                            [&](const auto& h) { return EqualsIgnoreCase(h.first, name); });
  if (first == headers.end()) {
    headers.emplace_back(std::string(name), std::string(value));
    return;
  }
  first->second.assign(value);
  auto rest = std::remove_if(first + 1, headers.end(),
                             [&](const auto& h) { return EqualsIgnoreCase(h.first, name); });
  headers.erase(rest, headers.end());
}

void AppendHeaderLines(std::string& out, const HeaderList& headers) {
  for (const auto& [k, v] : headers) {
    out.append(k);
    out.append(": ");
    out.append(v);
    out.append("\r\n");
  }
}

}  // namespace mitmd
