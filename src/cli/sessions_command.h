#pragma once
// `mitmd sessions ...`: the sessions in <confdir>/sessions, from the command line.
//
//   mitmd sessions list
//   mitmd sessions export NAME [--format har|jsonl] [--out FILE|-] [--filter EXPR]
//   mitmd sessions import NAME FILE...     (HAR or JSONL; a flow already there is skipped)
//   mitmd sessions rm NAME...
// Every subcommand takes --confdir DIR (default ~/.mitmd). export reads a session a running
// mitmd is recording (SQLite's WAL lets it); import and rm refuse one (store/session_lock.h).

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace mitmd::cli {

// Runs the command in |args| (the words after "sessions"); |home| is $HOME. Returns the exit code.
int RunSessionsCommand(const std::vector<std::string_view>& args, std::string_view home);
int RunSessionsCommand(const std::vector<std::string_view>& args, std::string_view home,
                       std::ostream& out, std::ostream& err);

std::string SessionsUsageText();

}  // namespace mitmd::cli
