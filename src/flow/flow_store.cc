#include "flow/flow_store.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "flow/flow_json.h"
#include "flow/har.h"

namespace mitmd {

namespace {

constexpr size_t kMigrationChunk = 1'000;
// Flows indexed per transaction by the indexer. Each slice becomes a segment of the search
// index, and FTS5 merges segments by rewriting them: slices of 250 cost 69k instructions per
// flow, slices of 2,000 (with 16-way merges) under half. The indexer wakes when this many wait.
constexpr size_t kIndexSlice = 2'000;
// ... or fewer, once their text reaches this many bytes (four bodies of 64 KiB, the most one
// gives the index): a slice stays short whatever the bodies (1 MiB of varied text takes FTS5
// about 0.2 s of CPU here), and so does what kill -9 or a quit can make it do again.
constexpr size_t kIndexSliceText = 256u << 10;
// Fewer flows than a slice are indexed once they have waited this long: a search finds them
// before (unindexed flows are candidates), so the wait costs a body: search a few more flows
// to read, never a miss.
constexpr std::chrono::seconds kIndexDelay{1};
// Writing and indexing are background work: on a busy machine the proxy's workers (and the
// viewer) go first. The queue, and the index's lag, absorb the difference.
constexpr int kBackgroundNice = 5;
// The session log gets a batch's lines in pieces of about this size: one buffer, reused, instead
// of one the size of the batch (megabytes, built anew for every batch: its growth copied it and
// faulted fresh pages in, 40% of the writer's CPU in store_bench).
constexpr size_t kLogPiece = 256u << 10;

// Lines in |path| (a final line without '\n' counts), read in blocks: memory stays constant.
Result<uint64_t> CountLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(StrCat("cannot read ", path, ": ", std::strerror(errno)));
  std::vector<char> block(1 << 20);
  uint64_t lines = 0;
  char last = '\n';
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    for (std::streamsize i = 0; i < n; ++i) lines += block[i] == '\n';
    last = block[n - 1];
  }
  if (last != '\n') ++lines;
  return lines;
}

}  // namespace

// The import of a JSONL log from before the session store: line N becomes seq N, below every
// live flow, so the list keeps its order while the import runs.
struct FlowStore::Migration {
  std::string path;
  std::ifstream in;
  uint64_t line = 0;   // lines consumed
  uint64_t lines = 0;  // lines to import
  uint64_t skipped = 0;
  std::vector<std::string> problems;  // the first kMaxLoadWarnings, each naming its line
};

FlowStore::FlowStore(FlowStoreOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<FlowStore>> FlowStore::Open(FlowStoreOptions options) {
  auto store = std::unique_ptr<FlowStore>(new FlowStore(std::move(options)));
  const FlowStoreOptions& o = store->options_;
  auto lock = store::SessionLock::Acquire(o.db_path);
  if (!lock) return std::unexpected(lock.error());
  store->lock_.emplace(std::move(*lock));
  auto db = store::SessionDb::Open(o.db_path, store::SessionDb::Mode::kWriter);
  if (!db) return std::unexpected(db.error());
  store->db_ = std::move(*db);
  // Before any reader opens (they attach the index file as it is then).
  auto index = store::SearchIndex::Open(o.db_path, o.log);
  if (index) {
    store->index_ = std::move(*index);
  } else if (o.log) {
    // Derived data: the session records without it, and body: scans every flow.
    o.log->Error("no search index for this session: body: filters read every flow",
                 {{"error", index.error().message}});
  }
  // Start-up reads no flows: the highest seq is the last row of the primary key.
  auto last = store->db_->MaxSeq();
  if (!last) return std::unexpected(last.error());
  uint64_t max_seq = *last;
  auto floor = store->db_->GetMeta("floor");
  if (floor && *floor) max_seq = std::max<uint64_t>(max_seq, std::strtoull((*floor)->c_str(), nullptr, 10));

  // The migration state lives in meta, so a migration cut short resumes where it stopped.
  auto source = store->db_->GetMeta("migration_source");
  if (!source) return std::unexpected(source.error());
  if (!*source && !o.migrate_from.empty() && *last == 0) {
    struct stat st{};
    if (::stat(o.migrate_from.c_str(), &st) == 0 && st.st_size > 0) {
      auto lines = CountLines(o.migrate_from);
      if (!lines) return std::unexpected(lines.error());
      if (auto s = store->db_->SetMeta("migration_lines", std::to_string(*lines)); !s) return std::unexpected(s.error());
      if (auto s = store->db_->SetMeta("migration_done", "0"); !s) return std::unexpected(s.error());
      if (auto s = store->db_->SetMeta("migration_source", o.migrate_from); !s) return std::unexpected(s.error());
      *source = o.migrate_from;
    }
  }
  if (*source) {
    auto lines = store->db_->GetMeta("migration_lines");
    auto done = store->db_->GetMeta("migration_done");
    uint64_t total = lines && *lines ? std::strtoull((*lines)->c_str(), nullptr, 10) : 0;
    uint64_t at = done && *done ? std::strtoull((*done)->c_str(), nullptr, 10) : total;
    max_seq = std::max(max_seq, total);
    if (at < total) {
      auto m = std::make_unique<Migration>();
      m->path = **source;
      m->in.open(m->path, std::ios::binary);
      m->lines = total;
      std::string skip;
      while (m->line < at && std::getline(m->in, skip)) ++m->line;
      if (m->in) {
        store->migration_ = std::move(m);
        store->stats_.migrating = true;
        if (o.log) o.log->Info("importing the old session log into the session database in the background",
                               {{"from", **source}, {"lines", total}, {"done", at}, {"db", o.db_path}});
      }
    }
  }
  store->next_seq_ = max_seq + 1;
  // A body written from now on at a seq the indexer may already have passed (at most the highest
  // seq in the file, or the index's cursor when the newest flows were deleted) is listed.
  const uint64_t cursor = store->index_ ? store->index_->cursor() : 0;
  store->handoff_.claim = std::max(*last, cursor);
  store->claim_ = store->handoff_.claim;
  store->indexed_ = cursor;
  store->pending_done_ = store->index_ ? store->index_->pending_done() : 0;

  if (!o.jsonl_path.empty()) {
    auto jsonl = store::JsonlLog::Open(o.jsonl_path);
    if (!jsonl) return std::unexpected(jsonl.error());
    store->jsonl_ = std::move(*jsonl);
  }
  // A clear whose undo window passed while mitmd was down is finished now.
  store->purge_ = true;
  store->writer_ = std::thread([s = store.get()] {
    pthread_setname_np(pthread_self(), "store-writer");  // for top -H and /proc/PID/task
    s->WriterLoop();
  });
  if (store->index_) {
    store->indexer_ = std::thread([s = store.get()] {
      pthread_setname_np(pthread_self(), "store-indexer");
      s->IndexerLoop();
    });
  }
  return store;
}

FlowStore::~FlowStore() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  // The writer's final batch is committed and handed over; the indexer stops after its slice.
  {
    std::lock_guard lock(mu_);
    index_stop_ = true;
  }
  index_wake_.notify_all();
  if (indexer_.joinable()) indexer_.join();
}

void FlowStore::Notify(const std::shared_ptr<const Flow>& flow, uint64_t seq) {
  std::shared_ptr<const ListenerList> listeners;
  {
    std::lock_guard lock(mu_);
    listeners = listeners_;
  }
  for (const auto& [token, listener] : *listeners) listener(flow, seq);
}

namespace {

size_t BodyBytes(const Flow& f) {
  return (f.request ? f.request->body.content.size() : 0) +
         (f.response ? f.response->body.content.size() : 0);
}

// |flow| without its body copies, saying why; sizes on the wire stay as they were.
std::shared_ptr<const Flow> WithoutBodies(const Flow& flow) {
  auto out = std::make_shared<Flow>(flow);
  for (BodyRecord* b : {out->request ? &out->request->body : nullptr,
                        out->response ? &out->response->body : nullptr}) {
    if (b == nullptr || b->content.empty()) continue;
    b->content.clear();
    b->content.shrink_to_fit();
    b->truncated = true;
  }
  constexpr char kWhy[] =
      "body copies not stored: the session store's writer was behind and its queue was full";
  out->note = out->note.empty() ? kWhy : StrCat(out->note, "; ", kWhy);
  return out;
}

}  // namespace

bool FlowStore::Enqueue(store::FlowPut put) {
  // Caller holds mu_.
  size_t bytes = BodyBytes(*put.flow);
  if (bytes > 0 && queued_bytes_ + bytes > options_.max_queue_bytes) {
    put.flow = WithoutBodies(*put.flow);
    bytes = 0;
    ++stats_.bodies_shed;
  }
  if (put.mode == store::FlowPut::Mode::kUpsert) {
    // A queued snapshot of a running flow gives way to a newer one; a queued recorded flow
    // (each is one JSONL line) never does.
    auto it = queued_index_.find(put.flow->id);
    if (it != queued_index_.end() && queue_[it->second].flow->state != FlowState::kDone) {
      store::FlowPut& queued = queue_[it->second];
      if (put.flow->state == FlowState::kDone || put.flow->revision >= queued.flow->revision) {
        queued_bytes_ -= BodyBytes(*queued.flow);
        queued_bytes_ += bytes;
        queued.flow = std::move(put.flow);
      }
      return true;
    }
  }
  if (queue_.size() >= options_.max_queue) {
    ++stats_.dropped;
    return false;
  }
  if (put.mode == store::FlowPut::Mode::kUpsert) queued_index_[put.flow->id] = queue_.size();
  queued_bytes_ += bytes;
  queue_.push_back(std::move(put));
  if (queue_.size() == options_.batch_max) wake_.notify_one();
  return true;
}

void FlowStore::Record(std::shared_ptr<const Flow> flow) {
  uint64_t seq;
  {
    std::lock_guard lock(mu_);
    ++stats_.recorded;
    auto live = live_seq_.find(flow->id);
    if (live != live_seq_.end()) {
      seq = live->second;
      live_seq_.erase(live);
    } else {
      seq = next_seq_++;
    }
    Enqueue(store::FlowPut{store::FlowPut::Mode::kUpsert, seq, flow, "", ""});
  }
  Notify(flow, seq);
}

void FlowStore::Publish(std::shared_ptr<const Flow> snapshot) {
  uint64_t seq;
  {
    std::lock_guard lock(mu_);
    auto [it, added] = live_seq_.try_emplace(snapshot->id, next_seq_);
    if (added) ++next_seq_;
    seq = it->second;
    Enqueue(store::FlowPut{store::FlowPut::Mode::kUpsert, seq, snapshot, "", ""});
  }
  Notify(snapshot, seq);
}

Result<size_t> FlowStore::Import(std::vector<Flow> flows, const std::string& source, bool stable_ids) {
  std::vector<store::FlowPut> puts;
  puts.reserve(flows.size());
  for (Flow& f : flows) {
    f.state = FlowState::kDone;
    std::string hash = store::ContentHash(f, stable_ids);
    puts.push_back(store::FlowPut{store::FlowPut::Mode::kImport, 0,
                                  std::make_shared<const Flow>(std::move(f)), source, std::move(hash)});
  }
  // Written on this thread's own connection, in one transaction: an import is the user waiting
  // for it, and the seqs it takes are reserved so live flows keep theirs.
  auto db = OpenReader();
  if (!db) return std::unexpected(db.error());
  {
    std::lock_guard lock(mu_);
    for (auto& p : puts) p.seq = next_seq_++;
  }
  return (*db)->Write(puts);
}

void FlowStore::Flush() {
  std::unique_lock lock(mu_);
  // A pass that starts after this call takes everything enqueued before it (and finishes what
  // start-up asked for, such as the purge): a pass already under way may have missed some.
  uint64_t target = passes_started_ + 1;
  ++flush_waiters_;
  wake_.notify_one();
  done_.wait(lock, [&] { return passes_done_ >= target || stop_; });
  --flush_waiters_;
}

std::optional<FlowStore::Queued> FlowStore::FindQueued(const std::string& id) const {
  std::lock_guard lock(mu_);
  // The queue holds the newer write when both have the id.
  if (auto it = queued_index_.find(id); it != queued_index_.end()) {
    return Queued{queue_[it->second].flow, queue_[it->second].seq};
  }
  if (auto it = writing_index_.find(id); it != writing_index_.end()) {
    return Queued{writing_[it->second].flow, writing_[it->second].seq};
  }
  return std::nullopt;
}

void FlowStore::PurgeSoon() {
  {
    std::lock_guard lock(mu_);
    purge_ = true;
  }
  wake_.notify_one();
}

Result<std::unique_ptr<store::SessionDb>> FlowStore::OpenReader() const {
  return store::SessionDb::Open(options_.db_path, store::SessionDb::Mode::kReadWrite);
}

void FlowStore::LogError(std::string_view what, const std::string& message) {
  if (options_.log) options_.log->Error(what, {{"error", message}});
}

void FlowStore::WriteBatch(std::vector<store::FlowPut>& batch) {
  if (jsonl_) {
    // Each recording thread once serialized its own line; now one thread does it for the batch
    // and the log gets one write() per kLogPiece. The database's JSON is the same line without
    // the body contents: cut from it rather than serialized again.
    std::string& lines = log_piece_;
    Status st;
    auto append = [&] {
      if (auto s = jsonl_->Append(lines); !s && st) st = std::move(s);
      lines.clear();
    };
    for (auto& p : batch) {
      if (p.mode != store::FlowPut::Mode::kUpsert || p.flow->state != FlowState::kDone) continue;
      AppendFlowJsonLines(*p.flow, lines, p.json);
      lines.push_back('\n');
      if (lines.size() >= kLogPiece) append();
    }
    append();
    // A flow with a big body made the piece big: the next batch starts small again.
    if (lines.capacity() > 4 * kLogPiece) std::string().swap(lines);
    std::lock_guard lock(mu_);
    if (!st) {
      if (stats_.log_error.empty()) LogError("FLOWS ARE MISSING FROM THE SESSION LOG", st.error().message);
      stats_.log_error = st.error().message;
    } else {
      stats_.log_error.clear();
    }
  }
  handoff_.prune_upto = pending_done_.load(std::memory_order_acquire);
  auto written = db_->Write(batch, &handoff_);
  HandClaim();
  std::lock_guard lock(mu_);
  if (!written) {
    if (stats_.db_error.empty()) LogError("FLOWS ARE MISSING FROM THE SESSION DATABASE", written.error().message);
    stats_.db_error = written.error().message;
  } else {
    stats_.db_error.clear();
    stats_.written += *written;
  }
}

void FlowStore::HandClaim() {
  // After the commit: an indexer that reads this claim takes its snapshot later, so every body
  // at or below it is in the snapshot or was listed (store/search_index.h).
  claim_.store(handoff_.claim, std::memory_order_release);
  listed_.store(handoff_.last_listed, std::memory_order_release);
  if (handoff_.claim >= indexed_.load(std::memory_order_acquire) + kIndexSlice) {
    std::lock_guard lock(mu_);  // the indexer tests its predicate under mu_: no lost wake-up
    index_wake_.notify_one();
  }
}

void FlowStore::IndexerLoop() {
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kBackgroundNice);
  auto lagging = [&] {
    return claim_.load(std::memory_order_acquire) >= indexed_.load(std::memory_order_relaxed) + kIndexSlice;
  };
  std::string last_error;
  std::unique_lock lock(mu_);
  while (!index_stop_) {
    // A full slice wakes it at once; fewer flows (or listed ones) after a second.
    const bool full = index_wake_.wait_for(lock, kIndexDelay, [&] { return index_stop_ || lagging(); });
    if (index_stop_) break;
    lock.unlock();
    while (true) {
      auto n = index_->IndexSlice(claim_.load(std::memory_order_acquire), kIndexSlice, kIndexSliceText);
      if (!n) {
        if (n.error().message != last_error) LogError("cannot index the session's bodies for search", n.error().message);
        last_error = n.error().message;
        break;
      }
      last_error.clear();
      indexed_.store(index_->cursor(), std::memory_order_release);
      pending_done_.store(index_->pending_done(), std::memory_order_release);
      // Woken by a full slice: full slices only (each slice is a segment to merge later); by
      // the timer: everything, down to the last flow.
      if (*n == 0 || (full && !lagging())) break;
      std::lock_guard stop(mu_);
      if (index_stop_) break;
    }
    lock.lock();
  }
}

bool FlowStore::MigrateChunk() {
  Migration& m = *migration_;
  std::vector<store::FlowPut> puts;
  std::string line;
  while (puts.size() < kMigrationChunk && m.line < m.lines && std::getline(m.in, line)) {
    ++m.line;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    auto flow = j.is_discarded() ? Result<Flow>(Fail("not valid JSON (a torn or foreign line)")) : FlowFromJson(j);
    if (!flow) {
      if (++m.skipped <= kMaxLoadWarnings) m.problems.push_back(StrCat("line ", m.line, ": ", flow.error().message));
      continue;
    }
    flow->state = FlowState::kDone;
    puts.push_back(store::FlowPut{store::FlowPut::Mode::kImport, m.line,
                                  std::make_shared<const Flow>(std::move(*flow)), "", ""});
  }
  bool more = m.line < m.lines && m.in.good();
  if (!puts.empty()) {
    handoff_.prune_upto = pending_done_.load(std::memory_order_acquire);
    auto w = db_->Write(puts, &handoff_);
    HandClaim();
    if (!w) {
      LogError("cannot import the old session log", w.error().message);
      more = false;
    }
  }
  (void)db_->SetMeta("migration_done", std::to_string(more ? m.line : m.lines));
  if (!more) {
    if (options_.log) {
      options_.log->Info("old session log imported", {{"from", m.path}, {"lines", m.line}, {"skipped", m.skipped}});
      if (m.skipped > 0) {
        options_.log->Warn("some lines of the old session log could not be read",
                           {{"file", m.path}, {"skipped", m.skipped}, {"problems", m.problems}});
      }
    }
    migration_.reset();
    std::lock_guard lock(mu_);
    stats_.migrating = false;
  }
  return more;
}

void FlowStore::WriterLoop() {
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kBackgroundNice);
  {
    // An upgraded file's old search index goes now, not before the proxy listens; the first
    // batch waits for it (the queue absorbs it).
    auto t = std::chrono::steady_clock::now();
    auto dropped = db_->DropOldIndex();
    if (!dropped) {
      LogError("cannot drop the session's old search index", dropped.error().message);
    } else if (*dropped && options_.log) {
      options_.log->Info("dropped the session's old search index (it has a file of its own now)",
                         {{"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count()}});
    }
  }
  std::vector<store::FlowPut> spent;
  std::unordered_map<std::string, size_t> spent_index;
  auto pause = [&] {
    // While an old log is imported, chunks follow each other without the batch pause.
    return migration_ ? std::chrono::milliseconds(1) : options_.batch_interval;
  };
  auto next_due = std::chrono::steady_clock::now() + pause();
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait_until(lock, next_due, [&] {
      return stop_ || queue_.size() >= options_.batch_max || flush_waiters_ > 0 || purge_;
    });
    if (stats_.dropped > dropped_reported_ && options_.log) {
      options_.log->Error("the session store cannot keep up: FLOWS WERE DROPPED from the database "
                          "and the session log (the viewer showed them)",
                          {{"dropped", stats_.dropped - dropped_reported_}, {"total_dropped", stats_.dropped}});
      dropped_reported_ = stats_.dropped;
    }
    if (stats_.bodies_shed > shed_reported_ && options_.log) {
      options_.log->Warn("the session store is behind: flows were kept WITHOUT their body copies",
                         {{"flows", stats_.bodies_shed - shed_reported_},
                          {"max_queue_bytes", options_.max_queue_bytes}});
      shed_reported_ = stats_.bodies_shed;
    }
    // The batch stays findable (FindQueued) until it is committed.
    writing_.swap(queue_);
    writing_index_.swap(queued_index_);
    queued_bytes_ = 0;
    uint64_t pass = ++passes_started_;
    bool purge = purge_;
    purge_ = false;
    bool stopping = stop_;
    lock.unlock();
    if (!writing_.empty()) WriteBatch(writing_);
    if (purge) {
      if (auto n = db_->Purge(); !n) {
        LogError("cannot delete cleared flows", n.error().message);
      } else if (*n > 0 && options_.log) {
        options_.log->Info("cleared flows deleted", {{"flows", *n}});
      }
    }
    if (migration_ && !stopping) MigrateChunk();
    lock.lock();
    passes_done_ = pass;
    writing_.swap(spent);
    writing_index_.swap(spent_index);
    done_.notify_all();
    if (stopping && queue_.empty()) break;
    lock.unlock();
    spent.clear();  // the flows are freed off the lock
    spent_index.clear();
    next_due = std::chrono::steady_clock::now() + pause();
    lock.lock();
  }
}

uint64_t FlowStore::Subscribe(Listener listener) {
  std::lock_guard lock(mu_);
  uint64_t token = next_token_++;
  auto next = std::make_shared<ListenerList>(*listeners_);
  next->emplace_back(token, std::move(listener));
  listeners_ = std::move(next);
  return token;
}

void FlowStore::Unsubscribe(uint64_t token) {
  std::lock_guard lock(mu_);
  auto next = std::make_shared<ListenerList>(*listeners_);
  std::erase_if(*next, [token](const auto& p) { return p.first == token; });
  listeners_ = std::move(next);
}

FlowStore::Stats FlowStore::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.queued = queue_.size();
  const uint64_t claim = claim_.load(std::memory_order_acquire);
  const uint64_t cursor = indexed_.load(std::memory_order_acquire);
  s.index_lag = claim > cursor ? claim - cursor : 0;
  s.index_behind = s.index_lag > 0 || listed_.load(std::memory_order_acquire) > pending_done_.load(std::memory_order_acquire);
  return s;
}

std::pair<double, double> FlowStore::ThreadCpuSeconds() const {
  auto cpu = [](const std::thread& t) {
    clockid_t clock;
    timespec ts{};
    if (!t.joinable() || pthread_getcpuclockid(const_cast<std::thread&>(t).native_handle(), &clock) != 0 ||
        clock_gettime(clock, &ts) != 0) {
      return 0.0;
    }
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  return {cpu(writer_), cpu(indexer_)};
}

uint64_t FlowStore::recorded_count() const {
  std::lock_guard lock(mu_);
  return stats_.recorded;
}

uint64_t FlowStore::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

}  // namespace mitmd
