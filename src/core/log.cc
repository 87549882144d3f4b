#include "core/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>

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
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace mitmd
