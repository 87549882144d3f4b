// The root CA as the proxy uses it: a readable key refuses to start, a scoped root tunnels hosts
// outside its scope, and replacing the root on disk takes effect without a restart.

#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "proxy_fixture.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using CaProxyTest = ProxyTest;

ProcessResult MitmdCa(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {MITMD_BINARY, "ca"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, seconds(30));
}

TEST_F(CaProxyTest, ReadableRootKeyRefusesToStart) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  const std::string key = mitmd_.confdir() + "/mitmd-ca-key.pem";
  check_hygiene_ = false;
  ASSERT_EQ(mitmd_.Stop(), 0);
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  ProcessResult r = RunProcess({MITMD_BINARY, "--confdir", mitmd_.confdir(), "--no-web",
                                "--listen", "127.0.0.1:0"}, seconds(10));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(key), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
}

TEST_F(CaProxyTest, ScopedRootTunnelsHostsOutsideItsScope) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  check_hygiene_ = false;
  ASSERT_EQ(mitmd_.Stop(), 0);
  ProcessResult regen = MitmdCa({"regenerate", "--scope", "localhost", "--confdir", mitmd_.confdir()});
  ASSERT_EQ(regen.exit_code, 0) << regen.err;
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  check_hygiene_ = true;
  // In scope: intercepted, the client trusts only mitmd's (constrained) root.
  ProcessResult in = mitmd_.Curl({"-o", "/dev/null", "-w", "%{http_code}",
                                  up->Url("/bytes/10", "localhost")});
  ASSERT_EQ(in.exit_code, 0) << in.err;
  // Out of scope (an IP literal): tunnelled, so the client sees the upstream's own certificate.
  ProcessResult out = RunCurl({"--proxy", mitmd_.proxy_url(), "--cacert", ca_files_.cert, "-o",
                               "/dev/null", "-w", "%{http_code}", up->Url("/bytes/10", "127.0.0.1")});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, "200");
  auto flows = mitmd_.WaitForFlows(2);
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0]["kind"], "http");
  EXPECT_EQ(flows[1]["kind"], "tunnel");
  EXPECT_NE(flows[1].value("note", "").find("outside the root CA's scope"), std::string::npos)
      << flows[1].dump();
}

TEST_F(CaProxyTest, RegeneratedRootIsUsedWithoutARestart) {
  UpstreamServer* up = StartUpstream(TlsUpstream());
  ASSERT_TRUE(up);
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  WriteFile(dir_.File("old-root.pem"), ReadFile(mitmd_.ca_cert_path()));
  ASSERT_EQ(mitmd_.Curl({"-o", "/dev/null", up->Url("/bytes/10", "localhost")}).exit_code, 0);
  ProcessResult regen = MitmdCa({"regenerate", "--confdir", mitmd_.confdir()});
  ASSERT_EQ(regen.exit_code, 0) << regen.err;
  // New connections get leaves from the new root once the watcher has seen the files.
  bool switched = false;
  for (int i = 0; i < 50 && !switched; ++i) {
    switched = mitmd_.Curl({"-o", "/dev/null", up->Url("/bytes/10", "localhost")}).exit_code == 0;
    if (!switched) std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(switched) << mitmd_.StderrText();
  ProcessResult old_root = RunCurl({"--proxy", mitmd_.proxy_url(), "--cacert",
                                    dir_.File("old-root.pem"), up->Url("/bytes/10", "localhost")});
  EXPECT_EQ(old_root.exit_code, 60) << "a leaf of the old root was still served";
  EXPECT_TRUE(mitmd_.running());
}

TEST_F(CaProxyTest, MitmdCertServesTheRootThroughTheProxy) {
  ASSERT_NO_FATAL_FAILURE(StartMitmd());
  ProcessResult page = RunCurl({"--proxy", mitmd_.proxy_url(), "-sS", "http://mitmd.cert/"});
  ASSERT_EQ(page.exit_code, 0) << page.err;
  EXPECT_NE(page.out.find("<html"), std::string::npos);
  EXPECT_NE(page.out.find("mitmd-ca.pem"), std::string::npos);
  ProcessResult pem = RunCurl({"--proxy", mitmd_.proxy_url(), "-sS", "-D", dir_.File("headers"),
                               "http://mitmd.cert/ca/mitmd-ca.pem"});
  ASSERT_EQ(pem.exit_code, 0) << pem.err;
  EXPECT_EQ(pem.out, ReadFile(mitmd_.ca_cert_path()));
  EXPECT_NE(ReadFile(dir_.File("headers")).find("attachment"), std::string::npos);
  ProcessResult missing = RunCurl({"--proxy", mitmd_.proxy_url(), "-sS", "-o", "/dev/null", "-w",
                                   "%{http_code}", "http://mitmd.cert/nothing-here"});
  EXPECT_EQ(missing.out, "404");
  auto flows = mitmd_.WaitForFlows(3);
  ASSERT_EQ(flows.size(), 3u);
  EXPECT_EQ(flows[0]["request"]["url"], "http://mitmd.cert/");
  EXPECT_EQ(flows[0]["response"]["status"], 200);
  EXPECT_EQ(flows[2]["response"]["status"], 404);
}

}  // namespace
}  // namespace mitmd::testing
