#pragma once
// Structured logging: one JSON object per line on a file descriptor (stderr by default).
// Every line carries a level and message; connection and flow ids ride along as fields.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mitmd {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

std::string_view ToString(LogLevel level);

class Logger {
 public:
  // Writes to |fd| (not owned). Lines below |min_level| are dropped.
  explicit Logger(int fd = 2, LogLevel min_level = LogLevel::kInfo);

  void Log(LogLevel level, std::string_view message, nlohmann::json fields = nullptr);
  void Debug(std::string_view m, nlohmann::json f = nullptr) { Log(LogLevel::kDebug, m, std::move(f)); }
  void Info(std::string_view m, nlohmann::json f = nullptr) { Log(LogLevel::kInfo, m, std::move(f)); }
  void Warn(std::string_view m, nlohmann::json f = nullptr) { Log(LogLevel::kWarn, m, std::move(f)); }
  void Error(std::string_view m, nlohmann::json f = nullptr) { Log(LogLevel::kError, m, std::move(f)); }

  bool Enabled(LogLevel level) const { return level >= min_level_; }

 private:
  int fd_;
  LogLevel min_level_;
  std::mutex mu_;  // one write() per line, but keep lines from interleaving across threads
};

}  // namespace mitmd
