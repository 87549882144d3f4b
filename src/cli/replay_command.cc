#include "cli/replay_command.h"

#include <iostream>

#include "config/options.h"
#include "core/address.h"
#include "core/strings.h"
#include "flow/filter.h"
#include "flow/flow_loader.h"
#include "rules/replay.h"
#include "rules/replay_client.h"

namespace mitmd::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// More flows than this in one file is a mistake, not a replay.
constexpr size_t kMaxFlows = 100'000;

struct ReplayArgs {
  std::string file;
  std::string filter;
  HostPort proxy{"127.0.0.1", 8080};
  std::string proxy_token;
  std::chrono::seconds timeout{30};
  bool help = false;
};

Result<ReplayArgs> Parse(const std::vector<std::string_view>& args) {
  ReplayArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      out.help = true;
      return out;
    }
    auto value = [&]() -> Result<std::string_view> {
      if (i + 1 >= args.size()) return Fail(StrCat(a, " needs a value"));
      return args[++i];
    };
    if (a == "--filter" || a == "--proxy" || a == "--proxy-token" || a == "--timeout") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (a == "--filter") {
        out.filter = *v;
      } else if (a == "--proxy") {
        auto hp = ParseHostPort(*v);
        if (!hp) return Fail(StrCat("--proxy: ", hp.error().message));
        out.proxy = *hp;
      } else if (a == "--proxy-token") {
        out.proxy_token = *v;
      } else {
        auto s = ParseSeconds(*v, "--timeout");
        if (!s) return std::unexpected(s.error());
        out.timeout =
            std::max(std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(*s));
      }
    } else if (a.starts_with("-")) {
      return Fail(StrCat("unknown option '", a, "'"));
    } else if (out.file.empty()) {
      out.file = a;
    } else {
      return Fail(StrCat("one file at a time ('", a, "' is a second one)"));
    }
  }
  if (out.file.empty()) return Fail("name the session log or HAR file to replay");
  return out;
}

}  // namespace

std::string ReplayUsageText() {
  return "Usage: mitmd replay FILE [--filter FILTER] [--proxy HOST:PORT] [--proxy-token TOKEN]\n"
         "                         [--timeout SECS]\n\n"
         "Sends the requests of FILE (a mitmd session log or a HAR file) again, one after the\n"
         "other, through the mitmd proxy at --proxy (default 127.0.0.1:8080), which records each\n"
         "as a new flow with \"replay_of\" naming the original. --filter (mitmd's filter\n"
         "language) picks the flows. A request whose body was cut at --max-body-record is\n"
         "skipped: it cannot be sent as it was.\n";
}

int RunReplayCommand(const std::vector<std::string_view>& args, std::ostream& out,
                     std::ostream& err) {
  auto parsed = Parse(args);
  if (!parsed) {
    err << "mitmd replay: " << parsed.error().message << " (see mitmd replay --help)\n";
    return kExitUsage;
  }
  if (parsed->help) {
    out << ReplayUsageText();
    return kExitOk;
  }
  auto filter = Filter::Parse(parsed->filter);
  if (!filter) {
    err << "mitmd replay: --filter: " << filter.error().message << "\n";
    return kExitUsage;
  }
  auto loaded = LoadFlowsFile(parsed->file, kMaxFlows);
  if (!loaded) {
    err << "mitmd replay: " << loaded.error().message << "\n";
    return kExitUsage;
  }
  for (const std::string& w : loaded->warnings) err << "mitmd replay: skipped " << w << "\n";
  int exit = kExitOk;
  size_t sent = 0, answered = 0;
  for (const Flow& flow : loaded->flows) {
    if (flow.kind != Flow::Kind::kHttp || !flow.request || !filter->Matches(flow)) continue;
    std::string label = StrCat(flow.id, " ", flow.request->method, " ", flow.request->Url());
    auto request = rules::BuildReplayRequest(flow, {}, flow.id);
    if (!request) {
      err << "mitmd replay: skipped: " << request.error().message << "\n";
      exit = kExitFailed;
      continue;
    }
    ++sent;
    auto outcome =
        rules::SendThroughProxy(parsed->proxy, *request, parsed->proxy_token, parsed->timeout);
    if (!outcome) {
      err << "mitmd replay: " << label << ": " << outcome.error().message << "\n";
      exit = kExitFailed;
      // Nothing more can go through a proxy that is not there.
      if (outcome.error().message.starts_with("cannot connect")) return exit;
      continue;
    }
    ++answered;
    out << label << " -> " << outcome->status << "\n";
  }
  out << "replayed " << answered << " of " << sent << " requests through "
      << parsed->proxy.ToString() << "\n";
  return exit;
}

int RunReplayCommand(const std::vector<std::string_view>& args) {
  return RunReplayCommand(args, std::cout, std::cerr);
}

}  // namespace mitmd::cli
