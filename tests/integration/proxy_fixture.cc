#include "integration/proxy_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/base64.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>
#include <sstream>
#include <thread>

#include "core/strings.h"

namespace mitmd::testing {

ProxyTest::ProxyTest()
    : ca_files_(ca_.root().Write(dir_, "test-ca")),
      localhost_cert_(ca_.Issue(LeafSpec::Localhost())),
      localhost_files_(localhost_cert_.Write(dir_, "localhost")) {}

UpstreamOptions ProxyTest::TlsUpstream(const std::string& host) const {
  UpstreamOptions o;
  o.host = host;
  o.cert_file = localhost_files_.cert;
  o.key_file = localhost_files_.key;
  return o;
}

UpstreamOptions ProxyTest::PlainUpstream() {
  UpstreamOptions o;
  o.tls = false;
  return o;
}

UpstreamOptions ProxyTest::UpstreamWith(const TestCert& cert, const std::string& name) {
  CertFiles files = cert.Write(dir_, name);
  UpstreamOptions o;
  o.cert_file = files.cert;
  o.key_file = files.key;
  return o;
}

UpstreamServer* ProxyTest::StartUpstream(const UpstreamOptions& options) {
  auto server = std::make_unique<UpstreamServer>(options);
  if (Status s = server->Start(); !s) {
    ADD_FAILURE() << s.error().message;
    return nullptr;
  }
  upstreams_.push_back(std::move(server));
  return upstreams_.back().get();
}

void ProxyTest::StartMitmd(const std::vector<std::string>& extra_args,
                           const std::string& upstream_allow) {
  MitmdOptions options;
  options.binary = MITMD_BINARY;
  options.upstream_ca = ca_files_.cert;
  options.upstream_allow = upstream_allow;
  options.extra_args = extra_args;
  Status s = mitmd_.Start(options);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(access(mitmd_.ca_cert_path().c_str(), R_OK), 0)
      << "mitmd is listening but its root is not at " << mitmd_.ca_cert_path();
}

ProcessResult ProxyTest::DirectCurl(const std::vector<std::string>& args) const {
  std::vector<std::string> all = {"--cacert", ca_files_.cert};
  all.insert(all.end(), args.begin(), args.end());
  return RunCurl(all);
}

void ProxyTest::ExpectNoCloseWait(const std::string& when, std::chrono::milliseconds grace) {
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + grace;
  int n = 0, first = CountTcpSockets(mitmd_.pid(), kTcpCloseWait);
  while ((n = CountTcpSockets(mitmd_.pid(), kTcpCloseWait)) > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  if (first > 0 && n == 0 && waited > std::chrono::milliseconds(500)) {
    std::cout << "[ hygiene  ] " << first << " CLOSE_WAIT socket(s) " << when
              << " took " << waited.count() << " ms to close\n";
  }
  if (n > 0) {
    ProcessResult ss = RunProcess({"ss", "-tanp"}, std::chrono::seconds(5));
    std::string mine;
    std::istringstream lines(ss.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(StrCat("pid=", mitmd_.pid(), ",")) != std::string::npos) mine += line + "\n";
    }
    ADD_FAILURE() << "mitmd holds " << n << " socket(s) in CLOSE_WAIT " << when << " (after "
                  << grace.count() << " ms):\n" << mine;
  }
}

void ProxyTest::TearDown() {
  if (mitmd_.pid() <= 0) return;
  if (mitmd_.running() && check_hygiene_) {
    ExpectNoCloseWait("after the clients exited");
    for (auto& u : upstreams_) u->Stop();
    ExpectNoCloseWait("after the upstream servers closed");
  }
  mitmd_.Stop();
  for (auto& u : upstreams_) u->Stop();
}

std::vector<nlohmann::json> FlowsWithPath(const std::vector<nlohmann::json>& flows,
                                          const std::string& path) {
  std::vector<nlohmann::json> out;
  for (const auto& f : flows) {
    if (f.contains("request") && f["request"].value("path", "") == path) out.push_back(f);
  }
  return out;
}

std::vector<std::string> HeaderNames(const nlohmann::json& headers) {
  std::vector<std::string> names;
  if (!headers.is_array()) return names;
  for (const auto& h : headers) {
    if (h.is_array() && h.size() == 2 && h[0].is_string()) names.push_back(h[0]);
  }
  return names;
}

std::string HeaderValue(const nlohmann::json& headers, const std::string& name) {
  if (!headers.is_array()) return "";
  for (const auto& h : headers) {
    if (h.is_array() && h.size() == 2 && h[0] == name && h[1].is_string()) return h[1];
  }
  return "";
}

std::string BodyContent(const nlohmann::json& body) {
  std::string content = body.value("content", "");
  if (body.value("encoding", "text") != "base64") return content;
  size_t max_len = 0;
  if (!EVP_DecodedLength(&max_len, content.size())) return "<invalid base64>";
  std::string out(max_len, '\0');
  size_t len = 0;
  if (!EVP_DecodeBase64(reinterpret_cast<uint8_t*>(out.data()), &len, max_len,
                        reinterpret_cast<const uint8_t*>(content.data()), content.size())) {
    return "<invalid base64>";
  }
  out.resize(len);
  return out;
}

void ExpectMonotonicTimings(const nlohmann::json& flow) {
  ASSERT_TRUE(flow.contains("timings")) << flow.dump();
  const auto& t = flow["timings"];
  const char* order[] = {"accepted", "request_start", "request_end", "response_start",
                         "response_end"};
  double prev = 0;
  for (const char* name : order) {
    double v = t.value(name, 0.0);
    EXPECT_GT(v, 0) << name << " is not set: " << t.dump();
    EXPECT_LE(prev, v) << name << " comes before the previous timing: " << t.dump();
    prev = v;
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

RefusingPort::RefusingPort() {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  socklen_t len = sizeof(sin);
  if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&sin), len) == 0 &&
      getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len) == 0) {
    port_ = ntohs(sin.sin_port);
  }
}

RefusingPort::~RefusingPort() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace mitmd::testing
