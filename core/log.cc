// Logging setup.
#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace ringmq::core {

void SetupLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("ringmq");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level == "warn" ? "warning" : level));
  spdlog::set_default_logger(logger);
}

}  // namespace ringmq::core
