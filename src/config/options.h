#pragma once
// The command line: one table of options. Parsing, --help and validation are all generated
// from it, so an option cannot be parsed without being documented or documented without being
// parsed. Adding an option = one row in options.cc (and its field in Config).

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace mitmd {

struct OptionSpec {
  enum class Arity {
    kFlag,        // --insecure
    kValue,       // --listen HOST:PORT (the last one given wins)
    kRepeatable,  // --load FILE, given any number of times
  };
  std::string_view name;     // "--listen"
  std::string_view metavar;  // "HOST:PORT"; empty for a flag
  Arity arity;
  // Applies the option's value (empty for a flag) to |config|; the error message names the
  // option and says what a valid value looks like.
  Status (*apply)(Config& config, std::string_view value);
  // One or more lines for --help; "\n" starts a continuation line.
  std::string_view help;
};

// Every option, in --help order.
std::span<const OptionSpec> Options();

enum class Command { kRun, kHelp, kVersion };

struct Invocation {
  Command command = Command::kRun;
  Config config;
};

// Parses argv (without argv[0]): "--name VALUE", "--name=VALUE", flags, -h. Then checks the
// options against each other and fills defaults that depend on others (|home| is $HOME, for the
// default confdir). Errors are reported in argument order.
Result<Invocation> ParseArgs(const std::vector<std::string_view>& args, std::string_view home);

// The text --help prints, generated from Options().
std::string UsageText();

// Parsers shared by option rows: "1048576", "512k", "4m", "1g" (binary units); positive
// seconds ("1.5"); a whole number. |what| names the option in the error.
Result<size_t> ParseSize(std::string_view text, std::string_view what);
Result<std::chrono::milliseconds> ParseSeconds(std::string_view text, std::string_view what);
Result<uint64_t> ParseUnsigned(std::string_view text, std::string_view what);

}  // namespace mitmd
