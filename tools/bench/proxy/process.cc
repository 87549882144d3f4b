#include "process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/strings.h"

extern char** environ;

namespace mitmd::bench {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr auto kMitmdStartup = std::chrono::seconds(15);
constexpr auto kMitmdumpStartup = std::chrono::seconds(60);
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr char kBanner[] = "proxy listening on ";

bool DroppedVariable(const std::string& name) {
  static const char* const kDropped[] = {"SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
                                         "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"};
  for (const char* d : kDropped) {
    if (name == d) return true;
  }
  std::string lower;
  for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return lower.ends_with("_proxy");
}

std::vector<std::string> ChildEnvironment(const EnvList& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& [k, v] : overrides) overridden |= (k == name);
    if (!overridden && !DroppedVariable(name)) env.push_back(entry);
  }
  for (const auto& [k, v] : overrides) env.push_back(k + "=" + v);
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

bool CanConnect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

Result<std::unique_ptr<TempDir>> TempDir::Create(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = StrCat(base && *base ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (!mkdtemp(tmpl.data())) return Fail(StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno)));
  return std::unique_ptr<TempDir>(new TempDir(tmpl));
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Result<std::unique_ptr<Child>> Child::Spawn(const std::vector<std::string>& argv,
                                            const EnvList& env, const std::string& stdout_path,
                                            const std::string& stderr_path) {
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = ChildEnvironment(env);
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_env = CStrings(envs);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, c_args[0], &actions, &attr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Fail(StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
  return std::unique_ptr<Child>(new Child(pid));
}

Child::~Child() {
  if (Running()) {
    Signal(SIGKILL);
    Wait(kStopTimeout);
  }
}

bool Child::Running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  exit_code_ = r < 0 ? -1 : (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return false;
}

std::optional<int> Child::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
  return exit_code_;
}

void Child::Signal(int sig) {
  if (!exit_code_) kill(-pid_, sig);
}

int64_t PeakRssKib(pid_t pid) {
  std::ifstream in(StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmHWM:")) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

double CpuSeconds(pid_t pid) {
  std::string stat = ReadFileOrEmpty(StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  // Fields after the command name start at field 3 (state); utime and stime are fields 14, 15.
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

Result<uint16_t> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  if (!ok) return Fail("cannot find a free loopback port");
  return ntohs(addr.sin_port);
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Tail(const std::string& text, size_t max_chars) {
  return text.size() <= max_chars ? text : text.substr(text.size() - max_chars);
}

int ProxyProcess::Stop() {
  if (!child) return -1;
  child->Signal(SIGTERM);
  std::optional<int> code = child->Wait(kStopTimeout);
  if (!code) {
    child->Signal(SIGKILL);
    child->Wait(kStopTimeout);
    return -1;
  }
  return *code;
}

std::string ProxyProcess::StderrTail() const {
  return Tail(ReadFileOrEmpty(dir->File("stderr.txt")), 2000);
}

Result<ProxyProcess> StartMitmd(const std::string& binary, const std::string& upstream_ca,
                                const std::vector<std::string>& extra_args) {
  ProxyProcess p;
  p.name = "mitmd";
  auto dir = TempDir::Create("mitmd-bench");
  if (!dir) return std::unexpected(dir.error());
  p.dir = std::move(*dir);
  std::string confdir = p.dir->File("conf");
  std::vector<std::string> argv = {binary, "--listen", "127.0.0.1:0", "--confdir", confdir,
                                   "--upstream-allow", "127.0.0.0/8,::1", "--upstream-ca",
                                   upstream_ca, "--flows", p.dir->File("flows.jsonl")};
  // The viewer would take the fixed default port (clashing with any other mitmd) and is not
  // what is measured, unless asked for with --mitmd-arg=--web=....
  if (std::none_of(extra_args.begin(), extra_args.end(),
                   [](const std::string& a) { return a.starts_with("--web"); })) {
    argv.push_back("--no-web");
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  mkdir(p.dir->File("home").c_str(), 0700);
  auto child = Child::Spawn(argv, {{"HOME", p.dir->File("home")}}, p.dir->File("stdout.txt"),
                            p.dir->File("stderr.txt"));
  if (!child) return std::unexpected(child.error());
  p.child = std::move(*child);

  auto deadline = std::chrono::steady_clock::now() + kMitmdStartup;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string out = ReadFileOrEmpty(p.dir->File("stdout.txt"));
    size_t at = out.find(kBanner);
    size_t eol = at == std::string::npos ? at : out.find('\n', at);
    if (eol != std::string::npos) {
      std::string addr = out.substr(at + sizeof(kBanner) - 1, eol - at - sizeof(kBanner) + 1);
      p.port = static_cast<uint16_t>(std::atoi(addr.substr(addr.rfind(':') + 1).c_str()));
      p.root_ca = confdir + "/mitmd-ca.pem";
      if (p.port == 0) return Fail("cannot parse mitmd's listening line: " + addr);
      return p;
    }
    if (!p.child->Running()) {
      return Fail(StrCat("mitmd exited during start-up: ", p.StderrTail()));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return Fail(StrCat("mitmd did not print '", kBanner, "...' within 15 s: ", p.StderrTail()));
}

Result<ProxyProcess> StartMitmdump(const std::string& binary, const std::string& upstream_ca,
                                   bool stream_bodies) {
  ProxyProcess p;
  p.name = "mitmproxy";
  auto dir = TempDir::Create("mitmdump-bench");
  if (!dir) return std::unexpected(dir.error());
  p.dir = std::move(*dir);
  auto port = PickFreePort();
  if (!port) return std::unexpected(port.error());
  p.port = *port;
  std::string confdir = p.dir->File("conf");
  std::vector<std::string> argv = {binary, "-q", "--listen-host", "127.0.0.1", "--listen-port",
                                   StrCat(p.port), "--set", "confdir=" + confdir, "--set",
                                   "ssl_verify_upstream_trusted_ca=" + upstream_ca};
  if (stream_bodies) {
    argv.push_back("--set");
    argv.push_back("stream_large_bodies=1m");
  }
  mkdir(p.dir->File("home").c_str(), 0700);
  auto child = Child::Spawn(argv, {{"HOME", p.dir->File("home")}}, p.dir->File("stdout.txt"),
                            p.dir->File("stderr.txt"));
  if (!child) return std::unexpected(child.error());
  p.child = std::move(*child);
  p.root_ca = confdir + "/mitmproxy-ca-cert.pem";

  auto deadline = std::chrono::steady_clock::now() + kMitmdumpStartup;
  while (std::chrono::steady_clock::now() < deadline) {
    if (CanConnect(p.port) && std::filesystem::exists(p.root_ca)) return p;
    if (!p.child->Running()) return Fail(StrCat("mitmdump exited during start-up: ", p.StderrTail()));
    std::this_thread::sleep_for(kPollInterval);
  }
  return Fail(StrCat("mitmdump did not listen on port ", p.port, " within 60 s: ", p.StderrTail()));
}

Result<ToolOutput> RunTool(const std::vector<std::string>& argv, const EnvList& env,
                           std::chrono::seconds timeout) {
  auto dir = TempDir::Create("mitmd-bench-tool");
  if (!dir) return std::unexpected(dir.error());
  auto child = Child::Spawn(argv, env, (*dir)->File("out"), (*dir)->File("err"));
  if (!child) return std::unexpected(child.error());
  std::optional<int> code = (*child)->Wait(timeout);
  if (!code) {
    (*child)->Signal(SIGKILL);
    (*child)->Wait(kStopTimeout);
    return Fail(StrCat(argv[0], " did not finish within ", timeout.count(), " s"));
  }
  ToolOutput out;
  out.exit_code = *code;
  out.out = ReadFileOrEmpty((*dir)->File("out"));
  out.err = ReadFileOrEmpty((*dir)->File("err"));
  return out;
}

}  // namespace mitmd::bench
