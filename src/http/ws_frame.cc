#include "http/ws_frame.h"

#include <algorithm>
#include <cstring>

#include "core/strings.h"
#include "http/headers.h"

namespace mitmd::http {
namespace {

// Inflated bytes are produced this many at a time.
constexpr size_t kInflateChunk = 16 * 1024;
// RFC 7692 section 7.2.2: the tail each compressed message was stripped of.
constexpr unsigned char kDeflateTail[] = {0x00, 0x00, 0xff, 0xff};

bool IsControl(uint8_t opcode) { return opcode & 0x8; }

bool KnownOpcode(uint8_t opcode) {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA);
}

}  // namespace

WsDeflate ParseWsDeflate(std::string_view extensions, bool from_client) {
  WsDeflate out;
  // "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
  ForEachListElement(extensions, [&](std::string_view ext) {
    size_t semi = ext.find(';');
    if (!EqualsIgnoreCase(TrimOws(ext.substr(0, semi)), "permessage-deflate")) return true;
    out.enabled = true;
    std::string_view params = semi == std::string_view::npos ? "" : ext.substr(semi + 1);
    std::string_view mine = from_client ? "client_" : "server_";
    while (!params.empty()) {
      size_t next = params.find(';');
      std::string_view p = TrimOws(params.substr(0, next));
      params = next == std::string_view::npos ? "" : params.substr(next + 1);
      if (!p.starts_with(mine)) continue;
      p.remove_prefix(mine.size());
      if (p == "no_context_takeover") out.no_context_takeover = true;
      if (p.starts_with("max_window_bits=")) {
        int bits = 0;
        for (char c : p.substr(16)) {
          if (c >= '0' && c <= '9') bits = bits * 10 + (c - '0');
        }
        if (bits >= 8 && bits <= 15) out.window_bits = bits;
      }
    }
    return false;
  });
  return out;
}

WsFrameReader::WsFrameReader(bool from_client, WsDeflate deflate, size_t record_cap,
                             OnMessage on_message)
    : from_client_(from_client),
      deflate_(deflate),
      record_cap_(record_cap),
      on_message_(std::move(on_message)) {}

WsFrameReader::~WsFrameReader() {
  if (inflater_) inflateEnd(inflater_.get());
}

Status WsFrameReader::Failure(std::string message) {
  state_ = State::kFailed;
  failed_ = true;
  message_.reset();
  return Fail(std::move(message));
}

Status WsFrameReader::Feed(std::string_view data) {
  while (!data.empty()) {
    switch (state_) {
      case State::kFailed:
        return Fail("the WebSocket stream could not be read earlier");
      case State::kHeader: {
        // Two bytes tell how long the header is; read up to that.
        size_t want = 2;
        if (header_.size() >= 2) {
          uint8_t len7 = header_[1] & 0x7f;
          want += (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0);
        }
        size_t take = std::min(want - header_.size(), data.size());
        header_.append(data.substr(0, take));
        data.remove_prefix(take);
        if (header_.size() < want) break;
        if (want == 2 && ((header_[1] & 0x7f) >= 126 || (header_[1] & 0x80))) break;  // longer
        if (Status st = FinishHeader(); !st) return st;
        break;
      }
      case State::kPayload: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
        Payload(data.substr(0, take));
        data.remove_prefix(take);
        remaining_ -= take;
        if (remaining_ == 0) {
          if (Status st = EndFrame(); !st) return st;
        }
        break;
      }
    }
  }
  return {};
}

Status WsFrameReader::FinishHeader() {
  const auto* h = reinterpret_cast<const uint8_t*>(header_.data());
  fin_ = h[0] & 0x80;
  rsv1_ = h[0] & 0x40;
  opcode_ = h[0] & 0x0f;
  masked_ = h[1] & 0x80;
  uint64_t len = h[1] & 0x7f;
  size_t at = 2;
  if (len == 126) {
    len = (uint64_t{h[2]} << 8) | h[3];
    at = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | h[2 + i];
    at = 10;
    if (len >> 63) return Failure("WebSocket frame length has its most significant bit set");
  }
  if (masked_) std::memcpy(mask_, h + at, 4);
  header_.clear();

  if (!KnownOpcode(opcode_)) return Failure(StrCat("WebSocket frame with reserved opcode ", opcode_));
  if ((h[0] & 0x30) != 0 || (rsv1_ && (!deflate_.enabled || IsControl(opcode_) ||
                                       opcode_ == 0))) {
    return Failure("WebSocket frame with reserved bits set that no extension allows");
  }
  if (masked_ != from_client_) {
    return Failure(from_client_ ? "WebSocket frame from the client is not masked"
                                : "WebSocket frame from the server is masked");
  }
  if (IsControl(opcode_)) {
    if (!fin_) return Failure("fragmented WebSocket control frame");
    if (len > kMaxControlPayload) return Failure("WebSocket control frame longer than 125 bytes");
    control_ = WsMessage{};
    control_.opcode = static_cast<WsOpcode>(opcode_);
  } else if (opcode_ == 0) {
    if (!message_) return Failure("WebSocket continuation frame without a message to continue");
  } else {
    if (message_) return Failure("new WebSocket message before the previous one was finished");
    message_.emplace();
    message_->opcode = static_cast<WsOpcode>(opcode_);
    message_->compressed = rsv1_;
  }
  remaining_ = len;
  mask_pos_ = 0;
  state_ = State::kPayload;
  if (len == 0) return EndFrame();
  return {};
}

void WsFrameReader::Append(WsMessage& m, std::string_view data) {
  m.size += data.size();
  size_t room = record_cap_ > m.payload.size() ? record_cap_ - m.payload.size() : 0;
  m.payload.append(data.substr(0, room));
  if (data.size() > room) m.truncated = true;
}

void WsFrameReader::Payload(std::string_view data) {
  std::string unmasked;
  if (masked_) {
    unmasked.assign(data);
    for (char& c : unmasked) c = static_cast<char>(c ^ mask_[mask_pos_++ & 3]);
    data = unmasked;
  }
  if (IsControl(opcode_)) {
    Append(control_, data);
  } else if (message_->compressed) {
    Inflate(data, false);
  } else {
    Append(*message_, data);
  }
}

void WsFrameReader::Inflate(std::string_view data, bool finish) {
  if (!inflater_) {
    inflater_ = std::make_unique<z_stream>();
    std::memset(inflater_.get(), 0, sizeof(z_stream));
    if (inflateInit2(inflater_.get(), -deflate_.window_bits) != Z_OK) {
      inflater_.reset();
      message_->truncated = true;
      return;
    }
  }
  z_stream* z = inflater_.get();
  z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z->avail_in = static_cast<uInt>(data.size());
  unsigned char out[kInflateChunk];
  // Everything is inflated even past the cap: the next message's window depends on it.
  while (true) {
    z->next_out = out;
    z->avail_out = sizeof out;
    int rc = inflate(z, Z_SYNC_FLUSH);
    size_t produced = sizeof out - z->avail_out;
    if (produced > 0) Append(*message_, std::string_view(reinterpret_cast<char*>(out), produced));
    if (rc == Z_STREAM_END || (rc != Z_OK && rc != Z_BUF_ERROR)) {
      if (rc != Z_STREAM_END) message_->truncated = true;  // not inflatable: shown as far as it went
      inflateReset(z);
      break;
    }
    if (z->avail_in == 0 && z->avail_out != 0) break;
  }
  if (finish && deflate_.no_context_takeover) inflateReset(z);
}

Status WsFrameReader::EndFrame() {
  state_ = State::kHeader;
  if (IsControl(opcode_)) {
    if (control_.opcode == WsOpcode::kClose) {
      closed_ = true;
      if (control_.size == 1) return Failure("WebSocket close frame with a 1-byte payload");
      if (control_.size >= 2) {
        const auto* p = reinterpret_cast<const uint8_t*>(control_.payload.data());
        control_.close_code = static_cast<uint16_t>((p[0] << 8) | p[1]);
        control_.close_reason = control_.payload.substr(2);
      }
    }
    on_message_(std::move(control_));
    control_ = WsMessage{};
    return {};
  }
  if (!fin_) return {};
  if (message_->compressed) {
    Inflate(std::string_view(reinterpret_cast<const char*>(kDeflateTail), sizeof kDeflateTail),
            /*finish=*/true);
  }
  WsMessage done = std::move(*message_);
  message_.reset();
  on_message_(std::move(done));
  return {};
}

}  // namespace mitmd::http
