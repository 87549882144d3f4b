#pragma once
// Small real clients and servers for the issue-8 integration tests, in Python (/usr/bin/python3,
// which has Debian's ssl module): what curl cannot do (an ALPN of our choosing, seeing whether
// the TLS close was clean, a server that speaks first). Each prints one JSON line.

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/process.h"

namespace mitmd::testing {

// Through the proxy on 127.0.0.1:|proxy_port|: CONNECT |authority|, then (unless |tls| is false)
// TLS to |sni| trusting |ca_file| with ALPN |alpn| (comma-separated, may be empty), sends |send|
// (Python escapes allowed, e.g. "\\r\\n"), reads until the peer closes or |read_seconds| pass.
// Prints {"connect": status line, "version", "alpn", "received" (latin-1), "close": "clean" |
// "unclean" | "timeout" | "reset", "error"}.
inline const char kTunnelClient[] = R"py(
import json, socket, ssl, sys, time
proxy_port, authority, tls, sni, ca, alpn, send, read_s = sys.argv[1:9]
out = {"received": "", "close": "", "error": ""}
try:
    s = socket.create_connection(("127.0.0.1", int(proxy_port)), timeout=10)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority)).encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(1)
        if not chunk:
            break
        reply += chunk
    out["connect"] = reply.split(b"\r\n")[0].decode("latin-1")
    if tls == "1":
        ctx = ssl.create_default_context(cafile=ca)
        # Python's default treats a close without close_notify as a clean one.
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        if alpn:
            ctx.set_alpn_protocols(alpn.split(","))
        s = ctx.wrap_socket(s, server_hostname=sni, suppress_ragged_eofs=False)
        out["version"] = s.version()
        out["alpn"] = s.selected_alpn_protocol() or ""
    if send:
        s.sendall(send.encode("latin-1").decode("unicode_escape").encode("latin-1"))
    s.settimeout(float(read_s))
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                out["close"] = "clean"
                break
            data += chunk
    except socket.timeout:
        out["close"] = "timeout"
    except ssl.SSLEOFError:
        out["close"] = "unclean"
    except ssl.SSLError as e:  # OpenSSL 3 words a missing close_notify this way
        if "UNEXPECTED_EOF" not in str(e):
            raise
        out["close"] = "unclean"
    except ConnectionResetError:
        out["close"] = "reset"
    out["received"] = data.decode("latin-1")
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(out))
)py";

// Runs kTunnelClient; the parsed JSON (or {"error": ...} when it did not print one).
inline nlohmann::json RunTunnelClient(uint16_t proxy_port, const std::string& authority,
                                      bool tls, const std::string& sni,
                                      const std::string& ca_file, const std::string& alpn,
                                      const std::string& send, double read_seconds) {
  ProcessResult r = RunProcess({"/usr/bin/python3", "-c", kTunnelClient,
                                std::to_string(proxy_port), authority, tls ? "1" : "0", sni,
                                ca_file, alpn, send, std::to_string(read_seconds)},
                               std::chrono::seconds(30));
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  if (doc.is_discarded()) return {{"error", "no JSON from the client: " + r.out + r.err}};
  return doc;
}

}  // namespace mitmd::testing

namespace mitmd::testing {

// A TLS server (argv: CERT KEY) that answers every request with a close-delimited body
// ("HTTP/1.1 200 OK" and no Content-Length) and then closes the TCP connection without a
// close_notify: a truncation the client cannot tell from the end of the body unless the TLS
// close is passed on as it happened.
inline const char kUncleanCloseServer[] = R"py(
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(16)
print("port %d" % lsock.getsockname()[1], flush=True)
def serve(raw):
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial body")
        raw.shutdown(socket.SHUT_RDWR)  # TCP FIN with no TLS close_notify before it
    except Exception:
        pass
    finally:
        raw.close()
while True:
    raw, _ = lsock.accept()
    threading.Thread(target=serve, args=(raw,), daemon=True).start()
)py";

// A plain TCP server that speaks first, as SMTP and SSH do: "220 banner ready\r\n" on accept,
// then echoes what it receives until the peer closes.
inline const char kBannerServer[] = R"py(
import socket, sys, threading
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(16)
print("port %d" % lsock.getsockname()[1], flush=True)
def serve(conn):
    try:
        conn.sendall(b"220 banner ready\r\n")
        while True:
            data = conn.recv(4096)
            if not data:
                break
            conn.sendall(data)
    except Exception:
        pass
    finally:
        conn.close()
while True:
    conn, _ = lsock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
)py";

// A server process whose first stdout line is "port N" (the Python servers above, or
// `openssl s_server`'s "ACCEPT HOST:PORT"); stopped (its process group killed) on destruction.
class ScriptServer {
 public:
  // Starts argv with stdout and stderr in |dir| and waits (bounded) for the port line.
  Status Start(const std::vector<std::string>& argv, const std::string& dir) {
    out_ = dir + "/server.out";
    Status st = child_.Start(argv, {}, out_, dir + "/server.err");
    if (!st) return st;
    for (int i = 0; i < 200; ++i) {
      std::string text = ReadAll(out_);
      for (const char* prefix : {"port ", "ACCEPT 127.0.0.1:"}) {
        if (size_t at = text.find(prefix); at != std::string::npos) {
          port_ = static_cast<uint16_t>(std::stoi(text.substr(at + std::strlen(prefix))));
          return {};
        }
      }
      if (!child_.running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Fail("the test server did not print its port: " + ReadAll(dir + "/server.err"));
  }
  uint16_t port() const { return port_; }
  std::string output() const { return ReadAll(out_); }

 private:
  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  ChildProcess child_;
  std::string out_;
  uint16_t port_ = 0;
};

// The viewer's port from mitmd's "viewer listening on http://HOST:PORT/" line, waited for (up to
// 30 s: a sanitizer build on a busy machine starts slowly); 0 if it never appears.
inline uint16_t WaitForViewerPort(const MitmdProcess& mitmd) {
  const std::regex line("viewer listening on http://[^:/]+:(\\d+)/");
  for (int i = 0; i < 600; ++i) {
    std::string text = mitmd.StdoutText();
    std::smatch m;
    if (std::regex_search(text, m, line)) return static_cast<uint16_t>(std::stoi(m[1]));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

}  // namespace mitmd::testing
