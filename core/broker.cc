// Broker startup and shutdown.
#include "core/broker.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <future>

#include "core/log.h"
#include "core/shard.h"
#include "net/socket.h"

namespace ringmq::core {

Broker::Broker(const Config& config)
    : config_(config), qsbr_(config.shards), index_(qsbr_), rings_(config.shards) {
  for (const Listener& l : config_.listeners) {
    net::WebSocketConfig ws;
    ws.paths = {l.path.empty() ? "/mqtt" : l.path, "/"};
    ws.max_frame_bytes = config_.max_packet_size + 16;
    ws_configs_.push_back(ws);
  }
}

Broker::~Broker() { Stop(); }

bool Broker::Start(std::string* error) {
  SetupLogging(config_.log_level);
  for (uint16_t i = 0; i < config_.shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(*this, i));
    if (!shards_.back()->Init(error)) return false;
  }
  // One listening socket per listener per shard; port 0 is resolved by the first bind and reused.
  std::vector<std::string> announced;
  for (const Listener& l : config_.listeners) {
    uint16_t port = l.port;
    for (uint16_t i = 0; i < config_.shards; ++i) {
      int fd = net::ListenTcp(l.host, port, error);
      if (fd < 0) return false;
      if (port == 0) port = net::LocalPort(fd);
      shards_[i]->AddListener(fd);
    }
    const bool v6 = l.host.find(':') != std::string::npos;
    announced.push_back(l.scheme + "://" + (v6 ? "[" + l.host + "]" : l.host) + ":" +
                        std::to_string(port) + (l.websocket() ? l.path : ""));
  }
  // Each shard creates its io_uring on its own thread (the single issuer) and reports back.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::promise<std::string>> ready(config_.shards);
  std::vector<std::future<std::string>> results;
  for (auto& r : ready) results.push_back(r.get_future());
  for (uint16_t i = 0; i < config_.shards; ++i) {
    threads_.emplace_back([this, i, cores, &ready] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(i % cores, &set);
      // Pinning is best effort: a restricted cpuset (containers) may refuse it.
      if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        LOG_DEBUG("shard {}: could not pin to core {}", i, i % cores);
      }
      pthread_setname_np(pthread_self(), ("ringmq-shard" + std::to_string(i)).c_str());
      std::string err;
      const bool ok = shards_[i]->InitRing(&err);
      ready[i].set_value(err);
      if (ok) shards_[i]->Run();
    });
  }
  for (auto& r : results) {
    std::string err = r.get();
    if (!err.empty() && error->empty()) *error = err;
  }
  if (!error->empty()) {
    Stop();
    return false;
  }
  for (const std::string& url : announced) std::printf("listening %s\n", url.c_str());
  std::fflush(stdout);
  LOG_INFO("ringmq started: {} shard(s), max packet size {} bytes", config_.shards,
           config_.max_packet_size);
  return true;
}

void Broker::ForEachShard(const std::function<void(Shard&)>& fn) {
  for (auto& s : shards_) s->PostTask(fn);
}

void Broker::Reload(Config fresh) {
  if (fresh.shards != config_.shards || fresh.data_dir != config_.data_dir ||
      fresh.listeners.size() != config_.listeners.size()) {
    LOG_WARN("reload: listeners, shards and data_dir change only with a restart; kept as they are");
  }
  fresh.listeners = config_.listeners;
  fresh.shards = config_.shards;
  fresh.data_dir = config_.data_dir;
  spdlog::set_level(
      spdlog::level::from_str(fresh.log_level == "warn" ? "warning" : fresh.log_level));
  for (auto& s : shards_) {
    s->PostTask([fresh](Shard& shard) {
      if (std::string e = shard.Reload(fresh); !e.empty()) {
        LOG_ERROR("shard {}: TLS reload failed, the old certificate stays: {}", shard.id(), e);
      }
    });
  }
  LOG_INFO("configuration reloaded (max_packet_size {}, allow_anonymous {}, log_level {})",
           fresh.max_packet_size, fresh.allow_anonymous, fresh.log_level);
}

void Broker::Stop() {
  for (auto& s : shards_) s->RequestStop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace ringmq::core
