// The subsystem loggers, their shared sink (formats, then queues for the writer thread) and its
// line formatter.
#include "base/log.h"

#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "base/internal/log_format.h"
#include "base/internal/log_writer.h"

namespace ringmq::base {

namespace {

using log_internal::LogFormat;

constexpr std::array<const char*, kSubsystemCount> kNames = {"broker", "mqtt", "wal",
                                                             "rest",   "tls",  "cluster"};

std::string_view LevelName(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

std::optional<spdlog::level::level_enum> ParseLevel(std::string_view s) {
  if (s == "error") return spdlog::level::err;
  if (s == "warn") return spdlog::level::warn;
  if (s == "info") return spdlog::level::info;
  if (s == "debug") return spdlog::level::debug;
  return std::nullopt;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Parses "wal=debug,rest=warn" into per-subsystem levels. Returns "" or the error.
std::string ParseLevels(
    std::string_view spec,
    std::array<std::optional<spdlog::level::level_enum>, kSubsystemCount>* out) {
  while (!Trim(spec).empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = Trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return "log_levels: '" + std::string(item) + "' is not SUBSYSTEM=LEVEL";
    }
    const std::string_view name = Trim(item.substr(0, eq));
    const std::string_view level = Trim(item.substr(eq + 1));
    size_t i = 0;
    while (i < kSubsystemCount && name != kNames[i]) ++i;
    if (i == kSubsystemCount) {
      return "log_levels: unknown subsystem '" + std::string(name) +
             "' (broker, mqtt, wal, rest, tls)";
    }
    const auto l = ParseLevel(level);
    if (!l) {
      return "log_levels: level '" + std::string(level) + "' of " + std::string(name) +
             " must be error, warn, info or debug";
    }
    (*out)[i] = *l;
  }
  return "";
}

// Formats every line (base/internal/log_format.h). Called by the sink under its mutex, so the
// scratch line needs no lock of its own.
class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    line_.clear();
    const int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    log_internal::FormatLogLine(format_, ms, LevelName(msg.level),
                                std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                                std::string_view(msg.payload.data(), msg.payload.size()), &line_);
    dest.append(line_.data(), line_.data() + line_.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_);
  }

 private:
  const LogFormat format_;
  std::string line_;
};

// How long a LOG_CRITICAL_S line waits for the queue ahead of it before it is written anyway.
constexpr std::chrono::milliseconds kCriticalFlush{1000};

// The one sink of every logger: formats the line on the logging thread (under base_sink's mutex,
// which also guards the formatter and reported_) and queues it (base/internal/log_writer.h).
class QueueSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit QueueSink(log_internal::LogWriter* writer) : writer_(writer) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (const uint64_t dropped = writer_->dropped(); dropped != reported_) {
      // Say so in the log as soon as a line fits again.
      const std::string text =
          fmt::format("{} log line(s) dropped: stderr is not read fast enough (log queue full)",
                      dropped - reported_);
      const spdlog::details::log_msg notice(msg.time, spdlog::source_loc{}, kNames[0],
                                            spdlog::level::warn, text);
      buf_.clear();
      formatter_->format(notice, buf_);
      if (writer_->Push(std::string_view(buf_.data(), buf_.size()))) reported_ = dropped;
    }
    buf_.clear();
    formatter_->format(msg, buf_);
    const std::string_view line(buf_.data(), buf_.size());
    if (msg.level >= spdlog::level::critical) {
      writer_->WriteNow(line, kCriticalFlush);
    } else {
      (void)writer_->Push(line);
    }
  }
  void flush_() override { (void)writer_->Flush(kCriticalFlush); }

 private:
  log_internal::LogWriter* const writer_;
  uint64_t reported_ = 0;     // drops already reported in a line
  spdlog::memory_buf_t buf_;  // scratch, guarded by the sink's mutex
};

struct Loggers {
  // Thread-safe on its own (base/internal/log_writer.h), hence usable through the const Loggers.
  mutable log_internal::LogWriter writer{STDERR_FILENO, kLogQueueBytes};
  std::shared_ptr<QueueSink> sink;
  std::array<std::shared_ptr<spdlog::logger>, kSubsystemCount> by_subsystem;
};

const Loggers& TheLoggers() {
  // Built once, at the first use, and never destroyed: a thread that logs while the process exits
  // still finds them.
  static const Loggers* const loggers = [] {
    auto* l = new Loggers;
    l->sink = std::make_shared<QueueSink>(&l->writer);
    l->sink->set_formatter(std::make_unique<LineFormatter>(LogFormat::kText));
    for (size_t i = 0; i < kSubsystemCount; ++i) {
      l->by_subsystem[i] = std::make_shared<spdlog::logger>(kNames[i], l->sink);
      l->by_subsystem[i]->set_level(spdlog::level::info);
    }
    return l;
  }();
  return *loggers;
}

}  // namespace

const char* SubsystemName(Subsystem s) { return kNames[static_cast<size_t>(s)]; }

spdlog::logger& Logger(Subsystem s) { return *TheLoggers().by_subsystem[static_cast<size_t>(s)]; }

uint64_t LogLinesDropped() { return TheLoggers().writer.dropped(); }

bool FlushLogs(std::chrono::milliseconds timeout) { return TheLoggers().writer.Flush(timeout); }

std::string CheckLogSettings(std::string_view level, std::string_view levels,
                             std::string_view format) {
  if (!ParseLevel(level)) {
    return "log_level '" + std::string(level) + "' must be error, warn, info or debug";
  }
  if (format != "text" && format != "json") {
    return "log_format '" + std::string(format) + "' must be text or json";
  }
  std::array<std::optional<spdlog::level::level_enum>, kSubsystemCount> per;
  return ParseLevels(levels, &per);
}

std::string ConfigureLogging(std::string_view level, std::string_view levels,
                             std::string_view format) {
  if (std::string e = CheckLogSettings(level, levels, format); !e.empty()) return e;
  std::array<std::optional<spdlog::level::level_enum>, kSubsystemCount> per;
  (void)ParseLevels(levels, &per);
  const Loggers& l = TheLoggers();
  l.sink->set_formatter(
      std::make_unique<LineFormatter>(format == "json" ? LogFormat::kJson : LogFormat::kText));
  for (size_t i = 0; i < kSubsystemCount; ++i) {
    l.by_subsystem[i]->set_level(per[i].value_or(*ParseLevel(level)));
  }
  return "";
}

LogEvent& LogEvent::Str(std::string_view key, std::string_view value) {
  if (value.size() <= kLogCutBytes) {
    log_internal::AppendField(&text_, log_internal::kStringField, key, value);
    return *this;
  }
  std::string cut;
  log_internal::AppendCut(&cut, value, kLogCutBytes);
  log_internal::AppendField(&text_, log_internal::kStringField, key, cut);
  return *this;
}

LogEvent& LogEvent::Int(std::string_view key, int64_t value) {
  log_internal::AppendField(&text_, log_internal::kNumberField, key, std::to_string(value));
  return *this;
}

LogEvent& LogEvent::Bool(std::string_view key, bool value) {
  log_internal::AppendField(&text_, log_internal::kNumberField, key, value ? "true" : "false");
  return *this;
}

}  // namespace ringmq::base
