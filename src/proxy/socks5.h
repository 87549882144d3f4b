#pragma once
// SOCKS5 (RFC 1928, username/password RFC 1929) on the proxy port, sans-I/O: bytes from the
// client in, the bytes to answer and what the client asked for out. Only CONNECT is offered
// (BIND and UDP ASSOCIATE are answered "command not supported"). When mitmd requires its proxy
// token, the client must authenticate with username/password and the token as the password,
// the same as an HTTP proxy client's Proxy-Authorization.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mitmd::proxy {

struct Socks5Target {
  enum class Type { kName, kIPv4, kIPv6 };
  Type type = Type::kName;
  std::string host;  // a name, or an IP literal without brackets
  uint16_t port = 0;
};

class Socks5Handshake {
 public:
  enum class State {
    kGreeting,  // waiting for the version/methods message
    kAuth,      // waiting for username/password
    kRequest,   // waiting for the CONNECT request
    kDone,      // the target is known; the caller answers with Reply()
    kFailed,    // the client was refused; close after sending |reply|
  };

  // The reply codes of RFC 1928 section 6 that mitmd sends.
  enum class ReplyCode : uint8_t {
    kSucceeded = 0x00,
    kGeneralFailure = 0x01,
    kNotAllowed = 0x02,
    kHostUnreachable = 0x04,
    kCommandNotSupported = 0x07,
    kAddressTypeNotSupported = 0x08,
  };

  struct Step {
    size_t consumed = 0;     // bytes of the input used; the rest is not SOCKS (or not yet here)
    std::string reply;       // bytes to send to the client now
    std::optional<Socks5Target> target;  // set once, when the CONNECT request is complete
    std::string error;       // set when the client was refused (state kFailed): why, for a user
  };

  // |token| empty: no authentication (method 0). Otherwise username/password (method 2) with
  // |token| as the password; the username is not checked.
  explicit Socks5Handshake(std::string token) : token_(std::move(token)) {}

  // Feeds what the client has sent so far (all of it, from the first unconsumed byte). Bytes
  // past the CONNECT request belong to the tunnel and are not consumed.
  Step Feed(std::string_view in);

  State state() const { return state_; }
  // The username the client authenticated with (empty without authentication).
  const std::string& username() const { return username_; }
  // The reply to the CONNECT request, bound address 0.0.0.0:0.
  static std::string Reply(ReplyCode code);
  static std::string_view ToString(State state);

 private:
  Step Greeting(std::string_view in);
  Step Auth(std::string_view in);
  Step Request(std::string_view in);
  Step Refuse(size_t consumed, std::string reply, std::string error);

  const std::string token_;
  State state_ = State::kGreeting;
  std::string username_;
};

}  // namespace mitmd::proxy
