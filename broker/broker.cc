// Broker startup and shutdown.
#include "broker/broker.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cassert>
#include <cstdio>
#include <filesystem>
#include <future>

#include "base/log.h"
#include "broker/shard.h"
#include "net/socket.h"

namespace ringmq::broker {

Broker::Broker(const Config& config)
    : config_(config),
      qsbr_(config.shards),
      index_(qsbr_),
      retained_quota_(qsbr_),
      queue_disk_(config.max_queue_disk_bytes),
      // In cluster mode one more producer: the bridge (PushFromCluster).
      rings_(config.shards + (config.cluster.empty() ? 0 : 1)) {
  for (const Listener& l : config_.listeners) {
    net::WebSocketConfig ws;
    ws.paths = {l.path.empty() ? "/mqtt" : l.path, "/"};
    ws.max_frame_bytes = config_.max_packet_size + 16;
    ws_configs_.push_back(ws);
  }
}

Broker::~Broker() { Stop(); }

bool Broker::CreateShards(std::string* error) {
  for (uint32_t i = 0; i < config_.shards; ++i) {  // at most 64 (LoadConfig)
    shards_.push_back(std::make_unique<Shard>(*this, static_cast<uint16_t>(i)));
    if (!shards_.back()->Init(error)) return false;
  }
  return true;
}

bool Broker::Start(std::string* error) {
  if (!CreateShards(error)) return false;
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) {
    *error = "cannot create the data directory " + config_.data_dir + ": " + ec.message();
    return false;
  }
  // Spill files are unlinked as soon as they are created (broker/spill.h); one left by a crash
  // between the two is scratch: removed.
  for (const auto& e : std::filesystem::directory_iterator(config_.data_dir + "/spill", ec)) {
    if (e.path().filename().string().starts_with("queue-")) std::filesystem::remove(e.path(), ec);
  }
  std::vector<uint64_t> first_seq;
  std::vector<bool> snapshot_written;
  if (!RecoverState(&first_seq, &snapshot_written, error)) return false;
  // One listening socket per listener per shard; port 0 is resolved by the first bind and reused.
  std::vector<std::string> announced;
  for (const Listener& l : config_.listeners) {
    uint16_t port = l.port;
    for (uint32_t i = 0; i < config_.shards; ++i) {
      int fd = net::ListenTcp(l.host, port, error);
      if (fd < 0) return false;
      if (port == 0) port = net::LocalPort(fd);
      shards_[i]->AddListener(fd);
    }
    const bool v6 = l.host.find(':') != std::string::npos;
    announced.push_back(SchemeName(l.scheme) + std::string("://") +
                        (v6 ? "[" + l.host + "]" : l.host) + ":" + std::to_string(port) +
                        (l.websocket() ? l.path : ""));
  }
  // Each shard creates its io_uring on its own thread (the single issuer) and reports back.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::promise<std::string>> ready(config_.shards);
  std::vector<std::future<std::string>> results;
  results.reserve(ready.size());
  for (auto& r : ready) results.push_back(r.get_future());
  for (uint32_t i = 0; i < config_.shards; ++i) {
    threads_.emplace_back([this, i, cores, &ready, &first_seq, &snapshot_written] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(i % cores, &set);
      // Pinning is best effort: a restricted cpuset (containers) may refuse it.
      if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        LOG_DEBUG_S(kBroker, "shard {}: could not pin to core {}", i, i % cores);
      }
      pthread_setname_np(pthread_self(), ("ringmq-shard" + std::to_string(i)).c_str());
      std::string err;
      const bool ok = shards_[i]->InitRing(&err);
      if (ok) shards_[i]->OpenWal(first_seq[i], snapshot_written[i]);
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
  LOG_INFO_S(kBroker, "ringmq started: {} shard(s), max packet size {} bytes", config_.shards,
             config_.max_packet_size);
  return true;
}

namespace {

// What decides a log record's shard: the topic of a retained message, else the client id.
std::string_view RecordKey(const wal::WalRecord& r) {
  return std::visit(
      [](const auto& rec) -> std::string_view {
        using T = std::decay_t<decltype(rec)>;
        if constexpr (std::is_same_v<T, wal::WalRetainedSet>) {
          return rec.message.topic;
        } else if constexpr (std::is_same_v<T, wal::WalRetainedCleared>) {
          return rec.topic;
        } else if constexpr (std::is_same_v<T, wal::WalSnapshotEnd>) {
          return {};
        } else {
          return rec.client_id;
        }
      },
      r);
}

}  // namespace

bool Broker::RecoverState(std::vector<uint64_t>* first_seq, std::vector<bool>* snapshot_written,
                          std::string* error) {
  // Every shard's log is replayed here, before the shard threads start, and each record goes to
  // the shard that now owns its client id or topic: a changed shard count still finds every
  // session. Each shard then writes its state as a snapshot and the replayed files are removed.
  const std::string dir = config_.data_dir + "/wal";
  const uint16_t n = shard_count();
  first_seq->assign(n, 1);
  snapshot_written->assign(n, true);
  bool rehomed = false;  // a record now belongs to another shard number than the file it is in
  wal::WalRecoverOptions options;
  options.strict = config_.recover_strict;
  const std::vector<uint16_t> old_shards = wal::ListWalShards(dir);
  std::vector<std::pair<uint16_t, uint64_t>> old_next;
  for (uint16_t old : old_shards) {
    wal::WalRecoverStats stats;
    const bool ok = RecoverWal(
        dir, old, options,
        [&](const wal::WalRecord& r) {
          const uint16_t home = smp::ShardOfKey(RecordKey(r), n);
          rehomed |= home != old;
          // Straight into the shard (its thread has not started): the records of one client id
          // or topic are all in one old shard's files, in order, so nothing is held here, and
          // restored queues spill as they grow (memory stays bounded).
          shards_[home]->Restore(r);
        },
        &stats, error);
    if (!ok) {
      *error = "recovering the write-ahead log: " + *error;
      return false;
    }
    for (const wal::WalCorruptRange& c : stats.corrupt) {
      LOG_ERROR_S(kWal, "WAL {} bytes {}-{} skipped: {}", c.file, c.begin, c.end, c.reason);
    }
    LOG_INFO_S(kWal, "WAL shard {}: {} records replayed ({} from the snapshot, {} segments){}", old,
               stats.records, stats.snapshot_records, stats.segments,
               stats.truncated_bytes ? ", torn tail truncated" : "");
    old_next.emplace_back(old, stats.next_segment_seq);
    if (old < n) (*first_seq)[old] = std::max((*first_seq)[old], stats.next_segment_seq);
    rehomed |= old >= n;
  }
  for (uint16_t i = 0; i < n; ++i) {
    shards_[i]->FinishRestore();
    if (!shards_[i]->WriteSnapshot((*first_seq)[i], error)) {
      // A full or read-only disk. With the shard count unchanged every shard's files hold its own
      // state only: they stay as they are (replayed again by the next start), and the shard
      // starts with its log failed (it retries). Rehomed state would be in no shard's files.
      if (rehomed) {
        *error = "writing the startup snapshot: " + *error +
                 " (the shard count changed: the sessions cannot be rehomed without writing)";
        return false;
      }
      LOG_ERROR_S(kWal,
                  "shard {}: writing the startup snapshot failed: {}; starting with the "
                  "write-ahead log failed: clean sessions are served, messages for persistent "
                  "sessions are refused until the log can be written again",
                  i, *error);
      error->clear();
      (*snapshot_written)[i] = false;
    }
  }
  // Only now that every shard's snapshot is on disk are the replayed files removed.
  for (const auto& [old, next] : old_next) {
    if (old < n && !(*snapshot_written)[old]) continue;
    if (old >= n) {
      // A shard that no longer exists: an empty snapshot makes all its older files obsolete.
      wal::WalSnapshotWriter empty;
      if (!empty.Open(dir, old, next, error) || !empty.Commit(error)) return false;
    }
    size_t deleted = 0;
    if (!wal::DeleteObsoleteWalFiles(dir, old, &deleted, error)) return false;
  }
  return true;
}

size_t Broker::PushFromCluster(uint16_t to, ShardMsg* msgs, size_t n) {
  const ShardRings::PushResult r = rings_.PushBatch(shards_.size(), to, msgs, n);
  if (r.needs_wake) shards_[to]->WakeFromAnyThread();
  return r.pushed;
}

void Broker::ForEachShard(const std::function<void(Shard&)>& fn) {
  for (auto& s : shards_) s->PostTask(fn);
}

void Broker::Reload(Config fresh) {
  if (fresh.shards != config_.shards || fresh.data_dir != config_.data_dir ||
      fresh.listeners.size() != config_.listeners.size()) {
    LOG_WARN_S(
        kBroker,
        "reload: listeners, shards and data_dir change only with a restart; kept as they are");
  }
  fresh.listeners = config_.listeners;
  fresh.shards = config_.shards;
  fresh.data_dir = config_.data_dir;
  // LoadConfig has checked the log settings: this cannot fail.
  (void)base::ConfigureLogging(fresh.log_level, fresh.log_levels, fresh.log_format);
  for (auto& s : shards_) {
    s->PostTask([fresh](Shard& shard) {
      if (std::string e = shard.Reload(fresh); !e.empty()) {
        LOG_ERROR_S(kTls, "shard {}: TLS reload failed, the old certificate stays: {}", shard.id(),
                    e);
      }
    });
  }
  LOG_INFO_S(kBroker,
             "configuration reloaded (max_packet_size {}, allow_anonymous {}, log_level {}, "
             "log_levels '{}', log_format {}, max_connections {}, max_connections_per_token {}, "
             "max_retained_bytes {})",
             fresh.max_packet_size, fresh.allow_anonymous, fresh.log_level, fresh.log_levels,
             fresh.log_format, fresh.max_connections, fresh.max_connections_per_token,
             fresh.max_retained_bytes);
}

void Broker::Stop() {
  for (auto& s : shards_) s->RequestStop();
  const bool stopped_now = !threads_.empty();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // Every counted connection was released when it ended (each shard closes all of its own before
  // its thread exits): a count left here is a leak, which would refuse clients for ever.
  if (stopped_now && connection_quota_.total() != 0) {
    LOG_ERROR_S(kBroker, "{} connection(s) still counted against max_connections after shutdown",
                connection_quota_.total());
    assert(connection_quota_.total() == 0);
  }
}

}  // namespace ringmq::broker
