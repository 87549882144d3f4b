#include "cli/ca_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>

#include "ca/authority.h"
#include "ca/export.h"
#include "ca/keys.h"
#include "ca/root_info.h"
#include "ca/root_store.h"
#include "ca/scope.h"
#include "core/result.h"
#include "core/strings.h"

namespace mitmd::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr mode_t kExportMode = 0644;

struct CaArgs {
  std::string subcommand;
  std::string confdir;
  std::string ca_cert;
  std::string ca_key;
  std::optional<std::string> format;
  std::optional<std::string> out;
  std::optional<std::string> scope;
  std::optional<std::string> key_type;
  bool help = false;
};

Result<CaArgs> ParseCaArgs(const std::vector<std::string_view>& args, std::string_view home) {
  CaArgs a;
  a.confdir = StrCat(home, "/.mitmd");
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h" || arg == "help") {
      a.help = true;
      continue;
    }
    if (!arg.starts_with("--")) {
      if (!a.subcommand.empty()) return Fail(StrCat("unexpected argument '", arg, "'"));
      a.subcommand = arg;
      continue;
    }
    std::string_view name = arg, value;
    bool inline_value = false;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    auto take = [&]() -> Result<std::string> {
      if (inline_value) return std::string(value);
      if (i + 1 >= args.size()) return Fail(StrCat(name, " needs a value"));
      return std::string(args[++i]);
    };
    std::string* slot = nullptr;
    std::optional<std::string>* opt = nullptr;
    if (name == "--confdir")
      slot = &a.confdir;
    else if (name == "--ca-cert")
      slot = &a.ca_cert;
    else if (name == "--ca-key")
      slot = &a.ca_key;
    else if (name == "--format")
      opt = &a.format;
    else if (name == "--out")
      opt = &a.out;
    else if (name == "--scope")
      opt = &a.scope;
    else if (name == "--ca-key-type")
      opt = &a.key_type;
    else
      return Fail(StrCat("unknown option ", name));
    auto v = take();
    if (!v) return std::unexpected(v.error());
    if (slot)
      *slot = std::move(*v);
    else
      *opt = std::move(*v);
  }
  if (a.help) return a;
  if (a.subcommand.empty()) return Fail("say what to do: info, export or regenerate");
  bool exporting = a.subcommand == "export";
  bool regenerating = a.subcommand == "regenerate";
  if (a.subcommand != "info" && !exporting && !regenerating) {
    return Fail(StrCat("unknown command 'ca ", a.subcommand, "': use info, export or regenerate"));
  }
  if ((a.format || a.out) && !exporting)
    return Fail("--format and --out only apply to `ca export`");
  if ((a.scope || a.key_type) && !regenerating) {
    return Fail("--scope and --ca-key-type only apply to `ca regenerate`");
  }
  if (regenerating && (!a.ca_cert.empty() || !a.ca_key.empty())) {
    return Fail(
        "`ca regenerate` makes a new root in the confdir; it never replaces --ca-cert/--ca-key "
        "files");
  }
  return a;
}

Result<std::unique_ptr<ca::Authority>> OpenAuthority(const CaArgs& a) {
  ca::AuthorityOptions options;
  options.confdir = a.confdir;
  options.ca_cert = a.ca_cert;
  options.ca_key = a.ca_key;
  options.cache_capacity = 0;
  return ca::Authority::Open(options);
}

Status WriteExport(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kExportMode);
  if (fd < 0) return Fail(StrCat("cannot write ", path, ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = std::strerror(errno);
      close(fd);
      return Fail(StrCat("cannot write ", path, ": ", why));
    }
    done += n;
  }
  if (close(fd) != 0) return Fail(StrCat("cannot write ", path, ": ", std::strerror(errno)));
  return {};
}

int Info(const CaArgs& a, std::ostream& out, std::ostream& err) {
  auto authority = OpenAuthority(a);
  if (!authority) {
    err << "mitmd ca info: " << authority.error().message << "\n";
    return kExitError;
  }
  auto info = ca::DescribeRoot((*authority)->root());
  if (!info) {
    err << "mitmd ca info: " << info.error().message << "\n";
    return kExitError;
  }
  out << "certificate  " << (*authority)->root_cert_path() << "\n"
      << "private key  " << (*authority)->root_key_path() << "\n"
      << "subject      " << info->subject << "\n"
      << "key type     " << info->key_type << "\n"
      << "SHA-256      " << info->fingerprint_sha256 << "\n"
      << "SHA-1        " << info->fingerprint_sha1 << "\n"
      << "valid from   " << info->not_before << "\n"
      << "expires      " << info->not_after << " (in " << info->days_left << " days)\n"
      << "scope        " << info->scope << "\n"
      << "android name " << info->android_name << "\n";
  return kExitOk;
}

int Export(const CaArgs& a, std::ostream& out, std::ostream& err) {
  auto format = ca::ParseExportFormat(a.format.value_or("pem"));
  if (!format) {
    err << "mitmd ca export: " << format.error().message << "\n";
    return kExitUsage;
  }
  auto authority = OpenAuthority(a);
  if (!authority) {
    err << "mitmd ca export: " << authority.error().message << "\n";
    return kExitError;
  }
  auto exported = ca::ExportRoot((*authority)->root(), *format);
  if (!exported) {
    err << "mitmd ca export: " << exported.error().message << "\n";
    return kExitError;
  }
  // PEM goes to stdout unless a file is asked for. The other formats go to their conventional
  // file name (the Android one is the point of that format; binary never lands on a terminal)
  // unless "-" asks for stdout.
  std::string target =
      a.out.value_or(*format == ca::ExportFormat::kPem ? "-" : exported->file_name);
  if (target == "-") {
    out << exported->content;
    return kExitOk;
  }
  if (auto st = WriteExport(target, exported->content); !st) {
    err << "mitmd ca export: " << st.error().message << "\n";
    return kExitError;
  }
  out << "wrote " << target << "\n";
  return kExitOk;
}

int Regenerate(const CaArgs& a, std::ostream& out, std::ostream& err) {
  ca::KeyType type = ca::KeyType::kEcdsaP256;
  if (a.key_type) {
    auto parsed = ca::ParseKeyType(*a.key_type);
    if (!parsed) {
      err << "mitmd ca regenerate: --ca-key-type: " << parsed.error().message << "\n";
      return kExitUsage;
    }
    type = *parsed;
  }
  ca::Scope scope;
  if (a.scope) {
    auto parsed = ca::Scope::Parse(*a.scope);
    if (!parsed) {
      err << "mitmd ca regenerate: " << parsed.error().message << "\n";
      return kExitUsage;
    }
    scope = std::move(*parsed);
  }
  if (auto st = ca::EnsurePrivateDir(a.confdir); !st) {
    err << "mitmd ca regenerate: " << st.error().message << "\n";
    return kExitError;
  }
  ca::RootPaths paths = ca::DefaultRootPaths(a.confdir);
  auto result = ca::RegenerateRoot(paths, type, scope);
  if (!result) {
    err << "mitmd ca regenerate: " << result.error().message << "\n";
    return kExitError;
  }
  out << "new root CA  " << paths.cert << "\n"
      << "SHA-256      " << result->root.fingerprint_sha256 << "\n"
      << "key type     " << ca::ToString(type) << "\n"
      << "scope        " << result->root.scope.ToString() << "\n";
  if (!result->backups.cert.empty() || !result->backups.key.empty()) {
    out << "old root     " << result->backups.cert << "\n"
        << "old key      " << result->backups.key << "\n"
        << "Clients still trust the old root until you remove it from their trust stores; trust "
           "the\n"
        << "new one (`mitmd ca export`). A running mitmd switches to the new root by itself.\n";
  }
  return kExitOk;
}

}  // namespace

std::string CaUsageText() {
  return R"(usage: mitmd ca COMMAND [options]

commands:
  info         show the root CA: files, subject, key type, SHA-256/SHA-1 fingerprints, expiry, scope
  export       write the root certificate (never the key) for a trust store
                 --format pem|der|p12|android   (default pem; android: <subject_hash_old>.0)
                 --out FILE                     (default: stdout for pem; mitmd-ca.cer, mitmd-ca.p12 or
                                                 <hash>.0 in the current directory; "-" for stdout)
  regenerate   make a new root; the old files are kept as dated .bak backups
                 --scope LIST          restrict the root with X.509 name constraints, e.g.
                                       example.com,.test,127.0.0.1/32 (hosts outside are tunnelled)
                 --ca-key-type TYPE    ecdsa-p256 (default), rsa2048 or rsa3072

options:
  --confdir DIR               where mitmd-ca.pem and mitmd-ca-key.pem live (default ~/.mitmd)
  --ca-cert FILE --ca-key FILE  a root of your own (info and export)
)";
}

int RunCaCommand(const std::vector<std::string_view>& args, std::string_view home,
                 std::ostream& out, std::ostream& err) {
  auto parsed = ParseCaArgs(args, home);
  if (!parsed) {
    err << "mitmd ca: " << parsed.error().message << " (see mitmd ca --help)\n";
    return kExitUsage;
  }
  if (parsed->help) {
    out << CaUsageText();
    return kExitOk;
  }
  if (parsed->subcommand == "info") return Info(*parsed, out, err);
  if (parsed->subcommand == "export") return Export(*parsed, out, err);
  return Regenerate(*parsed, out, err);
}

int RunCaCommand(const std::vector<std::string_view>& args, std::string_view home) {
  return RunCaCommand(args, home, std::cout, std::cerr);
}

}  // namespace mitmd::cli
