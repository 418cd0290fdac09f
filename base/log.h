// Logging: spdlog, one logger per subsystem, so that an operator can turn one part of the broker up
// or down (`log_levels = "wal=debug,rest=warn"` over `log_level`), in text or JSON lines
// (`log_format`). Every line goes to stderr; stdout is reserved for the "listening ..." lines
// scripts read. Line formats: base/internal/log_format.h; settings: doc/configuration.md.
//
// Logging never blocks the calling thread on output: a line is formatted on the caller's thread
// and queued (base/internal/log_writer.h, at most kLogQueueBytes); one writer thread writes the
// queue to stderr. When the queue is full (stderr is read slowly, or not at all) the line is
// dropped and counted: LogLinesDropped(), ringmq_log_lines_dropped_total in /metrics, and a warning
// "N log line(s) dropped" as the next line that fits. LOG_CRITICAL_S is the exception: for the last
// line before an abort it flushes the queue (bounded) and writes synchronously.
//
// Strings a client sent (client ids, topics, filters, usernames) are cut to kLogCutBytes bytes in
// log lines, marked "...[cut, N bytes]": wrap them in Cut() for LOG_*_S; LogEvent::Str cuts every
// value.
//
//   LOG_INFO_S(kMqtt, "shard {}: {} may not publish to '{}'", id, Cut(client), Cut(topic));
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
// may run (SIGHUP reload) while other threads log. A logging thread holds the sink's mutex only to
// format and queue its line (the queue's own mutex never covers I/O), and the writer thread, like
// the loggers, is started at the first call (with every signal blocked) and never stopped.
#ifndef RINGMQ_BASE_LOG_H_
#define RINGMQ_BASE_LOG_H_

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/internal/log_format.h"

namespace ringmq::base {

enum class Subsystem : uint8_t {
  kBroker,   // startup, shutdown, configuration and reload
  kMqtt,     // connections, packets, sessions, routing
  kWal,      // the write-ahead log and recovery
  kRest,     // the REST admin API
  kTls,      // TLS handshakes and certificates
  kCluster,  // the NATS bridge between the nodes of a cluster
};
inline constexpr size_t kSubsystemCount = 6;
// Short names for call sites: LOG_INFO_S(kMqtt, ...).
inline constexpr Subsystem kBroker = Subsystem::kBroker;
inline constexpr Subsystem kMqtt = Subsystem::kMqtt;
inline constexpr Subsystem kWal = Subsystem::kWal;
inline constexpr Subsystem kRest = Subsystem::kRest;
inline constexpr Subsystem kTls = Subsystem::kTls;
inline constexpr Subsystem kCluster = Subsystem::kCluster;

// "broker", "mqtt", "wal", "rest", "tls", "cluster": the names in log_levels and in the lines.
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

// Bytes of formatted lines waiting for the writer thread; beyond them lines are dropped.
inline constexpr size_t kLogQueueBytes = 4 << 20;
// Longest client-supplied string written whole in a log line (Cut, LogEvent::Str).
inline constexpr size_t kLogCutBytes = 256;

// Lines dropped because the queue was full, since the start (any thread).
uint64_t LogLinesDropped();
// Waits until every line logged before the call is written to stderr, at most `timeout`; false
// at the timeout. main calls it at a clean shutdown (a bounded wait: a reader that never reads
// must not keep the broker from exiting).
bool FlushLogs(std::chrono::milliseconds timeout);

// A client-supplied string as a LOG_*_S argument: written as at most kLogCutBytes bytes (at a
// UTF-8 character boundary), then "...[cut, N bytes]" with N the full size. Cheap to construct:
// nothing is copied unless the line is logged.
struct Cut {
  explicit Cut(std::string_view v) : s(v) {}
  std::string_view s;
};

// A structured log event: a fixed message and named fields. Never put a secret (a token key) in
// one: use the token's id.
class LogEvent {
 public:
  explicit LogEvent(std::string_view msg) : text_(msg) {}
  // `value` is cut to kLogCutBytes (see Cut).
  LogEvent& Str(std::string_view key, std::string_view value);
  LogEvent& Int(std::string_view key, int64_t value);
  LogEvent& Bool(std::string_view key, bool value);
  // The encoded event (base/internal/log_format.h).
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace ringmq::base

template <>
struct fmt::formatter<ringmq::base::Cut> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <typename Context>
  auto format(const ringmq::base::Cut& c, Context& ctx) const {
    std::string out;
    ringmq::base::log_internal::AppendCut(&out, c.s, ringmq::base::kLogCutBytes);
    return std::copy(out.begin(), out.end(), ctx.out());
  }
};

#define RINGMQ_LOGGER(sub) ::ringmq::base::Logger(::ringmq::base::sub)
#define LOG_ERROR_S(sub, ...) RINGMQ_LOGGER(sub).error(__VA_ARGS__)
#define LOG_WARN_S(sub, ...) RINGMQ_LOGGER(sub).warn(__VA_ARGS__)
#define LOG_INFO_S(sub, ...) RINGMQ_LOGGER(sub).info(__VA_ARGS__)
#define LOG_DEBUG_S(sub, ...) RINGMQ_LOGGER(sub).debug(__VA_ARGS__)
// The line before an abort: flushes what is queued (bounded) and writes this line synchronously.
#define LOG_CRITICAL_S(sub, ...) RINGMQ_LOGGER(sub).critical(__VA_ARGS__)
// lvl: err, warn, info or debug (spdlog::level names).
#define LOG_EVENT(sub, lvl, event)                                                   \
  do {                                                                               \
    spdlog::logger& ringmq_logger_ = RINGMQ_LOGGER(sub);                             \
    if (ringmq_logger_.should_log(spdlog::level::lvl)) {                             \
      ringmq_logger_.log(spdlog::level::lvl, spdlog::string_view_t((event).text())); \
    }                                                                                \
  } while (0)

#endif  // RINGMQ_BASE_LOG_H_
