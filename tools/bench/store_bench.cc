// store_bench: the session store's figures. Records N synthetic flows through FlowStore (the
// proxy's path: enqueue, one writer thread, batched transactions), then measures a restart (what
// mitmd does before it listens), list filters over the whole session and a body search.
//
//   store_bench [--flows N] [--dir DIR] [--threads T] [--queries-only 1] [--bulk 1]
//   store_bench --rate R --seconds S [--threads T] [--dir DIR]
// --queries-only 1 measures the queries on the session a previous run left in DIR.
// --rate R --seconds S offers R flows a second, paced from the T producers, for S seconds, and
// prints each second the queue and the search index's lag; then the rate committed, the drops,
// the writer's and the indexer's CPU per flow (their threads' clocks) and how long after the
// producers stopped the rows and the index were caught up. "Sustained": no drops, and the queue
// and the lag stay bounded. No queries.
// --bulk 1 makes the session quickly instead of through FlowStore, for the query figures of a
// big session: 10,000 flows written by SessionDb::Write, then copied by SQL (new seqs, ids and
// times; rows, JSON, bodies and search index alike) up to N. No insert figures, no JSONL log.
// Prints one line per figure. Timings are for this machine; nothing here is a pass/fail test.

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "flow/filter.h"
#include "flow/flow_store.h"
#include "store/filter_sql.h"
#include "store/search_index.h"
#include "store/session_db.h"

namespace mitmd {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

long MaxRssKiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// The process's resident memory now (VmRSS), KiB.
long RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

Flow Synthetic(uint64_t i) {
  static const char* kMethods[] = {"GET", "GET", "GET", "POST", "DELETE"};
  static const int kStatus[] = {200, 200, 200, 304, 404, 500};
  Flow f;
  f.id = NewFlowId();
  f.client_conn_id = i / 4 + 1;
  f.upstream_conn_id = i / 8 + 1;
  f.client_addr = "127.0.0.1:40000";
  f.server_host = StrCat("h", i % 200, ".example.com");
  f.server_port = 443;
  HttpRequest& q = f.request.emplace();
  q.method = kMethods[i % 5];
  q.scheme = "https";
  q.host = f.server_host;
  q.port = 443;
  q.path = StrCat("/api/v1/items/", i, "?page=", i % 7);
  q.target = q.path;
  q.version = "HTTP/1.1";
  q.headers = {{"Host", q.host}, {"User-Agent", "store_bench"}, {"Accept", "application/json"}};
  HttpResponse& s = f.response.emplace();
  s.status = kStatus[i % 6];
  s.reason = "OK";
  s.version = "HTTP/1.1";
  s.headers = {{"Content-Type", "application/json"}, {"Server", "bench"}};
  std::string body = StrCat("{\"id\":", i, ",\"name\":\"item number ", i, "\",\"tags\":[\"a\",\"b\"]",
                            i % 10'000 == 7 ? ",\"secret\":\"needle-XYZ\"" : "", "}");
  s.body.Append(body.data(), body.size(), 1 << 20);
  double t = 1.7e9 + static_cast<double>(i) * 0.001;
  f.timings.accepted = t;
  f.timings.request_start = t;
  f.timings.request_end = t + 0.001;
  f.timings.response_start = t + 0.010;
  f.timings.response_end = t + 0.012 + static_cast<double>(i % 100) * 0.001;
  f.body_record_cap = 1 << 20;
  return f;
}

constexpr uint64_t kBulkBase = 10'000;

// The bulk session: every column, body and search entry of the first kBulkBase flows, copied.
void MakeBulkSession(const std::string& db_path, uint64_t n) {
  auto db = store::SessionDb::Open(db_path, store::SessionDb::Mode::kWriter);
  if (!db) {
    std::fprintf(stderr, "%s\n", db.error().message.c_str());
    std::exit(1);
  }
  const uint64_t base = std::min(n, kBulkBase);
  std::vector<store::FlowPut> puts;
  for (uint64_t i = 0; i < base; ++i) {
    puts.push_back(store::FlowPut{store::FlowPut::Mode::kUpsert, i + 1, std::make_shared<const Flow>(Synthetic(i)), "", "", ""});
  }
  store::IndexHandoff handoff;
  handoff.claim = 0;  // nothing listed: the index takes the bodies by its cursor
  if (auto w = (*db)->Write(puts, &handoff); !w) {
    std::fprintf(stderr, "%s\n", w.error().message.c_str());
    std::exit(1);
  }
  auto index = store::SearchIndex::Open(db_path, nullptr);
  if (!index) {
    std::fprintf(stderr, "%s\n", index.error().message.c_str());
    std::exit(1);
  }
  while (true) {
    auto indexed = (*index)->IndexSlice(handoff.claim, 1'000);
    if (!indexed) {
      std::fprintf(stderr, "%s\n", indexed.error().message.c_str());
      std::exit(1);
    }
    if (*indexed == 0) break;
  }
  index->reset();
  const uint64_t copies = (n + base - 1) / base;
  std::string k = StrCat("WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM k WHERE n<", copies - 1, ") ");
  std::string last = std::to_string(n);
  std::string sql = StrCat(
      "BEGIN; ",
      "INSERT INTO flows(seq,id,t,kind,state,revision,method,scheme,host,port,path,ver,status,type,size,"
      "wire_size,dur,tls,alpn,up_alpn,conn,up,reused,insecure,trunc,err_phase,err,client,source,hash,json,rhost) ",
      k, "SELECT seq+n*", base, ",id||'-'||n,t+n*", base, "*0.001,kind,state,revision,method,scheme,host,port,"
      "path,ver,status,type,size,wire_size,dur,tls,alpn,up_alpn,conn+n*", base, ",up+n*", base,
      ",reused,insecure,trunc,err_phase,err,client,source,hash,json,rhost FROM k, flows "
      "WHERE seq<=", base, " AND seq+n*", base, "<=", last, " ORDER BY n, seq; ",
      "INSERT INTO flow_json(seq,json) ", k, "SELECT seq+n*", base, ",json FROM k, flow_json "
      "WHERE seq<=", base, " AND seq+n*", base, "<=", last, " ORDER BY n, seq; ",
      "INSERT INTO bodies(seq,side,content) ", k, "SELECT seq+n*", base, ",side,content FROM k, bodies "
      "WHERE seq<=", base, " AND seq+n*", base, "<=", last, " ORDER BY n, seq; ",
      "COMMIT; PRAGMA wal_checkpoint(TRUNCATE);");
  // The search index is its own file: the copies come indexed there.
  std::string index_sql = StrCat(
      "BEGIN; INSERT INTO fts(rowid,body) ", k, "SELECT rowid+n*", base, ",body FROM k, fts "
      "WHERE rowid<=", base, " AND rowid+n*", base, "<=", last, " ORDER BY n, rowid; ",
      "UPDATE meta SET value='", last, "' WHERE key='indexed'; COMMIT; PRAGMA wal_checkpoint(TRUNCATE);");
  if (copies > 1) {
    if (auto st = store::Exec((*db)->handle(), sql, "bulk copy"); !st) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      std::exit(1);
    }
    sqlite3* raw = nullptr;
    store::SqlitePtr index_db;
    if (sqlite3_open(store::SearchIndex::PathFor(db_path).c_str(), &raw) == SQLITE_OK) index_db.reset(raw);
    if (!index_db) std::exit(1);
    if (auto st = store::Exec(index_db.get(), index_sql, "bulk copy of the search index"); !st) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      std::exit(1);
    }
  }
}

// Pages through every match of |text| like the viewer's "jump to oldest" would; returns matches.
size_t ScanAll(store::SessionDb& db, const std::string& text, double* first_page_seconds) {
  auto filter = Filter::Parse(text);
  if (!filter) {
    std::fprintf(stderr, "bad filter %s\n", text.c_str());
    std::exit(2);
  }
  store::SqlPrefilter pre = store::CompilePrefilter(text);
  uint64_t before = 0;
  size_t found = 0;
  bool first = true;
  while (true) {
    auto start = Clock::now();
    store::ListQuery q;
    q.before = before;
    q.limit = 500;
    q.where = pre.where;
    q.where_args = pre.args;
    q.full_flows = pre.needs_full_flow;
    if (!pre.exact) q.match = [&](const Flow& f) { return filter->Matches(f); };
    auto page = db.List(q);
    if (!page) {
      std::fprintf(stderr, "list: %s\n", page.error().message.c_str());
      std::exit(2);
    }
    if (first) *first_page_seconds = Since(start);
    first = false;
    found += page->flows.size();
    if (page->next_before == 0) break;
    before = page->next_before;
  }
  return found;
}

// The viewer's "jump to the oldest match": the first page in ascending order.
double OldestPage(store::SessionDb& db, const std::string& text) {
  auto filter = Filter::Parse(text);
  store::SqlPrefilter pre = store::CompilePrefilter(text);
  auto start = Clock::now();
  store::ListQuery q;
  q.descending = false;
  q.limit = 500;
  q.where = pre.where;
  q.where_args = pre.args;
  q.full_flows = pre.needs_full_flow;
  if (!pre.exact) q.match = [&](const Flow& f) { return filter->Matches(f); };
  auto page = db.List(q);
  if (!page) std::exit(2);
  return Since(start);
}

int Main(int argc, char** argv) {
  uint64_t n = 1'000'000;
  int threads = 2;
  std::string dir;
  bool queries_only = false;
  bool bulk = false;
  double rate = 0;
  double seconds = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--flows") n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--queries-only") queries_only = std::atoi(argv[i + 1]) != 0;
    else if (a == "--bulk") bulk = std::atoi(argv[i + 1]) != 0;
    else if (a == "--rate") rate = std::atof(argv[i + 1]);
    else if (a == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  if (dir.empty()) dir = StrCat("/tmp/store_bench.", getpid());
  std::filesystem::create_directories(dir);
  const std::string db_path = StrCat(dir, "/bench.sqlite");
  const std::string jsonl = StrCat(dir, "/flows.jsonl");
  if (!queries_only) {
    std::filesystem::remove(db_path);
    std::filesystem::remove(db_path + "-wal");
    for (const char* tail : {"", "-wal", "-shm"}) std::filesystem::remove(store::SearchIndex::PathFor(db_path) + tail);
    std::filesystem::remove(jsonl);
  }

  if (bulk && !queries_only) {
    auto start = Clock::now();
    MakeBulkSession(db_path, n);
    std::ofstream(jsonl, std::ios::app);
    std::printf("bulk session of %llu flows made in %.1f s (copies of %llu written by SessionDb::Write)\n",
                static_cast<unsigned long long>(n), Since(start),
                static_cast<unsigned long long>(std::min(n, kBulkBase)));
  } else if (!queries_only) {
    auto store = FlowStore::Open({.db_path = db_path, .jsonl_path = jsonl});
    if (!store) {
      std::fprintf(stderr, "%s\n", store.error().message.c_str());
      return 1;
    }
    const bool paced = rate > 0;
    if (paced) n = static_cast<uint64_t>(rate * seconds);
    auto start = Clock::now();
    std::atomic<uint64_t> next{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        if (paced) {
          // Each producer offers its share of the rate on a schedule: by time x it has offered
          // x * rate / threads flows, whatever the store does with them (a full queue drops).
          const double share = rate / threads;
          for (uint64_t k = 0;; ++k) {
            const uint64_t i = k * static_cast<uint64_t>(threads) + static_cast<uint64_t>(t);
            if (i >= n) break;
            const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(static_cast<double>(k) / share));
            if (due > Clock::now()) std::this_thread::sleep_until(due);
            (*store)->Record(std::make_shared<const Flow>(Synthetic(i)));
          }
          return;
        }
        for (uint64_t i; (i = next.fetch_add(1)) < n;) {
          // A producer faster than the disk would see drops; this measures what the writer
          // sustains, so producers wait while a few batches are queued (the writer never runs
          // dry, and the memory measured is the store's, not a backlog's).
          while ((*store)->stats().queued > 10'000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          (*store)->Record(std::make_shared<const Flow>(Synthetic(i)));
        }
      });
    }
    if (paced) {
      // Each second: what waits for the writer and for the indexer.
      for (int second = 1; second <= static_cast<int>(seconds); ++second) {
        std::this_thread::sleep_until(start + std::chrono::seconds(second));
        auto st = (*store)->stats();
        std::printf("t=%2d s  recorded %8llu  written %8llu  queued %6zu  index lag %7llu seqs  dropped %llu\n", second,
                    static_cast<unsigned long long>(st.recorded), static_cast<unsigned long long>(st.written),
                    st.queued, static_cast<unsigned long long>(st.index_lag),
                    static_cast<unsigned long long>(st.dropped));
      }
    }
    for (auto& w : workers) w.join();
    const double offered_secs = Since(start);
    const uint64_t written_at_stop = (*store)->stats().written;
    auto stopped = Clock::now();
    (*store)->Flush();
    double secs = Since(start);
    const double rows_caught_up = Since(stopped);
    // The writer's CPU and the indexer's, each its own thread's clock: on a shared machine the
    // wall clock says how much CPU they were given, their clocks what they cost.
    const double writer_cpu = (*store)->ThreadCpuSeconds().first;
    auto st = (*store)->stats();
    if (paced) {
      std::printf("offered %.0f flows/s for %.1f s: committed %llu while offered = %.0f flows/s; dropped %llu, bodies shed %llu\n",
                  rate, offered_secs, static_cast<unsigned long long>(written_at_stop),
                  static_cast<double>(written_at_stop) / offered_secs, static_cast<unsigned long long>(st.dropped),
                  static_cast<unsigned long long>(st.bodies_shed));
      std::printf("rows caught up %.2f s after the producers stopped (written %llu)\n", rows_caught_up,
                  static_cast<unsigned long long>(st.written));
    } else {
      std::printf("insert: %llu flows in %.2f s = %.0f flows/s sustained (written %llu, dropped %llu), db + jsonl, flows made by the producers\n",
                  static_cast<unsigned long long>(n), secs, static_cast<double>(n) / secs,
                  static_cast<unsigned long long>(st.written), static_cast<unsigned long long>(st.dropped));
    }
    std::printf("writer CPU: %.2f s = %.1f us per flow = %.0f flows per CPU-second (the rate on a core of its own)\n",
                writer_cpu, writer_cpu * 1e6 / static_cast<double>(n), static_cast<double>(n) / writer_cpu);
    // The proxy's side of a long capture: the store open, every flow written, nothing queued.
    std::printf("RSS with the store open after %llu flows written: %ld MiB (max RSS %ld MiB: producers, queue and writer)\n",
                static_cast<unsigned long long>(n), RssKiB() / 1024, MaxRssKiB() / 1024);
    // The search index is filled by its own thread beside the writer: how far it lagged when the
    // rows were done, how long it took to catch up, and its CPU per flow over the whole run.
    const uint64_t lag_at_flush = st.index_lag;
    auto index_start = Clock::now();
    while ((*store)->stats().index_behind) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const double indexer_cpu = (*store)->ThreadCpuSeconds().second;
    std::printf("search index: lag %llu seqs when the rows were caught up, caught up %.2f s later (%.2f s after the producers stopped); indexer CPU %.2f s = %.1f us per flow\n",
                static_cast<unsigned long long>(lag_at_flush), Since(index_start), Since(stopped), indexer_cpu,
                indexer_cpu * 1e6 / static_cast<double>(n));
    {
      // The rest of the process: the producers making and recording the flows (and main).
      rusage ru{};
      getrusage(RUSAGE_SELF, &ru);
      const double process = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                             static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
      std::printf("the rest of the process (producers making and recording flows): %.1f us CPU per flow\n",
                  (process - writer_cpu - indexer_cpu) * 1e6 / static_cast<double>(n));
    }
    std::printf("writer + indexer CPU: %.1f us per flow = %.0f flows per CPU-second (one core); the slower thread alone: %.0f flows/s (two cores)\n",
                (writer_cpu + indexer_cpu) * 1e6 / static_cast<double>(n),
                static_cast<double>(n) / (writer_cpu + indexer_cpu),
                static_cast<double>(n) / std::max(writer_cpu, indexer_cpu));
    if (paced) return 0;
  }
  std::printf("database %.0f MiB, jsonl %.0f MiB\n",
              static_cast<double>(std::filesystem::file_size(db_path)) / (1 << 20),
              static_cast<double>(std::filesystem::file_size(jsonl)) / (1 << 20));

  auto start = Clock::now();
  // Its log (stderr) says what start-up left to the background: an old index dropped, a rebuild.
  Logger log(2);
  auto store = FlowStore::Open({.db_path = db_path, .jsonl_path = jsonl, .log = &log});
  if (!store) return 1;
  auto reader = (*store)->OpenReader();
  if (!reader) return 1;
  double open_secs = Since(start);
  std::printf("start-up: FlowStore::Open + viewer connection on %llu flows: %.3f s (last seq %llu)\n",
              static_cast<unsigned long long>(n), open_secs,
              static_cast<unsigned long long>((*store)->last_seq()));
  // A session from before schema 8 (or without its index file) has its index rebuilt in the
  // background: the queries below are measured once it is done.
  if (auto st = (*store)->stats(); st.index_behind) {
    auto t = Clock::now();
    while ((*store)->stats().index_behind) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::printf("search index rebuilt in the background: %llu seqs behind at start-up, caught up in %.1f s, indexer CPU %.1f s\n",
                static_cast<unsigned long long>(st.index_lag), Since(t), (*store)->ThreadCpuSeconds().second);
  }
  std::printf("search index file %.0f MiB\n",
              static_cast<double>(std::filesystem::file_size(store::SearchIndex::PathFor(db_path))) / (1 << 20));

  for (const char* text : {"status:404", "host:h17.example.com", "host:nowhere.example.org", "method:DELETE",
                           "status:500 method:POST", "path:/api/v1/items/99999", "~host:h19", "body:needle-XYZ"}) {
    double first_page = 0;
    auto t = Clock::now();
    size_t found = ScanAll(**reader, text, &first_page);
    double all = Since(t);
    std::printf("filter %-26s first page %.3f s, oldest page %.3f s, all %zu matches (every page to the oldest) %.3f s\n",
                text, first_page, OldestPage(**reader, text), found, all);
  }
  auto t = Clock::now();
  auto counts = (*reader)->Counts();
  std::printf("count: %llu flows %.3f s\n", static_cast<unsigned long long>(counts ? counts->flows : 0), Since(t));
  return 0;
}

}  // namespace
}  // namespace mitmd

int main(int argc, char** argv) { return mitmd::Main(argc, argv); }
