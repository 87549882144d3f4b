#include "cli/sessions_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>

#include "core/fd_io.h"
#include "core/result.h"
#include "core/strings.h"
#include "flow/filter.h"
#include "flow/flow_json.h"
#include "flow/flow_loader.h"
#include "flow/flow_store.h"
#include "flow/har.h"
#include "store/filter_sql.h"
#include "store/search_index.h"
#include "store/session_db.h"
#include "store/session_lock.h"
#include "store/session_name.h"

namespace mitmd::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr size_t kExportBatch = 200;
constexpr size_t kExportChunkBytes = 1 << 20;

struct SessionsArgs {
  std::string subcommand;
  std::vector<std::string> words;  // names and files after the subcommand
  std::string confdir;
  std::string format = "har";
  std::string out = "-";
  std::string filter;
  bool help = false;
};

Result<SessionsArgs> ParseSessionsArgs(const std::vector<std::string_view>& args, std::string_view home) {
  SessionsArgs a;
  if (!home.empty()) a.confdir = StrCat(home, "/.mitmd");
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h" || arg == "help") {
      a.help = true;
      continue;
    }
    if (!arg.starts_with("--") || arg == "-") {
      if (a.subcommand.empty()) {
        a.subcommand = arg;
      } else {
        a.words.emplace_back(arg);
      }
      continue;
    }
    std::string_view name = arg, value;
    bool inline_value = false;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    std::string* slot = nullptr;
    if (name == "--confdir") slot = &a.confdir;
    else if (name == "--format") slot = &a.format;
    else if (name == "--out") slot = &a.out;
    else if (name == "--filter") slot = &a.filter;
    else return Fail(StrCat("unknown option '", arg, "' (see mitmd sessions --help)"));
    if (!inline_value) {
      if (i + 1 >= args.size()) return Fail(StrCat(name, " needs a value"));
      value = args[++i];
    }
    *slot = value;
  }
  if (a.confdir.empty()) return Fail("$HOME is not set: pass --confdir DIR");
  if (a.format != "har" && a.format != "jsonl") {
    return Fail(StrCat("--format: '", a.format, "' is not har or jsonl"));
  }
  return a;
}

std::string SessionsDir(const SessionsArgs& a) { return StrCat(a.confdir, "/sessions"); }
std::string DbPath(const SessionsArgs& a, std::string_view name) {
  return StrCat(SessionsDir(a), "/", name, ".sqlite");
}
// Where mitmd writes the session's JSONL log unless --flows says otherwise (config/options.cc).
std::string DefaultJsonlPath(const SessionsArgs& a, std::string_view name) {
  return name == "default" ? StrCat(a.confdir, "/flows.jsonl") : StrCat(SessionsDir(a), "/", name, ".jsonl");
}

Status CheckName(std::string_view name) {
  if (!IsValidSessionName(name)) {
    return Fail(StrCat("'", name, "' is not a session name (1 to 64 letters, digits, '-', '_' or '.', "
                       "not starting with '.')"));
  }
  return {};
}

std::string LocalTime(double epoch) {
  if (epoch <= 0) return "-";
  time_t t = static_cast<time_t>(epoch);
  tm local{};
  localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &local);
  return buf;
}

std::string Megabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

int List(const SessionsArgs& a, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(SessionsDir(a), ec)) {
    std::string file = entry.path().filename().string();
    if (!file.ends_with(".sqlite")) continue;
    std::string name = file.substr(0, file.size() - 7);
    if (IsValidSessionName(name)) names.push_back(name);
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    err << "mitmd sessions: cannot read " << SessionsDir(a) << ": " << ec.message() << "\n";
    return kExitError;
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) {
    out << "no sessions in " << SessionsDir(a) << "\n";
    return kExitOk;
  }
  out << "NAME                 FLOWS       SIZE  FIRST             LAST\n";
  for (const std::string& name : names) {
    std::string path = DbPath(a, name);
    uint64_t bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      struct stat st{};
      if (::stat((path + suffix).c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_size);
    }
    char line[256];
    auto db = store::SessionDb::Open(path, store::SessionDb::Mode::kReadOnly);
    auto counts = db ? (*db)->Counts() : Result<store::SessionCounts>(std::unexpected(db.error()));
    if (!counts) {
      std::snprintf(line, sizeof(line), "%-16s %9s %10s  (%s)", name.c_str(), "?", Megabytes(bytes).c_str(),
                    counts.error().message.c_str());
    } else {
      std::snprintf(line, sizeof(line), "%-16s %9llu %10s  %-16s  %-16s", name.c_str(),
                    static_cast<unsigned long long>(counts->flows), Megabytes(bytes).c_str(),
                    LocalTime(counts->first).c_str(), LocalTime(counts->last).c_str());
    }
    out << line << (store::SessionLock::Held(path) ? "  (recording)" : "") << "\n";
  }
  return kExitOk;
}

// Writes to |out| (an ostream, for stdout) or to a new file made private: flows carry cookies
// and tokens.
class Sink {
 public:
  static Result<Sink> Open(const std::string& path, std::ostream& stdout_stream) {
    if (path == "-") return Sink(&stdout_stream, -1, path);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Fail(StrCat("cannot write ", path, ": ", std::strerror(errno)));
    return Sink(nullptr, fd, path);
  }
  Sink(Sink&& o) noexcept : stream_(o.stream_), fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  ~Sink() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Write(std::string_view data) {
    if (stream_ != nullptr) {
      stream_->write(data.data(), static_cast<std::streamsize>(data.size()));
      if (!*stream_) return Fail("cannot write the output");
      return {};
    }
    if (!WriteAll(fd_, data)) return Fail(StrCat("cannot write ", path_, ": ", std::strerror(errno)));
    return {};
  }
  Status Close() {
    if (stream_ != nullptr) {
      stream_->flush();
      return *stream_ ? Status() : Fail("cannot write the output");
    }
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Fail(StrCat("cannot write ", path_, ": ", std::strerror(errno)));
    return {};
  }

 private:
  Sink(std::ostream* stream, int fd, std::string path) : stream_(stream), fd_(fd), path_(std::move(path)) {}
  std::ostream* stream_;
  int fd_;
  std::string path_;
};

int Export(const SessionsArgs& a, std::ostream& out, std::ostream& err) {
  if (a.words.size() != 1) {
    err << "mitmd sessions export: name one session (mitmd sessions export NAME [--format har|jsonl] "
           "[--out FILE])\n";
    return kExitUsage;
  }
  const std::string& name = a.words[0];
  if (auto st = CheckName(name); !st) {
    err << "mitmd sessions export: " << st.error().message << "\n";
    return kExitUsage;
  }
  auto filter = Filter::Parse(a.filter);
  if (!filter) {
    err << "mitmd sessions export: --filter: " << filter.error().message << "\n";
    return kExitUsage;
  }
  std::string path = DbPath(a, name);
  if (::access(path.c_str(), F_OK) != 0) {
    err << "mitmd sessions export: no session named '" << name << "' in " << SessionsDir(a)
        << " (see mitmd sessions list)\n";
    return kExitError;
  }
  auto db = store::SessionDb::Open(path, store::SessionDb::Mode::kReadOnly);
  if (!db) {
    err << "mitmd sessions export: " << db.error().message << "\n";
    return kExitError;
  }
  auto sink = Sink::Open(a.out, out);
  if (!sink) {
    err << "mitmd sessions export: " << sink.error().message << "\n";
    return kExitError;
  }
  const bool har = a.format == "har";
  HarStream har_stream{HarOptions{}};
  store::SqlPrefilter pre = store::CompilePrefilter(filter->text());
  std::string chunk = har ? har_stream.Head() : std::string();
  uint64_t after = 0, exported = 0;
  Status st;
  while (st) {
    store::ListQuery q;
    q.descending = false;
    q.after = after;
    q.limit = kExportBatch;
    q.full_flows = true;
    q.where = pre.where;
    q.where_args = pre.args;
    if (!filter->empty()) q.match = [&](const Flow& f) { return filter->Matches(f); };
    auto page = (*db)->List(q);
    if (!page) {
      err << "mitmd sessions export: " << page.error().message << "\n";
      return kExitError;
    }
    for (const auto& e : page->flows) {
      if (har) {
        har_stream.AppendEntry(*e.flow, chunk);
      } else {
        AppendFlowJsonLine(*e.flow, chunk);
        chunk.push_back('\n');
      }
      ++exported;
    }
    if (chunk.size() >= kExportChunkBytes) {
      st = sink->Write(chunk);
      chunk.clear();
    }
    if (page->next_after == 0) break;
    after = page->next_after;
  }
  if (har) chunk += har_stream.Tail();
  if (st) st = sink->Write(chunk);
  if (st) st = sink->Close();
  if (!st) {
    err << "mitmd sessions export: " << st.error().message << "\n";
    return kExitError;
  }
  if (a.out != "-") {
    out << "exported " << exported << " flows of session '" << name << "' to " << a.out << " ("
        << a.format << ")\n";
  }
  return kExitOk;
}

int Import(const SessionsArgs& a, std::ostream& out, std::ostream& err) {
  if (a.words.size() < 2) {
    err << "mitmd sessions import: give a session and at least one file (mitmd sessions import NAME "
           "FILE...)\n";
    return kExitUsage;
  }
  const std::string& name = a.words[0];
  if (auto st = CheckName(name); !st) {
    err << "mitmd sessions import: " << st.error().message << "\n";
    return kExitUsage;
  }
  if (::mkdir(a.confdir.c_str(), 0700) != 0 && errno != EEXIST) {
    err << "mitmd sessions import: cannot create " << a.confdir << ": " << std::strerror(errno) << "\n";
    return kExitError;
  }
  if (::mkdir(SessionsDir(a).c_str(), 0700) != 0 && errno != EEXIST) {
    err << "mitmd sessions import: cannot create " << SessionsDir(a) << ": " << std::strerror(errno) << "\n";
    return kExitError;
  }
  // The store takes the session's lock: a session a mitmd is recording is refused.
  auto store = FlowStore::Open({.db_path = DbPath(a, name)});
  if (!store) {
    err << "mitmd sessions import: " << store.error().message << "\n";
    return kExitError;
  }
  int rc = kExitOk;
  for (size_t i = 1; i < a.words.size(); ++i) {
    const std::string& path = a.words[i];
    auto loaded = LoadFlowsFile(path, SIZE_MAX);
    if (!loaded) {
      err << "mitmd sessions import: " << path << ": " << loaded.error().message << "\n";
      rc = kExitError;
      continue;
    }
    for (const std::string& w : loaded->warnings) err << "  " << path << ": " << w << "\n";
    const bool jsonl = loaded->format == LoadedFlows::Format::kJsonl;
    size_t read = loaded->flows.size();
    std::string base = path.substr(path.rfind('/') + 1);
    auto added = (*store)->Import(std::move(loaded->flows), StrCat(jsonl ? "jsonl" : "har", ":", base), jsonl);
    if (!added) {
      err << "mitmd sessions import: " << path << ": " << added.error().message << "\n";
      rc = kExitError;
      continue;
    }
    out << path << ": " << *added << " flows added to session '" << name << "', " << read - *added
        << " already there";
    if (loaded->skipped > 0) out << ", " << loaded->skipped << " unreadable (skipped)";
    out << "\n";
  }
  return rc;
}

int Remove(const SessionsArgs& a, std::ostream& out, std::ostream& err) {
  if (a.words.empty()) {
    err << "mitmd sessions rm: name the sessions to delete (mitmd sessions rm NAME...)\n";
    return kExitUsage;
  }
  int rc = kExitOk;
  for (const std::string& name : a.words) {
    if (auto st = CheckName(name); !st) {
      err << "mitmd sessions rm: " << st.error().message << "\n";
      rc = kExitUsage;
      continue;
    }
    std::string path = DbPath(a, name);
    if (::access(path.c_str(), F_OK) != 0) {
      err << "mitmd sessions rm: no session named '" << name << "' (see mitmd sessions list)\n";
      rc = kExitError;
      continue;
    }
    // Held while the files go, so no mitmd starts recording into a half-deleted session.
    auto lock = store::SessionLock::Acquire(path);
    if (!lock) {
      err << "mitmd sessions rm: " << lock.error().message << "\n";
      rc = kExitError;
      continue;
    }
    // The JSONL log goes too: a session database missing beside its log would be rebuilt from
    // the log at the next start. So does the search index (derived data, its own file).
    std::vector<std::string> removed;
    const std::string index = store::SearchIndex::PathFor(path);
    for (const std::string& file : {path, path + "-wal", path + "-shm", index, index + "-wal", index + "-shm",
                                    DefaultJsonlPath(a, name), store::SessionLock::LockPath(path)}) {
      if (::unlink(file.c_str()) == 0) {
        removed.push_back(file);
      } else if (errno != ENOENT) {
        err << "mitmd sessions rm: cannot delete " << file << ": " << std::strerror(errno) << "\n";
        rc = kExitError;
      }
    }
    out << "deleted session '" << name << "':";
    for (const auto& f : removed) out << " " << f;
    out << "\n";
  }
  return rc;
}

}  // namespace

std::string SessionsUsageText() {
  return "mitmd sessions: the recorded sessions in <confdir>/sessions.\n\n"
         "Usage: mitmd sessions list\n"
         "       mitmd sessions export NAME [--format har|jsonl] [--out FILE|-] [--filter EXPR]\n"
         "       mitmd sessions import NAME FILE...\n"
         "       mitmd sessions rm NAME...\n\n"
         "  list      each session with its flow count, size and first/last flow\n"
         "  export    the session's flows, oldest first, as HAR (default) or JSON lines, to\n"
         "            stdout or FILE (created private); --filter takes the viewer's filter\n"
         "            language. Works while mitmd records the session.\n"
         "  import    adds the flows of HAR or JSONL files to the session (created if new),\n"
         "            each labelled with its file; flows already there are skipped\n"
         "  rm        deletes the session's database, its search index and its JSONL log\n"
         "  --confdir DIR   mitmd's directory (default ~/.mitmd)\n\n"
         "Record into a session with mitmd --session NAME. import and rm refuse a session\n"
         "that a running mitmd is recording.\n";
}

int RunSessionsCommand(const std::vector<std::string_view>& args, std::string_view home, std::ostream& out,
                       std::ostream& err) {
  auto a = ParseSessionsArgs(args, home);
  if (!a) {
    err << "mitmd sessions: " << a.error().message << "\n";
    return kExitUsage;
  }
  if (a->help || a->subcommand.empty()) {
    (a->help ? out : err) << SessionsUsageText();
    return a->help ? kExitOk : kExitUsage;
  }
  if (a->subcommand == "list" || a->subcommand == "ls") return List(*a, out, err);
  if (a->subcommand == "export") return Export(*a, out, err);
  if (a->subcommand == "import") return Import(*a, out, err);
  if (a->subcommand == "rm") return Remove(*a, out, err);
  err << "mitmd sessions: unknown subcommand '" << a->subcommand << "' (list, export, import or rm)\n";
  return kExitUsage;
}

int RunSessionsCommand(const std::vector<std::string_view>& args, std::string_view home) {
  return RunSessionsCommand(args, home, std::cout, std::cerr);
}

}  // namespace mitmd::cli
