#pragma once
// The viewer's request gate, sans-I/O: it sees a connection's bytes before evhttp does, frames
// each HTTP/1 request head, and asks its owner whether a request that carries a body may be read
// at all. libevent 2.1's evhttp reads a whole body (up to its size limit) before any handler runs,
// so without the gate a cross-site page could make the viewer buffer hundreds of megabytes only to
// refuse them. A refused request gets its answer at once, before its body, and nothing after it on
// that connection is read into memory.
//
// The gate is stricter than evhttp so that both frame every request the same way: a body is
// framed by Content-Length only (Transfer-Encoding is refused with 411), duplicate or malformed
// lengths, folded header lines and methods other than GET, POST, PUT and DELETE are refused.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mitmd::web {

struct RequestHead {
  std::string_view method;
  std::string_view target;
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // views into the head
  uint64_t content_length = 0;

  // The first header named |name| (case-insensitive), or nullopt.
  std::optional<std::string_view> Find(std::string_view name) const;
};

struct Refusal {
  int status = 400;
  std::string message;
};

// The whole answer to a refused request: a JSON error, then the connection closes.
std::string RefusalResponse(const Refusal& refusal);

class RequestGate {
 public:
  // Called once per request head that announces a body; nullopt lets it through.
  using Decide = std::function<std::optional<Refusal>(const RequestHead&)>;

  enum class State { kHead, kBody, kRefused };
  static std::string_view ToString(State s);

  struct Step {
    enum class Kind { kNeedMore, kPass, kRefuse } kind = Kind::kNeedMore;
    size_t bytes = 0;  // kPass: how many bytes of the input may go on to evhttp
    Refusal refusal;   // kRefuse
  };

  explicit RequestGate(Decide decide, size_t max_head = 64 * 1024)
      : decide_(std::move(decide)), max_head_(max_head) {}

  // |available|: bytes received and not yet passed on. |front|: their first bytes, at least
  // min(available, max_head() + 2) of them (the body state needs none). Returns what to do with
  // the front of the input; after kPass the caller passes those bytes and asks again. After
  // kRefuse the gate stays refused: the caller answers with RefusalResponse and discards the rest.
  Step Next(std::string_view front, size_t available);

  size_t max_head() const { return max_head_; }
  State state() const { return state_; }

 private:
  Step Refuse(int status, std::string message);
  Step OnHead(std::string_view head);

  Decide decide_;
  size_t max_head_;
  State state_ = State::kHead;
  uint64_t body_left_ = 0;
};

}  // namespace mitmd::web
