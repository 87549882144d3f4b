#include "http/h2_codec.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/strings.h"
#include "http/status.h"
#include "http/translate.h"

namespace mitmd::http {
namespace {
constexpr int kMaxIovecs = 16;

std::vector<nghttp2_nv> ToNv(const HeaderList& headers) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                  value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

// Field names on HTTP/2 are lower case (RFC 9113 section 8.2.1).
HeaderList Lowered(HeaderList headers) {
  for (auto& [name, value] : headers) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  return headers;
}

int ParseStatus(const HeaderList& headers) {
  const std::string* s = PseudoHeader(headers, ":status");
  if (!s || s->size() != 3) return 0;
  int status = 0;
  for (char c : *s) {
    if (c < '0' || c > '9') return 0;
    status = status * 10 + (c - '0');
  }
  return status;
}

}  // namespace

std::string_view H2ErrorName(uint32_t code) {
  switch (code) {
    case NGHTTP2_NO_ERROR: return "NO_ERROR";
    case NGHTTP2_PROTOCOL_ERROR: return "PROTOCOL_ERROR";
    case NGHTTP2_INTERNAL_ERROR: return "INTERNAL_ERROR";
    case NGHTTP2_FLOW_CONTROL_ERROR: return "FLOW_CONTROL_ERROR";
    case NGHTTP2_SETTINGS_TIMEOUT: return "SETTINGS_TIMEOUT";
    case NGHTTP2_STREAM_CLOSED: return "STREAM_CLOSED";
    case NGHTTP2_FRAME_SIZE_ERROR: return "FRAME_SIZE_ERROR";
    case NGHTTP2_REFUSED_STREAM: return "REFUSED_STREAM";
    case NGHTTP2_CANCEL: return "CANCEL";
    case NGHTTP2_COMPRESSION_ERROR: return "COMPRESSION_ERROR";
    case NGHTTP2_CONNECT_ERROR: return "CONNECT_ERROR";
    case NGHTTP2_ENHANCE_YOUR_CALM: return "ENHANCE_YOUR_CALM";
    case NGHTTP2_INADEQUATE_SECURITY: return "INADEQUATE_SECURITY";
    case NGHTTP2_HTTP_1_1_REQUIRED: return "HTTP_1_1_REQUIRED";
  }
  return "UNKNOWN_ERROR";
}

struct H2Codec::Stream {
  StreamId name = 0;           // the caller's name for it
  HeaderList fields;           // the header block being received
  bool head_received = false;  // the final (non-1xx) head arrived: a later block is trailers
  bool remote_ended = false;
  size_t unconsumed = 0;
  // Sending.
  bool head_sent = false;
  bool submitted = false;  // the data source is attached
  bool deferred = false;   // the data source said "nothing yet"
  std::string out;         // bytes to send, not yet framed
  size_t out_pos = 0;
  bool end = false;        // END_STREAM after |out|
  std::optional<HeaderList> trailers;
  bool local_ended = false;
  bool reset_here = false;  // this side sent RST_STREAM
  std::optional<HeaderList> pending_head;  // a response head not submitted yet
  bool extended_connect = false;  // server side: the request was an RFC 8441 CONNECT
};

// nghttp2's callbacks, which see the codec through |user_data|.
struct H2Codec::Callbacks {
  static H2Codec& Of(void* user_data) { return *static_cast<H2Codec*>(user_data); }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    H2Codec& c = Of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto& slot = c.streams_[frame->hd.stream_id];
    if (!slot) {
      slot = std::make_unique<Stream>();
      slot->name = static_cast<StreamId>(frame->hd.stream_id);  // server side: the client's id
    }
    slot->fields.clear();
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* user_data) {
    H2Codec& c = Of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* s = c.FindWire(frame->hd.stream_id);
    if (!s) return 0;
    s->fields.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                           std::string(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    H2Codec& c = Of(user_data);
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        Stream* s = c.FindWire(frame->hd.stream_id);
        if (!s || !c.events_ || !c.events_->Receiving()) return 0;
        StreamId id = s->name;
        HeaderList fields = std::move(s->fields);
        s->fields.clear();
        if (end) s->remote_ended = true;
        if (s->head_received) {
          c.events_->OnTrailers(id, fields);
        } else if (c.side_ == Side::kServer) {
          s->head_received = true;
          Request request;
          request.head.version = std::string(kHttp2Version);
          const std::string* method = PseudoHeader(fields, ":method");
          const std::string* path = PseudoHeader(fields, ":path");
          const std::string* authority = PseudoHeader(fields, ":authority");
          if (method) request.head.method = *method;
          s->extended_connect = ExtendedConnectProtocol(fields) != nullptr;
          if (path) {
            request.head.target = *path;
          } else if (authority) {
            request.head.target = *authority;  // CONNECT
          }
          request.head.headers = std::move(fields);
          c.events_->OnHead(id, std::move(request));
        } else {
          Response response;
          response.head.version = std::string(kHttp2Version);
          response.head.status = ParseStatus(fields);
          response.head.reason = std::string(ReasonPhrase(response.head.status));
          response.head.headers = std::move(fields);
          if (!response.interim()) s->head_received = true;
          c.events_->OnHead(id, std::move(response));
        }
        if (end && c.events_->Receiving()) c.events_->OnEnd(id);
        return 0;
      }
      case NGHTTP2_DATA: {
        Stream* s = c.FindWire(frame->hd.stream_id);
        if (!end || !s) return 0;
        s->remote_ended = true;
        if (c.events_ && c.events_->Receiving()) c.events_->OnEnd(s->name);
        return 0;
      }
      case NGHTTP2_GOAWAY:
        c.goaway_received_ = true;
        return 0;
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) c.peer_settings_received_ = true;
        [[fallthrough]];
      case NGHTTP2_WINDOW_UPDATE:
        // A window opened: streams with queued bytes may move again.
        for (auto& [wire_id, s] : c.streams_) {
          if (s->submitted && s->deferred && (s->out_pos < s->out.size() || s->end)) {
            c.Resume(wire_id, *s);
          }
        }
        return 0;
      default:
        return 0;
    }
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                         const uint8_t* data, size_t len, void* user_data) {
    H2Codec& c = Of(user_data);
    // The connection window goes back at once; the stream's when its owner consumed.
    nghttp2_session_consume_connection(session, len);
    Stream* s = c.FindWire(stream_id);
    if (!s) return 0;
    s->unconsumed += len;
    if (!c.events_ || !c.events_->Receiving()) return 0;
    c.events_->OnData(s->name, std::string_view(reinterpret_cast<const char*>(data), len));
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t code, void* user_data) {
    H2Codec& c = Of(user_data);
    auto it = c.streams_.find(stream_id);
    if (it == c.streams_.end()) return 0;
    std::unique_ptr<Stream> s = std::move(it->second);
    c.streams_.erase(it);
    c.wire_ids_.erase(s->name);
    // Streams this side reset, or that closed after both ends were sent, tell nobody.
    if (code == NGHTTP2_NO_ERROR && s->remote_ended) return 0;
    if (s->reset_here || !c.events_ || !c.events_->Receiving()) return 0;
    std::string message =
        code == NGHTTP2_REFUSED_STREAM
            ? std::string("the stream was refused (REFUSED_STREAM)")
            : StrCat("the stream was reset (", H2ErrorName(code), ")");
    c.events_->OnStreamReset(s->name, code, message);
    return 0;
  }

  static ssize_t Read(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                      uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
    H2Codec& c = Of(user_data);
    Stream* s = c.FindWire(stream_id);
    if (!s) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    size_t n = std::min(length, s->out.size() - s->out_pos);
    std::memcpy(buf, s->out.data() + s->out_pos, n);
    s->out_pos += n;
    if (s->out_pos == s->out.size()) {
      s->out.clear();
      s->out_pos = 0;
      if (s->end) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        s->local_ended = true;
        if (s->trailers) {
          *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          std::vector<nghttp2_nv> nv = ToNv(*s->trailers);
          nghttp2_submit_trailer(c.session_, stream_id, nv.data(), nv.size());
        }
        return static_cast<ssize_t>(n);
      }
      if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    return static_cast<ssize_t>(n);
  }
};

H2Codec::H2Codec(Side side, ByteSink& out, std::string_view scheme)
    : side_(side), out_(out), scheme_(scheme) {
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, Callbacks::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, Callbacks::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, Callbacks::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, Callbacks::OnStreamClose);
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // Until the server's SETTINGS say otherwise, the limit RFC 9113 recommends at least.
  nghttp2_option_set_peer_max_concurrent_streams(opt, kMaxConcurrentStreams);
  if (side == Side::kServer) {
    nghttp2_session_server_new2(&session_, cbs, this, opt);
  } else {
    nghttp2_session_client_new2(&session_, cbs, this, opt);
  }
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);

  std::vector<nghttp2_settings_entry> settings = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
  };
  // A proxy never accepts pushed streams: the client would see resources it did not ask for.
  if (side == Side::kClient) settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  // RFC 8441: clients may open WebSockets as streams (extended CONNECT); mitmd relays them to
  // the server as an HTTP/1.1 Upgrade when the server does not take them over HTTP/2.
  if (side == Side::kServer) settings.push_back({NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1});
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
}

H2Codec::~H2Codec() { nghttp2_session_del(session_); }

H2Codec::Stream* H2Codec::FindWire(int32_t wire_id) {
  auto it = streams_.find(wire_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

int32_t H2Codec::WireId(StreamId id) const {
  if (side_ == Side::kServer) return static_cast<int32_t>(id);
  auto it = wire_ids_.find(id);
  return it == wire_ids_.end() ? 0 : it->second;
}

H2Codec::Stream* H2Codec::Find(StreamId id) {
  int32_t wire_id = WireId(id);
  return wire_id == 0 ? nullptr : FindWire(wire_id);
}

const H2Codec::Stream* H2Codec::Find(StreamId id) const {
  int32_t wire_id = WireId(id);
  if (wire_id == 0) return nullptr;
  auto it = streams_.find(wire_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

Status H2Codec::Receive(evbuffer* in, CodecEvents& events) {
  if (failed_) return Fail("the HTTP/2 connection failed earlier");
  events_ = &events;
  for (auto& [id, message] : std::exchange(refused_, {})) {
    if (events.Receiving()) events.OnStreamReset(id, kResetRefusedStream, message);
  }
  Status result;
  in_recv_ = true;  // frames go out once nghttp2 has returned (never from its callbacks)
  while (events.Receiving() && evbuffer_get_length(in) > 0) {
    evbuffer_iovec vec[kMaxIovecs];
    int n = evbuffer_peek(in, -1, nullptr, vec, kMaxIovecs);
    size_t consumed = 0;
    for (int i = 0; i < n && i < kMaxIovecs; ++i) {
      ssize_t used = nghttp2_session_mem_recv(
          session_, static_cast<const uint8_t*>(vec[i].iov_base), vec[i].iov_len);
      if (used < 0) {
        failed_ = true;
        result = Fail(StrCat("HTTP/2 protocol error: ", nghttp2_strerror(static_cast<int>(used))));
        break;
      }
      consumed += static_cast<size_t>(used);
      if (!events.Receiving()) break;
    }
    evbuffer_drain(in, consumed);
    if (!result) break;
  }
  in_recv_ = false;
  Flush();  // SETTINGS acks, PING answers, resets of broken streams, a protocol error's GOAWAY
  events_ = nullptr;
  return result;
}

Status H2Codec::ReceiveEof(CodecEvents& events) {
  std::vector<StreamId> open;
  for (const auto& [wire_id, s] : streams_) {
    if (!s->remote_ended) open.push_back(s->name);
  }
  for (auto& [id, message] : std::exchange(refused_, {})) open.push_back(id);
  for (StreamId id : open) {
    if (!events.Receiving()) break;
    events.OnStreamReset(id, kResetCancel, "the connection closed before the stream ended");
  }
  if (!open.empty()) return Fail("the HTTP/2 connection closed with streams still open");
  return {};
}

void H2Codec::SendHead(StreamId id, const Request& request) {
  if (Status st = OpenStream(id, request, false); !st) refused_.emplace_back(id, st.error().message);
}

void H2Codec::SendHead(StreamId id, const Response& response) { SendResponse(id, response, false); }

Status H2Codec::OpenStream(StreamId name, const Request& request, bool end_stream) {
  if (side_ != Side::kClient) return Fail("a server-side HTTP/2 codec cannot open streams");
  if (goaway_received_) return Fail("the server sent GOAWAY: no new streams on this connection");
  if (!CanOpenStream()) return Fail("the server's limit of concurrent streams is reached");
  if (wire_ids_.contains(name)) return Fail("a stream of that name is already open");
  HeaderList fields = HasPseudoHeaders(request.head.headers)
                          ? Lowered(request.head.headers)
                          : ToH2Request(request.head, scheme_);
  DropConnectionSpecific(fields);
  // RFC 8441: :protocol only once the server said it understands it. nghttp2 does not check a
  // request it sends, and a server that does not know :protocol takes a plain CONNECT.
  if (ExtendedConnectProtocol(fields) && !peer_allows_extended_connect()) {
    return Fail(peer_settings_received_
                    ? "the server's SETTINGS do not allow extended CONNECT (RFC 8441)"
                    : "the server's SETTINGS have not arrived: extended CONNECT may not be sent");
  }
  auto stream = std::make_unique<Stream>();
  stream->name = name;
  stream->head_sent = true;
  std::vector<nghttp2_nv> nv = ToNv(fields);
  int32_t id;
  if (end_stream) {
    stream->end = stream->local_ended = true;
    id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), nullptr, nullptr);
  } else {
    nghttp2_data_provider provider{};
    provider.read_callback = Callbacks::Read;
    stream->submitted = true;
    id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, nullptr);
  }
  if (id < 0) return Fail(StrCat("cannot open an HTTP/2 stream: ", nghttp2_strerror(id)));
  streams_[id] = std::move(stream);
  wire_ids_[name] = id;
  Flush();
  return {};
}

void H2Codec::SendResponse(StreamId id, const Response& response, bool end_stream) {
  Stream* s = Find(id);
  if (!s || s->local_ended) return;
  HeaderList fields;
  if (HasPseudoHeaders(response.head.headers)) {
    fields = Lowered(response.head.headers);
  } else if (s->extended_connect && response.head.status == 101) {
    // An HTTP/1.1 server switched protocols for an extended CONNECT: HTTP/2 says 200.
    fields = ExtendedConnectResponse(response.head);
  } else {
    fields = ToH2Response(response.head);
  }
  DropConnectionSpecific(fields);
  std::vector<nghttp2_nv> nv = ToNv(fields);
  if (response.interim()) {
    nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, WireId(id), nullptr, nv.data(),
                           nv.size(), nullptr);
  } else if (end_stream) {
    s->head_sent = s->end = s->local_ended = true;
    nghttp2_submit_response(session_, WireId(id), nv.data(), nv.size(), nullptr);
  } else if (on_deferred_) {
    // Held until the body, the end or the next loop turn: a response that ends at once goes
    // out as one HEADERS frame with END_STREAM (gRPC's trailers-only responses need that).
    s->pending_head = std::move(fields);
    on_deferred_();
    return;
  } else {
    SubmitHead(WireId(id), *s, std::move(fields));
  }
  Flush();
}

void H2Codec::SubmitHead(int32_t wire_id, Stream& s, HeaderList fields) {
  std::vector<nghttp2_nv> nv = ToNv(fields);
  s.head_sent = s.submitted = true;
  nghttp2_data_provider provider{};
  provider.read_callback = Callbacks::Read;
  nghttp2_submit_response(session_, wire_id, nv.data(), nv.size(), &provider);
}

void H2Codec::SubmitPendingHead(int32_t wire_id, Stream& s) {
  if (!s.pending_head) return;
  HeaderList fields = std::move(*s.pending_head);
  s.pending_head.reset();
  SubmitHead(wire_id, s, std::move(fields));
}

void H2Codec::SendData(StreamId id, std::string_view data) {
  Stream* s = Find(id);
  if (!s || s->end || data.empty()) return;
  s->out.append(data);
  SubmitPendingHead(WireId(id), *s);
  if (s->submitted) Resume(WireId(id), *s);
  Flush();
}

void H2Codec::SendEnd(StreamId id) {
  Stream* s = Find(id);
  if (!s || s->end) return;
  s->end = true;
  if (s->pending_head && s->out.empty()) {
    // No body: the head alone ends the stream. |nv| points into |fields|, which outlives the
    // submit (nghttp2 copies the fields).
    HeaderList fields = std::move(*s->pending_head);
    s->pending_head.reset();
    std::vector<nghttp2_nv> nv = ToNv(fields);
    s->head_sent = s->local_ended = true;
    nghttp2_submit_response(session_, WireId(id), nv.data(), nv.size(), nullptr);
  }
  SubmitPendingHead(WireId(id), *s);
  if (s->submitted) Resume(WireId(id), *s);
  Flush();
}

void H2Codec::SendTrailers(StreamId id, const HeaderList& trailers) {
  Stream* s = Find(id);
  if (!s || s->end) return;
  HeaderList fields = Lowered(trailers);
  DropConnectionSpecific(fields);
  s->trailers = std::move(fields);
  s->end = true;
  SubmitPendingHead(WireId(id), *s);
  if (s->submitted) Resume(WireId(id), *s);
  Flush();
}

void H2Codec::Resume(int32_t wire_id, Stream& s) {
  s.deferred = false;
  nghttp2_session_resume_data(session_, wire_id);
}

bool H2Codec::Reset(StreamId id, uint32_t code) {
  Stream* s = Find(id);
  if (!s) return true;  // already closed: nothing more goes on it
  s->reset_here = true;
  s->pending_head.reset();
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, WireId(id), code);
  Flush();
  return true;
}

void H2Codec::Consume(StreamId id, size_t n) {
  Stream* s = Find(id);
  if (!s || n == 0) return;
  n = std::min(n, s->unconsumed);
  s->unconsumed -= n;
  nghttp2_session_consume_stream(session_, WireId(id), n);
  Flush();
}

void H2Codec::Shutdown(uint32_t code) {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), code, nullptr, 0);
  Flush();
}

void H2Codec::Flush() {
  if (flushing_ || in_recv_) return;  // inside nghttp2: the caller flushes once it returns
  for (auto& [wire_id, s] : streams_) SubmitPendingHead(wire_id, *s);
  flushing_ = true;
  while (out_.output_pending() < kOutputHighWater) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      failed_ = true;
      break;
    }
    if (n == 0) break;
    out_.Write(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
  }
  flushing_ = false;
}

bool H2Codec::Writable(StreamId id) const {
  const Stream* s = Find(id);
  if (!s) return false;
  return s->out.size() - s->out_pos < kStreamHighWater && out_.output_pending() < kOutputHighWater;
}

bool H2Codec::CanOpenStream() const {
  if (goaway_received_ || failed_) return false;
  uint32_t limit =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return streams_.size() < limit && nghttp2_session_get_next_stream_id(session_) < (1u << 31);
}

uint32_t H2Codec::peer_max_streams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool H2Codec::peer_allows_extended_connect() const {
  return nghttp2_session_get_remote_settings(session_,
                                             NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1;
}

bool H2Codec::keep_alive() const { return !goaway_received_ && !failed_; }

bool H2Codec::RemoteEnded(StreamId id) const {
  const Stream* s = Find(id);
  return !s || s->remote_ended;
}

bool H2Codec::done() const {
  return failed_ || (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_));
}

size_t H2Codec::unconsumed(StreamId id) const {
  const Stream* s = Find(id);
  return s ? s->unconsumed : 0;
}

size_t H2Codec::queued(StreamId id) const {
  const Stream* s = Find(id);
  return s ? s->out.size() - s->out_pos : 0;
}

}  // namespace mitmd::http
