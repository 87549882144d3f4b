#include "http/h1_codec.h"

#include <charconv>
#include <optional>

#include "http/h1_writer.h"
#include "http/translate.h"

namespace mitmd::http {
namespace {
constexpr int kMaxIovecs = 16;

bool FinalCodingChunked(const HeaderList& headers) {
  bool chunked = false;
  for (const auto& [name, value] : headers) {
    if (!EqualsIgnoreCase(name, "Transfer-Encoding")) continue;
    ForEachListElement(value, [&](std::string_view coding) {
      chunked = EqualsIgnoreCase(coding, "chunked");
      return true;
    });
  }
  return chunked;
}

// A head forwarded unchanged goes out as its exact bytes, written from where they are (EncodeHead
// would return a copy of them); any other is encoded.
template <typename Message>
void WriteHead(ByteSink& out, const Message& m) {
  if (!m.raw.empty()) {
    out.Write(m.raw);
  } else {
    out.Write(EncodeHead(m));
  }
}

// "1a\r\n": the line that opens a chunk of |size| bytes.
std::string ChunkSizeLine(size_t size) {
  char line[24];
  char* end = std::to_chars(line, line + sizeof(line) - 2, size, 16).ptr;
  *end++ = '\r';
  *end++ = '\n';
  return std::string(line, end);
}

}  // namespace

std::string_view ToString(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp1: return "http/1.1";
    case Protocol::kHttp2: return "h2";
  }
  return "unknown";
}

// Parser events of one Receive call, turned into codec events by stream.
class H1Codec::Adapter : public ParserEvents {
 public:
  Adapter(H1Codec& codec, CodecEvents& events) : c_(codec), ev_(events) {}

  void OnRequestHead(const RequestHead& head, std::string_view raw) override {
    c_.current_ = c_.next_id_++;
    c_.head_request_ = EqualsIgnoreCase(head.method, "HEAD");
    ev_.OnHead(c_.current_, Request{head, std::string(raw)});
  }
  void OnResponseHead(const ResponseHead& head, std::string_view raw) override {
    c_.current_ = c_.expected_.empty() ? 0 : c_.expected_.front();
    ev_.OnHead(c_.current_, Response{head, std::string(raw)});
  }
  void OnBodyRaw(std::string_view raw) override { ev_.OnBodyRaw(c_.current_, raw); }
  void OnBodyData(std::string_view data) override { ev_.OnData(c_.current_, data); }
  void OnTrailers(const HeaderList& trailers) override { ev_.OnTrailers(c_.current_, trailers); }
  void OnMessageComplete() override {
    if (c_.side_ == Side::kServer) {
      c_.paused_ = true;
    } else if (!c_.expected_.empty()) {
      c_.expected_.pop_front();
    }
    ev_.OnEnd(c_.current_);
  }

 private:
  H1Codec& c_;
  CodecEvents& ev_;
};

H1Codec::H1Codec(Side side, ByteSink& out)
    : side_(side),
      out_(out),
      parser_(side == Side::kServer ? Parser::Kind::kRequest : Parser::Kind::kResponse) {}

Status H1Codec::Receive(evbuffer* in, CodecEvents& events) {
  Adapter adapter(*this, events);
  auto going = [&] { return !paused_ && events.Receiving() && !parser_.upgraded(); };
  while (going() && evbuffer_get_length(in) > 0) {
    evbuffer_iovec vec[kMaxIovecs];
    int n = evbuffer_peek(in, -1, nullptr, vec, kMaxIovecs);
    size_t consumed = 0;
    bool stopped = false;
    for (int i = 0; i < n && i < kMaxIovecs; ++i) {
      std::string_view chunk(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len);
      auto used = parser_.Feed(chunk, adapter);
      if (!used) {
        evbuffer_drain(in, consumed);
        return std::unexpected(used.error());
      }
      consumed += *used;
      if (*used < chunk.size() || !going()) {
        stopped = true;
        break;
      }
    }
    evbuffer_drain(in, consumed);
    if (stopped) break;
  }
  return {};
}

Status H1Codec::ReceiveEof(CodecEvents& events) {
  Adapter adapter(*this, events);
  return parser_.FeedEof(adapter);
}

void H1Codec::StartOutgoing(const HeaderList& headers, bool bodyless) {
  if (bodyless) {
    out_framing_ = OutFraming::kNone;
  } else {
    out_framing_ = FinalCodingChunked(headers) ? OutFraming::kChunked : OutFraming::kAsIs;
  }
}

void H1Codec::SendHead(StreamId id, const Request& h2_or_h1) {
  // A head from an HTTP/2 peer is translated (pseudo-headers to the request line and Host);
  // a body of unknown length is then sent chunked.
  std::optional<Request> translated;
  if (HasPseudoHeaders(h2_or_h1.head.headers)) {
    const RequestHead& h = h2_or_h1.head;
    bool body = FindHeader(h.headers, "content-length")
                    ? *FindHeader(h.headers, "content-length") != "0"
                    : !(h.method == "GET" || h.method == "HEAD" || h.method == "DELETE" ||
                        h.method == "OPTIONS" || h.method == "TRACE");
    if (auto h1 = ToH1Request(h, body)) translated = std::move(h1->request);
  }
  const Request& request = translated ? *translated : h2_or_h1;
  if (side_ == Side::kClient) {
    parser_.ExpectResponseTo(request.head.method);
    expected_.push_back(id);
  }
  StartOutgoing(request.head.headers, false);
  WriteHead(out_, request);
}

void H1Codec::SendHead(StreamId, const Response& h2_or_h1) {
  std::optional<Response> translated;
  if (HasPseudoHeaders(h2_or_h1.head.headers)) {
    if (auto h1 = ToH1Response(h2_or_h1.head, /*has_body=*/true, head_request_)) {
      translated = std::move(h1->response);
    }
  }
  const Response& response = translated ? *translated : h2_or_h1;
  int status = response.head.status;
  if (status >= 200 || status == 101) {  // an interim response leaves the final one to come
    StartOutgoing(response.head.headers,
                  head_request_ || status == 101 || status == 204 || status == 304);
  }
  WriteHead(out_, response);
}

void H1Codec::SendBodyRaw(StreamId, std::string_view raw) { out_.Write(raw); }

void H1Codec::SendData(StreamId, std::string_view data) {
  if (data.empty()) return;  // an empty chunk would end a chunked body
  switch (out_framing_) {
    case OutFraming::kNone:
      return;  // HEAD, 204, 304: the message has no body on the wire
    case OutFraming::kChunked:
      out_.Write(ChunkSizeLine(data.size()));
      out_.Write(data);
      out_.Write("\r\n");
      return;
    case OutFraming::kAsIs:
      out_.Write(data);
      return;
  }
}

void H1Codec::SendTrailers(StreamId id, const HeaderList& trailers) {
  if (out_framing_ != OutFraming::kChunked) {
    SendEnd(id);
    return;
  }
  std::string end = "0\r\n";
  AppendHeaderLines(end, trailers);
  end += "\r\n";
  out_.Write(end);
  out_framing_ = OutFraming::kNone;
}

void H1Codec::SendEnd(StreamId) {
  if (out_framing_ == OutFraming::kChunked) out_.Write("0\r\n\r\n");
  out_framing_ = OutFraming::kNone;
}

bool H1Codec::Reset(StreamId, uint32_t) { return false; }

bool H1Codec::Writable(StreamId) const { return out_.output_pending() <= kHighWater; }

}  // namespace mitmd::http
