#pragma once
// WsFrameReader: reads one direction of a WebSocket connection (RFC 6455), sans-I/O, for the
// record only: the bytes themselves are relayed untouched by whoever feeds them here. Bytes
// in, whole messages out: fragments are joined, control frames (ping, pong, close) come out
// as they arrive, client frames are unmasked, and with permessage-deflate (RFC 7692) a
// compressed message is inflated for viewing.
//
// Memory is bounded whatever the peer sends: a message keeps at most |record_cap| bytes of its
// payload (the rest is counted, and the message says it was truncated), and inflating keeps no
// more than that either, however large the message expands.

#include <zlib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace mitmd::http {

enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

struct WsMessage {
  WsOpcode opcode = WsOpcode::kText;
  uint64_t size = 0;        // payload bytes (inflated when compressed), all of them
  std::string payload;      // the first |record_cap| bytes of it
  bool truncated = false;   // payload holds less than size
  bool compressed = false;  // sent with permessage-deflate
  // Close frames: the status code (when the frame has one) and the reason.
  std::optional<uint16_t> close_code;
  std::string close_reason;
};

// The permessage-deflate parameters a 101 response agreed to (Sec-WebSocket-Extensions).
struct WsDeflate {
  bool enabled = false;
  bool no_context_takeover = false;  // for the direction being read
  int window_bits = 15;
};
// Parses the extensions header of a 101 response for |from_client| frames.
WsDeflate ParseWsDeflate(std::string_view extensions, bool from_client);

class WsFrameReader {
 public:
  using OnMessage = std::function<void(WsMessage&&)>;
  static constexpr uint64_t kMaxControlPayload = 125;

  // |from_client|: the frames must be masked (client to server) or must not be.
  WsFrameReader(bool from_client, WsDeflate deflate, size_t record_cap, OnMessage on_message);
  ~WsFrameReader();
  WsFrameReader(const WsFrameReader&) = delete;
  WsFrameReader& operator=(const WsFrameReader&) = delete;

  // Reads |data|, calling on_message for each complete message. A protocol violation is an
  // Error naming it; the reader then stays failed (the relay goes on, unrecorded).
  Status Feed(std::string_view data);
  bool failed() const { return failed_; }
  // A close frame was read: nothing more should follow in this direction.
  bool closed() const { return closed_; }

 private:
  enum class State { kHeader, kPayload, kFailed };
  Status FinishHeader();
  void Payload(std::string_view data);
  Status EndFrame();
  void Append(WsMessage& m, std::string_view data);
  void Inflate(std::string_view data, bool finish);
  Status Failure(std::string message);

  const bool from_client_;
  const WsDeflate deflate_;
  const size_t record_cap_;
  OnMessage on_message_;
  State state_ = State::kHeader;
  std::string header_;  // the frame header being read (2 to 14 bytes)
  bool fin_ = false;
  uint8_t opcode_ = 0;
  bool rsv1_ = false;
  bool masked_ = false;
  uint8_t mask_[4] = {};
  uint64_t remaining_ = 0;  // payload bytes of the frame still to come
  uint64_t mask_pos_ = 0;
  // The data message being assembled (fragments), and the control frame being read.
  std::optional<WsMessage> message_;
  WsMessage control_;
  bool failed_ = false;
  bool closed_ = false;
  std::unique_ptr<z_stream> inflater_;
};

}  // namespace mitmd::http
