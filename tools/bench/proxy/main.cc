// mitmd_bench: a self-contained load generator for mitmd. It starts its own loopback HTTPS
// origin, starts the proxy under test with a temporary configuration directory, and measures
// keep-alive requests/s and latency, new connections/s, and a large streamed download (with the
// proxy's peak RSS), through the proxy and straight to the origin. Optionally the same load goes
// through Debian's mitmdump, and Debian's hey cross-checks the figures.

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_pki.h"
#include "bench_upstream.h"
#include "core/strings.h"
#include "load.h"
#include "nginx_origin.h"
#include "process.h"

namespace mitmd::bench {
namespace {

constexpr double kMaxDurationSeconds = 60;
constexpr double kMaxDownloadGib = 16;
constexpr double kMaxWarmupSeconds = 10;
constexpr double kMaxServeSeconds = 600;
constexpr int kMaxRepeat = 9;
constexpr int kMaxSamples = 1000;
constexpr auto kOneConnectionTimeout = std::chrono::seconds(30);
constexpr int kMaxConnections = 1000;
constexpr int kMaxThreads = 64;
constexpr double kMaxBodyBytes = 16 << 20;
constexpr double kMaxRssLimitMib = 1 << 20;
constexpr uint64_t kGib = 1ull << 30;
constexpr auto kDownloadTimeout = std::chrono::seconds(600);
constexpr auto kToolSlack = std::chrono::seconds(60);

constexpr char kUsage[] = R"(mitmd_bench: load generator for mitmd (loopback only).

Usage: mitmd_bench --mitmd PATH [OPTIONS]

  --mitmd PATH           the mitmd binary to measure (required)
  --mode LIST            comma-separated: keepalive, newconn, download, firstconn, nagle,
                         hey, or all (keepalive, newconn, download; default: keepalive;
                         --download-gib adds download)
                         firstconn: one connection to a proxy just started (nothing cached,
                           no pooled upstream), connect() to response end, --samples times
                         nagle: tools/bench/nagle_client.py (Python, Nagle on) opens
                           --samples fresh connections one after another
  --connections N        concurrent client connections (default 4)
  --threads N            client threads the connections are spread over (default 2)
  --duration SECS        measured window per run, at most 60 (default 5)
  --warmup SECS          unmeasured time before the window (default 0.5)
  --body-bytes N         size of the small response body (default 1024)
  --download-gib X       size of the streamed download, at most 16 (default 1)
  --repeat N             runs per measurement; medians are reported (default 1, at most 9)
  --host NAME            origin name clients use: 127.0.0.1 (no SNI) or localhost (SNI)
  --origin NAME          builtin (default) or nginx: Debian's nginx-light, started on
                         loopback with the bench's certificate, serves /bytes for keepalive,
                         newconn, firstconn and nagle (downloads stay on the builtin origin)
  --nginx PATH           the nginx binary (default: nginx from PATH, else /usr/sbin/nginx)
  --client-nagle         the C++ client leaves Nagle on (default: TCP_NODELAY, as curl)
  --client-resume        the C++ client offers the last TLS session it was handed on each new
                         connection, as browsers and curl do (default: full handshakes)
  --samples N            connections measured by firstconn and nagle (default 20)
  --python PATH          the interpreter for nagle (default /usr/bin/python3)
  --max-rss-mib N        fail when mitmd's peak RSS in the download exceeds N MiB (default 64)
  --targets LIST         comma-separated: direct, mitmd, baseline, mitmproxy (default
                         direct,mitmd; --baseline adds baseline)
  --baseline PATH        another mitmd binary (e.g. a build of an older commit), measured as
                         target "baseline" in the same run, alternating with the others
  --compare-mitmproxy    adds mitmproxy: Debian's mitmdump (skipped with a message if missing)
  --mitmdump PATH        the mitmdump to use (default: mitmdump from PATH)
  --hey PATH             the hey binary for mode hey (default: hey from PATH)
  --mitmd-arg ARG        pass ARG to mitmd (repeatable), e.g. --mitmd-arg=--workers=2
  --serve SECS           start the origin and mitmd, print their addresses, and keep them up
                         for SECS (at most 600, or until Ctrl-C/SIGTERM, which stop them)
                         for other tools (curl, hey, perf); no load
  --help

Prints a table (medians, with min..max over the runs) and one JSON line starting with
{"mitmd_bench":. Exit status 1 when a measurement failed or the RSS limit was exceeded.
)";

struct Options {
  std::string mitmd;
  std::vector<std::string> modes;
  std::vector<std::string> targets = {"direct", "mitmd"};
  int connections = 4;
  int threads = 2;
  double duration_s = 5;
  double warmup_s = 0.5;
  double serve_s = 0;
  size_t body_bytes = 1024;
  double download_gib = 1;
  bool download_requested = false;
  int repeat = 1;
  std::string host = "127.0.0.1";
  int64_t max_rss_mib = 64;
  bool compare_mitmproxy = false;
  std::string mitmdump = "mitmdump";
  std::string hey = "hey";
  std::vector<std::string> mitmd_args;
  std::string baseline;  // another mitmd binary, target "baseline"
  std::string origin = "builtin";
  std::string nginx = "nginx";
  bool client_nagle = false;
  bool client_resume = false;
  int samples = 20;
  std::string python = "/usr/bin/python3";
  std::string nagle_script = MITMD_BENCH_DIR "/nagle_client.py";
};

Result<double> ParseNumber(std::string_view flag, std::string_view text, double min, double max) {
  std::string s(text);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(v >= min && v <= max)) {
    char range[64];
    std::snprintf(range, sizeof(range), "%g to %g", min, max);
    return Fail(StrCat(flag, ": give a number from ", range));
  }
  return v;
}

std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t comma = text.find(separator);
    std::string_view part = text.substr(0, comma);
    if (!part.empty()) out.emplace_back(part);
    if (comma == text.npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// Accepts "--flag value" and "--flag=value".
Result<std::optional<Options>> ParseOptions(int argc, char** argv) {
  Options o;
  struct NumericFlag {
    const char* name;
    double min;
    double max;
    std::function<void(double)> set;
  };
  const NumericFlag numeric[] = {
      {"--connections", 1, kMaxConnections, [&](double v) { o.connections = static_cast<int>(v); }},
      {"--threads", 1, kMaxThreads, [&](double v) { o.threads = static_cast<int>(v); }},
      {"--duration", 0.1, kMaxDurationSeconds, [&](double v) { o.duration_s = v; }},
      {"--warmup", 0, kMaxWarmupSeconds, [&](double v) { o.warmup_s = v; }},
      {"--body-bytes", 0, kMaxBodyBytes, [&](double v) { o.body_bytes = static_cast<size_t>(v); }},
      {"--download-gib", 0.001, kMaxDownloadGib,
       [&](double v) {
         o.download_gib = v;
         o.download_requested = true;
       }},
      {"--serve", 1, kMaxServeSeconds, [&](double v) { o.serve_s = v; }},
      {"--repeat", 1, kMaxRepeat, [&](double v) { o.repeat = static_cast<int>(v); }},
      {"--samples", 1, kMaxSamples, [&](double v) { o.samples = static_cast<int>(v); }},
      {"--max-rss-mib", 1, kMaxRssLimitMib, [&](double v) { o.max_rss_mib = static_cast<int64_t>(v); }},
  };

  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (size_t eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    if (flag == "--help" || flag == "-h") return std::optional<Options>();
    if (flag == "--compare-mitmproxy") {
      o.compare_mitmproxy = true;
      continue;
    }
    if (flag == "--client-nagle") {
      o.client_nagle = true;
      continue;
    }
    if (flag == "--client-resume") {
      o.client_resume = true;
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Fail(flag + " needs a value (see --help)");
    }

    if (flag == "--mitmd") {
      o.mitmd = value;
    } else if (flag == "--mode") {
      o.modes = Split(value, ',');
    } else if (flag == "--targets") {
      o.targets = Split(value, ',');
    } else if (flag == "--host") {
      if (value != "127.0.0.1" && value != "localhost") {
        return Fail("--host: give 127.0.0.1 or localhost");
      }
      o.host = value;
    } else if (flag == "--mitmdump") {
      o.mitmdump = value;
    } else if (flag == "--hey") {
      o.hey = value;
    } else if (flag == "--baseline") {
      o.baseline = value;
    } else if (flag == "--origin") {
      if (value != "builtin" && value != "nginx") return Fail("--origin: give builtin or nginx");
      o.origin = value;
    } else if (flag == "--nginx") {
      o.nginx = value;
    } else if (flag == "--python") {
      o.python = value;
    } else if (flag == "--mitmd-arg") {
      o.mitmd_args.push_back(value);
    } else {
      const NumericFlag* f = nullptr;
      for (const auto& candidate : numeric) {
        if (flag == candidate.name) f = &candidate;
      }
      if (!f) return Fail("unknown option " + flag + " (see --help)");
      auto n = ParseNumber(flag, value, f->min, f->max);
      if (!n) return std::unexpected(n.error());
      f->set(*n);
    }
  }
  if (o.mitmd.empty()) return Fail("--mitmd PATH is required (see --help)");
  if (o.modes.empty()) o.modes = {"keepalive"};
  if (o.modes == std::vector<std::string>{"all"}) o.modes = {"keepalive", "newconn", "download"};
  if (o.download_requested &&
      std::find(o.modes.begin(), o.modes.end(), "download") == o.modes.end()) {
    o.modes.push_back("download");
  }
  if (o.compare_mitmproxy &&
      std::find(o.targets.begin(), o.targets.end(), "mitmproxy") == o.targets.end()) {
    o.targets.push_back("mitmproxy");
  }
  if (!o.baseline.empty() &&
      std::find(o.targets.begin(), o.targets.end(), "baseline") == o.targets.end()) {
    o.targets.push_back("baseline");
  }
  for (const auto& t : o.targets) {
    if (t != "direct" && t != "mitmd" && t != "baseline" && t != "mitmproxy") {
      return Fail("--targets: unknown " + t);
    }
    if (t == "baseline" && o.baseline.empty()) return Fail("--targets baseline needs --baseline PATH");
  }
  if (o.targets.empty()) return Fail("--targets: name at least one target");
  for (const auto& m : o.modes) {
    if (m != "keepalive" && m != "newconn" && m != "download" && m != "hey" &&
        m != "firstconn" && m != "nagle") {
      return Fail("--mode: unknown mode " + m);
    }
  }
  return std::optional<Options>(o);
}

// One run of one measurement.
struct Sample {
  double value = 0;  // in the row's unit
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t count = 0;  // requests, connections or bytes
  uint64_t errors = 0;
  double proxy_cpu_pct = -1;     // proxy CPU over the window, % of one core
  double proxy_cpu_us_op = -1;   // proxy CPU per request or connection (per MiB for downloads)
  int64_t peak_rss_kib = -1;
  int proxy_exit_code = 0;  // how the proxy exited on SIGTERM (0 when clean, or no proxy)
  std::string note;
};

struct Row {
  std::string mode;
  std::string target;  // direct, mitmd, mitmproxy
  std::string unit;
  std::vector<Sample> runs;
  std::string failure;
};

std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

double Median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <typename F>
double MedianOf(const Row& row, F field) {
  std::vector<double> v;
  for (const Sample& s : row.runs) v.push_back(field(s));
  return Median(v);
}

class Bench {
 public:
  // Small-body loads go to |load_port| (the builtin origin or nginx), downloads to |upstream|.
  Bench(const Options& options, const BenchPki& pki, BenchUpstream& upstream, uint16_t load_port)
      : o_(options), pki_(pki), upstream_(upstream), load_port_(load_port) {}

  // Starts the proxy for |target| (none for "direct"); nullopt plus |error| on failure.
  std::optional<ProxyProcess> StartProxy(const std::string& target, bool large_bodies,
                                         std::string& error) {
    if (target == "direct") return std::nullopt;
    auto p = target == "mitmd"      ? StartMitmd(o_.mitmd, pki_.ca_pem_path, o_.mitmd_args)
             : target == "baseline" ? StartMitmd(o_.baseline, pki_.ca_pem_path, o_.mitmd_args)
                                    : StartMitmdump(o_.mitmdump, pki_.ca_pem_path, large_bodies);
    if (!p) {
      error = p.error().message;
      return std::nullopt;
    }
    return std::move(*p);
  }

  Endpoint EndpointFor(const std::optional<ProxyProcess>& proxy, bool download = false) const {
    Endpoint ep;
    ep.proxy_port = proxy ? proxy->port : 0;
    ep.origin_host = o_.host;
    ep.origin_port = download ? upstream_.port() : load_port_;
    ep.trust_ca_file = proxy ? proxy->root_ca : pki_.ca_pem_path;
    ep.nagle = o_.client_nagle;
    ep.resume = o_.client_resume;
    return ep;
  }

  // Stops the proxy and notes an unclean exit in |sample|.
  static void StopProxy(std::optional<ProxyProcess>& proxy, Sample& sample) {
    if (!proxy) return;
    int code = proxy->Stop();
    sample.proxy_exit_code = code;
    if (code != 0) {
      // The temporary directory goes away with the proxy: keep its log where the user can read it.
      std::string kept = StrCat("/tmp/mitmd-bench-", proxy->name, "-", proxy->child->pid(),
                                "-stderr.txt");
      std::error_code ec;
      std::filesystem::copy_file(proxy->dir->File("stderr.txt"), kept,
                                 std::filesystem::copy_options::overwrite_existing, ec);
      sample.note += StrCat(proxy->name, " exited with ", code, " on SIGTERM (its log: ",
                            ec ? "lost" : kept, "); ", OneLine(Tail(proxy->StderrTail(), 200)));
    }
  }

  Result<Sample> MeasureLoad(const std::string& target, LoadKind kind) {
    std::string error;
    std::optional<ProxyProcess> proxy = StartProxy(target, false, error);
    if (!proxy && target != "direct") return Fail(error);
    LoadOptions lo;
    lo.kind = kind;
    lo.connections = o_.connections;
    lo.threads = o_.threads;
    lo.warmup = std::chrono::milliseconds(static_cast<int64_t>(o_.warmup_s * 1000));
    lo.duration = std::chrono::milliseconds(static_cast<int64_t>(o_.duration_s * 1000));
    double cpu_start = 0, cpu_end = 0;
    if (proxy) {
      pid_t pid = proxy->child->pid();
      lo.on_window_start = [&cpu_start, pid] { cpu_start = CpuSeconds(pid); };
      lo.on_window_end = [&cpu_end, pid] { cpu_end = CpuSeconds(pid); };
    }
    auto r = RunLoad(EndpointFor(proxy), lo);
    Sample s;
    if (proxy) s.peak_rss_kib = PeakRssKib(proxy->child->pid());
    StopProxy(proxy, s);
    if (!r) return Fail(r.error().message + (s.note.empty() ? "" : " [" + s.note + "]"));
    s.value = r->rps();
    s.p50_ms = r->p50_ms;
    s.p99_ms = r->p99_ms;
    s.count = r->requests;
    s.errors = r->errors;
    if (r->errors) s.note += StrCat("first error: ", r->first_error);
    if (o_.client_resume && kind == LoadKind::kNewConnection && r->requests > 0) {
      s.note += StrCat(s.note.empty() ? "" : "; ", target, ": ", 100 * r->resumed / r->requests,
                       "% of the connections resumed a TLS session");
    }
    if (proxy && cpu_end >= cpu_start) {
      s.proxy_cpu_pct = 100 * (cpu_end - cpu_start) / r->seconds;
      s.proxy_cpu_us_op = 1e6 * (cpu_end - cpu_start) / static_cast<double>(r->requests);
    }
    return s;
  }

  Result<Sample> MeasureDownload(const std::string& target) {
    std::string error;
    std::optional<ProxyProcess> proxy = StartProxy(target, true, error);
    if (!proxy && target != "direct") return Fail(error);
    uint64_t bytes = static_cast<uint64_t>(o_.download_gib * static_cast<double>(kGib));
    double cpu_start = proxy ? CpuSeconds(proxy->child->pid()) : 0;
    auto r = RunDownload(EndpointFor(proxy, true), bytes, kDownloadTimeout);
    Sample s;
    if (proxy) {
      s.peak_rss_kib = PeakRssKib(proxy->child->pid());
      double cpu = CpuSeconds(proxy->child->pid()) - cpu_start;
      if (r && r->seconds > 0) {
        s.proxy_cpu_pct = 100 * cpu / r->seconds;
        s.proxy_cpu_us_op = 1e6 * cpu / (static_cast<double>(bytes) / (1 << 20));
      }
    }
    StopProxy(proxy, s);
    if (!r) return Fail(r.error().message + (s.note.empty() ? "" : " [" + s.note + "]"));
    s.value = static_cast<double>(r->bytes) / 1e6 / r->seconds;
    s.count = r->bytes;
    s.p50_ms = -1;
    s.p99_ms = -1;
    return s;
  }

  // The first connection to a host: each sample starts a fresh proxy (no leaf cached, no pooled
  // upstream connection, no session) and times one connection from connect() to the end of
  // the response. Direct: one fresh connection to the origin.
  Result<Sample> MeasureFirstConnection(const std::string& target) {
    std::vector<double> ms;
    Sample s;
    for (int i = 0; i < o_.samples; ++i) {
      std::string error;
      std::optional<ProxyProcess> proxy = StartProxy(target, false, error);
      if (!proxy && target != "direct") return Fail(error);
      auto r = TimeOneConnection(EndpointFor(proxy), "/bytes", kOneConnectionTimeout);
      if (proxy) s.peak_rss_kib = std::max(s.peak_rss_kib, PeakRssKib(proxy->child->pid()));
      StopProxy(proxy, s);
      if (!r) return Fail(r.error().message + (s.note.empty() ? "" : " [" + s.note + "]"));
      ms.push_back(*r);
    }
    return LatencySample(std::move(ms), s);
  }

  // tools/bench/nagle_client.py (Nagle on, like Python requests): --samples fresh connections,
  // one after another, through one proxy (or straight to the origin).
  Result<Sample> MeasureNagleClient(const std::string& target) {
    std::string error;
    std::optional<ProxyProcess> proxy = StartProxy(target, false, error);
    if (!proxy && target != "direct") return Fail(error);
    Endpoint ep = EndpointFor(proxy);
    std::vector<std::string> argv = {o_.python, o_.nagle_script, "--host", o_.host, "--port",
                                     StrCat(ep.origin_port), "--cafile", ep.trust_ca_file,
                                     "--count", StrCat(o_.samples)};
    if (proxy) {
      argv.push_back("--proxy-port");
      argv.push_back(StrCat(proxy->port));
    }
    auto out = RunTool(argv, {}, kOneConnectionTimeout * o_.samples);
    Sample s;
    if (proxy) s.peak_rss_kib = PeakRssKib(proxy->child->pid());
    StopProxy(proxy, s);
    if (!out) return std::unexpected(out.error());
    if (out->exit_code != 0) {
      return Fail(StrCat("nagle_client.py exited ", out->exit_code, ": ", Tail(out->err, 300)));
    }
    auto doc = nlohmann::json::parse(out->out, nullptr, false);
    if (doc.is_discarded() || !doc.contains("ms") || !doc["ms"].is_array()) {
      return Fail("cannot read nagle_client.py's output: " + Tail(out->out, 300));
    }
    std::vector<double> ms;
    for (const auto& v : doc["ms"]) ms.push_back(v.get<double>());
    return LatencySample(std::move(ms), s);
  }

  // Runs hey through the proxy (keep-alive, or a new connection per request).
  Result<Sample> MeasureHey(const std::string& target, bool keepalive) {
    std::string error;
    std::optional<ProxyProcess> proxy = StartProxy(target, false, error);
    if (!proxy && target != "direct") return Fail(error);
    std::vector<std::string> argv = {o_.hey, "-z", StrCat(static_cast<int>(std::ceil(o_.duration_s)), "s"),
                                     "-c", StrCat(o_.connections)};
    if (!keepalive) argv.push_back("-disable-keepalive");
    // hey sends its Host value as SNI; without -host that is "127.0.0.1:PORT", a name with a
    // port that no certificate can match.
    argv.push_back("-host");
    argv.push_back(o_.host);
    if (proxy) {
      argv.push_back("-x");
      argv.push_back(StrCat("http://127.0.0.1:", proxy->port));
    }
    argv.push_back(StrCat("https://", o_.host, ":", upstream_.port(), "/bytes"));
    Endpoint ep = EndpointFor(proxy);
    double cpu_start = proxy ? CpuSeconds(proxy->child->pid()) : 0;
    auto out = RunTool(argv, {{"SSL_CERT_FILE", ep.trust_ca_file}},
                       std::chrono::seconds(static_cast<int64_t>(o_.duration_s)) + kToolSlack);
    Sample s;
    double cpu = proxy ? CpuSeconds(proxy->child->pid()) - cpu_start : 0;
    if (proxy) s.peak_rss_kib = PeakRssKib(proxy->child->pid());
    StopProxy(proxy, s);
    if (!out) return std::unexpected(out.error());
    if (out->exit_code != 0) return Fail(StrCat("hey exited ", out->exit_code, ": ", Tail(out->err, 300)));
    const std::string& text = out->out;
    auto after = [&](const std::string& key) -> double {
      size_t at = text.find(key);
      return at == std::string::npos ? -1 : std::strtod(text.c_str() + at + key.size(), nullptr);
    };
    s.value = after("Requests/sec:");
    s.p50_ms = after("50% in ") * 1000;
    if (s.p50_ms < 0) s.p50_ms = after("50%% in ") * 1000;
    s.p99_ms = after("99% in ") * 1000;
    if (s.p99_ms < 0) s.p99_ms = after("99%% in ") * 1000;
    s.count = static_cast<uint64_t>(std::max(0.0, after("[200]")));
    if (text.find("Error distribution") != std::string::npos) {
      s.errors = 1;
      s.note = Tail(text.substr(text.find("Error distribution")), 300);
    }
    if (s.value <= 0) return Fail("cannot read Requests/sec from hey's output: " + Tail(text, 300));
    if (proxy && s.count > 0) {
      s.proxy_cpu_pct = 100 * cpu / o_.duration_s;
      s.proxy_cpu_us_op = 1e6 * cpu / static_cast<double>(s.count);
    }
    return s;
  }

 private:
  const Options& o_;
  const BenchPki& pki_;
  BenchUpstream& upstream_;
  uint16_t load_port_;

  // A row whose value is the median latency of |ms| (milliseconds, lower is better).
  static Result<Sample> LatencySample(std::vector<double> ms, Sample s) {
    if (ms.empty()) return Fail("no connection measured");
    std::sort(ms.begin(), ms.end());
    s.value = Median(ms);
    s.p50_ms = s.value;
    s.p99_ms = ms[std::min(ms.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(ms.size())))];
    s.count = ms.size();
    return s;
  }
};

bool Executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  for (const std::string& dir : Split(path ? path : "", ':')) {
    if (access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string Fixed(double v, int decimals) {
  if (v < 0) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

void PrintTable(const Options& o, const std::vector<Row>& rows) {
  std::printf("\nmitmd_bench: %d connections over %d client threads, %.1f s window (+%.1f s "
              "warm-up), %zu-byte body, host %s, origin %s, client %s%s, %d run(s) each: "
              "median (min..max)\n",
              o.connections, std::min(o.threads, o.connections), o.duration_s, o.warmup_s,
              o.body_bytes, o.host.c_str(), o.origin.c_str(),
              o.client_nagle ? "Nagle on" : "TCP_NODELAY",
              o.client_resume ? ", resuming sessions" : "", o.repeat);
  std::printf("%s%s%s%s%s%s%s%s\n", Pad("mode", 15).c_str(), Pad("target", 10).c_str(),
              Pad("result", 34).c_str(), Pad("p50 ms", 8).c_str(), Pad("p99 ms", 8).c_str(),
              Pad("proxy CPU", 10).c_str(), Pad("CPU us/op", 10).c_str(),
              Pad("peak RSS", 10).c_str());
  for (const Row& row : rows) {
    std::string lead = Pad(row.mode, 15) + Pad(row.target, 10);
    if (!row.failure.empty()) {
      std::printf("%sFAILED: %s\n", lead.c_str(), row.failure.c_str());
      continue;
    }
    double lo = 1e300, hi = 0;
    for (const Sample& s : row.runs) {
      lo = std::min(lo, s.value);
      hi = std::max(hi, s.value);
    }
    int dec = row.unit == "MB/s" || row.unit == "ms" ? 1 : 0;
    std::string result = StrCat(Fixed(MedianOf(row, [](auto& s) { return s.value; }), dec), " ",
                                row.unit);
    if (row.runs.size() > 1) result += StrCat(" (", Fixed(lo, dec), "..", Fixed(hi, dec), ")");
    double rss = MedianOf(row, [](auto& s) { return static_cast<double>(s.peak_rss_kib); });
    double pct = MedianOf(row, [](auto& s) { return s.proxy_cpu_pct; });
    std::printf("%s%s%s%s%s%s%s\n", lead.c_str(), Pad(result, 34).c_str(),
                Pad(Fixed(MedianOf(row, [](auto& s) { return s.p50_ms; }), 3), 8).c_str(),
                Pad(Fixed(MedianOf(row, [](auto& s) { return s.p99_ms; }), 3), 8).c_str(),
                Pad(pct < 0 ? "-" : Fixed(pct, 0) + "%", 10).c_str(),
                Pad(Fixed(MedianOf(row, [](auto& s) { return s.proxy_cpu_us_op; }), 0), 10).c_str(),
                Pad(rss < 0 ? "-" : Fixed(rss / 1024, 1) + " MiB", 10).c_str());
    for (const Sample& s : row.runs) {
      if (!s.note.empty()) std::printf("    note: %s\n", s.note.c_str());
    }
  }
}

nlohmann::json ToJson(const Options& o, const std::vector<Row>& rows) {
  nlohmann::json results = nlohmann::json::array();
  for (const Row& row : rows) {
    nlohmann::json r = {{"mode", row.mode}, {"target", row.target}, {"unit", row.unit}};
    if (!row.failure.empty()) {
      r["failure"] = row.failure;
      results.push_back(r);
      continue;
    }
    nlohmann::json runs = nlohmann::json::array();
    uint64_t errors = 0;
    for (const Sample& s : row.runs) {
      runs.push_back(s.value);
      errors += s.errors;
    }
    r["median"] = MedianOf(row, [](auto& s) { return s.value; });
    r["runs"] = runs;
    if (double p50 = MedianOf(row, [](auto& s) { return s.p50_ms; }); p50 >= 0) {
      r["p50_ms"] = p50;
      r["p99_ms"] = MedianOf(row, [](auto& s) { return s.p99_ms; });
    }
    r["errors"] = errors;
    if (row.target != "direct") {
      r["proxy_cpu_pct"] = MedianOf(row, [](auto& s) { return s.proxy_cpu_pct; });
      r["proxy_cpu_us_per_op"] = MedianOf(row, [](auto& s) { return s.proxy_cpu_us_op; });
      r["peak_rss_kib"] = MedianOf(row, [](auto& s) { return static_cast<double>(s.peak_rss_kib); });
      nlohmann::json rss = nlohmann::json::array();
      nlohmann::json exits = nlohmann::json::array();
      for (const Sample& s : row.runs) {
        rss.push_back(s.peak_rss_kib);
        exits.push_back(s.proxy_exit_code);
      }
      r["peak_rss_kib_runs"] = rss;
      r["proxy_exit_codes"] = exits;
    }
    results.push_back(r);
  }
  return {{"mitmd_bench",
           {{"connections", o.connections}, {"threads", std::min(o.threads, o.connections)},
            {"duration_s", o.duration_s}, {"body_bytes", o.body_bytes}, {"host", o.host},
            {"repeat", o.repeat}, {"download_gib", o.download_gib}, {"origin", o.origin},
            {"client_nagle", o.client_nagle}, {"client_resume", o.client_resume},
            {"samples", o.samples},
            {"cores", std::thread::hardware_concurrency()}, {"results", results}}}};
}

// The signals that end --serve early (Ctrl-C, kill, a closed terminal).
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// Keeps the origin and one mitmd up for other tools, printing how to reach them, until SECS
// have passed or a stop signal comes.
int Serve(const Options& o, const BenchPki& pki, BenchUpstream& upstream) {
  auto proxy = StartMitmd(o.mitmd, pki.ca_pem_path, o.mitmd_args);
  if (!proxy) return std::fprintf(stderr, "mitmd_bench: %s\n", proxy.error().message.c_str()), 1;
  std::printf("origin      https://%s:%u/bytes  (and /stream/N)\n"
              "origin CA   %s\n"
              "mitmd       http://127.0.0.1:%u  pid %d\n"
              "mitmd root  %s\n"
              "e.g. curl --proxy http://127.0.0.1:%u --cacert %s https://%s:%u/bytes\n"
              "serving for %.0f s\n",
              o.host.c_str(), upstream.port(), pki.ca_pem_path.c_str(), proxy->port,
              static_cast<int>(proxy->child->pid()), proxy->root_ca.c_str(), proxy->port,
              proxy->root_ca.c_str(), o.host.c_str(), upstream.port(), o.serve_s);
  std::fflush(stdout);
  // Run blocked these signals before any thread started: they end the wait early, and the
  // origin and mitmd are stopped below instead of outliving this process.
  const sigset_t stop = StopSignals();
  const auto serve_ns = static_cast<int64_t>(o.serve_s * 1e9);
  const timespec wait{static_cast<time_t>(serve_ns / 1'000'000'000), static_cast<long>(serve_ns % 1'000'000'000)};
  int sig = sigtimedwait(&stop, nullptr, &wait);
  if (sig > 0) std::printf("%s: stopping\n", strsignal(sig));
  std::optional<ProxyProcess> running(std::move(*proxy));
  Sample s;
  Bench::StopProxy(running, s);
  if (!s.note.empty()) std::printf("note: %s\n", s.note.c_str());
  std::printf("origin served %llu requests on %llu connections\n",
              static_cast<unsigned long long>(upstream.requests_served()),
              static_cast<unsigned long long>(upstream.connections_accepted()));
  return s.note.empty() ? 0 : 1;
}

int Run(const Options& o) {
  signal(SIGPIPE, SIG_IGN);
  if (o.serve_s > 0) {
    // --serve waits for these (Serve): blocked here, before the origin's threads start, so that
    // every thread inherits the mask and none of them dies of the signal with the children up.
    const sigset_t stop = StopSignals();
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  }
  auto dir = TempDir::Create("mitmd-bench-pki");
  if (!dir) return std::fprintf(stderr, "mitmd_bench: %s\n", dir.error().message.c_str()), 1;
  auto pki = MakeBenchPki((*dir)->File("upstream-ca.pem"));
  if (!pki) return std::fprintf(stderr, "mitmd_bench: %s\n", pki.error().message.c_str()), 1;
  auto upstream = BenchUpstream::Start(*pki, o.body_bytes);
  if (!upstream) {
    return std::fprintf(stderr, "mitmd_bench: %s\n", upstream.error().message.c_str()), 1;
  }
  std::unique_ptr<NginxOrigin> nginx;
  if (o.origin == "nginx") {
    std::string binary = o.nginx;
    if (binary == "nginx" && !Executable(binary)) binary = "/usr/sbin/nginx";  // not in PATH
    auto started = NginxOrigin::Start(binary, *pki, o.body_bytes);
    if (!started) {
      return std::fprintf(stderr, "mitmd_bench: %s\n", started.error().message.c_str()), 1;
    }
    nginx = std::move(*started);
  }
  Bench bench(o, *pki, **upstream, nginx ? nginx->port() : (*upstream)->port());
  if (o.serve_s > 0) return Serve(o, *pki, **upstream);

  std::vector<std::string> targets;
  for (const std::string& t : o.targets) {
    if (t == "mitmproxy" && !Executable(o.mitmdump)) {
      std::printf("mitmproxy comparison skipped: %s not found (apt-get install mitmproxy)\n",
                  o.mitmdump.c_str());
      continue;
    }
    targets.push_back(t);
  }

  std::vector<Row> rows;
  auto add_rows = [&](const std::string& mode, const std::string& unit,
                      const std::vector<std::string>& row_targets, auto measure) {
    size_t first = rows.size();
    for (const auto& t : row_targets) rows.push_back(Row{mode, t, unit, {}, ""});
    // Targets alternate within each repetition so that a burst of load from other users of the
    // machine does not land on one target only.
    for (int rep = 0; rep < o.repeat; ++rep) {
      for (size_t i = first; i < rows.size(); ++i) {
        Row& row = rows[i];
        if (!row.failure.empty()) continue;
        std::fprintf(stderr, "mitmd_bench: %s via %s, run %d/%d\n", mode.c_str(),
                     row.target.c_str(), rep + 1, o.repeat);
        Result<Sample> s = measure(row.target);
        if (s) {
          row.runs.push_back(*s);
        } else {
          row.failure = s.error().message;
        }
      }
    }
  };

  for (const std::string& mode : o.modes) {
    if (mode == "keepalive") {
      add_rows("keepalive", "req/s", targets,
               [&](const std::string& t) { return bench.MeasureLoad(t, LoadKind::kKeepAlive); });
    } else if (mode == "newconn") {
      add_rows("newconn", "conn/s", targets, [&](const std::string& t) {
        return bench.MeasureLoad(t, LoadKind::kNewConnection);
      });
    } else if (mode == "firstconn") {
      add_rows("firstconn", "ms", targets,
               [&](const std::string& t) { return bench.MeasureFirstConnection(t); });
    } else if (mode == "nagle") {
      std::vector<std::string> nagle_targets;
      for (const std::string& t : targets) {
        if (t != "mitmproxy") nagle_targets.push_back(t);
      }
      add_rows("nagle-python", "ms", nagle_targets,
               [&](const std::string& t) { return bench.MeasureNagleClient(t); });
    } else if (mode == "download") {
      add_rows("download", "MB/s", targets, [&](const std::string& t) { return bench.MeasureDownload(t); });
    } else if (mode == "hey") {
      if (!Executable(o.hey)) {
        std::printf("hey cross-check skipped: %s not found (apt-get install hey)\n",
                    o.hey.c_str());
        continue;
      }
      std::vector<std::string> hey_targets;
      for (const std::string& t : targets) {
        if (t != "mitmproxy") hey_targets.push_back(t);
      }
      add_rows("hey-keepalive", "req/s", hey_targets,
               [&](const std::string& t) { return bench.MeasureHey(t, true); });
      add_rows("hey-newconn", "req/s", hey_targets,
               [&](const std::string& t) { return bench.MeasureHey(t, false); });
    }
  }
  (*upstream)->Stop();
  if (nginx) nginx->Stop();

  PrintTable(o, rows);
  int status = 0;
  for (const Row& row : rows) {
    if (!row.failure.empty()) status = 1;
    for (const Sample& s : row.runs) {
      if (s.proxy_exit_code != 0) {
        std::printf("FAIL: %s exited with %d on SIGTERM after a %s run\n", row.target.c_str(),
                    s.proxy_exit_code, row.mode.c_str());
        status = 1;
      }
    }
    if (row.mode == "download" && (row.target == "mitmd" || row.target == "baseline")) {
      for (const Sample& s : row.runs) {
        if (s.peak_rss_kib > o.max_rss_mib * 1024) {
          std::printf("FAIL: mitmd's peak RSS %.1f MiB in the download exceeds %lld MiB\n",
                      static_cast<double>(s.peak_rss_kib) / 1024,
                      static_cast<long long>(o.max_rss_mib));
          status = 1;
        }
      }
    }
  }
  std::printf("%s\n", ToJson(o, rows).dump().c_str());
  return status;
}

}  // namespace
}  // namespace mitmd::bench

int main(int argc, char** argv) {
  auto options = mitmd::bench::ParseOptions(argc, argv);
  if (!options) {
    std::fprintf(stderr, "mitmd_bench: %s\n", options.error().message.c_str());
    return 2;
  }
  if (!*options) {
    std::fputs(mitmd::bench::kUsage, stdout);
    return 0;
  }
  return mitmd::bench::Run(**options);
}
