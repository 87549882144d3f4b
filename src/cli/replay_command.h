#pragma once
// `mitmd replay`: sends the requests of a session log or HAR file again, through a running
// mitmd's proxy (like mitmproxy's client replay), which records each as a new flow with
// "replay_of" naming the original.
//
//   mitmd replay FILE [--filter FILTER] [--proxy HOST:PORT] [--proxy-token TOKEN] [--timeout S]

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace mitmd::cli {

// Runs the command in |args| (the words after "replay"). Prints one line per flow on |out|
// ("<id> GET https://a.test/x -> 200") and problems on |err|. Exit code 0 when every request
// got a response, 1 when one did not or was skipped (a cut body), 2 for a usage error.
int RunReplayCommand(const std::vector<std::string_view>& args, std::ostream& out,
                     std::ostream& err);
int RunReplayCommand(const std::vector<std::string_view>& args);

std::string ReplayUsageText();

}  // namespace mitmd::cli
