// Issue 8, self-protection and timeouts with real clients: mitmd's own viewer and proxy ports
// are not reachable through the proxy (403 with a reason and a recorded flow; http://mitmd.cert/
// still answers), and a client that trickles its request head gets 408 after --head-timeout.

#include "core_clients.h"
#include "proxy_fixture.h"

namespace mitmd::testing {
namespace {

using CoreSelfProtectionTest = ProxyTest;

TEST_F(CoreSelfProtectionTest, ViewerAndProxyAreNotReachableThroughTheProxy) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--web", "127.0.0.1:0"}));
  uint16_t web = WaitForViewerPort(mitmd_);
  ASSERT_NE(web, 0) << mitmd_.StdoutText();
  const std::string proxy = mitmd_.proxy_url();
  for (const std::string& url :
       {"http://127.0.0.1:" + std::to_string(web) + "/api/flows",
        "http://localhost:" + std::to_string(web) + "/api/flows",
        "http://[::ffff:127.0.0.1]:" + std::to_string(web) + "/",
        "http://127.0.0.2:" + std::to_string(mitmd_.port()) + "/"}) {
    SCOPED_TRACE(url);
    ProcessResult r = RunCurl({"--proxy", proxy, "-s", "-o", "/dev/null", "-w", "%{http_code}", url});
    EXPECT_EQ(r.out, "403") << r.err;
  }
  // CONNECT to the viewer is refused the same way.
  ProcessResult tunnel = RunCurl({"--proxy", proxy, "-p", "-s", "-o", "/dev/null", "-w",
                                  "%{http_connect}", "http://127.0.0.1:" + std::to_string(web) + "/"});
  EXPECT_EQ(tunnel.out, "403") << tunnel.err;
  // mitmd's own page is still served through the proxy.
  ProcessResult cert = RunCurl({"--proxy", proxy, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "http://mitmd.cert/"});
  EXPECT_EQ(cert.out, "200") << cert.err;
  auto flows = mitmd_.WaitForFlows(6);
  ASSERT_GE(flows.size(), 5u);
  EXPECT_EQ(flows[0]["response"]["status"], 403) << flows[0].dump();
}

TEST_F(CoreSelfProtectionTest, SlowHeaderClientGets408AfterTheHeadTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd({"--head-timeout", "1"}));
  // One header byte every 200 ms, for at most 8 s: the head never completes.
  const char kTrickle[] = R"py(
import json, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX-Slow: ")
s.settimeout(0.2)
start = time.monotonic()
got = b""
while time.monotonic() - start < 8:
    try:
        s.sendall(b"a")
    except OSError:
        break
    try:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    except socket.timeout:
        pass
    except OSError:
        break
print(json.dumps({"received": got.decode("latin-1"), "seconds": time.monotonic() - start}))
)py";
  ProcessResult r = RunProcess({"/usr/bin/python3", "-c", kTrickle, std::to_string(mitmd_.port())},
                               std::chrono::seconds(20));
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out << r.err;
  EXPECT_TRUE(doc["received"].get<std::string>().starts_with("HTTP/1.1 408")) << doc.dump();
  EXPECT_LT(doc["seconds"].get<double>(), 7.0) << doc.dump();  // not cut by the client's limit
}

}  // namespace
}  // namespace mitmd::testing
