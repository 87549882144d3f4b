#include "proxy/client_hello.h"

#include <openssl/bytestring.h>

namespace mitmd::proxy {

ClientHelloInfo ParseClientHello(const SSL_CLIENT_HELLO* hello) {
  ClientHelloInfo info;
  const uint8_t* data;
  size_t len;
  if (SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_server_name, &data, &len)) {
    CBS ext, list;
    CBS_init(&ext, data, len);
    if (CBS_get_u16_length_prefixed(&ext, &list)) {
      while (CBS_len(&list) > 0) {
        uint8_t type;
        CBS name;
        if (!CBS_get_u8(&list, &type) || !CBS_get_u16_length_prefixed(&list, &name)) break;
        if (type == TLSEXT_NAMETYPE_host_name && CBS_len(&name) > 0) {
          info.sni.assign(reinterpret_cast<const char*>(CBS_data(&name)), CBS_len(&name));
          break;
        }
      }
    }
  }
  if (SSL_early_callback_ctx_extension_get(
          hello, TLSEXT_TYPE_application_layer_protocol_negotiation, &data, &len)) {
    CBS ext, list;
    CBS_init(&ext, data, len);
    if (CBS_get_u16_length_prefixed(&ext, &list)) {
      while (CBS_len(&list) > 0) {
        CBS proto;
        if (!CBS_get_u8_length_prefixed(&list, &proto)) break;
        info.alpn.emplace_back(reinterpret_cast<const char*>(CBS_data(&proto)), CBS_len(&proto));
      }
    }
  }
  return info;
}

std::string EncodeAlpn(const std::vector<std::string>& protocols) {
  std::string out;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) continue;
    out.push_back(static_cast<char>(p.size()));
    out += p;
  }
  return out;
}

}  // namespace mitmd::proxy
