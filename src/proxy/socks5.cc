#include "proxy/socks5.h"

#include <arpa/inet.h>
#include <openssl/mem.h>

#include "core/strings.h"
#include "proxy/request_target.h"

namespace mitmd::proxy {
namespace {

constexpr uint8_t kVersion = 0x05;
constexpr uint8_t kAuthVersion = 0x01;  // RFC 1929's subnegotiation version
constexpr uint8_t kMethodNone = 0x00;
constexpr uint8_t kMethodPassword = 0x02;
constexpr uint8_t kNoAcceptableMethod = 0xff;
constexpr uint8_t kCommandConnect = 0x01;
constexpr uint8_t kAddrIPv4 = 0x01;
constexpr uint8_t kAddrName = 0x03;
constexpr uint8_t kAddrIPv6 = 0x04;

uint8_t At(std::string_view in, size_t i) { return static_cast<uint8_t>(in[i]); }

std::string Bytes(std::initializer_list<uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

std::string_view Socks5Handshake::ToString(State state) {
  switch (state) {
    case State::kGreeting: return "socks5_greeting";
    case State::kAuth: return "socks5_auth";
    case State::kRequest: return "socks5_request";
    case State::kDone: return "socks5_done";
    case State::kFailed: return "socks5_failed";
  }
  return "unknown";
}

std::string Socks5Handshake::Reply(ReplyCode code) {
  return Bytes({kVersion, static_cast<uint8_t>(code), 0x00, kAddrIPv4, 0, 0, 0, 0, 0, 0});
}

Socks5Handshake::Step Socks5Handshake::Feed(std::string_view in) {
  Step total;
  // One call may carry several messages (clients pipeline the greeting and the request).
  while (state_ == State::kGreeting || state_ == State::kAuth || state_ == State::kRequest) {
    std::string_view rest = in.substr(total.consumed);
    Step step = state_ == State::kGreeting ? Greeting(rest)
                : state_ == State::kAuth   ? Auth(rest)
                                           : Request(rest);
    total.consumed += step.consumed;
    total.reply += step.reply;
    if (step.target) total.target = std::move(step.target);
    if (!step.error.empty()) total.error = std::move(step.error);
    if (step.consumed == 0) break;  // needs more bytes
  }
  return total;
}

Socks5Handshake::Step Socks5Handshake::Refuse(size_t consumed, std::string reply,
                                             std::string error) {
  state_ = State::kFailed;
  return Step{consumed, std::move(reply), std::nullopt, std::move(error)};
}

Socks5Handshake::Step Socks5Handshake::Greeting(std::string_view in) {
  if (in.size() < 2) return {};
  if (At(in, 0) != kVersion) {
    return Refuse(0, "", StrCat("not SOCKS version 5 (version byte ", int{At(in, 0)}, ")"));
  }
  size_t methods = At(in, 1);
  if (in.size() < 2 + methods) return {};
  uint8_t wanted = token_.empty() ? kMethodNone : kMethodPassword;
  bool offered = false;
  for (size_t i = 0; i < methods; ++i) offered |= At(in, 2 + i) == wanted;
  if (!offered) {
    return Refuse(2 + methods, Bytes({kVersion, kNoAcceptableMethod}),
                  token_.empty()
                      ? "the SOCKS5 client offered no method mitmd accepts (it accepts 'no "
                        "authentication')"
                      : "this mitmd requires its proxy token, and the SOCKS5 client did not offer "
                        "username/password authentication: use socks5://mitmd:TOKEN@HOST:PORT");
  }
  state_ = token_.empty() ? State::kRequest : State::kAuth;
  return Step{2 + methods, Bytes({kVersion, wanted}), std::nullopt, {}};
}

Socks5Handshake::Step Socks5Handshake::Auth(std::string_view in) {
  if (in.size() < 2) return {};
  if (At(in, 0) != kAuthVersion) {
    return Refuse(0, Bytes({kAuthVersion, 0x01}),
                  StrCat("malformed SOCKS5 username/password message (version ", int{At(in, 0)},
                         ", expected 1)"));
  }
  size_t ulen = At(in, 1);
  if (in.size() < 2 + ulen + 1) return {};
  size_t plen = At(in, 2 + ulen);
  size_t size = 3 + ulen + plen;
  if (in.size() < size) return {};
  std::string_view password = in.substr(3 + ulen, plen);
  if (password.size() != token_.size() ||
      CRYPTO_memcmp(password.data(), token_.data(), token_.size()) != 0) {
    return Refuse(size, Bytes({kAuthVersion, 0x01}),
                  "this mitmd requires its proxy token: the SOCKS5 password was not it (use "
                  "socks5://mitmd:TOKEN@HOST:PORT)");
  }
  username_ = std::string(in.substr(2, ulen));
  state_ = State::kRequest;
  return Step{size, Bytes({kAuthVersion, 0x00}), std::nullopt, {}};
}

Socks5Handshake::Step Socks5Handshake::Request(std::string_view in) {
  if (in.size() < 4) return {};
  if (At(in, 0) != kVersion || At(in, 2) != 0) {
    return Refuse(0, Reply(ReplyCode::kGeneralFailure), "malformed SOCKS5 request");
  }
  uint8_t command = At(in, 1);
  Socks5Target target;
  size_t addr_len;
  switch (At(in, 3)) {
    case kAddrIPv4:
      target.type = Socks5Target::Type::kIPv4;
      addr_len = 4;
      break;
    case kAddrIPv6:
      target.type = Socks5Target::Type::kIPv6;
      addr_len = 16;
      break;
    case kAddrName:
      target.type = Socks5Target::Type::kName;
      if (in.size() < 5) return {};
      addr_len = 1 + At(in, 4);
      break;
    default:
      return Refuse(0, Reply(ReplyCode::kAddressTypeNotSupported),
                    StrCat("SOCKS5 address type ", int{At(in, 3)}, " is not supported"));
  }
  size_t size = 4 + addr_len + 2;
  if (in.size() < size) return {};
  if (command != kCommandConnect) {
    std::string_view what = command == 0x02 ? "BIND" : command == 0x03 ? "UDP ASSOCIATE" : "";
    return Refuse(size, Reply(ReplyCode::kCommandNotSupported),
                  StrCat("SOCKS5 command ", what.empty() ? std::to_string(command) : what,
                         " is not supported: mitmd relays CONNECT only"));
  }
  std::string_view addr = in.substr(4, addr_len);
  if (target.type == Socks5Target::Type::kName) {
    target.host = std::string(addr.substr(1));
    // The same rules as a CONNECT request's host: nothing that could split a header or a URL.
    if (auto checked = ParseAuthorityForm(StrCat(target.host, ":1"));
        !checked || checked->host != target.host) {
      return Refuse(size, Reply(ReplyCode::kGeneralFailure),
                    StrCat("the SOCKS5 request names an invalid host: ",
                           checked ? "not a host name" : checked.error().message));
    }
  } else {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(target.type == Socks5Target::Type::kIPv4 ? AF_INET : AF_INET6, addr.data(), text,
              sizeof(text));
    target.host = text;
  }
  target.port = static_cast<uint16_t>(At(in, size - 2) << 8 | At(in, size - 1));
  if (target.port == 0) {
    return Refuse(size, Reply(ReplyCode::kGeneralFailure), "the SOCKS5 request names port 0");
  }
  state_ = State::kDone;
  return Step{size, "", std::move(target), {}};
}

}  // namespace mitmd::proxy
