#pragma once
// `mitmd ca ...`: inspect, export and regenerate the root CA.
//
//   mitmd ca info       [--confdir DIR | --ca-cert FILE --ca-key FILE]
//   mitmd ca export     [--format pem|der|p12|android] [--out FILE|-] [--confdir DIR | ...]
//   mitmd ca regenerate [--scope LIST] [--ca-key-type TYPE] [--confdir DIR]

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace mitmd::cli {

// Runs the command in |args| (the words after "ca"). |home| is $HOME, for the default confdir.
// Prints results on stdout and errors on stderr; returns the process exit code.
int RunCaCommand(const std::vector<std::string_view>& args, std::string_view home);

// The same, writing to |out| and |err|.
int RunCaCommand(const std::vector<std::string_view>& args, std::string_view home,
                 std::ostream& out, std::ostream& err);

// The text `mitmd ca --help` prints.
std::string CaUsageText();

}  // namespace mitmd::cli
