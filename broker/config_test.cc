// LoadConfig: enum settings are parsed once, from flags or the file, and a bad value is refused
// with a message naming the accepted ones.
#include "broker/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "broker/connect_rules.h"

namespace ringmq::broker {
namespace {

struct Loaded {
  bool ok = false;
  int exit_code = 0;
  Config config;
  std::string errors;
};

Loaded Load(std::vector<std::string> args) {
  args.insert(args.begin(), "ringmq");
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& a : args) argv.push_back(a.data());
  Loaded l;
  std::ostringstream err;
  l.ok = LoadConfig(static_cast<int>(argv.size()), argv.data(), &l.config, &l.exit_code, err);
  l.errors = err.str();
  return l;
}

// A TOML file with `text`, removed at the end of the test.
class TomlFile {
 public:
  explicit TomlFile(const std::string& text) {
    char tmpl[] = "/tmp/ringmq-config-test-XXXXXX";
    const int fd = mkstemp(tmpl);
    path_ = tmpl;
    EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
  }
  ~TomlFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Config, Defaults) {
  Loaded l = Load({});
  ASSERT_TRUE(l.ok) << l.errors;
  EXPECT_EQ(l.config.queue_full_policy, QueueFullPolicy::kDropNew);
  EXPECT_EQ(l.config.durability, wal::WalDurability::kSync);
  ASSERT_EQ(l.config.listeners.size(), 1u);
  EXPECT_EQ(l.config.listeners[0].scheme, Scheme::kMqtt);
}

// The session queue limits (issue 14): bytes by default, the count only when asked; the file and
// the flags, and what a new session gets from them.
TEST(Config, SessionQueueLimits) {
  Loaded l = Load({});
  ASSERT_TRUE(l.ok) << l.errors;
  EXPECT_EQ(l.config.max_session_queue_bytes, uint64_t{1} << 30);
  EXPECT_EQ(l.config.max_queued_messages, 0u);
  EXPECT_EQ(l.config.max_inflight, 256);
  EXPECT_EQ(l.config.queue_memory_bytes, uint64_t{1} << 20);
  EXPECT_EQ(l.config.max_queue_disk_bytes, uint64_t{16} << 30);
  EXPECT_EQ(l.config.max_queue_memory_bytes, uint64_t{256} << 20);
  EXPECT_EQ(ShardQueueMemory(l.config), (uint64_t{256} << 20) / l.config.shards);
  SpillContext spill;
  Session::QueueLimits q = QueueLimitsOf(l.config, &spill);
  EXPECT_EQ(q.spill, &spill);
  EXPECT_EQ(q.memory_bytes, uint64_t{1} << 20);
  TomlFile f(
      "max_session_queue_bytes = 5000000000\nmax_queued_messages = 7\n"
      "queue_memory_bytes = 4096\nmax_queue_disk_bytes = 0\nmax_queue_memory_bytes = 0\n");
  l = Load({"--config", f.path(), "--queue-full-policy", "drop-oldest"});
  ASSERT_TRUE(l.ok) << l.errors;
  q = QueueLimitsOf(l.config, &spill);
  EXPECT_EQ(q.max_bytes, 5'000'000'000u);
  EXPECT_EQ(q.max_messages, 7u);
  EXPECT_EQ(q.policy, Session::QueuePolicy::kDropOldest);
  EXPECT_EQ(l.config.queue_memory_bytes, 4096u);
  EXPECT_EQ(q.spill, nullptr);                // no disk for queues: all in memory
  EXPECT_EQ(ShardQueueMemory(l.config), 0u);  // no shard-wide bound
  l = Load({"--max-session-queue-bytes", "1024", "--queue-memory-bytes", "10",
            "--max-queue-disk-bytes", "20", "--max-queue-memory-bytes", "3", "--shards", "4"});
  ASSERT_TRUE(l.ok) << l.errors;
  EXPECT_EQ(l.config.max_session_queue_bytes, 1024u);
  EXPECT_EQ(l.config.queue_memory_bytes, 10u);
  EXPECT_EQ(l.config.max_queue_disk_bytes, 20u);
  EXPECT_EQ(ShardQueueMemory(l.config), 1u);  // a share of at least one byte
}

TEST(Config, EnumFlagsAreParsed) {
  Loaded l = Load({"--queue-full-policy", "disconnect", "--durability", "batch", "--listen",
                   "ws://127.0.0.1:0"});
  ASSERT_TRUE(l.ok) << l.errors;
  EXPECT_EQ(l.config.queue_full_policy, QueueFullPolicy::kDisconnect);
  EXPECT_EQ(l.config.durability, wal::WalDurability::kBatch);
  EXPECT_EQ(l.config.listeners[0].scheme, Scheme::kWs);
  EXPECT_TRUE(l.config.listeners[0].websocket());
  EXPECT_FALSE(l.config.listeners[0].tls());
  EXPECT_EQ(l.config.listeners[0].path, "/mqtt");
}

TEST(Config, BadEnumFlagIsRefused) {
  Loaded l = Load({"--durability", "fast"});
  EXPECT_FALSE(l.ok);
  EXPECT_NE(l.exit_code, 0);
  EXPECT_NE(l.errors.find("fast"), std::string::npos) << l.errors;
}

TEST(Config, EnumSettingsOfTheFile) {
  TomlFile f("durability = \"none\"\nqueue_full_policy = \"drop-oldest\"\n");
  Loaded l = Load({"--config", f.path()});
  ASSERT_TRUE(l.ok) << l.errors;
  EXPECT_EQ(l.config.durability, wal::WalDurability::kNone);
  EXPECT_EQ(l.config.queue_full_policy, QueueFullPolicy::kDropOldest);
  // Flags override the file.
  l = Load({"--config", f.path(), "--durability", "sync"});
  ASSERT_TRUE(l.ok) << l.errors;
  EXPECT_EQ(l.config.durability, wal::WalDurability::kSync);
}

// Before enums, a misspelt durability in the file was taken as "sync" without a word.
TEST(Config, BadEnumInTheFileIsRefused) {
  TomlFile f("durability = \"fast\"\n");
  Loaded l = Load({"--config", f.path()});
  EXPECT_FALSE(l.ok);
  EXPECT_NE(l.errors.find("setting 'durability' must be batch, none or sync, not 'fast'"),
            std::string::npos)
      << l.errors;
}

TEST(Config, Names) {
  EXPECT_STREQ(SchemeName(Scheme::kWss), "wss");
  EXPECT_STREQ(QueueFullPolicyName(QueueFullPolicy::kDropOldest), "drop-oldest");
  EXPECT_STREQ(DurabilityName(wal::WalDurability::kBatch), "batch");
}

// Cluster mode (doc/cluster.md): flags and file keys; the node id defaults to the host name.
TEST(Config, Cluster) {
  Loaded l = Load({"--cluster", "nats://a:4222,nats://b:4222", "--shards", "2"});
  ASSERT_TRUE(l.ok) << l.errors;
  EXPECT_EQ(l.config.cluster, "nats://a:4222,nats://b:4222");
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(l.config.node_id, host);
  EXPECT_EQ(l.config.cluster_prefix, "ringmq");
  EXPECT_EQ(l.config.cluster_subject_levels, 1u);
  TomlFile f(
      "cluster = \"nats://x:1\"\nnode_id = \"n1\"\ncluster_prefix = \"app.mq\"\n"
      "cluster_subject_levels = 2\n");
  l = Load({"--config", f.path()});
  ASSERT_TRUE(l.ok) << l.errors;
  EXPECT_EQ(l.config.node_id, "n1");
  EXPECT_EQ(l.config.cluster_prefix, "app.mq");
  EXPECT_EQ(l.config.cluster_subject_levels, 2u);
  // Without --cluster nothing of it applies: no node id is made up.
  EXPECT_TRUE(Load({}).config.node_id.empty());
}

TEST(Config, ClusterLimits) {
  EXPECT_FALSE(Load({"--cluster", "nats://a:1", "--shards", "64"}).ok);  // the bridge is #64
  EXPECT_TRUE(Load({"--shards", "64"}).ok);
  TomlFile wild("cluster = \"nats://x:1\"\ncluster_prefix = \"a.*\"\n");
  EXPECT_FALSE(Load({"--config", wild.path()}).ok);
  TomlFile deep("cluster = \"nats://x:1\"\ncluster_subject_levels = 0\n");
  EXPECT_FALSE(Load({"--config", deep.path()}).ok);
}

TEST(Config, UnknownSchemeIsRefused) {
  Listener l;
  std::string error;
  EXPECT_FALSE(ParseListener("quic://127.0.0.1:1", &l, &error));
  EXPECT_NE(error.find("quic"), std::string::npos);
  ASSERT_TRUE(ParseListener("mqtts://[::1]:8883", &l, &error)) << error;
  EXPECT_EQ(l.scheme, Scheme::kMqtts);
  EXPECT_EQ(l.host, "::1");
  EXPECT_TRUE(l.tls());
}

}  // namespace
}  // namespace ringmq::broker
