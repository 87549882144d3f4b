#include "web/pac.h"

#include "core/strings.h"

namespace mitmd::web {
namespace {

// A host as it can stand inside a double-quoted JavaScript string. Real host names and
// addresses need no escaping; anything else is escaped rather than trusted.
std::string JsStringContent(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c > 0x7e) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

HostPort Reachable(const HostPort& proxy) {
  HostPort hp = proxy;
  if (hp.host.empty() || hp.host == "0.0.0.0") hp.host = "127.0.0.1";
  if (hp.host == "::" || hp.host == "[::]") hp.host = "::1";
  return hp;
}

}  // namespace

std::string BuildPac(const HostPort& proxy) {
  std::string address = JsStringContent(Reachable(proxy).ToString());
  return StrCat(
      "// Proxy auto-config from mitmd: every request goes through the proxy at ", address, ".\n",
      "// There is no DIRECT fallback on purpose: when mitmd is not running, requests fail\n",
      "// instead of silently going out uninspected. `mitmd-proxy off` removes this setting.\n",
      "function FindProxyForURL(url, host) {\n",
      "  return \"PROXY ", address, "\";\n",
      "}\n");
}

}  // namespace mitmd::web
