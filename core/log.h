// Logging: spdlog, one logger per subsystem, so that an operator can turn one part of the broker up
// or down (`log_levels = "wal=debug,rest=warn"` over `log_level`), in text or JSON lines
// (`log_format`). Every line goes to stderr; stdout is reserved for the "listening ..." lines
// scripts read. Line formats: core/internal/log_format.h; settings: doc/configuration.md.
//
//   LOG_INFO_S(kMqtt, "shard {}: {} may not publish to '{}'", id, client, topic);
//   LOG_EVENT(kMqtt, info, LogEvent("client connected").Str("client_id", id).Int("keep_alive",
//   60));
//
// LOG_*_S take an fmt format string. LOG_EVENT logs a fixed message with named fields (separate
// keys in JSON, key=value in text); the event is built only when the level is enabled, so a
// disabled event costs one relaxed atomic load.
//
// Thread-safety: Logger() may be called from any thread at any time, also before
// ConfigureLogging and in unit tests (then: text, level info). The loggers are created once, at
// the first call, and live until the process exits; they are never replaced. ConfigureLogging
// changes their levels (atomics) and their shared sink's formatter (under the sink's mutex), so it
// may run (SIGHUP reload) while other threads log.
#ifndef RINGMQ_CORE_LOG_H_
#define RINGMQ_CORE_LOG_H_

#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringmq::core {

enum class Subsystem : uint8_t {
  kBroker,  // startup, shutdown, configuration and reload
  kMqtt,    // connections, packets, sessions, routing
  kWal,     // the write-ahead log and recovery
  kRest,    // the REST admin API
  kTls,     // TLS handshakes and certificates
};
inline constexpr size_t kSubsystemCount = 5;
// Short names for call sites: LOG_INFO_S(kMqtt, ...).
inline constexpr Subsystem kBroker = Subsystem::kBroker;
inline constexpr Subsystem kMqtt = Subsystem::kMqtt;
inline constexpr Subsystem kWal = Subsystem::kWal;
inline constexpr Subsystem kRest = Subsystem::kRest;
inline constexpr Subsystem kTls = Subsystem::kTls;

// "broker", "mqtt", "wal", "rest", "tls": the names in log_levels and in the lines.
const char* SubsystemName(Subsystem s);

// The logger of a subsystem (see the thread-safety note above).
spdlog::logger& Logger(Subsystem s);

// Checks log settings: level one of error, warn, info, debug; levels a comma list of
// SUBSYSTEM=LEVEL (may be empty); format text or json. Returns "" or what is wrong.
std::string CheckLogSettings(std::string_view level, std::string_view levels,
                             std::string_view format);
// Applies them: every subsystem gets `level` unless `levels` names it. Invalid settings change
// nothing and return the error (LoadConfig has refused them before).
std::string ConfigureLogging(std::string_view level, std::string_view levels,
                             std::string_view format);

// A structured log event: a fixed message and named fields. Never put a secret (a token key) in
// one: use the token's id.
class LogEvent {
 public:
  explicit LogEvent(std::string_view msg) : text_(msg) {}
  LogEvent& Str(std::string_view key, std::string_view value);
  LogEvent& Int(std::string_view key, int64_t value);
  LogEvent& Bool(std::string_view key, bool value);
  // The encoded event (core/internal/log_format.h).
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace ringmq::core

#define RINGMQ_LOGGER(sub) ::ringmq::core::Logger(::ringmq::core::sub)
#define LOG_ERROR_S(sub, ...) RINGMQ_LOGGER(sub).error(__VA_ARGS__)
#define LOG_WARN_S(sub, ...) RINGMQ_LOGGER(sub).warn(__VA_ARGS__)
#define LOG_INFO_S(sub, ...) RINGMQ_LOGGER(sub).info(__VA_ARGS__)
#define LOG_DEBUG_S(sub, ...) RINGMQ_LOGGER(sub).debug(__VA_ARGS__)
// lvl: err, warn, info or debug (spdlog::level names).
#define LOG_EVENT(sub, lvl, event)                                                   \
  do {                                                                               \
    spdlog::logger& ringmq_logger_ = RINGMQ_LOGGER(sub);                             \
    if (ringmq_logger_.should_log(spdlog::level::lvl)) {                             \
      ringmq_logger_.log(spdlog::level::lvl, spdlog::string_view_t((event).text())); \
    }                                                                                \
  } while (0)

#endif  // RINGMQ_CORE_LOG_H_
