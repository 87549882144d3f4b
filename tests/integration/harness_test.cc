// Tests of the integration harness itself, without mitmd: the test PKI verifies (or fails) the
// way the proxy tests rely on, the upstream server speaks correct HTTP/1.1 to a real client
// (curl), and the process and /proc helpers see what they claim to see.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <thread>

#include "core/strings.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"
#include "support/upstream_server.h"

namespace mitmd::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The X509 verification error for |leaf| against a store holding |root|, checking |host|.
int VerifyError(const TestCert& leaf, const TestCert& root, const std::string& host) {
  bssl::UniquePtr<X509_STORE> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root.cert());
  bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.cert(), nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (host.find_first_not_of("0123456789.:") == std::string::npos) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.data(), host.size());
  }
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

TEST(TestPki, LeavesVerifyOrFailAsIntended) {
  TestCa ca;
  TestCa other("unknown test CA");
  TestCert good = ca.Issue(LeafSpec::Localhost());
  EXPECT_EQ(VerifyError(good, ca.root(), "localhost"), X509_V_OK);
  EXPECT_EQ(VerifyError(good, ca.root(), "127.0.0.1"), X509_V_OK);
  EXPECT_EQ(VerifyError(good, ca.root(), "::1"), X509_V_OK);
  EXPECT_EQ(VerifyError(good, ca.root(), "example.com"), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(VerifyError(ca.Issue(LeafSpec::ExpiredLocalhost()), ca.root(), "localhost"),
            X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_EQ(VerifyError(ca.Issue(LeafSpec::OnlyFor("wrong.example")), ca.root(), "localhost"),
            X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(VerifyError(other.Issue(LeafSpec::Localhost()), ca.root(), "localhost"),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(VerifyError(MakeSelfSigned(LeafSpec::Localhost()), ca.root(), "localhost"),
            X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
}

TEST(TestPki, WritesPemFilesThatReadBack) {
  TempDir dir;
  TestCa ca;
  TestCert leaf = ca.Issue(LeafSpec::Localhost());
  CertFiles files = leaf.Write(dir, "leaf");
  std::string pem = ReadFile(files.cert);
  EXPECT_TRUE(pem.starts_with("-----BEGIN CERTIFICATE-----"));
  EXPECT_NE(ReadFile(files.key).find("PRIVATE KEY-----"), std::string::npos);
  EXPECT_EQ(leaf.Sha256Hex().size(), 64u);
  EXPECT_NE(leaf.Sha256Hex(), ca.root().Sha256Hex());
}

TEST(Pattern, IsDeterministicAndOffsetConsistent) {
  std::string all = PatternBytes(1000);
  EXPECT_EQ(all, PatternBytes(1000));
  for (uint64_t off : {0, 1, 7, 8, 13, 999}) {
    std::string part(1000 - off, '\0');
    FillPattern(off, part.data(), part.size());
    EXPECT_EQ(part, all.substr(off)) << "offset " << off;
  }
  // Not a constant or short cycle.
  EXPECT_NE(all.substr(0, 100), all.substr(100, 100));
}

// A TLS upstream with a valid leaf for localhost, 127.0.0.1 and ::1.
class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_files_ = ca_.root().Write(dir_, "ca");
    leaf_files_ = ca_.Issue(LeafSpec::Localhost()).Write(dir_, "localhost");
  }

  UpstreamOptions Tls(const std::string& host = "127.0.0.1") const {
    UpstreamOptions o;
    o.host = host;
    o.cert_file = leaf_files_.cert;
    o.key_file = leaf_files_.key;
    return o;
  }

  ProcessResult Curl(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--cacert", ca_files_.cert});
    return RunCurl(args);
  }

  TempDir dir_;
  TestCa ca_;
  CertFiles ca_files_, leaf_files_;
};

TEST_F(UpstreamTest, ServesPatternBytesOverTls) {
  UpstreamServer server(Tls());
  ASSERT_TRUE(server.Start());
  ProcessResult r = Curl({server.Url("/bytes/1000000", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out == PatternBytes(1000000));
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(server.requests_served(), 1u);
}

TEST_F(UpstreamTest, KeepAliveServesFiveRequestsOnOneConnection) {
  UpstreamServer server(Tls());
  ASSERT_TRUE(server.Start());
  std::vector<std::string> args;
  for (int i = 0; i < 5; ++i) args.push_back(server.Url(StrCat("/bytes/", 100 + i), "localhost"));
  ProcessResult r = Curl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 100u + 101 + 102 + 103 + 104);
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(server.requests_served(), 5u);
}

TEST_F(UpstreamTest, ChunkedWithTrailer) {
  UpstreamServer server(Tls());
  ASSERT_TRUE(server.Start());
  std::string headers = dir_.File("headers");
  ProcessResult r = Curl({"-D", headers, server.Url("/chunked/100000", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string body = PatternBytes(100000);
  EXPECT_TRUE(r.out == body);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(body.data()), body.size(), digest);
  std::string head = ReadFile(headers);
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Body-Sha256: " + HexEncode(digest, sizeof(digest))), std::string::npos)
      << head;
}

TEST_F(UpstreamTest, CloseDelimitedBody) {
  UpstreamServer server(Tls());
  ASSERT_TRUE(server.Start());
  ProcessResult r = Curl({"-D", "-", server.Url("/close/5000", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t split = r.out.find("\r\n\r\n");
  ASSERT_NE(split, std::string::npos);
  EXPECT_EQ(r.out.substr(0, split).find("Content-Length"), std::string::npos);
  EXPECT_TRUE(r.out.substr(split + 4) == PatternBytes(5000));
}

TEST_F(UpstreamTest, HeadAndBodilessStatuses) {
  UpstreamServer server(Tls());
  ASSERT_TRUE(server.Start());
  ProcessResult head = Curl({"-I", server.Url("/bytes/1234", "localhost")});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  EXPECT_NE(head.out.find("Content-Length: 1234"), std::string::npos) << head.out;
  for (int code : {204, 304, 404, 500}) {
    ProcessResult r = Curl({"-w", "%{http_code}", server.Url(StrCat("/status/", code), "localhost")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string expected = code == 204 || code == 304 ? "" : StrCat("status ", code, "\n");
    EXPECT_EQ(r.out, expected + std::to_string(code));
  }
}

TEST_F(UpstreamTest, EchoesHeadersInOrderAndBodiesAfterContinue) {
  UpstreamServer server(Tls());
  ASSERT_TRUE(server.Start());
  std::string file = dir_.File("big.bin");
  std::string big = PatternBytes(2 * 1024 * 1024);
  WriteFile(file, big);
  ProcessResult r = Curl({"-H", "X-MiXeD-Case: 1", "-H", "Expect: 100-continue",
                          "-H", "X-Second: two", "--data-binary", "@" + file,
                          server.Url("/echo", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["body_size"], big.size());
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(big.data()), big.size(), digest);
  EXPECT_EQ(j["body_sha256"], HexEncode(digest, sizeof(digest)));
  EXPECT_EQ(j["expect_continue_sent"], true);
  std::vector<std::string> names;
  for (const auto& h : j["headers"]) names.push_back(h[0]);
  auto mixed = std::find(names.begin(), names.end(), "X-MiXeD-Case");
  ASSERT_NE(mixed, names.end()) << j.dump();
  ASSERT_LE(mixed + 3, names.end());
  EXPECT_EQ(*(mixed + 1), "Expect");
  EXPECT_EQ(*(mixed + 2), "X-Second");

  ProcessResult chunked = Curl({"-H", "Transfer-Encoding: chunked", "--data-binary", "hello",
                                server.Url("/echo", "localhost")});
  ASSERT_EQ(chunked.exit_code, 0) << chunked.err;
  auto c = nlohmann::json::parse(chunked.out);
  EXPECT_EQ(c["body"], "hello");
  EXPECT_EQ(c["body_size"], 5);
}

TEST_F(UpstreamTest, GzipJsonDecodesToThePlainDocument) {
  UpstreamServer server(Tls());
  ASSERT_TRUE(server.Start());
  ProcessResult raw = Curl({server.Url("/gzip-json", "localhost")});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_TRUE(raw.out.starts_with("\x1f\x8b"));
  ProcessResult decoded = Curl({"--compressed", server.Url("/gzip-json", "localhost")});
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(decoded.out, kGzipJsonPlain);
}

TEST_F(UpstreamTest, StreamsLargeBodies) {
  UpstreamServer server(Tls());
  ASSERT_TRUE(server.Start());
  ProcessResult r = Curl({"-o", "/dev/null", "-w", "%{size_download}",
                          server.Url("/stream/50000000", "localhost")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "50000000");
}

TEST_F(UpstreamTest, TlsVersionLimits) {
  UpstreamOptions v12 = Tls();
  v12.max_tls_version = TLS1_2_VERSION;
  UpstreamServer only12(v12);
  ASSERT_TRUE(only12.Start());
  EXPECT_EQ(Curl({"-o", "/dev/null", only12.Url("/bytes/10", "localhost")}).exit_code, 0);
  EXPECT_EQ(only12.last_tls_version(), TLS1_2_VERSION);
  EXPECT_NE(Curl({"--tlsv1.3", only12.Url("/bytes/10", "localhost")}).exit_code, 0);

  UpstreamOptions v13 = Tls();
  v13.min_tls_version = TLS1_3_VERSION;
  UpstreamServer only13(v13);
  ASSERT_TRUE(only13.Start());
  EXPECT_EQ(Curl({"-o", "/dev/null", only13.Url("/bytes/10", "localhost")}).exit_code, 0);
  EXPECT_EQ(only13.last_tls_version(), TLS1_3_VERSION);
  EXPECT_NE(Curl({"--tls-max", "1.2", only13.Url("/bytes/10", "localhost")}).exit_code, 0);
}

TEST_F(UpstreamTest, Ipv6AndIpLiteralHosts) {
  UpstreamServer v6(Tls("::1"));
  ASSERT_TRUE(v6.Start());
  ProcessResult r6 = Curl({v6.Url("/bytes/100")});
  ASSERT_EQ(r6.exit_code, 0) << r6.err;
  EXPECT_TRUE(r6.out == PatternBytes(100));
  UpstreamServer v4(Tls());
  ASSERT_TRUE(v4.Start());
  ProcessResult r4 = Curl({v4.Url("/bytes/100")});
  ASSERT_EQ(r4.exit_code, 0) << r4.err;
}

TEST_F(UpstreamTest, BadCertificatesFailDirectly) {
  struct Case {
    TestCert cert;
    std::string curl_says;
  };
  TestCa unknown("unknown test CA");
  std::vector<Case> cases;
  cases.push_back({ca_.Issue(LeafSpec::ExpiredLocalhost()), "expired"});
  cases.push_back({ca_.Issue(LeafSpec::OnlyFor("wrong.example")), "localhost"});
  cases.push_back({unknown.Issue(LeafSpec::Localhost()), "issuer"});
  cases.push_back({MakeSelfSigned(LeafSpec::Localhost()), "self"});
  for (size_t i = 0; i < cases.size(); ++i) {
    CertFiles files = cases[i].cert.Write(dir_, StrCat("bad", i));
    UpstreamOptions o = Tls();
    o.cert_file = files.cert;
    o.key_file = files.key;
    UpstreamServer server(o);
    ASSERT_TRUE(server.Start());
    ProcessResult r = Curl({server.Url("/bytes/10", "localhost")});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(cases[i].curl_says), std::string::npos) << r.err;
  }
}

TEST_F(UpstreamTest, SilentCloseAndSlowModesStopPromptly) {
  UpstreamOptions silent_opts = Tls();
  silent_opts.mode = UpstreamOptions::Mode::kSilent;
  UpstreamServer silent(silent_opts);
  ASSERT_TRUE(silent.Start());
  EXPECT_EQ(Curl({"--max-time", "1", silent.Url("/", "localhost")}).exit_code, 28);

  UpstreamOptions close_opts = Tls();
  close_opts.mode = UpstreamOptions::Mode::kCloseOnAccept;
  UpstreamServer closer(close_opts);
  ASSERT_TRUE(closer.Start());
  EXPECT_NE(Curl({closer.Url("/", "localhost")}).exit_code, 0);
  EXPECT_EQ(closer.connections_accepted(), 1u);

  UpstreamServer slow(Tls());
  ASSERT_TRUE(slow.Start());
  EXPECT_EQ(Curl({"--max-time", "1", slow.Url("/slow", "localhost")}).exit_code, 28);

  // A client that stays connected to /slow: Stop() must still return quickly.
  ChildProcess hanging;
  ASSERT_TRUE(hanging.Start({"curl", "-q", "-s", "--cacert", ca_files_.cert,
                             slow.Url("/slow", "localhost")},
                            {}, dir_.File("o"), dir_.File("e")));
  for (int i = 0; i < 200 && slow.requests_served() < 2; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(slow.requests_served(), 2u);
  auto start = std::chrono::steady_clock::now();
  slow.Stop();
  silent.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2));
  std::optional<int> code = hanging.Wait(seconds(5));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
}

TEST_F(UpstreamTest, PlainHttpAndRawRequests) {
  UpstreamOptions o;
  o.tls = false;
  UpstreamServer server(o);
  ASSERT_TRUE(server.Start());
  ProcessResult r = RunCurl({server.Url("/bytes/100")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out == PatternBytes(100));
  auto raw = RawExchange("127.0.0.1", server.port(),
                         "GET /status/404 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(raw) << raw.error().message;
  EXPECT_TRUE(raw->closed);
  EXPECT_TRUE(raw->data.starts_with("HTTP/1.1 404 Not Found\r\n")) << raw->data;
}

TEST(Process, RunCurlTimesOutAndKills) {
  auto start = std::chrono::steady_clock::now();
  ProcessResult r = RunProcess({"sleep", "30"}, milliseconds(200));
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  ProcessResult ok = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"}, seconds(5));
  EXPECT_EQ(ok.exit_code, 3);
  EXPECT_EQ(ok.out, "out\n");
  EXPECT_EQ(ok.err, "err\n");
}

TEST(Process, ChildrenGetACleanEnvironment) {
  setenv("SSL_CERT_FILE", "/nonexistent", 1);
  setenv("https_proxy", "http://192.0.2.1:9", 1);
  ProcessResult r = RunProcess({"env"}, seconds(5), {{"HOME", "/tmp/x"}});
  unsetenv("SSL_CERT_FILE");
  unsetenv("https_proxy");
  std::string env = "\n" + r.out;
  EXPECT_EQ(env.find("\nSSL_CERT_FILE="), std::string::npos);
  EXPECT_EQ(env.find("\nhttps_proxy="), std::string::npos);
  EXPECT_NE(r.out.find("HOME=/tmp/x\n"), std::string::npos);
}

TEST(Process, ChildrenInheritNoStrayDescriptors) {
  int fd = dup(2);  // dup() never sets close-on-exec
  ASSERT_GE(fd, 3);
  ProcessResult r = RunProcess({"sh", "-c", StrCat("test -e /proc/self/fd/", fd, " && echo leaked")},
                               seconds(5));
  close(fd);
  EXPECT_EQ(r.out, "");
}

TEST(Process, ParsesTheListeningBanner) {
  EXPECT_EQ(ParseListeningPort("mitmd 0.1\nproxy listening on 127.0.0.1:41234\n"), 41234);
  EXPECT_EQ(ParseListeningPort("proxy listening on [::1]:8080\n"), 8080);
  EXPECT_EQ(ParseListeningPort("proxy listening on 127.0.0.1:412"), std::nullopt);  // torn
  EXPECT_EQ(ParseListeningPort("nothing here\n"), std::nullopt);
}

TEST(Process, ReadsJsonLinesAndRejectsGarbage) {
  TempDir dir;
  WriteFile(dir.File("ok"), "{\"a\":1}\n\n{\"a\":2}\n{\"a\":");
  auto ok = ReadJsonLines(dir.File("ok"));
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->size(), 2u);  // the torn last line is not a record yet
  EXPECT_EQ((*ok)[1]["a"], 2);
  WriteFile(dir.File("bad"), "{\"a\":1}\nnot json\n");
  EXPECT_FALSE(ReadJsonLines(dir.File("bad")));
}

TEST(ProcStats, SeesEstablishedAndCloseWaitSockets) {
  UpstreamOptions o;
  o.tls = false;
  UpstreamServer server(o);
  ASSERT_TRUE(server.Start());
  int before_cw = CountTcpSockets(getpid(), kTcpCloseWait);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(server.port());
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  // Both ends live in this process: ours and the server's accepted socket. connect() returns
  // once the kernel completed the handshake, before the server thread has accepted its end, so
  // wait for that as for CLOSE_WAIT below.
  int established = 0;
  for (int i = 0; i < 100 && established < 2; ++i) {
    established = CountTcpSockets(getpid(), kTcpEstablished);
    if (established < 2) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GE(established, 2);
  server.Stop();  // the server closes its end; ours, still open, sits in CLOSE_WAIT
  int cw = 0;
  for (int i = 0; i < 100 && cw <= before_cw; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    cw = CountTcpSockets(getpid(), kTcpCloseWait);
  }
  EXPECT_EQ(cw, before_cw + 1);
  close(fd);
  EXPECT_EQ(CountTcpSockets(getpid(), kTcpCloseWait), before_cw);
  EXPECT_GT(PeakRssKib(getpid()), 0);
  EXPECT_GT(CountOpenFds(getpid()), 2);
}

}  // namespace
}  // namespace mitmd::testing
