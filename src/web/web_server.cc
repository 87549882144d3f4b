#include "web/web_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/mem.h>
#include <openssl/ssl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <mutex>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/strings.h"
#include "flow/flow_loader.h"
#include "flow/har.h"
#include "http/body_decoder.h"
#include "http/status.h"
#include "http/headers.h"
#include "web/api_json.h"
#include "web/grpc_api.h"
#include "web/ca_page.h"
#include "web/control_api.h"
#include "web/gate_filter.h"
#include "flow/filter.h"
#include "store/filter_sql.h"
#include "store/session_db.h"
#include "store/session_name.h"
#include "web/pac.h"
#include "web/phone_setup.h"
#include "web/static_files.h"
#include "web/tls_filter.h"

namespace mitmd::web {
namespace {

using nlohmann::json;

constexpr size_t kDefaultPage = 500;
constexpr size_t kMaxPage = 10'000;
constexpr size_t kMaxScan = 200'000;
// A page whose filter reads bodies or headers loads each flow: fewer per request.
constexpr size_t kMaxFullScan = 20'000;
constexpr double kListBudgetSeconds = 1.5;
constexpr timeval kUndoWindow = {30, 0};
constexpr size_t kMaxOpenSessions = 8;
constexpr size_t kHarBatchFlows = 200;
// How stale a session's flow count may be in /api/info and a page's "total".
constexpr std::chrono::milliseconds kCountsMaxAge{1000};
constexpr size_t kMaxDecodedBody = 64 << 20;
constexpr size_t kClosedConnsInStream = 300;
constexpr timeval kConnsPoll = {0, 500'000};
// After a wake-up, flows reach the live stream in batches this far apart (Inbox): 40 updates a
// second at most, however many flows a second the workers record.
constexpr timeval kInboxPause = {0, 25'000};
constexpr int kHttpTimeoutSeconds = 60;
constexpr int kStreamTimeoutSeconds = 24 * 3600;
constexpr size_t kStreamWriteChunk = 1 << 20;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
// The largest body of a request other than an import (rules, held flows, edits).
constexpr uint64_t kMaxApiBody = 64 << 20;
constexpr char kCookieName[] = "mitmd_token";

constexpr char kAppCsp[] =
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
// Recorded bodies are attacker-controlled: a sandboxed, script-less document at most.
constexpr char kBodyCsp[] =
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; media-src 'self'";
constexpr char kCaPageCsp[] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Query-string parameters, decoded.
class Params {
 public:
  explicit Params(const char* query) {
    kv_.tqh_first = nullptr;
    kv_.tqh_last = &kv_.tqh_first;
    if (query != nullptr) evhttp_parse_query_str(query, &kv_);
  }
  ~Params() { evhttp_clear_headers(&kv_); }
  Params(const Params&) = delete;
  Params& operator=(const Params&) = delete;

  std::string Get(const char* name) const {
    const char* v = evhttp_find_header(&kv_, name);
    return v ? v : "";
  }
  uint64_t Number(const char* name, uint64_t fallback) const {
    std::string v = Get(name);
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    return (ec == std::errc() && end == v.data() + v.size() && !v.empty()) ? n : fallback;
  }
  bool Flag(const char* name) const {
    std::string v = Get(name);
    return v == "1" || v == "true";
  }

 private:
  evkeyvalq kv_;
};

// A request's path, percent-decoded ("/" when it has none).
std::string DecodedPath(const evhttp_uri* uri) {
  const char* raw_path = uri ? evhttp_uri_get_path(uri) : nullptr;
  char* decoded = evhttp_uridecode(raw_path && *raw_path ? raw_path : "/", 0, nullptr);
  std::string path = decoded ? decoded : "/";
  free(decoded);
  return path;
}

// A request header by name: the first one, as evhttp_find_header would give it.
using HeaderFn = std::function<std::optional<std::string_view>(const char* name)>;

HeaderFn EvhttpHeaders(evhttp_request* req) {
  return [in = evhttp_request_get_input_headers(req)](const char* name) -> std::optional<std::string_view> {
    const char* v = evhttp_find_header(in, name);
    if (v == nullptr) return std::nullopt;
    return std::string_view(v);
  };
}

bool Changes(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "DELETE";
}

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Keeps a flow alive while libevent sends a body that points into it.
void ReleaseFlow(const void*, size_t, void* extra) {
  delete static_cast<std::shared_ptr<const Flow>*>(extra);
}

std::string ExtensionFor(std::string_view content_type) {
  std::string t = LowerCopy(content_type.substr(0, content_type.find(';')));
  if (t.find("json") != std::string::npos) return ".json";
  if (t == "text/html") return ".html";
  if (t == "text/css") return ".css";
  if (t.find("javascript") != std::string::npos) return ".js";
  if (t.find("xml") != std::string::npos && t.find("svg") == std::string::npos) return ".xml";
  if (t == "image/png") return ".png";
  if (t == "image/jpeg") return ".jpg";
  if (t == "image/gif") return ".gif";
  if (t == "image/webp") return ".webp";
  if (t == "image/svg+xml") return ".svg";
  if (t == "application/pdf") return ".pdf";
  if (t.starts_with("text/")) return ".txt";
  return ".bin";
}

// A safe download name from the request path: its last segment, or "body".
std::string DownloadName(const Flow& f, std::string_view side, std::string_view content_type) {
  std::string name;
  if (f.request) {
    std::string_view p = f.request->path;
    p = p.substr(0, p.find('?'));
    size_t slash = p.rfind('/');
    if (slash != std::string_view::npos) p.remove_prefix(slash + 1);
    for (char c : p) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') name.push_back(c);
    }
  }
  if (name.empty() || name.front() == '.') name = StrCat(side == "request" ? "request" : "response", "-body");
  if (name.find('.') == std::string::npos) name += ExtensionFor(content_type);
  return name;
}

double MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

std::string TimestampForFile() {
  time_t now = time(nullptr);
  tm t{};
  gmtime_r(&now, &t);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &t);
  return buf;
}

struct Arrival {
  std::shared_ptr<const Flow> flow;
  uint64_t seq = 0;
};

// Flows handed from worker threads to the web thread. Shared with the FlowStore listener, so it
// stays valid (and its eventfd open) while a listener call is still running after Unsubscribe.
//
// One wake-up per batch, not per flow: once woken, the web thread stops listening and takes the
// queue every kInboxPause for as long as flows keep coming; meanwhile the workers only queue
// (signaled_ stays set: no write to the eventfd, no wake-up of the web thread). Woken per flow,
// the web thread cost more CPU per keep-alive request than the store writer (50-67 us against
// 18-26), and each worker paid a write() and a wake-up for every Publish and Record.
class Inbox {
 public:
  Inbox(int fd, size_t max) : fd_(fd), max_(max) {}
  ~Inbox() { ::close(fd_); }

  int fd() const { return fd_; }

  // Any thread. Never blocks on the web thread.
  void Push(std::shared_ptr<const Flow> flow, uint64_t seq) {
    {
      std::lock_guard lock(mu_);
      if (flows_.size() >= max_) {
        ++dropped_;
        return;
      }
      flows_.push_back(Arrival{std::move(flow), seq});
    }
    if (!signaled_.exchange(true)) {
      uint64_t one = 1;
      ssize_t n = ::write(fd_, &one, sizeof(one));
      (void)n;  // EAGAIN means the counter is already non-zero: the reader wakes anyway
    }
  }

  // Web thread, woken by the eventfd: consumes the signal and leaves signaled_ set, so pushes
  // until Listen() only queue.
  void Quiet() {
    uint64_t counter;
    ssize_t n = ::read(fd_, &counter, sizeof(counter));
    (void)n;
  }
  // Web thread: the next push signals again. Called before the Take that follows it: a flow
  // queued in between (whose push saw signaled_ still set) is in that Take.
  void Listen() { signaled_.store(false); }

  // Web thread.
  std::vector<Arrival> Take(uint64_t* dropped) {
    std::vector<Arrival> out;
    std::lock_guard lock(mu_);
    out.swap(flows_);
    *dropped = dropped_;
    dropped_ = 0;
    return out;
  }

 private:
  int fd_;
  size_t max_;
  std::atomic<bool> signaled_{false};
  std::mutex mu_;
  std::vector<Arrival> flows_;
  uint64_t dropped_ = 0;
};

}  // namespace

struct WebServer::Impl {
  struct Viewer {
    uint64_t id = 0;
    evhttp_request* req = nullptr;
    evhttp_connection* conn = nullptr;
    Filter filter;
    bool conns = false;
    bool flows = true;
    std::string pending;
    double stalled_since = 0;  // monotonic seconds; 0 while it keeps up
  };

  // A HAR download in progress: entries are serialized a batch at a time, each batch once the
  // previous one is on the wire, so a large session never sits in memory as one document.
  struct HarExport {
    evhttp_request* req = nullptr;
    store::SessionDb* db = nullptr;
    std::string session;  // which one |db| is, to notice it closing
    Filter filter;
    store::SqlPrefilter prefilter;
    uint64_t after = 0;   // the last seq sent
    std::unique_ptr<HarStream> har;
  };

  Impl(event_base* b, WebOptions o, FlowStore& s, ca::Authority& a, ConnectionRegistry& c, Logger& l)
      : base(b), opts(std::move(o)), store(s), ca(a), conns(c), log(l) {}
  ~Impl();

  Status Init();
  // Rebuilds the root's downloads when the root was reloaded since they were made.
  Status RefreshCaFiles();
  // Mints the viewer's leaf from the current root into tls_ctx.
  Status BuildTlsContext();

  // ---- plumbing ----
  static void HandleCb(evhttp_request* req, void* arg) { static_cast<Impl*>(arg)->Route(req); }
  static void InboxCb(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->OnInboxSignal(); }
  static void InboxPauseCb(evutil_socket_t, short, void* arg) {
    static_cast<Impl*>(arg)->OnInboxPauseEnd();
  }
  static void HeartbeatCb(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->Heartbeat(); }
  static void ConnsCb(evutil_socket_t, short, void* arg) {
    auto* impl = static_cast<Impl*>(arg);
    impl->CheckStalls();
    impl->PushConnections(false);
  }
  static void ViewerClosedCb(evhttp_connection* conn, void* arg) {
    static_cast<Impl*>(arg)->ViewerClosed(conn);
  }
  static void ExportChunkSentCb(evhttp_connection* conn, void* arg) {
    static_cast<Impl*>(arg)->ContinueExport(conn);
  }

  void Route(evhttp_request* req);
  // Hold, rules and replay (control_api.h): false when |path| is not theirs.
  bool Control(evhttp_request* req, const std::string& path, std::string_view method);
  static bufferevent* BevCb(event_base* base, void* arg);
  bool HostAllowed(const HeaderFn& header) const;
  bool Authorized(const HeaderFn& header, const Params& params, bool* from_query) const;
  // Whether a request may go on, from its head alone (Host, token, X-Mitmd): nullopt, or the
  // refusal. |from_query| tells whether the token came in the query (the cookie to set).
  // |client|: the peer's address ("" when unknown).
  std::optional<Refusal> Admit(std::string_view method, const std::string& path,
                               const Params& params, const HeaderFn& header,
                               std::string_view client, bool* from_query) const;
  // The proxy's address as the client of |req| reaches it, and what the /ca page says to it.
  HostPort ProxyAddressFor(evhttp_request* req) const;
  CaPageInfo CaInfoFor(evhttp_request* req) const;
  // The request gate's question for a head that announces a body (gate_filter.h).
  std::optional<Refusal> AdmitBody(const RequestHead& head) const;
  void AddCommonHeaders(evhttp_request* req, const char* csp);
  void Send(evhttp_request* req, int code, std::string_view type, std::string_view body);
  void SendJson(evhttp_request* req, int code, const json& j);
  void SendError(evhttp_request* req, int code, std::string_view message);

  // ---- handlers ----
  void Info(evhttp_request* req);
  void List(evhttp_request* req, const Params& params);
  void Detail(evhttp_request* req, const store::StoredFlow& e, const Params& params);
  void Body(evhttp_request* req, const store::StoredFlow& e, std::string_view side, const Params& params);
  void Clear(evhttp_request* req);
  void Undo(evhttp_request* req);
  void EditFlow(evhttp_request* req, std::string_view id, std::string_view action);
  void Sessions(evhttp_request* req);
  // The session a read names with ?session= (the current one by default); sends the error and
  // returns null when it cannot be opened.
  store::SessionDb* SessionFor(evhttp_request* req, const Params& params);
  Result<std::optional<store::StoredFlow>> FromQueue(std::string_view id);
  // The request body as JSON; sends the error and returns nullopt when it is not.
  std::optional<json> JsonBody(evhttp_request* req);
  static void PurgeCb(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->store.PurgeSoon(); }
  void Import(evhttp_request* req);
  void ExportHar(evhttp_request* req, const Params& params);
  void ContinueExport(evhttp_connection* conn);
  void Connections(evhttp_request* req);
  void Passthrough(evhttp_request* req, evhttp_cmd_type method, const Params& params);
  void CheckFilter(evhttp_request* req, const Params& params);
  void Events(evhttp_request* req, const Params& params);
  void Static(evhttp_request* req, const StaticFile& file);

  // ---- live stream ----
  void Ingest(const std::vector<Arrival>& flows);
  void OnInboxSignal();
  void OnInboxPauseEnd();
  // Takes what the workers queued to the live stream; false when nothing was there.
  bool DrainInbox();
  void Heartbeat();
  void PushConnections(bool force);
  json ConnectionsJson(size_t max_closed) const;
  void Broadcast(std::string_view text);
  void Flush(Viewer& v);  // sends v.pending; may drop the viewer (erases it)
  bool KeepsUp(Viewer& v);  // false when it was dropped (erased)
  void CheckStalls();
  size_t Backlog(evhttp_connection* conn) const;
  void Drop(evhttp_connection* conn, std::string_view why);
  void ViewerClosed(evhttp_connection* conn);

  event_base* base;
  WebOptions opts;
  FlowStore& store;
  ca::Authority& ca;
  ConnectionRegistry& conns;
  Logger& log;
  std::unique_ptr<store::SessionDb> db;  // the current session, this thread's connection
  std::map<std::string, std::unique_ptr<store::SessionDb>> other_sessions;  // ?session=, read-only
  event* purge_ev = nullptr;
  std::optional<CaDownloads> ca_files;
  uint64_t ca_generation = 0;
  bssl::UniquePtr<SSL_CTX> tls_ctx;
  uint64_t tls_generation = 0;
  evhttp* http = nullptr;
  HostPort bound;
  std::vector<std::string> allowed_hosts;  // empty: any (token mode)
  std::shared_ptr<Inbox> inbox;
  event* inbox_ev = nullptr;
  event* inbox_pause_ev = nullptr;
  event* heartbeat_ev = nullptr;
  event* conns_ev = nullptr;
  uint64_t store_token = 0;
  bool subscribed = false;
  std::unordered_map<evhttp_connection*, std::unique_ptr<Viewer>> viewers;
  std::unordered_map<evhttp_connection*, std::unique_ptr<HarExport>> exports;
  uint64_t next_viewer_id = 1;
  uint64_t dropped_viewers = 0;
  uint64_t dropped_flows = 0;
  uint64_t conns_version_sent = 0;
  bool conns_sent_once = false;
};

WebServer::Impl::~Impl() {
  if (subscribed) store.Unsubscribe(store_token);
  for (event* ev : {inbox_ev, inbox_pause_ev, heartbeat_ev, conns_ev, purge_ev}) {
    if (ev != nullptr) event_free(ev);
  }
  // evhttp_free closes every connection; their close callbacks find no streams left.
  viewers.clear();
  exports.clear();
  if (http != nullptr) evhttp_free(http);
}

Status WebServer::Impl::Init() {
  bool loopback = IsLoopbackHost(opts.listen.host);
  if (!loopback && opts.token.empty()) {
    return Fail(StrCat("the viewer would listen on ", opts.listen.ToString(),
                       ", beyond loopback, without a token: give --web-token TOKEN (or listen on "
                       "127.0.0.1) so that only you can read the recorded traffic"));
  }
  if (auto st = RefreshCaFiles(); !st) return st;

  if (opts.tls) {
    if (auto st = BuildTlsContext(); !st) return st;
  }

  http = evhttp_new(base);
  if (http == nullptr) return Fail("cannot create the viewer's HTTP server");
  evhttp_set_allowed_methods(http,
                             EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
  evhttp_set_max_body_size(http, static_cast<ev_ssize_t>(opts.max_import_bytes));
  evhttp_set_max_headers_size(http, kMaxHeaderBytes);
  evhttp_set_timeout(http, kHttpTimeoutSeconds);
  evhttp_set_bevcb(http, &Impl::BevCb, this);
  evhttp_set_gencb(http, &Impl::HandleCb, this);
  evhttp_bound_socket* sock = evhttp_bind_socket_with_handle(http, opts.listen.host.c_str(), opts.listen.port);
  if (sock == nullptr) {
    return Fail(StrCat("cannot listen on ", opts.listen.ToString(), " for the viewer: ",
                       std::strerror(errno), " (choose another with --web HOST:PORT, or --no-web)"));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(evhttp_bound_socket_get_fd(sock), reinterpret_cast<sockaddr*>(&ss), &len);
  bound.host = opts.listen.host;
  bound.port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (loopback) {
    std::string port = StrCat(":", bound.port);
    allowed_hosts = {"127.0.0.1" + port, "localhost" + port, "[::1]" + port,
                     LowerCopy(bound.ToString())};
  }

  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return Fail(StrCat("cannot create the viewer's wake-up descriptor: ", std::strerror(errno)));
  inbox = std::make_shared<Inbox>(efd, opts.max_pending_flows);
  inbox_ev = event_new(base, efd, EV_READ | EV_PERSIST, &Impl::InboxCb, this);
  inbox_pause_ev = event_new(base, -1, 0, &Impl::InboxPauseCb, this);
  heartbeat_ev = event_new(base, -1, EV_PERSIST, &Impl::HeartbeatCb, this);
  conns_ev = event_new(base, -1, EV_PERSIST, &Impl::ConnsCb, this);
  purge_ev = event_new(base, -1, 0, &Impl::PurgeCb, this);
  if (!inbox_ev || !inbox_pause_ev || !heartbeat_ev || !conns_ev || !purge_ev) {
    return Fail("cannot create the viewer's events");
  }
  timeval beat{opts.heartbeat_seconds, 0};
  event_add(inbox_ev, nullptr);
  event_add(heartbeat_ev, &beat);
  event_add(conns_ev, &kConnsPoll);

  auto reader = store.OpenReader();
  if (!reader) return std::unexpected(reader.error());
  db = std::move(*reader);
  store_token = store.Subscribe(
      [box = inbox](const std::shared_ptr<const Flow>& f, uint64_t seq) { box->Push(f, seq); });
  subscribed = true;
  return {};
}

Status WebServer::Impl::BuildTlsContext() {
  ca::LeafSpec spec;
  bool wildcard = opts.listen.host == "0.0.0.0" || opts.listen.host == "::";
  spec.host = wildcard ? "localhost" : opts.listen.host;
  spec.upstream_dns = {"localhost"};
  spec.upstream_ips = {"127.0.0.1", "::1"};
  uint64_t generation = ca.root_generation();
  auto leaf = ca.LeafFor(spec);
  if (!leaf) return Fail(StrCat("cannot mint the viewer's TLS certificate: ", leaf.error().message));
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return Fail("cannot create the viewer's TLS context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  std::vector<CRYPTO_BUFFER*> chain;
  for (const auto& b : (*leaf)->chain) chain.push_back(b.get());
  if (!SSL_CTX_set_chain_and_key(ctx.get(), chain.data(), chain.size(), (*leaf)->key.get(), nullptr)) {
    return Fail("cannot load the viewer's TLS certificate");
  }
  tls_ctx = std::move(ctx);
  tls_generation = generation;
  return {};
}

Status WebServer::Impl::RefreshCaFiles() {
  uint64_t generation = ca.root_generation();
  if (ca_files && generation == ca_generation) return {};
  auto files = CaDownloads::Create(ca.root(), ca.root_pem(), ca.root_fingerprint_sha256());
  if (!files) return std::unexpected(files.error());
  ca_files = std::move(*files);
  ca_generation = generation;
  return {};
}

// ---- plumbing ----------------------------------------------------------------------------------

bufferevent* WebServer::Impl::BevCb(event_base* base, void* arg) {
  auto* impl = static_cast<Impl*>(arg);
  bufferevent* inner = nullptr;
  if (impl->tls_ctx) {
    // A reloaded root: serve a leaf from the new one (keep the old on failure).
    if (impl->ca.root_generation() != impl->tls_generation) (void)impl->BuildTlsContext();
    inner = NewTlsServerBufferevent(base, impl->tls_ctx.get());
  } else {
    inner = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  }
  return NewGatedBufferevent(base, inner,
                             [impl](const RequestHead& head) { return impl->AdmitBody(head); });
}

bool WebServer::Impl::HostAllowed(const HeaderFn& header) const {
  if (allowed_hosts.empty()) return true;
  auto host = header("Host");
  if (!host) return true;  // HTTP/1.0 without Host: not a browser, so not a rebinding
  std::string h = LowerCopy(*host);
  return std::find(allowed_hosts.begin(), allowed_hosts.end(), h) != allowed_hosts.end();
}

bool WebServer::Impl::Authorized(const HeaderFn& header, const Params& params, bool* from_query) const {
  *from_query = false;
  if (opts.token.empty()) return true;
  auto equal = [&](std::string_view given) {
    return given.size() == opts.token.size() &&
           CRYPTO_memcmp(given.data(), opts.token.data(), given.size()) == 0;
  };
  if (auto auth = header("Authorization")) {
    std::string_view a = *auth;
    if (a.starts_with("Bearer ") && equal(a.substr(7))) return true;
  }
  if (auto cookie = header("Cookie")) {
    std::string_view c = *cookie;
    std::string key = StrCat(kCookieName, "=");
    for (size_t pos = c.find(key); pos != std::string_view::npos; pos = c.find(key, pos + 1)) {
      if (pos != 0 && c[pos - 1] != ' ' && c[pos - 1] != ';') continue;
      std::string_view v = c.substr(pos + key.size());
      v = v.substr(0, v.find(';'));
      if (equal(v)) return true;
    }
  }
  std::string q = params.Get("token");
  if (!q.empty() && equal(q)) {
    *from_query = true;
    return true;
  }
  return false;
}

std::optional<Refusal> WebServer::Impl::Admit(std::string_view method, const std::string& path,
                                              const Params& params, const HeaderFn& header,
                                              std::string_view client, bool* from_query) const {
  *from_query = false;
  if (!HostAllowed(header)) {
    return Refusal{421, "this viewer answers only to loopback host names (127.0.0.1, localhost, [::1])"};
  }
  // Before the token check: a browser or desktop fetching its proxy configuration cannot send a
  // token, and the file holds nothing but the proxy's address.
  if (path == "/proxy.pac") return std::nullopt;
  // A phone on a network --allow-clients names opens the root's page to trust it: it has no
  // token yet, and the page holds nothing secret.
  if (method == "GET" && (path == "/ca" || path.starts_with("/ca/")) &&
      InNetworks(opts.allow_clients, client)) {
    return std::nullopt;
  }
  if (!Authorized(header, params, from_query)) {
    return Refusal{401, "this viewer needs its token: open the address mitmd printed at start (it "
                        "ends in ?token=...), or send Authorization: Bearer TOKEN"};
  }
  if (Changes(method) && header("X-Mitmd") != std::optional<std::string_view>("1")) {
    return Refusal{403, "changes need the header X-Mitmd: 1"};
  }
  return std::nullopt;
}

std::optional<Refusal> WebServer::Impl::AdmitBody(const RequestHead& head) const {
  evhttp_uri* uri = evhttp_uri_parse_with_flags(std::string(head.target).c_str(),
                                                EVHTTP_URI_NONCONFORMANT);
  if (uri == nullptr) return Refusal{400, "the request target is not a URI"};
  std::string path = DecodedPath(uri);
  Params params(evhttp_uri_get_query(uri));
  evhttp_uri_free(uri);
  HeaderFn header = [&head](const char* name) { return head.Find(name); };
  bool from_query = false;
  if (auto refusal = Admit(head.method, path, params, header, "", &from_query)) return refusal;
  if (!Changes(head.method)) return Refusal{400, StrCat("a ", head.method, " has no body here")};
  uint64_t limit = path == "/api/import" ? opts.max_import_bytes : kMaxApiBody;
  if (head.content_length > limit) {
    return Refusal{413, StrCat("this body is ", head.content_length, " bytes; ", path,
                               " takes at most ", limit, " bytes")};
  }
  return std::nullopt;
}

namespace {

// The address of our end of |req|'s connection ("" when unknown).
std::string LocalAddressOf(evhttp_request* req) {
  evhttp_connection* conn = evhttp_request_get_connection(req);
  if (conn == nullptr) return "";
  evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn));
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (fd < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  } else if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      inet_ntop(AF_INET, sin6->sin6_addr.s6_addr + 12, buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    }
  }
  return buf;
}

bool IsWildcard(std::string_view host) { return host.empty() || host == "0.0.0.0" || host == "::"; }

}  // namespace

HostPort WebServer::Impl::ProxyAddressFor(evhttp_request* req) const {
  auto proxy = ParseHostPort(opts.proxy_address);
  if (!proxy) return HostPort{"127.0.0.1", 8080};
  // A proxy on every address is reached on the address this client reached the viewer on (the
  // same machine): a phone's PAC or setup page must not say 127.0.0.1.
  if (IsWildcard(proxy->host)) {
    std::string local = LocalAddressOf(req);
    if (!local.empty()) proxy->host = local;
  }
  return *proxy;
}

CaPageInfo WebServer::Impl::CaInfoFor(evhttp_request* req) const {
  CaPageInfo info;
  info.proxy = ProxyAddressFor(req).ToString();
  info.confdir = opts.confdir;
  std::string scheme = tls_ctx ? "https://" : "http://";
  std::string local = LocalAddressOf(req);
  HostPort viewer{local.empty() ? bound.host : local, bound.port};
  info.pac_url = StrCat(scheme, viewer.ToString(), "/proxy.pac");
  // A QR code only where a phone can follow it: the viewer beyond loopback, on a LAN address.
  if (!IsLoopbackHost(bound.host)) {
    if (IsLoopbackHost(viewer.host)) {
      auto lan = LanAddresses();
      if (!lan.empty()) viewer.host = lan.front();
    }
    if (!IsLoopbackHost(viewer.host)) info.setup_url = StrCat(scheme, viewer.ToString(), "/ca");
  }
  return info;
}

void WebServer::Impl::AddCommonHeaders(evhttp_request* req, const char* csp) {
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
  evhttp_add_header(h, "Referrer-Policy", "no-referrer");
  evhttp_add_header(h, "X-Frame-Options", "DENY");
  evhttp_add_header(h, "Content-Security-Policy", csp);
}

void WebServer::Impl::Send(evhttp_request* req, int code, std::string_view type, std::string_view body) {
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  if (evhttp_find_header(h, "Content-Type") == nullptr) {
    evhttp_add_header(h, "Content-Type", std::string(type).c_str());
  }
  if (evhttp_find_header(h, "Content-Security-Policy") == nullptr) AddCommonHeaders(req, kAppCsp);
  if (evhttp_find_header(h, "Cache-Control") == nullptr) evhttp_add_header(h, "Cache-Control", "no-store");
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, code, http::ReasonPhrase(code).data(), buf);
  evbuffer_free(buf);
}

void WebServer::Impl::SendJson(evhttp_request* req, int code, const json& j) {
  Send(req, code, "application/json; charset=utf-8", Dump(j));
}

void WebServer::Impl::SendError(evhttp_request* req, int code, std::string_view message) {
  SendJson(req, code, {{"error", message}});
}

void WebServer::Impl::Route(evhttp_request* req) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  std::string path = DecodedPath(uri);
  Params params(uri ? evhttp_uri_get_query(uri) : nullptr);
  evhttp_cmd_type method = evhttp_request_get_command(req);
  std::string_view method_name = method == EVHTTP_REQ_GET      ? "GET"
                                 : method == EVHTTP_REQ_POST   ? "POST"
                                 : method == EVHTTP_REQ_PUT    ? "PUT"
                                 : method == EVHTTP_REQ_DELETE ? "DELETE"
                                                               : "OTHER";

  std::string client;
  if (evhttp_connection* conn = evhttp_request_get_connection(req)) {
    char* peer = nullptr;
    ev_uint16_t peer_port = 0;
    evhttp_connection_get_peer(conn, &peer, &peer_port);
    if (peer != nullptr) client = peer;
  }
  bool from_query = false;
  if (auto refusal = Admit(method_name, path, params, EvhttpHeaders(req), client, &from_query)) {
    if (refusal->status != 401) return SendError(req, refusal->status, refusal->message);
    AddCommonHeaders(req, kCaPageCsp);
    return Send(req, 401, "text/html; charset=utf-8",
                "<!doctype html><meta charset=utf-8><title>mitmd viewer</title>"
                "<p style=\"font:16px system-ui;margin:3em\">This viewer needs its token. Open the "
                "address mitmd printed at start (it ends in <code>?token=…</code>), or send "
                "<code>Authorization: Bearer TOKEN</code>.</p>");
  }
  if (path == "/proxy.pac") {
    if (method != EVHTTP_REQ_GET) return SendError(req, 405, "use GET");
    if (opts.proxy_address.empty()) {
      return SendError(req, 503, "the viewer does not know mitmd's proxy address");
    }
    return Send(req, 200, kPacContentType, BuildPac(ProxyAddressFor(req)));
  }
  if (from_query) {
    std::string cookie = StrCat(kCookieName, "=", opts.token, "; Path=/; HttpOnly; SameSite=Strict",
                                tls_ctx ? "; Secure" : "");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie.c_str());
  }
  auto get_only = [&]() {
    if (method == EVHTTP_REQ_GET) return true;
    SendError(req, 405, "use GET");
    return false;
  };

  if (opts.controls && Control(req, path, method_name)) return;
  if (path == "/api/events") { if (get_only()) Events(req, params); return; }
  if (path == "/api/flows") {
    if (method == EVHTTP_REQ_DELETE) return Clear(req);
    if (get_only()) List(req, params);
    return;
  }
  if (path == "/api/clear") {
    if (method != EVHTTP_REQ_POST) return SendError(req, 405, "use POST");
    return Clear(req);
  }
  if (path == "/api/clear/undo") {
    if (method != EVHTTP_REQ_POST) return SendError(req, 405, "use POST");
    return Undo(req);
  }
  if (path == "/api/sessions") { if (get_only()) Sessions(req); return; }
  if (path == "/api/import") {
    if (method != EVHTTP_REQ_POST) return SendError(req, 405, "use POST");
    return Import(req);
  }
  if (path == "/api/export.har") { if (get_only()) ExportHar(req, params); return; }
  if (path == "/api/connections") { if (get_only()) Connections(req); return; }
  if (path == "/api/info") { if (get_only()) Info(req); return; }
  if (path == "/api/filter") { if (get_only()) CheckFilter(req, params); return; }
  if (path.starts_with("/api/flows/")) {
    std::string_view rest = std::string_view(path).substr(11);
    std::string_view id = rest.substr(0, rest.find('/'));
    std::string_view tail = rest.substr(id.size());
    if (method == EVHTTP_REQ_DELETE && (tail.empty() || tail == "/")) return EditFlow(req, id, "delete");
    if (tail == "/mark" || tail == "/comment") {
      if (method != EVHTTP_REQ_POST) return SendError(req, 405, "use POST");
      return EditFlow(req, id, tail.substr(1));
    }
    if (!get_only()) return;
    store::SessionDb* session = SessionFor(req, params);
    if (session == nullptr) return;
    auto e = session->Get(id);
    if (e && !*e && session == db.get()) e = FromQueue(id);
    if (!e) return SendError(req, 500, e.error().message);
    if (!*e) return SendError(req, 404, "no such flow (it may have been cleared or deleted)");
    if (tail.empty() || tail == "/") return Detail(req, **e, params);
    if (tail == "/request/body") return Body(req, **e, "request", params);
    if (tail == "/response/body") return Body(req, **e, "response", params);
    if (tail == "/grpc") return SendJson(req, 200, GrpcViewJson(*(*e)->flow));
    return SendError(req, 404, "unknown flow resource");
  }
  if (path == "/api/passthrough") return Passthrough(req, method, params);
  if (path.starts_with("/api/")) return SendError(req, 404, "unknown API path");
  if (path == "/ca" || path.starts_with("/ca/")) {
    if (!get_only()) return;
    if (auto st = RefreshCaFiles(); !st) return SendError(req, 500, st.error().message);
    auto resp = ca_files->Serve(path, CaInfoFor(req));
    if (!resp) return SendError(req, 404, "no such file; see /ca");
    AddCommonHeaders(req, kCaPageCsp);
    if (!resp->filename.empty()) {
      std::string disp = StrCat("attachment; filename=\"", resp->filename, "\"");
      evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition", disp.c_str());
    }
    return Send(req, resp->status, resp->content_type, resp->body);
  }
  if (const StaticFile* file = FindStaticFile(path)) {
    if (get_only()) Static(req, *file);
    return;
  }
  Send(req, 404, "text/plain; charset=utf-8", "not found\n");
}

bool WebServer::Impl::Control(evhttp_request* req, const std::string& path,
                              std::string_view method) {
  evbuffer* in = evhttp_request_get_input_buffer(req);
  std::string_view body(reinterpret_cast<const char*>(evbuffer_pullup(in, -1)),
                        evbuffer_get_length(in));
  FlowLookup lookup = [this](std::string_view id) -> Result<std::shared_ptr<const Flow>> {
    auto e = db->Get(id);
    if (!e) return std::unexpected(e.error());
    return *e ? (*e)->flow : nullptr;
  };
  auto reply = ControlApi(*opts.controls, opts.replayer).Handle(method, path, body, lookup);
  if (!reply) return false;
  SendJson(req, reply->status, reply->body);
  return true;
}

void WebServer::Impl::Static(evhttp_request* req, const StaticFile& file) {
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  AddCommonHeaders(req, kAppCsp);
  std::string etag(file.etag);
  evhttp_add_header(h, "ETag", etag.c_str());
  evhttp_add_header(h, "Cache-Control", "no-cache");
  const char* inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
  if (inm != nullptr && etag == inm) {
    evhttp_send_reply(req, 304, http::ReasonPhrase(304).data(), nullptr);
    return;
  }
  evhttp_add_header(h, "Content-Type", std::string(file.content_type).c_str());
  evbuffer* buf = evbuffer_new();
  evbuffer_add_reference(buf, file.data.data(), file.data.size(), nullptr, nullptr);
  evhttp_send_reply(req, 200, "OK", buf);
  evbuffer_free(buf);
}

// ---- handlers ----------------------------------------------------------------------------------

void WebServer::Impl::Info(evhttp_request* req) {
  (void)RefreshCaFiles();
  auto counts = db->RecentCounts(kCountsMaxAge);
  FlowStore::Stats st = store.stats();
  json store_json = {{"session", opts.session_name},
                     {"db", store.db_path()},
                     {"written", st.written},
                     {"queued", st.queued},
                     {"dropped", st.dropped}, {"bodies_shed", st.bodies_shed},
                     {"migrating", st.migrating},
                     // seqs the search index has not reached (body: reads those flows whole)
                     {"index_lag", st.index_lag}};
  // Shown as a banner by the viewer: the user must know when recording is failing.
  if (!st.log_error.empty()) store_json["log_error"] = st.log_error;
  if (!st.db_error.empty()) store_json["db_error"] = st.db_error;
  SendJson(req, 200,
           {{"version", opts.version},
            {"proxy", ProxyAddressFor(req).ToString()},
            {"web", StrCat(tls_ctx ? "https://" : "http://", bound.ToString(), "/")},
            {"tls", tls_ctx != nullptr},
            {"session_log", opts.session_log},
            {"session", opts.session_name},
            {"flows", counts ? counts->flows : 0},
            {"last_seq", store.last_seq()},
            {"store", std::move(store_json)},
            {"viewers", viewers.size()},
            {"dropped_viewers", dropped_viewers},
            {"dropped_flows", dropped_flows},
            {"control", opts.controls != nullptr},  // hold, rules and replay (control_api.h)
            {"passthrough", static_cast<bool>(opts.passthrough.list)},  // GET /api/passthrough
            {"ca", {{"fingerprint", ca.root_fingerprint_sha256()},
                    {"android", ca_files->android_name()},
                    {"file", ca.root_cert_path()}}}});
}

// The stream announces a flow when it is recorded, before the writer thread commits its row: a
// flow the live session's database does not have yet is answered from the store's queue, never
// by waiting for the writer. Not queued either: its row was committed between the two looks
// (or it was dropped), so the database answers.
Result<std::optional<store::StoredFlow>> WebServer::Impl::FromQueue(std::string_view id) {
  auto queued = store.FindQueued(std::string(id));
  if (!queued) return db->Get(id);
  auto floor = db->GetMeta("floor");
  if (!floor) return std::unexpected(floor.error());
  if (*floor && queued->seq <= std::strtoull((*floor)->c_str(), nullptr, 10)) {
    return std::optional<store::StoredFlow>();  // recorded before a Clear
  }
  return std::optional<store::StoredFlow>(
      store::StoredFlow{store::RowFromFlow(*queued->flow, queued->seq), std::move(queued->flow)});
}

store::SessionDb* WebServer::Impl::SessionFor(evhttp_request* req, const Params& params) {
  std::string name = params.Get("session");
  if (name.empty() || name == opts.session_name) return db.get();
  if (!IsValidSessionName(name)) {
    SendError(req, 400, "a session name is letters, digits, '-', '_' and '.'");
    return nullptr;
  }
  if (auto it = other_sessions.find(name); it != other_sessions.end()) return it->second.get();
  std::string path = StrCat(opts.sessions_dir, "/", name, ".sqlite");
  if (opts.sessions_dir.empty() || ::access(path.c_str(), F_OK) != 0) {
    SendError(req, 404, StrCat("no session named '", name, "' (see GET /api/sessions)"));
    return nullptr;
  }
  auto opened = store::SessionDb::Open(path, store::SessionDb::Mode::kReadOnly);
  if (!opened) {
    SendError(req, 500, opened.error().message);
    return nullptr;
  }
  // A handful stay open; the oldest name goes first (none is in use between requests, but an
  // export keeps its own: see ExportHar).
  if (other_sessions.size() >= kMaxOpenSessions) {
    for (auto it = other_sessions.begin(); it != other_sessions.end(); ++it) {
      bool in_use = std::any_of(exports.begin(), exports.end(),
                                [&](const auto& x) { return x.second->db == it->second.get(); });
      if (!in_use) {
        other_sessions.erase(it);
        break;
      }
    }
  }
  auto& slot = other_sessions[name];
  slot = std::move(*opened);
  return slot.get();
}

void WebServer::Impl::Sessions(evhttp_request* req) {
  json list = json::array();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(opts.sessions_dir, ec)) {
    std::string file = entry.path().filename().string();
    if (!file.ends_with(".sqlite")) continue;
    std::string name = file.substr(0, file.size() - 7);
    if (!IsValidSessionName(name)) continue;
    json s = {{"name", name}, {"flows", nullptr}, {"bytes", 0}, {"created", nullptr}, {"modified", nullptr}};
    struct stat st{};
    if (::stat(entry.path().c_str(), &st) == 0) {
      uint64_t bytes = static_cast<uint64_t>(st.st_size);
      struct stat wal{};
      if (::stat(StrCat(entry.path().string(), "-wal").c_str(), &wal) == 0) bytes += static_cast<uint64_t>(wal.st_size);
      s["bytes"] = bytes;
      s["modified"] = static_cast<double>(std::max(st.st_mtim.tv_sec, wal.st_mtim.tv_sec));
    }
    store::SessionDb* session = name == opts.session_name ? db.get() : nullptr;
    std::unique_ptr<store::SessionDb> opened;
    if (session == nullptr) {
      auto o = store::SessionDb::Open(entry.path().string(), store::SessionDb::Mode::kReadOnly);
      if (o) {
        opened = std::move(*o);
        session = opened.get();
      } else {
        s["error"] = o.error().message;
      }
    }
    if (session != nullptr) {
      if (auto c = session->Counts()) {
        s["flows"] = c->flows;
        s["first"] = c->first;
        s["last"] = c->last;
      }
      if (auto created = session->GetMeta("created"); created && *created) {
        s["created"] = std::strtod((*created)->c_str(), nullptr);
      }
    }
    list.push_back(std::move(s));
  }
  std::sort(list.begin(), list.end(), [](const json& a, const json& b) { return a["name"] < b["name"]; });
  SendJson(req, 200, {{"current", opts.session_name}, {"sessions", std::move(list)}});
}

void WebServer::Impl::List(evhttp_request* req, const Params& params) {
  auto filter = Filter::Parse(params.Get("filter"));
  if (!filter) return SendError(req, 400, filter.error().message);
  store::SessionDb* session = SessionFor(req, params);
  if (session == nullptr) return;
  store::ListQuery q;
  q.sort = params.Get("sort");
  if (q.sort.empty()) q.sort = "time";
  std::string order = params.Get("order");
  if (!order.empty() && order != "asc" && order != "desc") return SendError(req, 400, "order is asc or desc");
  q.descending = order != "asc";
  q.limit = std::clamp<size_t>(params.Number("limit", kDefaultPage), 1, kMaxPage);
  q.before = params.Number("before", 0);
  q.after = params.Number("after", 0);
  q.offset = params.Number("offset", 0);
  q.budget_seconds = kListBudgetSeconds;
  if (!filter->empty()) {
    store::SqlPrefilter pre = store::CompilePrefilter(filter->text());
    q.where = std::move(pre.where);
    q.where_args = std::move(pre.args);
    if (!pre.exact) {
      q.full_flows = pre.needs_full_flow;
      q.match = [f = &*filter](const Flow& flow) { return f->Matches(flow); };
    }
    q.max_scan = pre.needs_full_flow ? kMaxFullScan : kMaxScan;
  }
  auto page = session->List(q);
  if (!page) return SendError(req, 400, page.error().message);
  json flows = json::array();
  for (const auto& e : page->flows) flows.push_back(RowSummaryJson(e.row));
  auto counts = session->RecentCounts(kCountsMaxAge);
  json out = {{"flows", std::move(flows)},
              {"next_before", page->next_before},
              {"total", counts ? counts->flows : 0},
              {"last_seq", session == db.get() ? store.last_seq() : (counts ? counts->max_seq : 0)},
              {"scanned", page->scanned}};
  if (q.sort != "time") out["next_offset"] = page->next_offset;
  if (!q.descending && q.sort == "time") out["next_after"] = page->next_after;
  if (page->timed_out) out["timed_out"] = true;
  SendJson(req, 200, out);
}

void WebServer::Impl::Detail(evhttp_request* req, const store::StoredFlow& e, const Params& params) {
  SendJson(req, 200, FlowDetailJson(*e.flow, e.row, params.Flag("bodies")));
}

void WebServer::Impl::Body(evhttp_request* req, const store::StoredFlow& e, std::string_view side,
                           const Params& params) {
  const Flow& f = *e.flow;
  const BodyRecord* body = nullptr;
  const HeaderList* headers = nullptr;
  if (side == "request" && f.request) {
    body = &f.request->body;
    headers = &f.request->headers;
  } else if (side == "response" && f.response) {
    body = &f.response->body;
    headers = &f.response->headers;
  }
  if (body == nullptr) return SendError(req, 404, StrCat("this flow has no ", side));
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  AddCommonHeaders(req, kBodyCsp);
  evhttp_add_header(h, "Cache-Control", "no-store");
  const std::string* ct = FindHeader(*headers, "content-type");
  std::string type = ct ? *ct : "application/octet-stream";
  evhttp_add_header(h, "Content-Type", type.c_str());
  evhttp_add_header(h, "X-Mitmd-Body-Size", std::to_string(body->size).c_str());
  evhttp_add_header(h, "X-Mitmd-Body-Truncated", body->truncated ? "1" : "0");
  if (params.Flag("download")) {
    std::string disp = StrCat("attachment; filename=\"", DownloadName(f, side, type), "\"");
    evhttp_add_header(h, "Content-Disposition", disp.c_str());
  }
  evbuffer* buf = evbuffer_new();
  bool sent_decoded = false;
  if (params.Flag("decode") && FindHeader(*headers, "content-encoding") != nullptr) {
    auto decoded = DecodeBodyForHeaders(body->content, *headers, kMaxDecodedBody);
    if (decoded) {
      evhttp_add_header(h, "X-Mitmd-Decoded", decoded->partial ? "partial" : "1");
      evbuffer_add(buf, decoded->data.data(), decoded->data.size());
      sent_decoded = true;
    } else {
      evhttp_add_header(h, "X-Mitmd-Decode-Error", decoded.error().message.c_str());
    }
  }
  if (!sent_decoded) {
    auto* keep = new std::shared_ptr<const Flow>(e.flow);
    if (evbuffer_add_reference(buf, body->content.data(), body->content.size(), &ReleaseFlow, keep) != 0) {
      delete keep;
    }
  }
  evhttp_send_reply(req, 200, "OK", buf);
  evbuffer_free(buf);
}

std::optional<json> WebServer::Impl::JsonBody(evhttp_request* req) {
  evbuffer* in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  std::string_view text(reinterpret_cast<const char*>(evbuffer_pullup(in, -1)), len);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    SendError(req, 400, "the request body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

void WebServer::Impl::Clear(evhttp_request* req) {
  // A token the next Undo must name: only the latest clear can be undone.
  int64_t token = static_cast<int64_t>(MonotonicSeconds() * 1e6) & ((int64_t{1} << 52) - 1);
  auto n = db->Clear(token, store.last_seq());
  if (!n) return SendError(req, 500, n.error().message);
  Broadcast("event: clear\ndata: {}\n\n");
  log.Info("viewer cleared the session", {{"flows", *n}, {"session", opts.session_name}});
  event_del(purge_ev);
  event_add(purge_ev, &kUndoWindow);
  SendJson(req, 200, {{"ok", true}, {"cleared", *n}, {"undo", std::to_string(token)}, {"undo_seconds", kUndoWindow.tv_sec}});
}

void WebServer::Impl::Undo(evhttp_request* req) {
  auto body = JsonBody(req);
  if (!body) return;
  std::string token = body->value("undo", std::string());
  int64_t t = std::strtoll(token.c_str(), nullptr, 10);
  if (token.empty() || t <= 0) return SendError(req, 400, "give the undo token that /api/clear returned");
  auto n = db->Undo(t);
  if (!n) return SendError(req, 409, n.error().message);
  event_del(purge_ev);
  log.Info("viewer undid a clear", {{"flows", *n}});
  Broadcast("event: clear\ndata: {\"undo\":true}\n\n");
  SendJson(req, 200, {{"ok", true}, {"restored", *n}});
}

void WebServer::Impl::EditFlow(evhttp_request* req, std::string_view id, std::string_view action) {
  Result<bool> done = false;
  json update;
  if (action == "delete") {
    done = db->Delete(id);
  } else {
    auto body = JsonBody(req);
    if (!body) return;
    if (action == "mark") {
      auto it = body->find("marked");
      if (it == body->end() || !it->is_boolean()) return SendError(req, 400, "send {\"marked\": true|false}");
      done = db->SetMarked(id, it->get<bool>());
    } else {
      auto it = body->find("comment");
      if (it == body->end() || !it->is_string()) return SendError(req, 400, "send {\"comment\": \"...\"}");
      constexpr size_t kMaxComment = 64 << 10;
      if (it->get_ref<const std::string&>().size() > kMaxComment) return SendError(req, 413, "a comment is at most 64 KiB");
      done = db->SetComment(id, it->get_ref<const std::string&>());
    }
  }
  if (!done) return SendError(req, 500, done.error().message);
  if (!*done) return SendError(req, 404, "no such flow (it may have been cleared or deleted)");
  if (action == "delete") {
    Broadcast(StrCat("event: delete\ndata: ", Dump({{"id", id}}), "\n\n"));
    return SendJson(req, 200, {{"ok", true}});
  }
  auto e = db->Get(id);
  if (e && *e) {
    json summary = RowSummaryJson((*e)->row);
    Broadcast(StrCat("event: flow\ndata: ", Dump(summary), "\n\n"));
    return SendJson(req, 200, summary);
  }
  SendJson(req, 200, {{"ok", true}});
}

void WebServer::Impl::Import(evhttp_request* req) {
  evbuffer* in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  if (len == 0) return SendError(req, 400, "the upload is empty");
  const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
  auto loaded = LoadFlowsFromText(std::string_view(data, len), SIZE_MAX);
  if (!loaded) return SendError(req, 400, loaded.error().message);
  const char* format = loaded->format == LoadedFlows::Format::kHar ? "har" : "jsonl";
  std::string name;
  if (const char* n = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Mitmd-Filename")) {
    for (char c : std::string_view(n).substr(0, 200)) {
      if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) name.push_back(c);
    }
  }
  if (name.empty()) name = "upload";
  size_t read = loaded->flows.size();
  auto added = store.Import(std::move(loaded->flows), StrCat(format, ":", name),
                            loaded->format == LoadedFlows::Format::kJsonl);
  if (!added) return SendError(req, 500, added.error().message);
  log.Info("viewer imported flows", {{"flows", *added}, {"read", read}, {"format", format},
                                     {"skipped", loaded->skipped}, {"problems", loaded->warnings}});
  Broadcast("event: clear\ndata: {\"reload\":true}\n\n");
  SendJson(req, 200, {{"added", *added}, {"duplicates", read - *added}, {"skipped", loaded->skipped},
                      {"dropped", loaded->dropped}, {"format", format}, {"problems", loaded->warnings}});
}

void WebServer::Impl::ExportHar(evhttp_request* req, const Params& params) {
  auto filter = Filter::Parse(params.Get("filter"));
  if (!filter) return SendError(req, 400, filter.error().message);
  evhttp_connection* conn = evhttp_request_get_connection(req);
  if (conn == nullptr) return;
  store::SessionDb* session = SessionFor(req, params);
  if (session == nullptr) return;
  auto x = std::make_unique<HarExport>();
  x->req = req;
  x->db = session;
  HarOptions har_options;
  har_options.creator_version = opts.version;
  x->har = std::make_unique<HarStream>(std::move(har_options));
  x->prefilter = store::CompilePrefilter(filter->text());
  x->filter = std::move(*filter);
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  AddCommonHeaders(req, kAppCsp);
  evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
  evhttp_add_header(h, "Cache-Control", "no-store");
  std::string disp = StrCat("attachment; filename=\"mitmd-", TimestampForFile(), ".har\"");
  evhttp_add_header(h, "Content-Disposition", disp.c_str());
  std::string head_text = x->har->Head();
  evhttp_send_reply_start(req, 200, "OK");
  evhttp_connection_set_closecb(conn, &Impl::ViewerClosedCb, this);
  exports[conn] = std::move(x);
  evbuffer* head = evbuffer_new();
  evbuffer_add(head, head_text.data(), head_text.size());
  evhttp_send_reply_chunk_with_cb(req, head, &Impl::ExportChunkSentCb, this);
  evbuffer_free(head);
}

void WebServer::Impl::ContinueExport(evhttp_connection* conn) {
  auto it = exports.find(conn);
  if (it == exports.end()) return;
  HarExport& x = *it->second;
  // One batch of entries from the database per call, oldest first, each batch once the previous
  // one is on the wire: memory stays at a batch whatever the session's size.
  constexpr size_t kBatchBytes = 1 << 20;
  evbuffer* buf = evbuffer_new();
  bool done = false;
  while (evbuffer_get_length(buf) < kBatchBytes) {
    store::ListQuery q;
    q.descending = false;
    q.after = x.after;
    q.limit = kHarBatchFlows;
    q.full_flows = true;
    q.where = x.prefilter.where;
    q.where_args = x.prefilter.args;
    if (!x.filter.empty()) q.match = [&x](const Flow& f) { return x.filter.Matches(f); };
    q.max_scan = kMaxFullScan;
    auto page = x.db->List(q);
    if (!page) {
      log.Warn("HAR export stopped early", {{"error", page.error().message}});
      done = true;
      break;
    }
    std::string entries;
    for (const auto& e : page->flows) x.har->AppendEntry(*e.flow, entries);
    evbuffer_add(buf, entries.data(), entries.size());
    if (page->next_after == 0) {
      done = true;
      break;
    }
    x.after = page->next_after;
  }
  if (!done) {
    evhttp_send_reply_chunk_with_cb(x.req, buf, &Impl::ExportChunkSentCb, this);
    evbuffer_free(buf);
    return;
  }
  std::string tail = x.har->Tail();
  evbuffer_add(buf, tail.data(), tail.size());
  evhttp_request* req = x.req;
  exports.erase(it);
  evhttp_send_reply_chunk(req, buf);
  evbuffer_free(buf);
  evhttp_send_reply_end(req);
}

json WebServer::Impl::ConnectionsJson(size_t max_closed) const {
  double now = conns.Now();
  json list = json::array();
  size_t open = 0, closed = 0;
  for (const auto& c : conns.Snapshot()) {
    if (c.closed == 0) {
      ++open;
    } else if (++closed > max_closed) {
      continue;
    }
    list.push_back(ConnectionToJson(c, now));
  }
  return {{"now", now}, {"open", open}, {"closed", closed}, {"connections", std::move(list)}};
}

void WebServer::Impl::Connections(evhttp_request* req) {
  SendJson(req, 200, ConnectionsJson(SIZE_MAX));
}

void WebServer::Impl::Passthrough(evhttp_request* req, evhttp_cmd_type method,
                                  const Params& params) {
  if (!opts.passthrough.list || !opts.passthrough.clear) {
    return SendError(req, 404, "auto-passthrough is not available in this viewer");
  }
  if (method == EVHTTP_REQ_GET) return SendJson(req, 200, opts.passthrough.list());
  if (method != EVHTTP_REQ_DELETE) return SendError(req, 405, "use GET or DELETE");
  std::string client = params.Get("client"), host = params.Get("host");
  size_t n = opts.passthrough.clear(client, host);
  log.Info("viewer cleared auto-passthrough pins",
           {{"cleared", n}, {"client", client.empty() ? "any" : client},
            {"host", host.empty() ? "any" : host}});
  SendJson(req, 200, {{"cleared", n}});
}

void WebServer::Impl::CheckFilter(evhttp_request* req, const Params& params) {
  auto filter = Filter::Parse(params.Get("q"));
  if (!filter) return SendJson(req, 400, {{"ok", false}, {"error", filter.error().message}});
  SendJson(req, 200, {{"ok", true}, {"empty", filter->empty()}});
}

void WebServer::Impl::Events(evhttp_request* req, const Params& params) {
  auto filter = Filter::Parse(params.Get("filter"));
  if (!filter) return SendError(req, 400, filter.error().message);
  evhttp_connection* conn = evhttp_request_get_connection(req);
  if (conn == nullptr) return;
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  AddCommonHeaders(req, kAppCsp);
  evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
  evhttp_add_header(h, "Cache-Control", "no-store");
  evhttp_send_reply_start(req, 200, "OK");
  evhttp_connection_set_closecb(conn, &Impl::ViewerClosedCb, this);
  evhttp_connection_set_timeout(conn, kStreamTimeoutSeconds);
  // libevent writes 16 KiB per loop turn by default: far less than a busy proxy produces, which
  // would count against even a fast viewer.
  for (bufferevent* b = evhttp_connection_get_bufferevent(conn); b != nullptr;
       b = bufferevent_get_underlying(b)) {
    bufferevent_set_max_single_write(b, kStreamWriteChunk);
  }
  auto v = std::make_unique<Viewer>();
  v->id = next_viewer_id++;
  v->req = req;
  v->conn = conn;
  v->filter = std::move(*filter);
  v->conns = params.Flag("conns");
  v->flows = params.Get("flows") != "0";
  Viewer& viewer = *v;
  viewers[conn] = std::move(v);
  log.Debug("viewer stream opened", {{"viewer", viewer.id}, {"filter", viewer.filter.text()}});
  viewer.pending = StrCat("retry: 2000\nevent: hello\ndata: ",
                          Dump({{"last_seq", store.last_seq()}, {"session", opts.session_name}}), "\n\n");
  if (viewer.conns) viewer.pending += StrCat("event: conns\ndata: ", Dump(ConnectionsJson(kClosedConnsInStream)), "\n\n");
  Flush(viewer);
}

// ---- live stream -------------------------------------------------------------------------------

size_t WebServer::Impl::Backlog(evhttp_connection* conn) const {
  size_t n = 0;
  for (bufferevent* b = evhttp_connection_get_bufferevent(conn); b != nullptr;
       b = bufferevent_get_underlying(b)) {
    n += evbuffer_get_length(bufferevent_get_output(b));
  }
  return n;
}

bool WebServer::Impl::KeepsUp(Viewer& v) {
  size_t backlog = Backlog(v.conn);
  if (backlog > opts.max_viewer_buffer) {
    Drop(v.conn, StrCat(backlog, " bytes of its event stream are unsent"));
    return false;
  }
  if (backlog <= opts.max_viewer_backlog) {
    v.stalled_since = 0;
    return true;
  }
  double now = MonotonicSeconds();
  if (v.stalled_since == 0) v.stalled_since = now;
  if (now - v.stalled_since > opts.viewer_stall_seconds) {
    Drop(v.conn, "it stopped reading its event stream");
    return false;
  }
  return true;
}

void WebServer::Impl::CheckStalls() {
  std::vector<evhttp_connection*> conns_now;
  for (auto& [conn, v] : viewers) conns_now.push_back(conn);
  for (evhttp_connection* conn : conns_now) {
    auto it = viewers.find(conn);
    if (it != viewers.end()) KeepsUp(*it->second);
  }
}

void WebServer::Impl::Flush(Viewer& v) {
  if (v.pending.empty()) return;
  if (!KeepsUp(v)) return;
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, v.pending.data(), v.pending.size());
  v.pending.clear();
  evhttp_send_reply_chunk(v.req, buf);
  evbuffer_free(buf);
}

void WebServer::Impl::Drop(evhttp_connection* conn, std::string_view why) {
  auto it = viewers.find(conn);
  if (it == viewers.end()) return;
  log.Warn("viewer dropped", {{"viewer", it->second->id}, {"reason", why}});
  viewers.erase(it);
  ++dropped_viewers;
  evhttp_connection_free(conn);
}

void WebServer::Impl::ViewerClosed(evhttp_connection* conn) {
  if (auto x = exports.find(conn); x != exports.end()) {
    evhttp_request* req = x->second->req;
    exports.erase(x);
    if (evhttp_request_get_connection(req) == nullptr) evhttp_send_reply_end(req);
    return;
  }
  auto it = viewers.find(conn);
  if (it == viewers.end()) return;
  evhttp_request* req = it->second->req;
  log.Debug("viewer stream closed", {{"viewer", it->second->id}});
  viewers.erase(it);
  // When the peer went away, libevent detached the unfinished request from the connection
  // and left it to us: finishing it frees it.
  if (evhttp_request_get_connection(req) == nullptr) evhttp_send_reply_end(req);
}

void WebServer::Impl::Broadcast(std::string_view text) {
  std::vector<evhttp_connection*> conns_now;
  for (auto& [conn, v] : viewers) conns_now.push_back(conn);
  for (evhttp_connection* conn : conns_now) {
    auto it = viewers.find(conn);
    if (it == viewers.end()) continue;
    it->second->pending.append(text);
    Flush(*it->second);
  }
}

void WebServer::Impl::Ingest(const std::vector<Arrival>& flows) {
  for (const auto& [f, seq] : flows) {
    std::string line;
    for (auto& [conn, v] : viewers) {
      if (!v->flows || !v->filter.Matches(*f)) continue;
      if (line.empty()) {
        line = StrCat("event: flow\ndata: ", Dump(FlowSummaryJson(*f, seq)), "\n\n");
      }
      v->pending += line;
    }
  }
  std::vector<evhttp_connection*> conns_now;
  for (auto& [conn, v] : viewers) conns_now.push_back(conn);
  for (evhttp_connection* conn : conns_now) {
    auto it = viewers.find(conn);
    if (it != viewers.end()) Flush(*it->second);
  }
}

void WebServer::Impl::OnInboxSignal() {
  inbox->Quiet();
  DrainInbox();
  event_del(inbox_ev);
  event_add(inbox_pause_ev, &kInboxPause);
}

void WebServer::Impl::OnInboxPauseEnd() {
  if (DrainInbox()) {
    event_add(inbox_pause_ev, &kInboxPause);  // flows keep coming: stay quiet
    return;
  }
  inbox->Listen();
  event_add(inbox_ev, nullptr);
  DrainInbox();  // a flow queued just before Listen(), by a push that did not signal
}

bool WebServer::Impl::DrainInbox() {
  uint64_t dropped = 0;
  auto flows = inbox->Take(&dropped);
  if (dropped > 0) {
    dropped_flows += dropped;
    log.Warn("viewer fell behind; flows left out of its live stream (still in the session)",
             {{"flows", dropped}});
    Broadcast(StrCat("event: dropped\ndata: ", Dump({{"flows", dropped}}), "\n\n"));
  }
  if (!flows.empty()) Ingest(flows);
  return !flows.empty() || dropped > 0;
}

void WebServer::Impl::Heartbeat() { Broadcast(": ping\n\n"); }

void WebServer::Impl::PushConnections(bool force) {
  bool any = std::any_of(viewers.begin(), viewers.end(), [](const auto& p) { return p.second->conns; });
  if (!any) return;
  uint64_t version = conns.version();
  if (!force && conns_sent_once && version == conns_version_sent) return;
  conns_version_sent = version;
  conns_sent_once = true;
  std::string text = StrCat("event: conns\ndata: ", Dump(ConnectionsJson(kClosedConnsInStream)), "\n\n");
  std::vector<evhttp_connection*> targets;
  for (auto& [conn, v] : viewers) {
    if (v->conns) targets.push_back(conn);
  }
  for (evhttp_connection* conn : targets) {
    auto it = viewers.find(conn);
    if (it == viewers.end()) continue;
    it->second->pending += text;
    Flush(*it->second);
  }
}

// ---- WebServer ---------------------------------------------------------------------------------

Result<std::unique_ptr<WebServer>> WebServer::Start(event_base* base, WebOptions opts, FlowStore& store,
                                                     ca::Authority& ca, ConnectionRegistry& conns,
                                                     Logger& log) {
  auto impl = std::make_unique<Impl>(base, std::move(opts), store, ca, conns, log);
  if (auto st = impl->Init(); !st) return std::unexpected(st.error());
  auto server = std::unique_ptr<WebServer>(new WebServer(std::move(impl)));
  log.Info("viewer listening", {{"url", server->url()}, {"session", server->impl_->opts.session_name}});
  return server;
}

WebServer::WebServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebServer::~WebServer() = default;

HostPort WebServer::address() const { return impl_->bound; }

std::string WebServer::url() const {
  HostPort shown = impl_->bound;
  if (shown.host == "0.0.0.0") shown.host = "127.0.0.1";
  if (shown.host == "::") shown.host = "::1";
  std::string u = StrCat(impl_->tls_ctx ? "https://" : "http://", shown.ToString(), "/");
  if (!impl_->opts.token.empty()) u += StrCat("?token=", impl_->opts.token);
  return u;
}

size_t WebServer::viewer_count() const { return impl_->viewers.size(); }
uint64_t WebServer::dropped_viewers() const { return impl_->dropped_viewers; }

}  // namespace mitmd::web
