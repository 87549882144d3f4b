#include "proxy/client_hello.h"

#include <openssl/bytestring.h>

namespace mitmd::proxy {
namespace {

constexpr uint8_t kHandshakeRecord = 0x16;
constexpr uint8_t kClientHelloType = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kHandshakeHeader = 4;

void ParseSni(const uint8_t* data, size_t len, ClientHelloInfo& info) {
  CBS ext, list;
  CBS_init(&ext, data, len);
  if (!CBS_get_u16_length_prefixed(&ext, &list)) return;
  while (CBS_len(&list) > 0) {
    uint8_t type;
    CBS name;
    if (!CBS_get_u8(&list, &type) || !CBS_get_u16_length_prefixed(&list, &name)) return;
    if (type == TLSEXT_NAMETYPE_host_name && CBS_len(&name) > 0) {
      info.sni.assign(reinterpret_cast<const char*>(CBS_data(&name)), CBS_len(&name));
      return;
    }
  }
}

void ParseAlpn(const uint8_t* data, size_t len, ClientHelloInfo& info) {
  CBS ext, list;
  CBS_init(&ext, data, len);
  if (!CBS_get_u16_length_prefixed(&ext, &list)) return;
  while (CBS_len(&list) > 0) {
    CBS proto;
    if (!CBS_get_u8_length_prefixed(&list, &proto)) return;
    // RFC 7301 forbids empty names; mirrored upstream, one would make an invalid ALPN list
    // (found by client_hello_fuzz).
    if (CBS_len(&proto) == 0) continue;
    info.alpn.emplace_back(reinterpret_cast<const char*>(CBS_data(&proto)), CBS_len(&proto));
  }
}

}  // namespace

ClientHelloInfo ParseClientHello(const SSL_CLIENT_HELLO* hello) {
  ClientHelloInfo info;
  const uint8_t* data;
  size_t len;
  if (SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_server_name, &data, &len)) {
    ParseSni(data, len, info);
  }
  if (SSL_early_callback_ctx_extension_get(
          hello, TLSEXT_TYPE_application_layer_protocol_negotiation, &data, &len)) {
    ParseAlpn(data, len, info);
  }
  return info;
}

PeekedHello PeekClientHello(std::string_view bytes) {
  // Reassemble the handshake message from as many handshake records as it spans.
  std::string message;
  size_t need = 0;  // the whole handshake message, header included, once known
  while (true) {
    if (bytes.size() < kRecordHeader) return {PeekedHello::Status::kNeedMore, {}};
    if (static_cast<uint8_t>(bytes[0]) != kHandshakeRecord) {
      return {PeekedHello::Status::kNotClientHello, {}};
    }
    size_t record_len = (static_cast<uint8_t>(bytes[3]) << 8) | static_cast<uint8_t>(bytes[4]);
    if (record_len == 0) return {PeekedHello::Status::kNotClientHello, {}};
    if (bytes.size() < kRecordHeader + record_len) return {PeekedHello::Status::kNeedMore, {}};
    message.append(bytes.substr(kRecordHeader, record_len));
    bytes.remove_prefix(kRecordHeader + record_len);
    if (need == 0 && message.size() >= kHandshakeHeader) {
      if (static_cast<uint8_t>(message[0]) != kClientHelloType) {
        return {PeekedHello::Status::kNotClientHello, {}};
      }
      need = kHandshakeHeader + ((static_cast<uint8_t>(message[1]) << 16) |
                                 (static_cast<uint8_t>(message[2]) << 8) |
                                 static_cast<uint8_t>(message[3]));
    }
    if (need != 0 && message.size() >= need) break;
  }
  CBS hello, random, session_id, ciphers, compression, extensions;
  uint16_t version;
  CBS_init(&hello, reinterpret_cast<const uint8_t*>(message.data()) + kHandshakeHeader,
           need - kHandshakeHeader);
  if (!CBS_get_u16(&hello, &version) || !CBS_get_bytes(&hello, &random, 32) ||
      !CBS_get_u8_length_prefixed(&hello, &session_id) ||
      !CBS_get_u16_length_prefixed(&hello, &ciphers) ||
      !CBS_get_u8_length_prefixed(&hello, &compression)) {
    return {PeekedHello::Status::kNotClientHello, {}};
  }
  PeekedHello out{PeekedHello::Status::kComplete, {}};
  if (CBS_len(&hello) == 0) return out;  // no extensions at all
  if (!CBS_get_u16_length_prefixed(&hello, &extensions)) {
    return {PeekedHello::Status::kNotClientHello, {}};
  }
  while (CBS_len(&extensions) > 0) {
    uint16_t type;
    CBS body;
    if (!CBS_get_u16(&extensions, &type) || !CBS_get_u16_length_prefixed(&extensions, &body)) {
      return {PeekedHello::Status::kNotClientHello, {}};
    }
    if (type == TLSEXT_TYPE_server_name) ParseSni(CBS_data(&body), CBS_len(&body), out.info);
    if (type == TLSEXT_TYPE_application_layer_protocol_negotiation) {
      ParseAlpn(CBS_data(&body), CBS_len(&body), out.info);
    }
  }
  return out;
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
