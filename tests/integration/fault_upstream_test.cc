// Upstreams and clients that fail mid-exchange. After each fault: mitmd's descriptors return to
// the baseline once the peers are gone, no socket is left in CLOSE_WAIT, the next request is
// served, and every finished flow is in the session log.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "core/strings.h"
#include "integration/proxy_fixture.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/scripted_upstream.h"

namespace mitmd::testing {
namespace {

using std::chrono::milliseconds;
using Step = ScriptStep;

class FaultTest : public ProxyTest {
 protected:
  void SetUp() override {
    healthy_ = StartUpstream(PlainUpstream());
    ASSERT_TRUE(healthy_);
    ASSERT_NO_FATAL_FAILURE(StartMitmd());
    // One request first, so lazily created state (the DNS base, caches) is in the baseline.
    ASSERT_NO_FATAL_FAILURE(ExpectServed("warm-up"));
    baseline_fds_ = WaitForFds(CountOpenFds(mitmd_.pid()) + 64);
  }

  ScriptedUpstream* Scripted(std::vector<Step> script) {
    scripted_.push_back(std::make_unique<ScriptedUpstream>(std::move(script)));
    EXPECT_TRUE(scripted_.back()->Start());
    return scripted_.back().get();
  }

  // Waits (up to 3 s: peers are gone at once here, but the machine may be busy) until mitmd holds at most |limit| descriptors; returns the last count.
  int WaitForFds(int limit) {
    int n = -1;
    for (int i = 0; i < 100; ++i) {
      n = CountOpenFds(mitmd_.pid());
      if (n <= limit) break;
      std::this_thread::sleep_for(milliseconds(30));
    }
    return n;
  }

  void ExpectServed(const std::string& when) {
    ProcessResult r = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}", healthy_->Url("/bytes/64")});
    EXPECT_EQ(r.out, "200") << when << ": " << r.err;
    ++served_;
  }

  // The checks every fault ends with.
  void ExpectRecovered(const std::string& when, size_t flows_expected) {
    EXPECT_LE(WaitForFds(baseline_fds_), baseline_fds_) << when << ": descriptors leaked";
    ExpectNoCloseWait(when);
    ExpectServed(when);
    auto flows = mitmd_.WaitForFlows(flows_expected + served_);
    EXPECT_EQ(flows.size(), flows_expected + served_) << when;
  }

  UpstreamServer* healthy_ = nullptr;
  std::vector<std::unique_ptr<ScriptedUpstream>> scripted_;
  int baseline_fds_ = 0;
  size_t served_ = 0;
};

TEST_F(FaultTest, RequestContentLengthPast2To64IsA400AndNeverForwarded) {
  ScriptedUpstream* up = Scripted({Step::Send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")});
  auto reply = RawExchange("127.0.0.1", mitmd_.port(),
                           StrCat("POST ", up->Url("/x"), " HTTP/1.1\r\nHost: 127.0.0.1:", up->port(),
                                  "\r\nContent-Length: 18446744073709551621\r\n\r\nhello"),
                           std::chrono::seconds(3));
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_TRUE(reply->data.starts_with("HTTP/1.1 400 ")) << reply->data.substr(0, 300);
  EXPECT_NE(reply->data.find("Content-Length"), std::string::npos);
  EXPECT_EQ(up->connections(), 0u);
  ExpectRecovered("huge request Content-Length", 1);
}

TEST_F(FaultTest, ResponseContentLengthPast2To64IsA502) {
  ScriptedUpstream* up = Scripted(
      {Step::Send("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551621\r\n\r\nhello"), Step::Close()});
  ProcessResult r = mitmd_.Curl({"-s", "-w", "\n%{http_code}", up->Url("/x")});
  EXPECT_TRUE(r.out.ends_with("\n502")) << r.out << r.err;
  EXPECT_NE(r.out.find("Content-Length"), std::string::npos) << r.out;
  ExpectRecovered("huge response Content-Length", 1);
}

TEST_F(FaultTest, UpstreamClosesBeforeTheHead) {
  ScriptedUpstream* up = Scripted({Step::Close()});
  ProcessResult r = mitmd_.Curl({"-s", "-o", "/dev/null", "-w", "%{http_code}", up->Url("/x")});
  EXPECT_EQ(r.out, "502") << r.err;
  ExpectRecovered("close before the head", 1);
}

TEST_F(FaultTest, UpstreamResetsMidResponse) {
  ScriptedUpstream* up = Scripted({Step::Send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
                                   Step::Send(std::string(100, 'a')), Step::Sleep(milliseconds(50)),
                                   Step::Reset()});
  ProcessResult r = mitmd_.Curl({"-s", "-o", "/dev/null", up->Url("/x")});
  EXPECT_NE(r.exit_code, 0) << "a cut body must not look complete";
  ExpectRecovered("reset mid-response", 1);
  auto flows = mitmd_.Flows();
  bool errored = false;
  for (const auto& f : flows) errored |= f.contains("error") && f.contains("response");
  EXPECT_TRUE(errored) << "the cut response is recorded with an error";
}

TEST_F(FaultTest, TruncatedChunkedBody) {
  ScriptedUpstream* up = Scripted(
      {Step::Send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab"),
       Step::Sleep(milliseconds(50)), Step::Close()});
  ProcessResult r = mitmd_.Curl({"-s", "-o", "/dev/null", up->Url("/x")});
  EXPECT_NE(r.exit_code, 0) << "curl must see the chunked body end early";
  ExpectRecovered("truncated chunked body", 1);
}

TEST_F(FaultTest, StallingUpstreamAndAClientThatGivesUp) {
  ScriptedUpstream* up = Scripted({Step::Stall()});
  ProcessResult r = mitmd_.Curl({"-s", "-o", "/dev/null", "-m", "1", up->Url("/x")});
  EXPECT_EQ(r.exit_code, 28) << "curl times out: " << r.err;
  ExpectRecovered("stalled upstream, client left", 1);
}

TEST_F(FaultTest, ClientAbortsMidUpload) {
  // A head announcing 1 MB, 1 KB of it, then the client closes.
  auto upload = RawExchange("127.0.0.1", mitmd_.port(),
                            StrCat("POST ", healthy_->Url("/echo"), " HTTP/1.1\r\nHost: 127.0.0.1:",
                                   healthy_->port(), "\r\nContent-Length: 1000000\r\n\r\n",
                                   std::string(1024, 'u')),
                            milliseconds(200));
  ASSERT_TRUE(upload) << upload.error().message;
  ExpectRecovered("client aborted mid-upload", 1);
}

TEST_F(FaultTest, ClientAbortsMidDownload) {
  // 64 MB streamed; the client takes a little and leaves.
  ProcessResult r = mitmd_.Curl({"-s", "-o", "/dev/null", "--max-filesize", "1", "-m", "2",
                                 healthy_->Url("/stream/67108864")});
  EXPECT_NE(r.exit_code, 0);
  ExpectRecovered("client aborted mid-download", 1);
}

TEST_F(FaultTest, ClientHalfClosesAfterItsRequest) {
  // A client that sends its request and shuts down its sending side (shutdown(SHUT_WR)). mitmd
  // takes an end of input mid-exchange as the client giving up (HTTP clients do not half-close),
  // records why, and cleans up.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(mitmd_.port());
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  std::string request = StrCat("GET ", healthy_->Url("/bytes/10"), " HTTP/1.1\r\nHost: 127.0.0.1:",
                               healthy_->port(), "\r\n\r\n");
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  ::shutdown(fd, SHUT_WR);
  std::string got;
  for (int i = 0; i < 100; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  ExpectRecovered("half-close", 1);
  bool recorded = false;
  for (const auto& f : mitmd_.Flows()) {
    recorded |= f.contains("request") && f["request"].value("path", "") == "/bytes/10" &&
                (got.starts_with("HTTP/1.1 200") || f.contains("error"));
  }
  EXPECT_TRUE(recorded) << "the half-closed exchange is recorded, answered or with its error";
}

}  // namespace
}  // namespace mitmd::testing
