#pragma once
// The client side of SOCKS5 (RFC 1928, username/password RFC 1929), sans-I/O: mitmd opening a
// connection through a SOCKS5 next proxy (--mode upstream:socks5://[USER:PASS@]HOST:PORT).
// The target goes by name (as socks5h: the next proxy resolves it), IP literals as addresses.
// Bytes from the proxy in, bytes to send and the state out; every refusal is a message a user
// can act on.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace mitmd::proxy {

class Socks5Client {
 public:
  enum class State {
    kGreeting,  // sent the methods, waiting for the proxy's choice
    kAuth,      // sent username/password, waiting for the verdict
    kConnect,   // sent CONNECT, waiting for the reply
    kOpen,      // the tunnel is open: further bytes belong to the target
    kFailed,
  };
  static std::string_view ToString(State state);

  struct Step {
    size_t consumed = 0;  // bytes of the input used; past kOpen nothing more is consumed
    std::string send;     // bytes to send to the proxy now
  };

  // |user| and |password| empty: no authentication offered. Each is at most 255 bytes (the
  // caller checks: ParseProxyMode does).
  Socks5Client(std::string host, uint16_t port, std::string user, std::string password);

  // The greeting: what to send first.
  std::string Start();
  // Feeds what the proxy has sent so far (from the first unconsumed byte). An error (state
  // kFailed) says what the proxy answered.
  Result<Step> Feed(std::string_view in);

  State state() const { return state_; }

 private:
  Result<Step> Fail(std::string message);
  std::string ConnectRequest() const;

  std::string host_;
  uint16_t port_;
  std::string user_;
  std::string password_;
  State state_ = State::kGreeting;
};

}  // namespace mitmd::proxy
