// Issue 9, HTTP/2 through mitmd with real peers: nghttpd (h2 only) as the upstream, curl --http2
// and Python gRPC (grpcio) as clients. Each stream is its own flow, recorded as HTTP/2 on both
// sides with its stream id; many streams share one client connection; bodies arrive byte for
// byte; gRPC calls keep their messages and grpc-status trailers.

#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core_clients.h"
#include "proxy_fixture.h"

namespace mitmd::testing {
namespace {

// A port on 127.0.0.1 that was free a moment ago (nghttpd takes a number, not 0).
uint16_t FreePort() {
  RefusingPort probe;
  return probe.port();
}

class H2Test : public ProxyTest {
 protected:
  // Starts nghttpd serving |docroot_| over TLS (h2 only) with the localhost leaf.
  void StartNghttpd() {
    std::string nghttpd = access("/usr/sbin/nghttpd", X_OK) == 0 ? "/usr/sbin/nghttpd"
                                                                  : "/usr/bin/nghttpd";
    if (access(nghttpd.c_str(), X_OK) != 0) {
      GTEST_SKIP() << "nghttpd is not installed (scripts/deps.sh test)";
    }
    docroot_ = dir_.path() + "/htdocs";
    ASSERT_EQ(system(("mkdir -p " + docroot_).c_str()), 0);
    std::ofstream(docroot_ + "/index.html") << "<h1>h2</h1>\n";
    big_.resize(3 * 1024 * 1024 + 17);
    for (size_t i = 0; i < big_.size(); ++i) big_[i] = static_cast<char>((i * 7919) >> 3);
    std::ofstream(docroot_ + "/big.bin", std::ios::binary) << big_;
    for (int i = 0; i < 30; ++i) {
      std::ofstream(docroot_ + "/r" + std::to_string(i) + ".txt") << "resource " << i << "\n";
    }
    port_ = FreePort();
    Status st = nghttpd_.Start({nghttpd, "-a", "127.0.0.1", "-d", docroot_,
                                std::to_string(port_), localhost_files_.key,
                                localhost_files_.cert},
                               {}, dir_.path() + "/nghttpd.out", dir_.path() + "/nghttpd.err");
    ASSERT_TRUE(st) << st.error().message;
    // Bounded wait for it to listen.
    for (int i = 0; i < 200; ++i) {
      ProcessResult r = DirectCurl({"--http2", "-o", "/dev/null", "-w", "%{http_code}", Url("/")});
      if (r.out == "200") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "nghttpd did not start";
  }
  std::string Url(const std::string& path) const {
    return "https://localhost:" + std::to_string(port_) + path;
  }
  void TearDown() override {
    nghttpd_.Kill();
    ProxyTest::TearDown();
  }

  ChildProcess nghttpd_;
  std::string docroot_;
  std::string big_;
  uint16_t port_ = 0;
};

TEST_F(H2Test, CurlHttp2ToAnH2OnlyServerIsHttp2OnBothSides) {
  ASSERT_NO_FATAL_FAILURE(StartNghttpd());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string out = dir_.path() + "/big.out";
  ProcessResult r = mitmd_.Curl({"--http2", "-sS", "-o", out, "-w", "%{http_version} %{http_code}",
                                 Url("/big.bin")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2 200");
  std::ifstream in(out, std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == big_) << "body differs: " << got.size() << " bytes vs " << big_.size();

  auto flows = mitmd_.WaitForFlows(1);
  ASSERT_EQ(flows.size(), 1u);
  const auto& f = flows[0];
  EXPECT_EQ(f["request"]["version"], "HTTP/2") << f.dump();
  EXPECT_EQ(f["response"]["version"], "HTTP/2");
  EXPECT_EQ(f["response"]["status"], 200);
  EXPECT_EQ(f["stream_id"], 1);
  EXPECT_EQ(f["client"]["tls"]["alpn"], "h2");
  EXPECT_EQ(f["server"]["tls"]["alpn"], "h2");
  EXPECT_EQ(f["request"]["path"], "/big.bin");
  // Pseudo-headers are recorded as they came.
  EXPECT_EQ(HeaderValue(f["request"]["headers"], ":method"), "GET");
  EXPECT_EQ(HeaderValue(f["request"]["headers"], ":authority"), "localhost:" + std::to_string(port_));
  EXPECT_EQ(HeaderValue(f["response"]["headers"], ":status"), "200");
  EXPECT_EQ(f["response"]["body"]["size"], big_.size());
}

TEST_F(H2Test, ThirtyStreamsShareOneClientConnection) {
  ASSERT_NO_FATAL_FAILURE(StartNghttpd());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::vector<std::string> args = {"--http2", "--parallel", "--parallel-max", "30",
                                   "-sS"};
  for (int i = 0; i < 30; ++i) {
    args.push_back("-o");
    args.push_back(dir_.path() + "/r" + std::to_string(i) + ".out");
    args.push_back(Url("/r" + std::to_string(i) + ".txt"));
  }
  ProcessResult r = mitmd_.Curl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 30; ++i) {
    std::ifstream in(dir_.path() + "/r" + std::to_string(i) + ".out");
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(got, "resource " + std::to_string(i) + "\n");
  }
  auto flows = mitmd_.WaitForFlows(30);
  ASSERT_EQ(flows.size(), 30u);
  std::set<uint64_t> client_conns;
  std::set<uint64_t> streams;
  for (const auto& f : flows) {
    EXPECT_EQ(f["request"]["version"], "HTTP/2");
    EXPECT_EQ(f["response"]["status"], 200) << f.dump();
    client_conns.insert(f["client"]["conn"].get<uint64_t>());
    streams.insert(f["stream_id"].get<uint64_t>());
  }
  EXPECT_EQ(client_conns.size(), 1u) << "curl multiplexes its 30 requests on one connection";
  EXPECT_EQ(streams.size(), 30u);
}

TEST_F(H2Test, StreamsOfTwoClientConnectionsShareOneUpstreamConnection) {
  ASSERT_NO_FATAL_FAILURE(StartNghttpd());
  if (IsSkipped()) return;
  // One worker: upstream connections are pooled per worker.
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--workers", "1"}));
  std::vector<std::string> args = {"--http2", "--parallel", "--parallel-max", "30", "-sS"};
  for (int i = 0; i < 30; ++i) {
    args.push_back("-o");
    args.push_back(dir_.path() + "/r" + std::to_string(i) + ".out");
    args.push_back(Url("/r" + std::to_string(i) + ".txt"));
  }
  ProcessResult r = mitmd_.Curl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 30; ++i) {
    std::ifstream in(dir_.path() + "/r" + std::to_string(i) + ".out");
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(got, "resource " + std::to_string(i) + "\n");
  }
  ASSERT_EQ(mitmd_.WaitForFlows(30).size(), 30u);
  // A second client connection, later: the upstream connection is still there, idle.
  r = mitmd_.Curl({"--http2", "-sS", "-o", "/dev/null", "-w", "%{http_code}", Url("/big.bin")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");

  auto flows = mitmd_.WaitForFlows(31);
  ASSERT_EQ(flows.size(), 31u);
  std::set<uint64_t> client_conns, upstream_conns;
  int reused = 0;
  for (const auto& f : flows) {
    EXPECT_EQ(f["response"]["status"], 200) << f.dump();
    EXPECT_EQ(f["response"]["version"], "HTTP/2");
    client_conns.insert(f["client"]["conn"].get<uint64_t>());
    upstream_conns.insert(f["server"]["conn"].get<uint64_t>());
    reused += f["server"]["reused"].get<bool>();
  }
  EXPECT_EQ(client_conns.size(), 2u);
  EXPECT_EQ(upstream_conns.size(), 1u) << "31 streams from 2 client connections, one upstream";
  EXPECT_EQ(reused, 30) << "every stream but the first rides a connection that carried others";
}

// The client offers only h2 (as nghttp and gRPC clients do) and the server speaks only
// HTTP/1.1 (the test upstream answers no ALPN): the client gets h2, the server HTTP/1.1, and
// mitmd translates, trailers included.
TEST_F(H2Test, AnH2OnlyClientToAnHttp1OnlyServerIsTranslated) {
  if (system("/usr/bin/python3 -c 'import h2' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h2 is not installed (scripts/deps.sh test)";
  }
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_NE(up, nullptr);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunProcess(
      {"/usr/bin/python3",
       std::string(MITMD_SOURCE_DIR) + "/tests/integration/scripts/h2_only_client.py",
       std::to_string(mitmd_.port()), "localhost", std::to_string(up->port()),
       mitmd_.ca_cert_path(), "/chunked/300000", "/echo", "/status/404"},
      std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto result = nlohmann::json::parse(r.out);
  EXPECT_EQ(result["alpn"], "h2");
  const auto& chunked = result["responses"]["/chunked/300000"];
  EXPECT_EQ(chunked["status"], 200) << chunked.dump();
  EXPECT_EQ(chunked["body_len"], 300000);
  EXPECT_EQ(HeaderValue(chunked["trailers"], "x-body-sha256"), chunked["body_sha256"])
      << "the HTTP/1.1 chunked trailer arrives as an HTTP/2 trailer";
  EXPECT_EQ(HeaderValue(chunked["headers"], "transfer-encoding"), "");
  const auto& echo = result["responses"]["/echo"];
  ASSERT_EQ(echo["status"], 200) << echo.dump();
  auto seen = nlohmann::json::parse(echo["body"].get<std::string>());
  EXPECT_EQ(seen["version"], "HTTP/1.1");
  EXPECT_EQ(seen["method"], "GET");
  EXPECT_EQ(seen["target"], "/echo");
  EXPECT_EQ(HeaderValue(seen["headers"], "host"), "localhost:" + std::to_string(up->port()))
      << seen.dump();
  EXPECT_EQ(result["responses"]["/status/404"]["status"], 404);

  auto flows = mitmd_.WaitForFlows(3);
  ASSERT_EQ(flows.size(), 3u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["request"]["version"], "HTTP/2") << f.dump();
    EXPECT_EQ(f["response"]["version"], "HTTP/1.1");
    EXPECT_EQ(f["client"]["tls"]["alpn"], "h2");
    EXPECT_TRUE(!f.contains("error") || f["error"].is_null()) << f.dump();
  }
}

// An HTTP/1 client to a server that speaks only HTTP/2 (nghttpd: it chooses no protocol for an
// http/1.1 offer, then closes without a byte): mitmd offers it what the client offered, sees
// it fail that way, and sends the request again on a connection that offers h2 too; the client
// gets HTTP/1.1, and each exchange is a stream of a shared upstream HTTP/2 connection. The
// server is remembered (by each worker: one here), and the next client connection is offered h2
// at its handshake.
TEST_F(H2Test, CurlHttp11ToAnH2OnlyServerIsTranslated) {
  ASSERT_NO_FATAL_FAILURE(StartNghttpd());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--web", "127.0.0.1:0", "--workers", "1"}));
  std::string out = dir_.path() + "/big.out";
  ProcessResult r = mitmd_.Curl({"--http1.1", "-sS", "-o", out, "-w",
                                 "%{http_version} %{http_code}", Url("/big.bin"), "-o",
                                 "/dev/null", Url("/missing")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1.1 2001.1 404");
  std::ifstream in(out, std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == big_) << "body differs: " << got.size() << " bytes vs " << big_.size();
  // A new client connection: h2 is offered at once, so the handshake's upstream speaks it.
  r = mitmd_.Curl({"--http1.1", "-sS", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                   Url("/index.html")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1.1 200");

  auto flows = mitmd_.WaitForFlows(3);
  ASSERT_EQ(flows.size(), 3u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["request"]["version"], "HTTP/1.1") << f.dump();
    EXPECT_EQ(f["response"]["version"], "HTTP/2");
    EXPECT_EQ(f["server"]["tls"]["alpn"], "h2");
    EXPECT_TRUE(!f.contains("error") || f["error"].is_null()) << f.dump();
    EXPECT_EQ(f["server"]["conn"], flows[0]["server"]["conn"]) << "one shared connection";
    EXPECT_NE(f.value("note", "").find("speaks only HTTP/2 (it chose no application "
                                                "protocol for an offer of http/1.1"),
              std::string::npos)
        << f.dump();
  }
  // The first connection's handshake was answered before the server gave itself away (as
  // mirrored: no protocol); the second one's with HTTP/1.1, the upstream already h2.
  auto index = FlowsWithPath(flows, "/index.html");
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0]["client"]["tls"]["alpn"], "http/1.1");
  EXPECT_EQ(FlowsWithPath(flows, "/missing")[0]["client"]["tls"].value("alpn", ""), "");
  auto big = FlowsWithPath(flows, "/big.bin");
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0]["response"]["status"], 200);
  EXPECT_EQ(big[0]["response"]["body"]["size"], big_.size());

  // The shared connection stays open in the pool, and the Connections view has its bytes.
  uint16_t web = WaitForViewerPort(mitmd_);
  ASSERT_NE(web, 0) << mitmd_.StdoutText();
  ProcessResult api = RunCurl(
      {"-s", "--noproxy", "*", "http://127.0.0.1:" + std::to_string(web) + "/api/connections"});
  ASSERT_EQ(api.exit_code, 0) << api.err;
  const nlohmann::json doc = nlohmann::json::parse(api.out);  // outlives the loop over it
  nlohmann::json upstream;
  for (const auto& c : doc["connections"]) {
    if (c["id"] == flows[0]["server"]["conn"]) upstream = c;
  }
  ASSERT_TRUE(upstream.is_object()) << api.out;
  EXPECT_EQ(upstream["open"], true);
  EXPECT_GT(upstream["bytes_in"].get<uint64_t>(), big_.size()) << upstream.dump();
  EXPECT_GT(upstream["bytes_out"].get<uint64_t>(), 0u);
}

// Python requests (ALPN http/1.1), http.client and a raw client (no ALPN) to nghttpd and to an
// h2-only Python server that echoes what arrived: Host became :authority, connection-specific
// headers were dropped, a chunked body went as DATA with its trailer, and the response (no
// length) came back chunked with the server's trailer. Each h2-only server gives itself away on
// the first request (no protocol chosen and a close, or its HTTP/2 preface), which is sent again
// over h2.
TEST_F(H2Test, PythonHttp1ClientsToH2OnlyServersAreTranslated) {
  if (system("/usr/bin/python3 -c 'import h2, requests' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h2 or python3-requests is not installed (scripts/deps.sh test)";
  }
  ASSERT_NO_FATAL_FAILURE(StartNghttpd());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunProcess(
      {"/usr/bin/python3", std::string(MITMD_SOURCE_DIR) + "/tests/integration/scripts/h1_to_h2.py",
       std::to_string(mitmd_.port()), mitmd_.ca_cert_path(), localhost_files_.cert,
       localhost_files_.key, std::to_string(port_)},
      std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto result = nlohmann::json::parse(r.out);
  std::string echo_authority = "localhost:" + std::to_string(result["echo_port"].get<int>());

  EXPECT_EQ(result["requests_big"]["status"], 200);
  EXPECT_EQ(result["requests_big"]["len"], big_.size());
  const auto& post = result["requests_post"];
  EXPECT_EQ(post["status"], 200) << post.dump();
  EXPECT_EQ(post["echo"]["body_sha256"], post["expected_sha256"]);
  EXPECT_EQ(HeaderValue(post["echo"]["headers"], ":authority"), echo_authority);
  EXPECT_EQ(HeaderValue(post["echo"]["headers"], ":method"), "POST");
  EXPECT_EQ(HeaderValue(post["echo"]["headers"], "transfer-encoding"), "");

  const auto& raw = result["raw"];
  ASSERT_EQ(raw["post"]["status"], "HTTP/1.1 200 OK") << raw.dump();
  auto seen = nlohmann::json::parse(raw["post"]["body"].get<std::string>());
  EXPECT_EQ(seen["body_sha256"], raw["expected_sha256"]) << "chunked -> DATA, byte for byte";
  EXPECT_EQ(seen["body_len"], 71001);
  EXPECT_EQ(HeaderValue(seen["headers"], ":path"), "/upload?x=1");
  EXPECT_EQ(HeaderValue(seen["headers"], ":scheme"), "https");
  EXPECT_EQ(HeaderValue(seen["headers"], ":authority"), echo_authority);
  EXPECT_EQ(HeaderValue(seen["headers"], "x-custom"), "Kept");
  EXPECT_EQ(HeaderValue(seen["headers"], "te"), "trailers");
  for (std::string gone : {"host", "connection", "keep-alive", "x-hop", "transfer-encoding"}) {
    EXPECT_EQ(HeaderValue(seen["headers"], gone), "") << gone << " reached the server";
  }
  EXPECT_EQ(HeaderValue(seen["trailers"], "x-checksum"), "42") << "the request's trailer";
  EXPECT_EQ(HeaderValue(raw["post"]["headers"], "transfer-encoding"), "chunked");
  EXPECT_EQ(HeaderValue(raw["post"]["trailers"], "x-echo-trailer"), "yes")
      << "the server's HTTP/2 trailer reaches the HTTP/1.1 client";
  ASSERT_EQ(raw["second"]["status"], "HTTP/1.1 200 OK") << "the client connection is kept";
  EXPECT_EQ(nlohmann::json::parse(raw["second"]["body"].get<std::string>())["body_len"], 0);

  EXPECT_EQ(result["http_client"]["status"], 200);
  EXPECT_EQ(result["http_client"]["body"], "<h1>h2</h1>\n");

  // A server that answered the HTTP/1.1 request with its HTTP/2 preface: asked again over h2.
  EXPECT_EQ(result["requests_frames"]["status"], 200) << result.dump();
  EXPECT_EQ(HeaderValue(result["requests_frames"]["echo"]["headers"], ":path"), "/frames");

  auto flows = mitmd_.WaitForFlows(6);
  ASSERT_EQ(flows.size(), 6u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["request"]["version"], "HTTP/1.1") << f.dump();
    EXPECT_EQ(f["response"]["version"], "HTTP/2");
    EXPECT_EQ(f["server"]["tls"]["alpn"], "h2");
    EXPECT_TRUE(!f.contains("error") || f["error"].is_null()) << f.dump();
  }
  auto frames = FlowsWithPath(flows, "/frames");
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].value("note", "").find("answered an HTTP/1.1 request with HTTP/2 frames"),
            std::string::npos)
      << frames[0].dump();
  auto upload = FlowsWithPath(flows, "/upload?x=1");
  ASSERT_EQ(upload.size(), 1u);
  EXPECT_EQ(upload[0]["client"]["tls"]["alpn"], "");
  EXPECT_EQ(upload[0]["request"]["body"]["size"], 71001);
  EXPECT_EQ(HeaderValue(upload[0]["request"]["trailers"], "X-Checksum"), "42");
  EXPECT_EQ(HeaderValue(upload[0]["response"]["trailers"], "x-echo-trailer"), "yes");
}

// curl --http1.1 to a server that speaks both versions and prefers h2 (as nginx does): offered
// only what the client offered, it chooses HTTP/1.1, which is relayed byte for byte.
TEST_F(H2Test, CurlHttp11ToAServerThatSpeaksBothStaysHttp11ByteExact) {
  if (system("/usr/bin/python3 -c 'import h2' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h2 is not installed (scripts/deps.sh test)";
  }
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunProcess(
      {"/usr/bin/python3",
       std::string(MITMD_SOURCE_DIR) + "/tests/integration/scripts/both_versions.py",
       std::to_string(mitmd_.port()), mitmd_.ca_cert_path(), localhost_files_.cert,
       localhost_files_.key},
      std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto result = nlohmann::json::parse(r.out);
  EXPECT_EQ(result["chosen"], nlohmann::json::array({"http/1.1", "http/1.1"})) << r.out;
  for (const auto& printed : result["curl"]) {
    EXPECT_EQ(printed.get<std::string>(), result["sent"].get<std::string>()) << "byte for byte";
  }
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["request"]["version"], "HTTP/1.1") << f.dump();
    EXPECT_EQ(f["response"]["version"], "HTTP/1.1");
    EXPECT_EQ(f["client"]["tls"]["alpn"], "http/1.1");
    EXPECT_EQ(f["server"]["tls"]["alpn"], "http/1.1");
    EXPECT_EQ(f.value("note", ""), "") << f.dump();
  }
}

// curl -p --http2-prior-knowledge: a CONNECT tunnel, then cleartext HTTP/2 (h2c) inside it,
// to a plain HTTP/1.1 server.
TEST_F(H2Test, PriorKnowledgeH2cInsideAConnectTunnel) {
  UpstreamServer* up = StartUpstream(PlainUpstream());
  ASSERT_NE(up, nullptr);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  std::string base = "http://127.0.0.1:" + std::to_string(up->port());
  std::string out = dir_.path() + "/h2c.out";
  // One URL per curl: curl 7.88 fails a second prior-knowledge URL on the same connection
  // even straight to nghttpd --no-tls ("Error in the HTTP2 framing layer").
  ProcessResult r = mitmd_.Curl({"-p", "--http2-prior-knowledge", "-sS", "-o", out, "-w",
                                 "%{http_version} %{http_code}", base + "/bytes/100000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2 200");
  r = mitmd_.Curl({"-p", "--http2-prior-knowledge", "-sS", "-o", "/dev/null", "-w",
                   "%{http_version} %{http_code}", base + "/status/404"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2 404");
  std::ifstream in(out, std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == PatternBytes(100000)) << got.size();
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["request"]["version"], "HTTP/2") << f.dump();
    EXPECT_EQ(f["request"]["scheme"], "http");
    EXPECT_EQ(f["response"]["version"], "HTTP/1.1");
  }
}

TEST_F(H2Test, GrpcUnaryStreamingAndErrorStatusAreRecorded) {
  if (system("/usr/bin/python3 -c 'import grpc' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-grpcio is not installed (scripts/deps.sh test)";
  }
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult r = RunProcess(
      {"/usr/bin/python3", std::string(MITMD_SOURCE_DIR) + "/tests/integration/scripts/grpc_calls.py",
       mitmd_.proxy_url(), mitmd_.ca_cert_path(), localhost_files_.cert, localhost_files_.key},
      std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto result = nlohmann::json::parse(r.out);
  EXPECT_EQ(result["echo"], "6f6c6c6568050a");  // the request bytes reversed
  EXPECT_EQ(result["count"].size(), 3u);
  EXPECT_EQ(result["fail"], nlohmann::json({"NOT_FOUND", "no such thing"}));

  auto flows = mitmd_.WaitForFlows(3);
  ASSERT_EQ(flows.size(), 3u);
  std::map<std::string, nlohmann::json> by_path;
  for (const auto& f : flows) by_path[f["request"]["path"].get<std::string>()] = f;
  const auto& echo = by_path["/test.Svc/Echo"];
  EXPECT_EQ(echo["request"]["version"], "HTTP/2") << echo.dump();
  EXPECT_EQ(HeaderValue(echo["request"]["headers"], "content-type"), "application/grpc");
  EXPECT_EQ(BodyContent(echo["request"]["body"]), std::string("\x00\x00\x00\x00\x07\x0a\x05hello", 12));
  EXPECT_EQ(HeaderValue(echo["response"]["trailers"], "grpc-status"), "0");
  EXPECT_EQ(HeaderValue(echo["response"]["trailers"], "x-echo"), "1");
  const auto& count = by_path["/test.Svc/Count"];
  EXPECT_EQ(count["response"]["body"]["size"], 3 * (5 + 7));
  const auto& fail = by_path["/test.Svc/Fail"];
  // A trailers-only answer (an error before any message) carries grpc-status in its headers and
  // has no "trailers" key, which operator[] on a const document must not be asked for.
  std::string status = HeaderValue(fail["response"].value("trailers", nlohmann::json()), "grpc-status");
  if (status.empty()) status = HeaderValue(fail["response"]["headers"], "grpc-status");
  EXPECT_EQ(status, "5") << fail.dump();
}

}  // namespace
}  // namespace mitmd::testing
