#include "core/log.h"

#include "core/fd_io.h"

#include <sys/time.h>


namespace mitmd {

std::string_view ToString(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "unknown";
}

Logger::Logger(int fd, LogLevel min_level) : fd_(fd), min_level_(min_level) {}

void Logger::Log(LogLevel level, std::string_view message, nlohmann::json fields) {
  if (!Enabled(level)) return;
  timeval tv;
  gettimeofday(&tv, nullptr);
  nlohmann::json line = {
      {"ts", static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6},
      {"level", ToString(level)},
      {"msg", message},
  };
  if (fields.is_object()) {
    for (auto& [k, v] : fields.items()) line[k] = std::move(v);
  }
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  std::lock_guard lock(mu_);
  WriteAll(fd_, text);
}

}  // namespace mitmd
