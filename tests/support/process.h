#pragma once
// Child processes for integration tests: curl and the mitmd binary. Children run in their own
// process group, with an environment cleaned of everything that would make a test depend on the
// machine (CA bundle variables, proxy variables), and are killed if a test forgets them.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "support/temp_dir.h"

namespace mitmd::testing {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// This process's environment without SSL_CERT_FILE, SSL_CERT_DIR, CURL_CA_BUNDLE,
// REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS and every *_proxy variable, then |overrides| applied.
std::vector<std::string> CleanEnvironment(const EnvList& overrides = {});

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // kills the process group if the child still runs
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (searched in PATH) in a new process group, stdin from /dev/null, stdout and
  // stderr into the given files.
  Status Start(const std::vector<std::string>& argv, const EnvList& env,
               const std::string& stdout_path, const std::string& stderr_path);

  // The exit code (128 + signal number when killed by a signal), or nullopt if the child is
  // still running after |timeout|.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // Sends |sig| to the child's process group.
  void Signal(int sig);
  // SIGKILLs the process group and reaps the child.
  void Kill();

  bool running() const { return pid_ > 0 && !exit_code_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when the process timed out (it was killed)
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv to completion (or kills it after |timeout|), capturing stdout and stderr.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout, const EnvList& env = {});

// curl with .curlrc ignored (-q), --silent --show-error, and |args|.
ProcessResult RunCurl(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Every line of a JSON-lines file parsed; a line that does not parse fails.
Result<std::vector<nlohmann::json>> ReadJsonLines(const std::string& path);

// Facts about a live process from /proc.
// Number of TCP sockets the process holds in the given state (e.g. kTcpCloseWait).
constexpr int kTcpEstablished = 0x01;
constexpr int kTcpCloseWait = 0x08;
int CountTcpSockets(pid_t pid, int state);
// Peak resident set size (VmHWM) in KiB, or -1.
int64_t PeakRssKib(pid_t pid);
// Number of open file descriptors, or -1.
int CountOpenFds(pid_t pid);

struct MitmdOptions {
  std::string binary;                             // the mitmd executable (required)
  std::string upstream_ca;                        // --upstream-ca, when not empty
  std::string upstream_allow = "127.0.0.0/8,::1";  // --upstream-allow
  std::vector<std::string> extra_args;
  std::chrono::milliseconds startup_timeout = std::chrono::seconds(30);  // sanitizer build, busy machine
  // Omit --confdir and --flows: mitmd uses $HOME/.mitmd (HOME is the test's own directory).
  bool default_confdir = false;
};

// The mitmd binary (MITMD_BINARY) run for one test, with its own confdir, HOME and flows file
// in a temporary directory.
class MitmdProcess {
 public:
  MitmdProcess();
  ~MitmdProcess();  // Kill()s a mitmd still running, without asserting anything

  // Starts mitmd with --confdir, --listen 127.0.0.1:0, --upstream-allow, --upstream-ca, --flows
  // and |options.extra_args|, and waits for the "proxy listening on HOST:PORT" line. Unless
  // extra_args say --web or --no-web, it adds --no-web: tests never take the viewer's fixed
  // default port.
  Status Start(const MitmdOptions& options);
  // Sends |sig| (SIGTERM), then waits up to |timeout|; adds a test failure (with mitmd's
  // stderr) unless it exits 0. Returns the exit code, -1 on timeout (then the process is killed).
  // The bound is generous: a sanitizer build on a busy machine exits slowly.
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30), int sig = SIGTERM);

  uint16_t port() const { return port_; }
  std::string proxy_url() const;      // "http://127.0.0.1:PORT"
  std::string home() const;           // $HOME of the mitmd process
  std::string confdir() const;        // what --confdir names, or $HOME/.mitmd
  std::string ca_cert_path() const;   // <confdir>/mitmd-ca.pem
  std::string flows_path() const;
  pid_t pid() const { return child_.pid(); }
  bool running() const { return child_.running(); }
  std::string StdoutText() const;
  std::string StderrText() const;

  // The flows recorded so far; a line that does not parse adds a test failure.
  std::vector<nlohmann::json> Flows() const;
  // Waits (bounded) until at least |n| flows are recorded, and returns all of them.
  std::vector<nlohmann::json> WaitForFlows(size_t n, std::chrono::milliseconds timeout =
                                                         std::chrono::seconds(10)) const;

  // curl through this proxy, trusting only mitmd's root: --proxy, --cacert, then |args|.
  ProcessResult Curl(const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

 private:
  TempDir dir_;
  ChildProcess child_;
  uint16_t port_ = 0;
  bool default_confdir_ = false;
};

// The "HOST:PORT" in a "proxy listening on HOST:PORT" line of |text|, as the port, or nullopt.
std::optional<uint16_t> ParseListeningPort(const std::string& text);

}  // namespace mitmd::testing
