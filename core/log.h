// Logging: spdlog behind four macros, so call sites stay short and the level check is one branch.
// Logs go to stderr; stdout is reserved for the "listening ..." lines scripts read.
// Thread-safety: spdlog's default logger is thread-safe; SetLogLevel is called once at startup.
#ifndef RINGMQ_CORE_LOG_H_
#define RINGMQ_CORE_LOG_H_

#include <spdlog/spdlog.h>

#include <string>

namespace ringmq::core {

// Installs the stderr logger with `level` ("error", "warn", "info", "debug").
void SetupLogging(const std::string& level);

}  // namespace ringmq::core

#define LOG_ERROR(...) spdlog::error(__VA_ARGS__)
#define LOG_WARN(...) spdlog::warn(__VA_ARGS__)
#define LOG_INFO(...) spdlog::info(__VA_ARGS__)
#define LOG_DEBUG(...) spdlog::debug(__VA_ARGS__)

#endif  // RINGMQ_CORE_LOG_H_
