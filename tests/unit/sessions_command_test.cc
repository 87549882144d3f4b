// `mitmd sessions list|export|import|rm`, the session lock, --session and the console line.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "cli/console.h"
#include "cli/sessions_command.h"
#include "core/strings.h"
#include "config/options.h"
#include "flow/flow_json.h"
#include "flow/flow_store.h"
#include "flow/flow_loader.h"
#include "flow/har.h"
#include "store/session_lock.h"
#include "support/temp_dir.h"
#include "unit/web_test_flows.h"

namespace mitmd {
namespace {

using testing::FlowSpec;
using testing::MakeFlow;
using testing::TempDir;

struct CliRun {
  int rc;
  std::string out, err;
};

CliRun Sessions(const TempDir& dir, std::vector<std::string> words) {
  std::vector<std::string_view> args(words.begin(), words.end());
  args.push_back("--confdir");
  args.push_back(dir.path());
  std::ostringstream out, err;
  int rc = cli::RunSessionsCommand(args, "", out, err);
  return {rc, out.str(), err.str()};
}

std::string JsonlOf(std::initializer_list<Flow> flows) {
  std::string out;
  for (const Flow& f : flows) {
    AppendFlowJsonLine(f, out);
    out.push_back('\n');
  }
  return out;
}

TEST(SessionsCommandTest, ImportsExportsListsAndRemovesANamedSession) {
  TempDir dir;
  Flow a = MakeFlow({.host = "a.example", .path = "/one"});
  Flow b = MakeFlow({.host = "b.example", .path = "/two", .status = 404});
  std::string file = dir.File("two.jsonl");
  testing::WriteFile(file, JsonlOf({a, b}));

  CliRun imported = Sessions(dir, {"import", "work", file});
  ASSERT_EQ(imported.rc, 0) << imported.err;
  EXPECT_NE(imported.out.find("2 flows added to session 'work', 0 already there"), std::string::npos)
      << imported.out;
  // The same file again adds nothing.
  CliRun again = Sessions(dir, {"import", "work", file});
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.out.find("0 flows added to session 'work', 2 already there"), std::string::npos) << again.out;

  // The search index is a file of its own beside the session, never listed as a session.
  EXPECT_EQ(::access(dir.File("sessions/work.sqlite-search").c_str(), F_OK), 0);
  CliRun listed = Sessions(dir, {"list"});
  ASSERT_EQ(listed.rc, 0) << listed.err;
  EXPECT_NE(listed.out.find("work"), std::string::npos) << listed.out;
  EXPECT_EQ(listed.out.find("search"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find(" 2 "), std::string::npos) << listed.out;

  // JSONL export: the same flows, oldest first, readable by the loader.
  std::string out_jsonl = dir.File("out.jsonl");
  CliRun ej = Sessions(dir, {"export", "work", "--format", "jsonl", "--out", out_jsonl});
  ASSERT_EQ(ej.rc, 0) << ej.err;
  auto back = LoadFlowsFile(out_jsonl, SIZE_MAX);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->flows.size(), 2u);
  EXPECT_EQ(back->flows[0].id, a.id);
  EXPECT_EQ(back->flows[1].request->path, "/two");
  EXPECT_EQ(back->flows[1].response->body.content, b.response->body.content);

  // HAR export to stdout, with a filter: one entry, a valid document.
  CliRun eh = Sessions(dir, {"export", "work", "--filter", "status:404"});
  ASSERT_EQ(eh.rc, 0) << eh.err;
  auto har = nlohmann::json::parse(eh.out, nullptr, false);
  ASSERT_FALSE(har.is_discarded()) << eh.out.substr(0, 200);
  ASSERT_EQ(har["log"]["entries"].size(), 1u);
  EXPECT_EQ(har["log"]["entries"][0]["request"]["url"], "https://b.example/two");

  // A HAR import of that export into another session, then rm of both.
  std::string har_file = dir.File("b.har");
  testing::WriteFile(har_file, eh.out);
  CliRun ih = Sessions(dir, {"import", "other", har_file});
  ASSERT_EQ(ih.rc, 0) << ih.err;
  EXPECT_NE(ih.out.find("1 flows added"), std::string::npos) << ih.out;

  CliRun rm = Sessions(dir, {"rm", "work", "other"});
  ASSERT_EQ(rm.rc, 0) << rm.err;
  EXPECT_NE(Sessions(dir, {"list"}).out.find("no sessions"), std::string::npos);
  EXPECT_NE(::access(dir.File("sessions/work.sqlite").c_str(), F_OK), 0);
  for (const char* tail : {"", "-wal", "-shm"}) {
    EXPECT_NE(::access(dir.File(StrCat("sessions/work.sqlite-search", tail)).c_str(), F_OK), 0) << tail;
  }
}

TEST(SessionsCommandTest, RefusesASessionBeingRecordedAndBadNames) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.File("sessions").c_str(), 0700), 0);
  std::string db = dir.File("sessions/live.sqlite");
  auto store = FlowStore::Open({.db_path = db});
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_TRUE(store::SessionLock::Held(db));
  // A second writer of the same session is refused with the reason.
  auto second = FlowStore::Open({.db_path = db});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use by another mitmd"), std::string::npos) << second.error().message;

  CliRun rm = Sessions(dir, {"rm", "live"});
  EXPECT_NE(rm.rc, 0);
  EXPECT_NE(rm.err.find("in use"), std::string::npos) << rm.err;
  EXPECT_EQ(::access(db.c_str(), F_OK), 0);
  // Reading it while it records is fine.
  (*store)->Record(std::make_shared<const Flow>(MakeFlow({})));
  (*store)->Flush();
  CliRun ex = Sessions(dir, {"export", "live", "--format", "jsonl"});
  EXPECT_EQ(ex.rc, 0) << ex.err;
  EXPECT_NE(ex.out.find("api.example.com"), std::string::npos);
  EXPECT_NE(Sessions(dir, {"list"}).out.find("(recording)"), std::string::npos);
  store->reset();
  EXPECT_FALSE(store::SessionLock::Held(db));

  for (const char* bad : {"../x", ".hidden", "a/b", ""}) {
    CliRun r = Sessions(dir, {"import", bad, dir.File("none.jsonl")});
    EXPECT_EQ(r.rc, 2) << bad;
    EXPECT_NE(r.err.find("not a session name"), std::string::npos) << r.err;
  }
  CliRun unknown = Sessions(dir, {"export", "nosuch"});
  EXPECT_EQ(unknown.rc, 1);
  EXPECT_NE(unknown.err.find("no session named 'nosuch'"), std::string::npos) << unknown.err;
}

TEST(SessionOptionTest, NamesTheDatabaseAndItsOwnLog) {
  auto def = ParseArgs({}, "/home/u");
  ASSERT_TRUE(def);
  EXPECT_EQ(def->config.session, "default");
  EXPECT_EQ(def->config.flows_path, "/home/u/.mitmd/flows.jsonl");
  auto named = ParseArgs({"--session", "bug-123"}, "/home/u");
  ASSERT_TRUE(named) << named.error().message;
  EXPECT_EQ(named->config.session, "bug-123");
  EXPECT_EQ(named->config.flows_path, "/home/u/.mitmd/sessions/bug-123.jsonl");
  auto bad = ParseArgs({"--session", "../../etc/passwd"}, "/home/u");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("--session"), std::string::npos);
  auto quiet = ParseArgs({"--console", "--quiet"}, "/home/u");
  ASSERT_TRUE(quiet);
  EXPECT_EQ(quiet->config.console, Config::Console::kOff);
  EXPECT_EQ(ParseArgs({"--console"}, "/home/u")->config.console, Config::Console::kOn);
}

TEST(ConsoleLineTest, OneLinePerFlowWithStatusSizeAndTime) {
  Flow f = MakeFlow({.method = "POST", .host = "api.example.com", .path = "/v1/x?q=1", .status = 201});
  std::string plain = cli::FormatConsoleLine(f, false);
  EXPECT_NE(plain.find("127.0.0.1:50123 POST https://api.example.com/v1/x?q=1 << 201"), std::string::npos)
      << plain;
  EXPECT_NE(plain.find("120ms"), std::string::npos) << plain;
  EXPECT_EQ(plain.find('\x1b'), std::string::npos);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), '\n'), 1);
  EXPECT_EQ(plain.back(), '\n');
  std::string coloured = cli::FormatConsoleLine(f, true);
  EXPECT_NE(coloured.find("\x1b[32m201"), std::string::npos) << coloured;

  Flow failed = MakeFlow({.status = 0});
  failed.response.reset();
  failed.error = FlowError{"connect", "connection refused"};
  std::string red = cli::FormatConsoleLine(failed, true);
  EXPECT_NE(red.find("\x1b[31m<< error (connect): connection refused"), std::string::npos) << red;
}

TEST(ConsoleLineTest, PeerBytesCannotDriveTheTerminal) {
  Flow f = MakeFlow({.path = "/a\x1b]0;owned\x07\r\nb"});
  f.response->reason = "OK\x1b[2J";
  std::string line = cli::FormatConsoleLine(f, true);
  // The only escapes left are the view's own colours.
  EXPECT_EQ(line.find("\x1b]"), std::string::npos);
  EXPECT_EQ(line.find("\x1b[2J"), std::string::npos);
  EXPECT_NE(line.find("/a\\x1b]0;owned\\x07\\x0d\\x0ab"), std::string::npos) << line;
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

TEST(ConsoleViewTest, WritesFinishedFlowsOnlyAndNeverBlocksTheCaller) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  {
    cli::ConsoleView view(fds[1], false, 4);
    Flow live = MakeFlow({.path = "/live"});
    live.state = FlowState::kLive;
    view.OnFlow(std::make_shared<const Flow>(live));
    view.OnFlow(std::make_shared<const Flow>(MakeFlow({.path = "/done"})));
  }  // the destructor writes what is queued
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) got.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  EXPECT_EQ(got.find("/live"), std::string::npos) << got;
  EXPECT_NE(got.find("/done"), std::string::npos) << got;

  // Nobody reads the pipe: callers return at once, lines beyond the queue are counted, and the
  // view still stops.
  ASSERT_EQ(::pipe(fds), 0);
  {
    cli::ConsoleView view(fds[1], false, 4);
    auto big = std::make_shared<const Flow>(MakeFlow({.path = "/" + std::string(1500, 'x')}));
    for (int i = 0; i < 2000; ++i) view.OnFlow(big);
    EXPECT_GT(view.dropped(), 0u);
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace mitmd
