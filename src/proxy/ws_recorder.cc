#include "proxy/ws_recorder.h"

#include <algorithm>

#include "core/strings.h"

namespace mitmd::proxy {
namespace {

// A message keeps this much of its payload when the flow has no body cap set.
constexpr size_t kDefaultMessageCap = 64 * 1024;

size_t MessageCap(const Flow& flow) {
  return flow.body_record_cap > 0 ? flow.body_record_cap : kDefaultMessageCap;
}

std::string_view OpcodeName(http::WsOpcode opcode) {
  switch (opcode) {
    case http::WsOpcode::kText: return "text";
    case http::WsOpcode::kBinary: return "binary";
    case http::WsOpcode::kClose: return "close";
    case http::WsOpcode::kPing: return "ping";
    case http::WsOpcode::kPong: return "pong";
    case http::WsOpcode::kContinuation: return "continuation";
  }
  return "unknown";
}

std::string_view ExtensionsOf(const HeaderList& headers) {
  const std::string* ext = FindHeader(headers, "Sec-WebSocket-Extensions");
  return ext ? std::string_view(*ext) : std::string_view();
}

}  // namespace

bool WsRecorder::IsWebSocketUpgrade(const HeaderList& request_headers, int status,
                                    const HeaderList& response_headers) {
  return status == 101 && HeaderHasToken(request_headers, "Upgrade", "websocket") &&
         HeaderHasToken(response_headers, "Upgrade", "websocket");
}

WsRecorder::WsRecorder(Flow& flow, const HeaderList& response_headers,
                       std::function<double()> now)
    : flow_(flow),
      now_(std::move(now)),
      client_(true, http::ParseWsDeflate(ExtensionsOf(response_headers), true), MessageCap(flow),
              [this](http::WsMessage&& m) { Add(true, std::move(m)); }),
      server_(false, http::ParseWsDeflate(ExtensionsOf(response_headers), false),
              MessageCap(flow), [this](http::WsMessage&& m) { Add(false, std::move(m)); }) {
  flow_.websocket.emplace();
}

bool WsRecorder::Feed(bool from_client, std::string_view bytes) {
  http::WsFrameReader& reader = from_client ? client_ : server_;
  added_ = false;
  if (reader.failed() || bytes.empty()) return false;
  if (Status st = reader.Feed(bytes); !st && flow_.websocket->error.empty()) {
    flow_.websocket->error =
        StrCat(from_client ? "client" : "server", " frames could not be read (",
               st.error().message, "); later messages are relayed but not recorded");
    added_ = true;
  }
  return added_;
}

void WsRecorder::Add(bool from_client, http::WsMessage&& m) {
  WebSocketRecord& ws = *flow_.websocket;
  added_ = true;
  if (m.opcode == http::WsOpcode::kClose && !ws.close) {
    ws.close = WebSocketClose{from_client, std::nullopt, m.close_reason};
    if (m.close_code) ws.close->code = *m.close_code;
  }
  size_t budget = MessageCap(flow_) * kMaxContentFactor;
  if (ws.messages.size() >= kMaxMessages || content_bytes_ >= budget) {
    ++ws.dropped;
    return;
  }
  WebSocketMessage& out = ws.messages.emplace_back();
  out.from_client = from_client;
  out.opcode = std::string(OpcodeName(m.opcode));
  out.time = now_();
  out.size = m.size;
  out.compressed = m.compressed;
  out.truncated = m.truncated;
  size_t keep = std::min(m.payload.size(), budget - content_bytes_);
  if (keep < m.payload.size()) {
    m.payload.resize(keep);
    out.truncated = true;
  }
  content_bytes_ += keep;
  out.content = std::move(m.payload);
}

}  // namespace mitmd::proxy
