#pragma once
// Child processes for the benchmark (the proxies under test and external load tools), a
// temporary directory, and what /proc says about a process.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace mitmd::bench {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  static Result<std::unique_ptr<TempDir>> Create(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

using EnvList = std::vector<std::pair<std::string, std::string>>;

// A child in its own process group, stdin from /dev/null, stdout and stderr into files, with
// this process's environment minus the CA-bundle and proxy variables, plus |env|.
class Child {
 public:
  static Result<std::unique_ptr<Child>> Spawn(const std::vector<std::string>& argv,
                                              const EnvList& env, const std::string& stdout_path,
                                              const std::string& stderr_path);
  ~Child();  // SIGKILLs the group and reaps the child if it still runs
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  // The exit code (128 + signal when killed), or nullopt if still running after |timeout|.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // Sends |sig| to the child's process group.
  void Signal(int sig);

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> exit_code_;
};

// Peak resident set size (VmHWM) in KiB, or -1.
int64_t PeakRssKib(pid_t pid);
// User + system CPU seconds the process has used so far, or -1.
double CpuSeconds(pid_t pid);
// Whether something accepts TCP connections on 127.0.0.1:|port|.
bool CanConnect(uint16_t port);
// A TCP port on 127.0.0.1 that was free a moment ago.
Result<uint16_t> PickFreePort();
std::string ReadFileOrEmpty(const std::string& path);
// The last |max_chars| of |text|.
std::string Tail(const std::string& text, size_t max_chars);

// A proxy under test, started with its own temporary configuration directory.
struct ProxyProcess {
  std::string name;  // "mitmd" or "mitmproxy"
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Child> child;
  uint16_t port = 0;
  std::string root_ca;  // the root its leaves chain to

  // SIGTERM, then waits up to 10 s (SIGKILL after that); returns the exit code.
  int Stop();
  std::string StderrTail() const;
};

// Starts |binary| (mitmd) listening on 127.0.0.1:0, limited to loopback upstreams, trusting
// |upstream_ca|, and waits for its "proxy listening on HOST:PORT" line.
Result<ProxyProcess> StartMitmd(const std::string& binary, const std::string& upstream_ca,
                                const std::vector<std::string>& extra_args);
// Starts mitmdump on a free loopback port trusting |upstream_ca| for upstream verification (no
// --ssl-insecure), quiet; |stream_bodies| sets stream_large_bodies so large bodies are not
// buffered whole.
Result<ProxyProcess> StartMitmdump(const std::string& binary, const std::string& upstream_ca,
                                   bool stream_bodies);

struct ToolOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs argv to completion (killing it after |timeout|) with |env| added.
Result<ToolOutput> RunTool(const std::vector<std::string>& argv, const EnvList& env,
                           std::chrono::seconds timeout);

}  // namespace mitmd::bench
