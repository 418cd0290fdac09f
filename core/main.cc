// ringmq: the broker's entry point. Loads the configuration, starts the shards, waits for SIGINT or
// SIGTERM and shuts down cleanly (exit 0).
#include <csignal>
#include <cstdio>

#include "core/broker.h"
#include "core/config.h"

int main(int argc, char** argv) {
  ringmq::core::Config config;
  int exit_code = 0;
  if (!ringmq::core::LoadConfig(argc, argv, &config, &exit_code)) return exit_code;

  // Signals are taken by sigwait on this thread only; shard threads inherit the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  ringmq::core::Broker broker(config);
  std::string error;
  if (!broker.Start(&error)) {
    std::fprintf(stderr, "ringmq: %s\n", error.c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  broker.Stop();
  return 0;
}
