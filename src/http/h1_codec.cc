#include "http/h1_codec.h"

#include "http/h1_writer.h"

namespace mitmd::http {
namespace {
constexpr int kMaxIovecs = 16;
}  // namespace

// Parser events of one Receive call, turned into codec events by stream.
class H1Codec::Adapter : public ParserEvents {
 public:
  Adapter(H1Codec& codec, CodecEvents& events) : c_(codec), ev_(events) {}

  void OnRequestHead(const RequestHead& head, std::string_view raw) override {
    c_.current_ = c_.next_id_++;
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

void H1Codec::SendHead(StreamId id, const Request& request) {
  if (side_ == Side::kClient) {
    parser_.ExpectResponseTo(request.head.method);
    expected_.push_back(id);
  }
  out_.Write(EncodeHead(request));
}

void H1Codec::SendHead(StreamId, const Response& response) { out_.Write(EncodeHead(response)); }

void H1Codec::SendBodyRaw(StreamId, std::string_view raw) { out_.Write(raw); }

bool H1Codec::Writable(StreamId) const { return out_.output_pending() <= kHighWater; }

}  // namespace mitmd::http
