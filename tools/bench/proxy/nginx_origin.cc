#include "nginx_origin.h"

#include <openssl/pem.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>

#include "core/strings.h"

namespace mitmd::bench {
namespace {

constexpr auto kStartup = std::chrono::seconds(10);
constexpr auto kStop = std::chrono::seconds(10);
constexpr auto kPoll = std::chrono::milliseconds(20);

Status WritePem(const std::string& path, const std::function<int(BIO*)>& write) {
  bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
  if (!bio || !write(bio.get())) return Fail(StrCat("cannot write ", path));
  return {};
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Fail(StrCat("cannot write ", path));
  return {};
}

}  // namespace

Result<std::unique_ptr<NginxOrigin>> NginxOrigin::Start(const std::string& binary,
                                                        const BenchPki& pki, size_t body_bytes) {
  std::unique_ptr<NginxOrigin> o(new NginxOrigin());
  auto dir = TempDir::Create("mitmd-bench-nginx");
  if (!dir) return std::unexpected(dir.error());
  o->dir_ = std::move(*dir);
  const TempDir& d = *o->dir_;
  auto port = PickFreePort();
  if (!port) return std::unexpected(port.error());
  o->port_ = *port;

  if (auto st = WritePem(d.File("leaf.pem"),
                         [&](BIO* b) { return PEM_write_bio_X509(b, pki.leaf_cert.get()); });
      !st) {
    return std::unexpected(st.error());
  }
  if (auto st = WritePem(d.File("leaf.key"),
                         [&](BIO* b) {
                           return PEM_write_bio_PrivateKey(b, pki.leaf_key.get(), nullptr,
                                                           nullptr, 0, nullptr, nullptr);
                         });
      !st) {
    return std::unexpected(st.error());
  }
  // The body is answered from memory ("return"): the workers (which drop root) need to read
  // nothing from the private temporary directory, and no file I/O is measured.
  std::string conf = StrCat(
      "worker_processes auto;\n"
      "daemon off;\n"
      "pid ", d.File("nginx.pid"), ";\n"
      "error_log ", d.File("error.log"), " warn;\n"
      "events { worker_connections 4096; }\n"
      "http {\n"
      "  access_log off;\n"
      "  client_body_temp_path ", d.File("tmp"), ";\n"
      "  proxy_temp_path ", d.File("tmp"), ";\n"
      "  fastcgi_temp_path ", d.File("tmp"), ";\n"
      "  uwsgi_temp_path ", d.File("tmp"), ";\n"
      "  scgi_temp_path ", d.File("tmp"), ";\n"
      "  keepalive_requests 1000000;\n"
      "  server {\n"
      "    listen 127.0.0.1:", o->port_, " ssl;\n"
      "    ssl_certificate ", d.File("leaf.pem"), ";\n"
      "    ssl_certificate_key ", d.File("leaf.key"), ";\n"
      "    ssl_protocols TLSv1.2 TLSv1.3;\n"
      "    ssl_session_cache shared:bench:10m;\n"
      "    location = /bytes {\n"
      "      default_type application/octet-stream;\n"
      "      return 200 \"", std::string(body_bytes, 'x'), "\";\n"
      "    }\n"
      "  }\n"
      "}\n");
  if (auto st = WriteFile(d.File("nginx.conf"), conf); !st) return std::unexpected(st.error());
  auto child = Child::Spawn({binary, "-p", d.path(), "-c", d.File("nginx.conf"), "-e",
                             d.File("error.log")},
                            {}, d.File("stdout.txt"), d.File("stderr.txt"));
  if (!child) return std::unexpected(child.error());
  o->child_ = std::move(*child);
  auto deadline = std::chrono::steady_clock::now() + kStartup;
  while (std::chrono::steady_clock::now() < deadline) {
    if (CanConnect(o->port_)) return o;
    if (!o->child_->Running()) {
      return Fail(StrCat("nginx exited during start-up (apt-get install nginx-light): ",
                         Tail(ReadFileOrEmpty(d.File("stderr.txt")) +
                                  ReadFileOrEmpty(d.File("error.log")),
                              400)));
    }
    std::this_thread::sleep_for(kPoll);
  }
  return Fail(StrCat("nginx did not accept connections on port ", o->port_, " within ",
                     kStartup.count(), " s"));
}

NginxOrigin::~NginxOrigin() { Stop(); }

void NginxOrigin::Stop() {
  if (!child_) return;
  child_->Signal(SIGTERM);  // fast shutdown of master and workers
  child_->Wait(kStop);      // ~Child SIGKILLs the group if it is still there
  child_.reset();
}

}  // namespace mitmd::bench
