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
};

// nghttp2's callbacks, which see the codec through |user_data|.
struct H2Codec::Callbacks {
  static H2Codec& Of(void* user_data) { return *static_cast<H2Codec*>(user_data); }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    H2Codec& c = Of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto& slot = c.streams_[frame->hd.stream_id];
    if (!slot) slot = std::make_unique<Stream>();
    slot->fields.clear();
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* user_data) {
    H2Codec& c = Of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* s = c.Find(frame->hd.stream_id);
    if (!s) return 0;
    s->fields.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                           std::string(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    H2Codec& c = Of(user_data);
    StreamId id = frame->hd.stream_id;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        Stream* s = c.Find(id);
        if (!s || !c.events_) return 0;
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
      case NGHTTP2_DATA:
        if (end && c.events_) {
          if (Stream* s = c.Find(id)) s->remote_ended = true;
          c.events_->OnEnd(id);
        }
        return 0;
      case NGHTTP2_GOAWAY:
        c.goaway_received_ = true;
        if (c.h2_events_) {
          c.h2_events_->OnGoaway(frame->goaway.last_stream_id, frame->goaway.error_code);
        }
        return 0;
      case NGHTTP2_WINDOW_UPDATE:
      case NGHTTP2_SETTINGS:
        // A window opened: streams with queued bytes may move again.
        for (auto& [sid, s] : c.streams_) {
          if (s->submitted && s->deferred && (s->out_pos < s->out.size() || s->end)) {
            c.Resume(sid, *s);
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
    Stream* s = c.Find(stream_id);
    if (!s) return 0;
    s->unconsumed += len;
    if (!c.events_) return 0;
    std::string_view chunk(reinterpret_cast<const char*>(data), len);
    c.events_->OnBodyRaw(stream_id, chunk);
    if (c.events_->Receiving()) c.events_->OnData(stream_id, chunk);
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t code, void* user_data) {
    H2Codec& c = Of(user_data);
    auto it = c.streams_.find(stream_id);
    if (it == c.streams_.end()) return 0;
    std::unique_ptr<Stream> s = std::move(it->second);
    c.streams_.erase(it);
    if ((code != NGHTTP2_NO_ERROR || !s->remote_ended) && c.h2_events_) {
      std::string message =
          code == NGHTTP2_REFUSED_STREAM
              ? std::string("the stream was refused (REFUSED_STREAM): it may be retried")
              : StrCat("the stream was reset (", H2ErrorName(code), ")");
      c.h2_events_->OnStreamReset(stream_id, code, message);
    }
    return 0;
  }

  static ssize_t Read(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                      uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
    H2Codec& c = Of(user_data);
    Stream* s = c.Find(stream_id);
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

H2Codec::H2Codec(Side side, ByteSink& out) : side_(side), out_(out) {
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
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
}

H2Codec::~H2Codec() { nghttp2_session_del(session_); }

H2Codec::Stream* H2Codec::Find(StreamId id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

const H2Codec::Stream* H2Codec::Find(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

Status H2Codec::Receive(evbuffer* in, CodecEvents& events) {
  if (failed_) return Fail("the HTTP/2 connection failed earlier");
  events_ = &events;
  h2_events_ = listener_ ? listener_ : dynamic_cast<H2Events*>(&events);
  Status result;
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
  Flush();  // SETTINGS acks, PING answers, resets of broken streams, a protocol error's GOAWAY
  events_ = nullptr;
  h2_events_ = listener_;
  return result;
}

Status H2Codec::ReceiveEof(CodecEvents& events) {
  H2Events* h2 = listener_ ? listener_ : dynamic_cast<H2Events*>(&events);
  std::vector<StreamId> open;
  for (const auto& [id, s] : streams_) {
    if (!s->remote_ended) open.push_back(id);
  }
  if (h2) {
    for (StreamId id : open) {
      h2->OnStreamReset(id, NGHTTP2_CANCEL, "the connection closed before the stream ended");
    }
  }
  if (!open.empty()) return Fail("the HTTP/2 connection closed with streams still open");
  return {};
}

void H2Codec::SendHead(StreamId id, const Request& request) {
  // A client-side stream is opened with OpenStream, which picks the id.
  (void)id;
  (void)OpenStream(request, false);
}

void H2Codec::SendHead(StreamId id, const Response& response) { SendResponse(id, response, false); }

Result<StreamId> H2Codec::OpenStream(const Request& request, bool end_stream) {
  if (side_ != Side::kClient) return Fail("a server-side HTTP/2 codec cannot open streams");
  if (goaway_received_) return Fail("the server sent GOAWAY: no new streams on this connection");
  if (!CanOpenStream()) return Fail("the server's limit of concurrent streams is reached");
  HeaderList fields = HasPseudoHeaders(request.head.headers)
                          ? Lowered(request.head.headers)
                          : ToH2Request(request.head, "https");
  DropConnectionSpecific(fields);
  auto stream = std::make_unique<Stream>();
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
  Flush();
  return static_cast<StreamId>(id);
}

void H2Codec::SendResponse(StreamId id, const Response& response, bool end_stream) {
  Stream* s = Find(id);
  if (!s || s->local_ended) return;
  HeaderList fields = HasPseudoHeaders(response.head.headers) ? Lowered(response.head.headers)
                                                              : ToH2Response(response.head);
  DropConnectionSpecific(fields);
  std::vector<nghttp2_nv> nv = ToNv(fields);
  if (response.interim()) {
    nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, nv.data(), nv.size(),
                           nullptr);
  } else if (end_stream) {
    s->head_sent = s->end = s->local_ended = true;
    nghttp2_submit_response(session_, id, nv.data(), nv.size(), nullptr);
  } else {
    s->head_sent = s->submitted = true;
    nghttp2_data_provider provider{};
    provider.read_callback = Callbacks::Read;
    nghttp2_submit_response(session_, id, nv.data(), nv.size(), &provider);
  }
  Flush();
}

void H2Codec::SendData(StreamId id, std::string_view data) {
  Stream* s = Find(id);
  if (!s || s->end || data.empty()) return;
  s->out.append(data);
  if (s->submitted) Resume(id, *s);
  Flush();
}

void H2Codec::SendEnd(StreamId id) {
  Stream* s = Find(id);
  if (!s || s->end) return;
  s->end = true;
  if (s->submitted) Resume(id, *s);
  Flush();
}

void H2Codec::SendTrailers(StreamId id, const HeaderList& trailers) {
  Stream* s = Find(id);
  if (!s || s->end) return;
  HeaderList fields = Lowered(trailers);
  DropConnectionSpecific(fields);
  s->trailers = std::move(fields);
  s->end = true;
  if (s->submitted) Resume(id, *s);
  Flush();
}

void H2Codec::Resume(StreamId id, Stream& s) {
  s.deferred = false;
  nghttp2_session_resume_data(session_, static_cast<int32_t>(id));
}

bool H2Codec::Reset(StreamId id, uint32_t code) {
  if (!Find(id)) return true;  // already closed
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, static_cast<int32_t>(id), code);
  Flush();
  return true;
}

void H2Codec::Consume(StreamId id, size_t n) {
  Stream* s = Find(id);
  if (!s || n == 0) return;
  n = std::min(n, s->unconsumed);
  s->unconsumed -= n;
  nghttp2_session_consume_stream(session_, static_cast<int32_t>(id), n);
  Flush();
}

void H2Codec::Shutdown(uint32_t code) {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), code, nullptr, 0);
  Flush();
}

void H2Codec::Flush() {
  if (flushing_) return;  // a callback inside mem_send asked again
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
