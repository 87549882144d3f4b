#pragma once
// WsRecorder: the messages of a WebSocket onto its flow, from the bytes a relay passes each
// way (they are relayed untouched; this only reads them). Bounded per flow: at most
// kMaxMessages messages and kMaxContentFactor times the body record cap of content; a message
// keeps at most the body record cap of its payload. What does not fit is counted in
// |dropped| (or the message says it was truncated), so the cap is visible.

#include <functional>

#include "flow/flow.h"
#include "http/ws_frame.h"

namespace mitmd::proxy {

class WsRecorder {
 public:
  static constexpr size_t kMaxMessages = 10000;
  static constexpr size_t kMaxContentFactor = 16;

  // |response_headers| are the 101's (they say whether permessage-deflate is on); |now| gives
  // each message its time.
  WsRecorder(Flow& flow, const HeaderList& response_headers, std::function<double()> now);

  // Reads |bytes| sent by the client (|from_client|) or the server. True when a message was
  // added to the flow (worth publishing).
  bool Feed(bool from_client, std::string_view bytes);
  // The upgrade request and response heads mean a WebSocket.
  static bool IsWebSocketUpgrade(const HeaderList& request_headers, int status,
                                 const HeaderList& response_headers);

 private:
  void Add(bool from_client, http::WsMessage&& message);

  Flow& flow_;
  std::function<double()> now_;
  http::WsFrameReader client_;
  http::WsFrameReader server_;
  size_t content_bytes_ = 0;
  bool added_ = false;
};

}  // namespace mitmd::proxy
