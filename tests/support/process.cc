#include "support/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "core/strings.h"

extern char** environ;

namespace mitmd::testing {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);

bool IsScrubbed(std::string_view name) {
  static constexpr std::string_view kScrubbed[] = {
      "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
      "NODE_EXTRA_CA_CERTS", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
      "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", "ftp_proxy", "FTP_PROXY"};
  for (auto s : kScrubbed) {
    if (name == s) return true;
  }
  return false;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string ReadOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<uint64_t> SocketInodes(pid_t pid) {
  std::set<uint64_t> inodes;
  std::string dir = StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (!d) return inodes;
  while (dirent* e = readdir(d)) {
    char target[128];
    std::string link = dir + "/" + e->d_name;
    ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long long inode;
    if (sscanf(target, "socket:[%llu]", &inode) == 1) inodes.insert(inode);
  }
  closedir(d);
  return inodes;
}

}  // namespace

std::vector<std::string> CleanEnvironment(const EnvList& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    if (IsScrubbed(name)) continue;
    bool overridden = false;
    for (const auto& [k, v] : overrides) overridden |= (k == name);
    if (!overridden) env.emplace_back(entry);
  }
  for (const auto& [k, v] : overrides) env.push_back(k + "=" + v);
  return env;
}

ChildProcess::~ChildProcess() {
  if (running()) Kill();
}

Status ChildProcess::Start(const std::vector<std::string>& argv, const EnvList& env,
                           const std::string& stdout_path, const std::string& stderr_path) {
  if (argv.empty()) return Fail("no program to run");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // Descriptors the test binary inherited without close-on-exec must not reach the child.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The test binary ignores SIGPIPE; children get the default dispositions back.
  sigset_t defaults, empty;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  sigemptyset(&empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> envs = CleanEnvironment(env);
  std::vector<char*> cenv;
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Fail(StrCat("cannot run ", argv[0], ": ", strerror(rc)));
  pid_ = pid;
  exit_code_.reset();
  return {};
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_ || pid_ <= 0) return exit_code_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = DecodeWaitStatus(status);
      return exit_code_;
    }
    if (r < 0 && errno != EINTR) {
      exit_code_ = -1;
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

void ChildProcess::Signal(int sig) {
  if (running()) kill(-pid_, sig);
}

void ChildProcess::Kill() {
  if (!running()) return;
  kill(-pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = DecodeWaitStatus(status);
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout, const EnvList& env) {
  ProcessResult result;
  TempDir dir;
  ChildProcess child;
  Status started = child.Start(argv, env, dir.File("stdout"), dir.File("stderr"));
  if (!started) {
    result.err = started.error().message;
    return result;
  }
  std::optional<int> code = child.Wait(timeout);
  if (!code) {
    child.Kill();
    result.timed_out = true;
  } else {
    result.exit_code = *code;
  }
  result.out = ReadOrEmpty(dir.File("stdout"));
  result.err = ReadOrEmpty(dir.File("stderr"));
  return result;
}

ProcessResult RunCurl(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {"curl", "-q", "--silent", "--show-error"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, timeout);
}

Result<std::vector<nlohmann::json>> ReadJsonLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::vector<nlohmann::json> out;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(text.data() + start, nl - start);
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return Fail(StrCat(path, ": line ", out.size() + 1, " is not JSON: ",
                         line.substr(0, 200)));
    }
    out.push_back(std::move(j));
  }
  // A last line without its newline is still being written: it is not a record yet.
  return out;
}

int CountTcpSockets(pid_t pid, int state) {
  std::set<uint64_t> inodes = SocketInodes(pid);
  int count = 0;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in(StrCat("/proc/", pid, "/net/", table));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
      uint64_t inode = 0;
      if (!(fields >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >>
            inode)) {
        continue;
      }
      if (std::stoi(st, nullptr, 16) == state && inodes.count(inode)) ++count;
    }
  }
  return count;
}

int64_t PeakRssKib(pid_t pid) {
  std::ifstream in(StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6));
  }
  return -1;
}

int CountOpenFds(pid_t pid) {
  std::string dir = StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

std::optional<uint16_t> ParseListeningPort(const std::string& text) {
  static constexpr std::string_view kBanner = "proxy listening on ";
  size_t pos = text.find(kBanner);
  if (pos == std::string::npos) return std::nullopt;
  size_t end = text.find_first_of(" \r\n", pos + kBanner.size());
  if (end == std::string::npos) return std::nullopt;  // the line is not complete yet
  std::string_view addr(text.data() + pos + kBanner.size(), end - pos - kBanner.size());
  size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  unsigned port = 0;
  std::string_view digits = addr.substr(colon + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || p != digits.data() + digits.size() || port == 0 || port > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(port);
}

MitmdProcess::MitmdProcess() = default;

MitmdProcess::~MitmdProcess() { child_.Kill(); }

std::string MitmdProcess::proxy_url() const { return StrCat("http://127.0.0.1:", port_); }
std::string MitmdProcess::home() const { return dir_.File("home"); }
std::string MitmdProcess::confdir() const {
  return default_confdir_ ? home() + "/.mitmd" : dir_.File("conf");
}
std::string MitmdProcess::ca_cert_path() const { return confdir() + "/mitmd-ca.pem"; }
std::string MitmdProcess::flows_path() const {
  return default_confdir_ ? confdir() + "/flows.jsonl" : dir_.File("flows.jsonl");
}
std::string MitmdProcess::StdoutText() const { return ReadOrEmpty(dir_.File("stdout")); }
std::string MitmdProcess::StderrText() const { return ReadOrEmpty(dir_.File("stderr")); }

Status MitmdProcess::Start(const MitmdOptions& options) {
  if (options.binary.empty()) return Fail("MitmdOptions.binary is not set");
  default_confdir_ = options.default_confdir;
  std::string home_dir = home();
  if (mkdir(home_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail("cannot create " + home_dir);
  }
  std::vector<std::string> argv = {options.binary, "--listen", "127.0.0.1:0", "--upstream-allow",
                                   options.upstream_allow};
  if (!default_confdir_) {
    argv.insert(argv.end(), {"--confdir", confdir(), "--flows", flows_path()});
  }
  bool web_chosen = false;
  for (const auto& a : options.extra_args) web_chosen |= a == "--web" || a == "--no-web";
  if (!web_chosen) argv.push_back("--no-web");
  if (!options.upstream_ca.empty()) {
    argv.push_back("--upstream-ca");
    argv.push_back(options.upstream_ca);
  }
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  Status started =
      child_.Start(argv, {{"HOME", home_dir}}, dir_.File("stdout"), dir_.File("stderr"));
  if (!started) return started;

  auto deadline = std::chrono::steady_clock::now() + options.startup_timeout;
  for (;;) {
    if (auto port = ParseListeningPort(StdoutText())) {
      port_ = *port;
      return {};
    }
    if (auto code = child_.Wait(std::chrono::milliseconds(20))) {
      return Fail(StrCat("mitmd exited with ", *code, " before listening; stdout:\n",
                         StdoutText(), "\nstderr:\n", StderrText()));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      child_.Kill();
      return Fail(StrCat("mitmd did not print 'proxy listening on HOST:PORT' within ",
                         options.startup_timeout.count(), " ms (is stdout flushed?); stdout:\n",
                         StdoutText(), "\nstderr:\n", StderrText()));
    }
  }
}

int MitmdProcess::Stop(std::chrono::milliseconds timeout, int sig) {
  if (!child_.running()) {
    std::optional<int> code = child_.Wait(std::chrono::milliseconds(0));
    int c = code.value_or(-1);
    if (c != 0) ADD_FAILURE() << "mitmd had already exited with " << c << "; stderr:\n"
                              << StderrText();
    return c;
  }
  child_.Signal(sig);
  std::optional<int> code = child_.Wait(timeout);
  if (!code) {
    child_.Kill();
    ADD_FAILURE() << "mitmd did not exit within " << timeout.count() << " ms of signal "
                  << sig << "; stderr:\n" << StderrText();
    return -1;
  }
  if (*code != 0) {
    ADD_FAILURE() << "mitmd exited with " << *code << " after signal " << sig
                  << "; stderr:\n" << StderrText();
  }
  return *code;
}

std::vector<nlohmann::json> MitmdProcess::Flows() const {
  if (access(flows_path().c_str(), F_OK) != 0) return {};
  auto flows = ReadJsonLines(flows_path());
  if (!flows) {
    ADD_FAILURE() << flows.error().message;
    return {};
  }
  return std::move(*flows);
}

std::vector<nlohmann::json> MitmdProcess::WaitForFlows(size_t n,
                                                       std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<nlohmann::json> flows = Flows();
    if (flows.size() >= n || std::chrono::steady_clock::now() >= deadline) return flows;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

ProcessResult MitmdProcess::Curl(const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout) const {
  std::vector<std::string> all = {"--proxy", proxy_url(), "--cacert", ca_cert_path()};
  all.insert(all.end(), args.begin(), args.end());
  return RunCurl(all, timeout);
}

}  // namespace mitmd::testing
