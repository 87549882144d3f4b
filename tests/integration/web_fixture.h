#pragma once
// An in-process viewer for API tests: a WebServer on its own event loop thread over a FlowStore
// the test records synthetic flows into, a real root CA and a connection registry. Requests go
// through curl (HTTP or HTTPS), event streams through a raw socket.

#include <event2/event.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ca/authority.h"
#include "core/log.h"
#include "flow/connection_registry.h"
#include "flow/flow_store.h"
#include "support/temp_dir.h"
#include "web/web_server.h"

namespace mitmd::testing {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last value wins
  std::string body;
  std::string error;  // curl's complaint when status is 0

  nlohmann::json Json() const;
};

class WebServerTest : public ::testing::Test {
 protected:
  WebServerTest();
  ~WebServerTest() override;

  // Starts the viewer with |options| (listen 127.0.0.1:0 unless set). ASSERT_NO_FATAL_FAILURE.
  void StartServer(web::WebOptions options = {});
  void StopServer();

  // Runs |fn| on the loop thread and waits for it.
  void OnLoop(std::function<void()> fn);

  std::string BaseUrl() const;  // "http://127.0.0.1:PORT" (https with TLS)
  HttpResult Fetch(const std::string& path, const std::vector<std::string>& curl_args = {});
  HttpResult Post(const std::string& path, const std::string& body,
                  const std::vector<std::string>& curl_args = {"-H", "X-Mitmd: 1"});

  // Records |flow| as the proxy would, from this (non-loop) thread.
  std::shared_ptr<const Flow> Record(Flow flow);
  // Polls /api/info until the viewer holds |n| flows (bounded).
  void WaitForFlowCount(size_t n);

  TempDir dir_;
  Logger log_;
  std::unique_ptr<ca::Authority> ca_;
  std::unique_ptr<FlowStore> store_;
  ConnectionRegistry conns_;
  event_base* base_ = nullptr;
  std::unique_ptr<web::WebServer> server_;
  std::thread loop_;
  uint16_t port_ = 0;
  bool tls_ = false;
};

// A client of /api/events over a raw loopback socket.
class EventStream {
 public:
  EventStream() = default;
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // Connects and sends the request for |path_and_query|. |receive_buffer| > 0 shrinks SO_RCVBUF
  // (for a viewer that reads slowly).
  bool Open(uint16_t port, const std::string& path_and_query, int receive_buffer = 0);
  // Reads until |text| has arrived (returns true) or |timeout| passes.
  bool WaitFor(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads what is available within |timeout|; false once the server closed the stream.
  bool ReadFor(std::chrono::milliseconds timeout);
  const std::string& received() const { return received_; }
  // Data of every "event: NAME" received so far, parsed.
  std::vector<nlohmann::json> Events(const std::string& name) const;

 private:
  int fd_ = -1;
  std::string received_;
};

}  // namespace mitmd::testing
