#include "ca/root_store.h"

#include <fcntl.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ca/root_cert.h"
#include "ca/x509_util.h"
#include "core/strings.h"

namespace mitmd::ca {
namespace {

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr mode_t kPrivateFileMode = 0600;
constexpr mode_t kPublicFileMode = 0644;
constexpr mode_t kPrivateDirMode = 0700;
constexpr mode_t kGroupOtherBits = 077;
constexpr int kMaxBackupAttempts = 100;

std::string Errno() { return std::strerror(errno); }

std::string ModeString(mode_t mode) {
  char buf[8];
  snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Status WriteAll(int fd, const std::string& content, const std::string& path) {
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(StrCat("cannot write ", path, ": ", Errno()));
    done += n;
  }
  if (fsync(fd) != 0) return Fail(StrCat("cannot write ", path, ": ", Errno()));
  return {};
}

// Writes |content| to a temporary file created O_EXCL with |mode|, then renames it to |path|
// unless |path| exists. The file is never visible with wider permissions than |mode|.
Status WriteNewFile(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp";
  unlink(tmp.c_str());  // left over from an interrupted write; ours, and never the final name
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Fail(StrCat("cannot create ", tmp, ": ", Errno()));
  // The umask may have narrowed |mode|; a public certificate should stay readable.
  fchmod(fd, mode);
  Status st = WriteAll(fd, content, tmp);
  close(fd);
  if (st && renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    st = Fail(StrCat("cannot create ", path, ": ", Errno()));
  }
  if (!st) unlink(tmp.c_str());
  return st;
}

}  // namespace

RootPaths DefaultRootPaths(const std::string& confdir) {
  return RootPaths{confdir + "/" + kRootCertFile, confdir + "/" + kRootKeyFile};
}

Result<std::string> ReadSmallFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(StrCat("cannot read ", path, ": ", Errno()));
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = Errno();
      close(fd);
      return Fail(StrCat("cannot read ", path, ": ", why));
    }
    if (n == 0) break;
    out.append(buf, n);
    if (out.size() > kMaxFileBytes) {
      close(fd);
      return Fail(StrCat(path, " is too large to be a certificate or key"));
    }
  }
  close(fd);
  return out;
}

Result<Root> RootFromPem(std::string_view cert_pem, std::string_view key_pem,
                         const std::string& cert_name, const std::string& key_name) {
  auto cert = ParseCertPem(cert_pem);
  if (!cert) return Fail(StrCat(cert_name, ": ", cert.error().message));
  auto key = ParseKeyPem(key_pem);
  if (!key) return Fail(StrCat(key_name, ": ", key.error().message));
  if (auto st = CheckSigningKey(key->get()); !st) {
    return Fail(StrCat(key_name, ": ", st.error().message));
  }
  if (!X509_check_private_key(cert->get(), key->get())) {
    ERR_clear_error();
    return Fail(
        StrCat(key_name, " is not the private key of ", cert_name,
               ": restore the matching pair, or move both files away to create a new root"));
  }
  if (X509_check_ca(cert->get()) != 1) {
    return Fail(StrCat(cert_name, " is not a CA certificate (it needs basicConstraints CA:TRUE)"));
  }

  Root root;
  auto not_after = NotAfterOf(cert->get());
  if (!not_after) return Fail(StrCat(cert_name, ": ", not_after.error().message));
  if (*not_after <= time(nullptr)) {
    return Fail(StrCat(cert_name, " has expired: run `mitmd ca regenerate` to make a new root"));
  }
  auto key_id = SubjectKeyIdOf(cert->get());
  if (!key_id) return Fail(StrCat(cert_name, ": ", key_id.error().message));
  auto der = CertToDer(cert->get());
  if (!der) return Fail(StrCat(cert_name, ": ", der.error().message));
  auto buffer = CertToBuffer(cert->get());
  if (!buffer) return Fail(StrCat(cert_name, ": ", buffer.error().message));
  auto pem = CertToPem(cert->get());
  if (!pem) return Fail(StrCat(cert_name, ": ", pem.error().message));

  auto scope = Scope::Of(cert->get());
  if (!scope) return Fail(StrCat(cert_name, ": ", scope.error().message));

  root.scope = std::move(*scope);
  root.not_after = *not_after;
  root.key_id = std::move(*key_id);
  root.fingerprint_sha256 = Fingerprint(*der, EVP_sha256());
  root.der = std::move(*buffer);
  root.pem = std::move(*pem);
  root.cert = std::move(*cert);
  root.key = std::move(*key);
  return root;
}

Result<Root> LoadRoot(const RootPaths& paths) {
  struct stat st;
  if (stat(paths.key.c_str(), &st) != 0)
    return Fail(StrCat("cannot read ", paths.key, ": ", Errno()));
  if (st.st_mode & kGroupOtherBits) {
    return Fail(StrCat(paths.key, " (the CA private key) is accessible by other users (mode ",
                       ModeString(st.st_mode), "); run `chmod 600 ", paths.key,
                       "` and start again"));
  }
  auto key_pem = ReadSmallFile(paths.key);
  if (!key_pem) return std::unexpected(key_pem.error());
  auto cert_pem = ReadSmallFile(paths.cert);
  if (!cert_pem) return std::unexpected(cert_pem.error());
  return RootFromPem(*cert_pem, *key_pem, paths.cert, paths.key);
}

Status EnsurePrivateDir(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Fail(StrCat(dir, " exists and is not a directory"));
    return {};
  }
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Fail(StrCat("cannot create ", parent.string(), ": ", ec.message()));
  if (mkdir(dir.c_str(), kPrivateDirMode) != 0 && errno != EEXIST) {
    return Fail(StrCat("cannot create ", dir, ": ", Errno()));
  }
  return {};
}

Status WriteRootFiles(const RootPaths& paths, const std::string& cert_pem,
                      const std::string& key_pem) {
  if (auto st = WriteNewFile(paths.key, key_pem, kPrivateFileMode); !st) return st;
  return WriteNewFile(paths.cert, cert_pem, kPublicFileMode);
}

Result<RootFiles> NewRootFiles(KeyType type, const Scope& scope) {
  auto key = GenerateKey(type);
  if (!key) return std::unexpected(key.error());
  auto constraints = scope.ToNameConstraints();
  if (!constraints) return std::unexpected(constraints.error());
  RootSpec spec{NewInstallId(), constraints->get()};
  auto cert = MintRoot(key->get(), spec, time(nullptr));
  if (!cert) return std::unexpected(cert.error());
  auto cert_pem = CertToPem(cert->get());
  if (!cert_pem) return std::unexpected(cert_pem.error());
  auto key_pem = KeyToPem(key->get());
  if (!key_pem) return std::unexpected(key_pem.error());
  return RootFiles{std::move(*cert_pem), std::move(*key_pem)};
}

Result<Root> CreateRoot(const RootPaths& paths, KeyType type, const Scope& scope) {
  auto files = NewRootFiles(type, scope);
  if (!files) return std::unexpected(files.error());
  if (auto st = WriteRootFiles(paths, files->cert_pem, files->key_pem); !st) {
    return std::unexpected(st.error());
  }
  return RootFromPem(files->cert_pem, files->key_pem, paths.cert, paths.key);
}

Result<RootPaths> BackUpRootFiles(const RootPaths& paths, time_t now) {
  struct tm utc;
  gmtime_r(&now, &utc);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
  RootPaths backups;
  for (auto [from, to] :
       {std::pair{&paths.cert, &backups.cert}, std::pair{&paths.key, &backups.key}}) {
    if (access(from->c_str(), F_OK) != 0) continue;
    for (int attempt = 1;; ++attempt) {
      std::string name = attempt == 1 ? StrCat(*from, ".", stamp, ".bak")
                                      : StrCat(*from, ".", stamp, "-", attempt, ".bak");
      if (renameat2(AT_FDCWD, from->c_str(), AT_FDCWD, name.c_str(), RENAME_NOREPLACE) == 0) {
        *to = name;
        break;
      }
      if (errno != EEXIST || attempt >= kMaxBackupAttempts) {
        return Fail(StrCat("cannot move ", *from, " to ", name, ": ", Errno()));
      }
    }
  }
  return backups;
}

Result<Regenerated> RegenerateRoot(const RootPaths& paths, KeyType type, const Scope& scope) {
  auto files = NewRootFiles(type, scope);
  if (!files) return std::unexpected(files.error());
  auto backups = BackUpRootFiles(paths, time(nullptr));
  if (!backups) return std::unexpected(backups.error());
  if (auto st = WriteRootFiles(paths, files->cert_pem, files->key_pem); !st) {
    for (auto [backup, original] :
         {std::pair{&backups->cert, &paths.cert}, std::pair{&backups->key, &paths.key}}) {
      if (!backup->empty()) rename(backup->c_str(), original->c_str());
    }
    return std::unexpected(st.error());
  }
  auto root = RootFromPem(files->cert_pem, files->key_pem, paths.cert, paths.key);
  if (!root) return std::unexpected(root.error());
  return Regenerated{std::move(*backups), std::move(*root)};
}

}  // namespace mitmd::ca
