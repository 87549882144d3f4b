#include "integration/web_fixture.h"

#include <arpa/inet.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <sstream>

#include "core/strings.h"
#include "support/process.h"

namespace mitmd::testing {
namespace {

int DevNull() {
  static int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  return fd;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

nlohmann::json HttpResult::Json() const {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON (status " << status << "): " << body.substr(0, 300);
  return j;
}

WebServerTest::WebServerTest() : log_(DevNull(), LogLevel::kError) {
  evthread_use_pthreads();
  auto ca = ca::Authority::LoadOrCreate(dir_.File("conf"));
  EXPECT_TRUE(ca) << ca.error().message;
  if (ca) ca_ = std::move(*ca);
  auto store = FlowStore::Open({.db_path = dir_.File("session.sqlite")});
  EXPECT_TRUE(store) << store.error().message;
  if (store) store_ = std::move(*store);
}

WebServerTest::~WebServerTest() { StopServer(); }

void WebServerTest::StartServer(web::WebOptions options) {
  ASSERT_TRUE(ca_ && store_);
  if (options.listen.port == 8081 && options.listen.host == "127.0.0.1") options.listen.port = 0;
  tls_ = options.tls;
  base_ = event_base_new();
  ASSERT_NE(base_, nullptr);
  auto server = web::WebServer::Start(base_, std::move(options), *store_, *ca_, conns_, log_);
  ASSERT_TRUE(server) << server.error().message;
  server_ = std::move(*server);
  port_ = server_->address().port;
  loop_ = std::thread([base = base_] { event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY); });
}

void WebServerTest::OnLoop(std::function<void()> fn) {
  std::promise<void> done;
  auto task = new std::function<void()>([&] {
    fn();
    done.set_value();
  });
  event_base_once(
      base_, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) {
        auto* t = static_cast<std::function<void()>*>(arg);
        (*t)();
        delete t;
      },
      task, nullptr);
  done.get_future().wait();
}

void WebServerTest::StopServer() {
  if (base_ == nullptr) return;
  if (loop_.joinable()) {
    OnLoop([this] {
      server_.reset();
      event_base_loopbreak(base_);
    });
    loop_.join();
  }
  server_.reset();
  // One more turn of the loop: freeing the server queued the deferred callbacks and finalizers of
  // its connections' bufferevents, which hold the last references; event_base_free would drop
  // them unrun and leak those connections (LeakSanitizer reports them).
  event_base_loop(base_, EVLOOP_NONBLOCK);
  event_base_free(base_);
  base_ = nullptr;
}

std::string WebServerTest::BaseUrl() const {
  return StrCat(tls_ ? "https" : "http", "://127.0.0.1:", port_);
}

HttpResult WebServerTest::Fetch(const std::string& path, const std::vector<std::string>& curl_args) {
  std::string headers = dir_.File("headers.txt");
  std::string body = dir_.File("body.bin");
  std::vector<std::string> args = {"-D", headers, "-o", body, "-w", "%{http_code}"};
  if (tls_) {
    args.push_back("--cacert");
    args.push_back(ca_->root_cert_path());
  }
  args.insert(args.end(), curl_args.begin(), curl_args.end());
  if (path.starts_with("http")) {
    args.push_back(path);
  } else {
    args.push_back(BaseUrl() + path);
  }
  // 90 s, not 20: under ASan or TSan beside the rest of the suite, the web thread can be tens
  // of seconds behind after a test recorded thousands of flows (it ingests every arrival before
  // it reads the next request); a stalled server still fails the test, later.
  ProcessResult r = RunCurl(args, std::chrono::seconds(90));
  HttpResult out;
  out.status = std::atoi(r.out.c_str());
  out.error = r.err;
  out.body = Slurp(body);
  std::istringstream lines(Slurp(headers));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out.headers[name] = value;
  }
  ::unlink(headers.c_str());
  ::unlink(body.c_str());
  return out;
}

HttpResult WebServerTest::Post(const std::string& path, const std::string& body,
                               const std::vector<std::string>& curl_args) {
  std::string upload = dir_.File("upload.bin");
  WriteFile(upload, body);
  std::vector<std::string> args = {"-X", "POST", "--data-binary", "@" + upload};
  args.insert(args.end(), curl_args.begin(), curl_args.end());
  return Fetch(path, args);
}

std::shared_ptr<const Flow> WebServerTest::Record(Flow flow) {
  auto shared = std::make_shared<const Flow>(std::move(flow));
  store_->Record(shared);
  return shared;
}

void WebServerTest::WaitForFlowCount(size_t n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  size_t have = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    size_t count = 0;
    OnLoop([&] {});  // the inbox is drained between loop callbacks
    HttpResult r = Fetch("/api/info");
    if (r.status == 200) count = r.Json().value("flows", size_t{0});
    have = count;
    if (have >= n) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "the viewer holds " << have << " flows, expected " << n;
}

EventStream::~EventStream() {
  if (fd_ >= 0) ::close(fd_);
}

bool EventStream::Open(uint16_t port, const std::string& path_and_query, int receive_buffer) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  if (receive_buffer > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) return false;
  std::string req = StrCat("GET ", path_and_query, " HTTP/1.1\r\nHost: 127.0.0.1:", port,
                           "\r\nAccept: text/event-stream\r\n\r\n");
  return ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
}

bool EventStream::ReadFor(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return true;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return true;
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    received_.append(buf, static_cast<size_t>(n));
  }
}

bool EventStream::WaitFor(const std::string& text, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (received_.find(text) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return received_.find(text) != std::string::npos;
    received_.append(buf, static_cast<size_t>(n));
  }
  return true;
}

std::vector<nlohmann::json> EventStream::Events(const std::string& name) const {
  std::vector<nlohmann::json> out;
  std::string marker = "event: " + name + "\n";
  for (size_t pos = received_.find(marker); pos != std::string::npos;
       pos = received_.find(marker, pos + 1)) {
    size_t data = received_.find("data: ", pos);
    if (data == std::string::npos) break;
    size_t end = received_.find('\n', data);
    if (end == std::string::npos) break;
    // Chunked transfer framing may split a line; events this size never straddle a chunk.
    auto j = nlohmann::json::parse(received_.substr(data + 6, end - data - 6), nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace mitmd::testing
