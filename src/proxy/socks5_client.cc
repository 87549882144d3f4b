#include "proxy/socks5_client.h"

#include <arpa/inet.h>

#include "core/strings.h"

namespace mitmd::proxy {
namespace {

constexpr uint8_t kVersion = 5;
constexpr uint8_t kNoAuth = 0x00;
constexpr uint8_t kUserPass = 0x02;
constexpr uint8_t kNoAcceptable = 0xff;

// RFC 1928 section 6, in words.
std::string_view ReplyText(uint8_t code) {
  switch (code) {
    case 0x01: return "general SOCKS server failure";
    case 0x02: return "connection not allowed by its rules";
    case 0x03: return "network unreachable";
    case 0x04: return "host unreachable";
    case 0x05: return "connection refused";
    case 0x06: return "TTL expired";
    case 0x07: return "command not supported";
    case 0x08: return "address type not supported";
  }
  return "unknown error";
}

}  // namespace

std::string_view Socks5Client::ToString(State state) {
  switch (state) {
    case State::kGreeting: return "greeting";
    case State::kAuth: return "auth";
    case State::kConnect: return "connect";
    case State::kOpen: return "open";
    case State::kFailed: return "failed";
  }
  return "unknown";
}

Socks5Client::Socks5Client(std::string host, uint16_t port, std::string user,
                           std::string password)
    : host_(std::move(host)), port_(port), user_(std::move(user)),
      password_(std::move(password)) {}

std::string Socks5Client::Start() {
  state_ = State::kGreeting;
  if (user_.empty() && password_.empty()) return {char(kVersion), 1, char(kNoAuth)};
  return {char(kVersion), 1, char(kUserPass)};
}

Result<Socks5Client::Step> Socks5Client::Fail(std::string message) {
  state_ = State::kFailed;
  return mitmd::Fail(std::move(message));
}

std::string Socks5Client::ConnectRequest() const {
  std::string out = {char(kVersion), 0x01 /* CONNECT */, 0x00};
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, host_.c_str(), &v4) == 1) {
    out.push_back(0x01);
    out.append(reinterpret_cast<const char*>(&v4), 4);
  } else if (inet_pton(AF_INET6, host_.c_str(), &v6) == 1) {
    out.push_back(0x04);
    out.append(reinterpret_cast<const char*>(&v6), 16);
  } else {
    out.push_back(0x03);
    out.push_back(static_cast<char>(host_.size()));  // <= 255: a DNS name is
    out.append(host_);
  }
  out.push_back(static_cast<char>(port_ >> 8));
  out.push_back(static_cast<char>(port_ & 0xff));
  return out;
}

Result<Socks5Client::Step> Socks5Client::Feed(std::string_view in) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(in[i]); };
  switch (state_) {
    case State::kGreeting: {
      if (in.size() < 2) return Step{};
      if (byte(0) != kVersion) {
        return Fail(in.starts_with("HTTP/")
                        ? std::string("it answered as an HTTP proxy: use upstream:http://")
                        : StrCat("it is not a SOCKS5 proxy (its answer starts with version ",
                                 byte(0), ")"));
      }
      uint8_t method = byte(1);
      bool creds = !user_.empty() || !password_.empty();
      if (method == kNoAcceptable || method != (creds ? kUserPass : kNoAuth)) {
        return Fail(creds ? "it accepts no username/password authentication"
                          : "it requires authentication: give USER:PASS@ in the --mode URL");
      }
      if (!creds) {
        state_ = State::kConnect;
        return Step{2, ConnectRequest()};
      }
      std::string auth = {0x01, static_cast<char>(user_.size())};
      auth += user_;
      auth.push_back(static_cast<char>(password_.size()));
      auth += password_;
      state_ = State::kAuth;
      return Step{2, std::move(auth)};
    }
    case State::kAuth: {
      if (in.size() < 2) return Step{};
      if (byte(1) != 0x00) return Fail("it refused the username and password");
      state_ = State::kConnect;
      return Step{2, ConnectRequest()};
    }
    case State::kConnect: {
      if (in.size() < 5) return Step{};
      if (byte(0) != kVersion) return Fail("its reply to CONNECT is not SOCKS5");
      if (byte(1) != 0x00) {
        return Fail(StrCat("it refused CONNECT ", host_, ":", port_, ": ", ReplyText(byte(1)),
                           " (SOCKS5 reply ", byte(1), ")"));
      }
      size_t addr_len = 0;
      switch (byte(3)) {
        case 0x01: addr_len = 4; break;
        case 0x04: addr_len = 16; break;
        case 0x03: addr_len = 1 + byte(4); break;
        default:
          return Fail(StrCat("its reply to CONNECT has an unknown address type ", byte(3)));
      }
      size_t total = 4 + addr_len + 2;
      if (in.size() < total) return Step{};
      state_ = State::kOpen;
      return Step{total, {}};
    }
    case State::kOpen:
      return Step{};
    case State::kFailed:
      return mitmd::Fail("the SOCKS5 handshake already failed");
  }
  return Step{};
}

}  // namespace mitmd::proxy
