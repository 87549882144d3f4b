// Fuzzes the HTTP/2 codec glue. The first input byte chooses the side (bit 0: a client-side
// codec that opened streams 1 and 3, else a server-side one), how the rest is cut into Receive
// calls, and how the events are answered (responses, data, trailers, resets, consumption).
// Besides the sanitizers' checks it aborts when a contract breaks: a stream buffers more
// unconsumed bytes than its advertised window, data arrives for a stream without a head, or a
// stream ends twice.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "http/h2_codec.h"

namespace {

using mitmd::http::H2Codec;
using mitmd::http::StreamId;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "h2_codec_fuzz: invariant broken: %s\n", what);
  std::abort();
}

class Sink : public mitmd::http::ByteSink {
 public:
  void Write(std::string_view data) override { written_ += data.size(); }
  size_t output_pending() const override { return 0; }

 private:
  size_t written_ = 0;
};

class Driver : public mitmd::http::CodecEvents {
 public:
  Driver(H2Codec& codec, uint8_t control) : codec_(codec), control_(control) {}

  void OnHead(StreamId id, mitmd::http::Request&& request) override {
    if (request.head.method.empty()) Die("request without a method");
    heads_[id] = true;
    Act(id);
  }
  void OnHead(StreamId id, mitmd::http::Response&&) override { heads_[id] = true; }
  void OnData(StreamId id, std::string_view data) override {
    if (!heads_[id]) Die("data before a head");
    if (codec_.unconsumed(id) > H2Codec::kStreamWindow) Die("stream window exceeded");
    if (control_ & 0x10) codec_.Consume(id, data.size());
  }
  void OnEnd(StreamId id) override {
    if (ended_[id]) Die("stream ended twice");
    ended_[id] = true;
    Act(id);
  }
  void OnStreamReset(StreamId, uint32_t, const std::string& message) override {
    if (message.empty()) Die("reset without a message");
  }

 private:
  void Act(StreamId id) {
    switch ((control_ >> 5) & 3) {
      case 0: {
        mitmd::http::Response ok;
        ok.head.status = 200;
        ok.head.headers = {{":status", "200"}};
        codec_.SendResponse(id, ok, false);
        codec_.SendData(id, std::string(70000, 'x'));
        codec_.SendTrailers(id, {{"grpc-status", "0"}});
        break;
      }
      case 1: codec_.Reset(id, mitmd::http::kResetCancel); break;
      case 2: codec_.Shutdown(); break;
      default: break;
    }
  }

  H2Codec& codec_;
  uint8_t control_;
  std::map<StreamId, bool> heads_;
  std::map<StreamId, bool> ended_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t control = data[0];
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Sink sink;
  bool client = control & 1;
  H2Codec codec(client ? H2Codec::Side::kClient : H2Codec::Side::kServer, sink);
  Driver driver(codec, control);
  if (client) {
    mitmd::http::Request get;
    get.head.method = "GET";
    get.head.target = "/";
    get.head.headers = {{"host", "a.test"}};
    (void)codec.OpenStream(1, get, true);
    codec.SendHead(3, get);
  }
  evbuffer* in = evbuffer_new();
  uint32_t state = control * 2654435761u + 1;
  size_t pos = 0;
  while (pos < input.size()) {
    state = state * 1103515245u + 12345u;
    size_t piece = (control & 0x08) ? input.size() : 1 + (state >> 16) % 64;
    std::string_view chunk = input.substr(pos, piece);
    pos += chunk.size();
    evbuffer_add(in, chunk.data(), chunk.size());
    if (!codec.Receive(in, driver)) break;
  }
  (void)codec.ReceiveEof(driver);
  evbuffer_free(in);
  return 0;
}
