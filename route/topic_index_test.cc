#include "route/topic_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "route/local_trie.h"
#include "route/test_match_cases.h"

namespace ringmq::route {
namespace {

class TopicIndexTest : public ::testing::Test {
 protected:
  smp::Qsbr qsbr_{4};
  TopicIndex index_{qsbr_};
};

TEST_F(TopicIndexTest, MatchingTable) {
  for (const MatchCase& c : kMatchCases) {
    ASSERT_TRUE(index_.Add(3, c.filter));
    EXPECT_EQ(index_.ShardsFor(c.topic), c.match ? 0b1000u : 0u)
        << "filter " << c.filter << " topic " << c.topic;
    ASSERT_TRUE(index_.Remove(3, c.filter));
    EXPECT_EQ(index_.LinkedNodes(), 2u) << c.filter;
  }
}

TEST_F(TopicIndexTest, SharedMatchingTable) {
  for (const MatchCase& c : kMatchCases) {
    ASSERT_TRUE(index_.AddShared(1, "g", c.filter));
    int calls = 0;
    index_.SharedGroupsFor(c.topic, [&](std::string_view g, std::string_view f, uint64_t mask) {
      ++calls;
      EXPECT_EQ(g, "g");
      EXPECT_EQ(f, c.filter);
      EXPECT_EQ(mask, 0b10u);
    });
    EXPECT_EQ(calls, c.match ? 1 : 0) << "filter " << c.filter << " topic " << c.topic;
    EXPECT_EQ(index_.ShardsFor(c.topic), 0u);  // shared subscriptions are not plain ones
    ASSERT_TRUE(index_.RemoveShared(1, "g", c.filter));
    EXPECT_EQ(index_.LinkedNodes(), 2u) << c.filter;
  }
}

TEST_F(TopicIndexTest, CountsDriveTheShardBit) {
  EXPECT_TRUE(index_.Add(1, "a/+"));
  EXPECT_FALSE(index_.Add(1, "a/+"));  // second subscriber of the same shard: bit already set
  EXPECT_TRUE(index_.Add(2, "a/#"));
  EXPECT_EQ(index_.CountForTest(1, "a/+"), 2u);
  EXPECT_EQ(index_.ShardsFor("a/x"), 0b110u);
  EXPECT_EQ(index_.ShardsFor("a"), 0b100u);
  EXPECT_TRUE(index_.Remove(1, "a/+"));
  EXPECT_EQ(index_.ShardsFor("a/x"), 0b110u);
  EXPECT_TRUE(index_.Remove(1, "a/+"));
  EXPECT_EQ(index_.ShardsFor("a/x"), 0b100u);
  EXPECT_FALSE(index_.Remove(1, "a/+"));  // not subscribed: no-op
  EXPECT_FALSE(index_.Remove(3, "a/#"));
  EXPECT_FALSE(index_.Remove(3, "never/added"));
  EXPECT_EQ(index_.ShardsFor("a/x"), 0b100u);
}

TEST_F(TopicIndexTest, OverlappingFiltersUnionTheirShards) {
  index_.Add(0, "#");
  index_.Add(1, "a/b/c");
  index_.Add(2, "a/+/c");
  index_.Add(3, "a/b/#");
  EXPECT_EQ(index_.ShardsFor("a/b/c"), 0b1111u);
  EXPECT_EQ(index_.ShardsFor("a/x/c"), 0b0101u);
  EXPECT_EQ(index_.ShardsFor("a/b"), 0b1001u);
  EXPECT_EQ(index_.ShardsFor("$a/b/c"), 0u);
}

TEST_F(TopicIndexTest, SharedGroupsAreReportedPerGroupAndFilter) {
  index_.AddShared(1, "g", "a/+");
  index_.AddShared(2, "g", "a/+");
  index_.AddShared(2, "h", "a/#");
  index_.AddShared(3, "g", "a/b");
  std::map<std::pair<std::string, std::string>, uint64_t> got;
  index_.SharedGroupsFor("a/b", [&](std::string_view g, std::string_view f, uint64_t m) {
    got[{std::string(g), std::string(f)}] = m;
  });
  const std::map<std::pair<std::string, std::string>, uint64_t> want = {
      {{"g", "a/+"}, 0b0110}, {{"h", "a/#"}, 0b0100}, {{"g", "a/b"}, 0b1000}};
  EXPECT_EQ(got, want);
  index_.RemoveShared(2, "g", "a/+");
  got.clear();
  index_.SharedGroupsFor("a/b", [&](std::string_view g, std::string_view f, uint64_t m) {
    got[{std::string(g), std::string(f)}] = m;
  });
  EXPECT_EQ((got[{"g", "a/+"}]), 0b0010u);
}

TEST_F(TopicIndexTest, SharedShardsTellWhetherAGroupHasMembers) {
  EXPECT_EQ(index_.SharedShards("g", "a/+"), 0u);
  index_.AddShared(1, "g", "a/+");
  index_.AddShared(3, "g", "a/+");
  index_.AddShared(2, "h", "a/+");
  EXPECT_EQ(index_.SharedShards("g", "a/+"), 0b1010u);
  EXPECT_EQ(index_.SharedShards("g", "a/b"), 0u);  // exact filter, not a match
  EXPECT_EQ(index_.SharedShards("h", "a/+"), 0b0100u);
  index_.RemoveShared(1, "g", "a/+");
  index_.RemoveShared(3, "g", "a/+");
  EXPECT_EQ(index_.SharedShards("g", "a/+"), 0u);
  EXPECT_EQ(index_.SharedShards("h", "a/+"), 0b0100u);
}

TEST_F(TopicIndexTest, ChurnOfDistinctFiltersDoesNotGrowMemory) {
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 500; ++i) {
      const std::string f = "data/" + std::to_string(round * 1000 + i) + "/+/x";
      index_.Add(0, f);
    }
    EXPECT_EQ(index_.LinkedNodes(), 2u + 1u + 500u * 3u);
    for (int i = 0; i < 500; ++i) {
      index_.Remove(0, "data/" + std::to_string(round * 1000 + i) + "/+/x");
    }
    EXPECT_EQ(index_.LinkedNodes(), 2u);
    for (std::size_t s = 0; s < 4; ++s) qsbr_.Quiescent(s);
    qsbr_.Quiescent(0);
    EXPECT_EQ(qsbr_.PendingForTest(0), 0u);
  }
}

// Many children of one node within one grace period (one SUBSCRIBE with thousands of filters
// "data/{i}", or of groups on one shared filter): what writers retire must grow with the number of
// children, not with its square. Copying the whole child array on every insertion retired one
// array per insertion, of up to kN entries each (10,000 filters: 1.2 GB waiting in Qsbr).
TEST_F(TopicIndexTest, ManyChildrenOfOneNodeRetireLinearMemory) {
  constexpr int kN = 4096;
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(index_.Add(0, "data/" + std::to_string(i)));
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(index_.AddShared(1, "g" + std::to_string(i), "x"));
  // Tables are only replaced when their size doubled: about log2(kN) per node are retired.
  EXPECT_LT(qsbr_.PendingForTest(0), 32u);
  EXPECT_LT(qsbr_.PendingForTest(1), 32u);
  for (int i = 0; i < kN; ++i) EXPECT_EQ(index_.ShardsFor("data/" + std::to_string(i)), 1u);
  int groups = 0;
  index_.SharedGroupsFor("x", [&](std::string_view, std::string_view, uint64_t) { ++groups; });
  EXPECT_EQ(groups, kN);
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(index_.Remove(0, "data/" + std::to_string(i)));
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(index_.RemoveShared(1, "g" + std::to_string(i), "x"));
  EXPECT_EQ(index_.LinkedNodes(), 2u);
  // Each removed node waits for reclamation, plus the tables replaced as they shrank.
  EXPECT_LT(qsbr_.PendingForTest(0), kN + 2 + 32u);
  EXPECT_LT(qsbr_.PendingForTest(1), kN + 2 + 32u);
  for (std::size_t s = 0; s < 4; ++s) qsbr_.Quiescent(s);
  for (std::size_t s = 0; s < 2; ++s) qsbr_.Quiescent(s);
  EXPECT_EQ(qsbr_.PendingForTest(0), 0u);
  EXPECT_EQ(qsbr_.PendingForTest(1), 0u);
}

// A tombstone keeps its DEAD node (to reuse the slot for the same level), but it must not keep what
// that node held when it died: the tombstones of its own children, and theirs in turn. Otherwise
// a client holding one subscription at a time builds a DEAD tree that grows with the number of
// SUBSCRIBE/UNSUBSCRIBE it sends (here 3^k nodes at depth k), never freed while "r" lives.
TEST_F(TopicIndexTest, TombstonesDoNotKeepDeadSubtrees) {
  ASSERT_TRUE(index_.Add(0, "r"));
  // Subscribes `f`, builds three dead subtrees below it, unsubscribes: f's node dies holding
  // three tombstones.
  auto build = [&](auto& self, const std::string& f, int depth) -> void {
    ASSERT_TRUE(index_.Add(0, f));
    for (int k = 0; depth > 0 && k < 3; ++k) self(self, f + "/" + std::to_string(k), depth - 1);
    ASSERT_TRUE(index_.Remove(0, f));
  };
  build(build, "r/t", 7);               // 3,280 nodes died
  EXPECT_EQ(index_.LinkedNodes(), 3u);  // roots and "r"
  for (std::size_t s = 0; s < 4; ++s) qsbr_.Quiescent(s);
  qsbr_.Quiescent(0);
  // The roots, "r" and the tombstone of "t" in r's table.
  EXPECT_LE(index_.RetainedNodesForTest(), 4u);
  EXPECT_EQ(qsbr_.PendingForTest(0), 0u);
}

// Topic levels are chosen by clients. With a fixed, public hash a client can compute offline
// thousands of levels that share one probe sequence; subscribed below one node, they make every
// insertion and every publish lookup under it scan all of them (20,000 such siblings: 1.5 ms per
// lookup instead of 0.5 us). The index seeds its hash at random, so levels crafted against the
// unseeded FNV-1a collide no more than any others.
TEST_F(TopicIndexTest, LevelsCraftedToCollideDoNotShareAProbeSequence) {
  auto unseeded = [](std::string_view level) {
    uint64_t h = 14695981039346656037ull;
    for (const char c : level) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
    return h ^ (h >> 32);
  };
  constexpr std::size_t kN = 400;  // ends in a table of 1,024 slots: 10 bits of the hash
  std::vector<std::string> crafted;
  for (uint64_t i = 0; crafted.size() < kN; ++i) {
    std::string level = "k" + std::to_string(i);
    if ((unseeded(level) & 1023) == 0x155) crafted.push_back(std::move(level));
  }
  for (const std::string& l : crafted) ASSERT_TRUE(index_.Add(0, "p/" + l));
  std::size_t longest = 0;
  for (const std::string& l : crafted) {
    longest = std::max(longest, index_.ProbeLengthForTest("p/" + l));
  }
  EXPECT_GT(longest, 0u);
  EXPECT_LT(longest, 64u);  // one shared sequence: up to 400
}

// Reference matcher for the randomized tests.
std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t slash = s.find('/', pos);
    out.push_back(s.substr(pos, slash == std::string_view::npos ? slash : slash - pos));
    if (slash == std::string_view::npos) return out;
    pos = slash + 1;
  }
}

bool RefMatches(std::string_view filter, std::string_view topic) {
  const auto f = Split(filter);
  const auto t = Split(topic);
  if (topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  std::size_t i = 0;
  for (; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return i == t.size();
}

TEST(TopicIndexRandom, AgreesWithReferenceAndLocalTrie) {
  const char* levels[] = {"a", "b", "", "$x", "c"};
  std::mt19937 rng(7);
  auto random_topic = [&] {
    std::string t;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      if (i) t += '/';
      t += levels[rng() % 5];
    }
    return t;
  };
  auto random_filter = [&] {
    std::string f;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      if (i) f += '/';
      const unsigned r = rng() % 8;
      if (r == 0 && i == n - 1) {
        f += '#';
      } else if (r <= 2) {
        f += '+';
      } else {
        f += levels[rng() % 5];
      }
    }
    return f;
  };
  smp::Qsbr qsbr(8);
  TopicIndex index(qsbr);
  std::vector<std::pair<std::size_t, std::string>> subs;
  std::vector<LocalTrie<int>> tries(8);
  for (int i = 0; i < 300; ++i) {
    const std::size_t shard = rng() % 8;
    subs.emplace_back(shard, random_filter());
    index.Add(shard, subs.back().second);
    tries[shard].Insert(subs.back().second, i);
  }
  for (int i = 0; i < 300; ++i) {
    const std::string topic = random_topic();
    uint64_t want = 0;
    for (const auto& [shard, f] : subs) {
      if (RefMatches(f, topic)) want |= uint64_t{1} << shard;
    }
    EXPECT_EQ(index.ShardsFor(topic), want) << topic;
    uint64_t from_tries = 0;
    for (std::size_t s = 0; s < 8; ++s) {
      tries[s].Match(topic, [&](const int&) { from_tries |= uint64_t{1} << s; });
    }
    EXPECT_EQ(from_tries, want) << topic;
  }
  for (const auto& [shard, f] : subs) ASSERT_TRUE(index.Remove(shard, f));
  EXPECT_EQ(index.LinkedNodes(), 2u);
}

TEST_F(TopicIndexTest, EmptyLevelDoesNotHideSharedGroups) {
  // "a/" puts an empty level "" below "a"; it sorts before the group leaves of "a".
  ASSERT_TRUE(index_.AddShared(2, "h", "a/"));
  ASSERT_TRUE(index_.AddShared(1, "g", "a"));
  std::map<std::pair<std::string, std::string>, uint64_t> got;
  auto collect = [&](std::string_view topic) {
    got.clear();
    index_.SharedGroupsFor(topic, [&](std::string_view g, std::string_view f, uint64_t m) {
      got[{std::string(g), std::string(f)}] = m;
    });
  };
  collect("a");
  EXPECT_EQ(got, (std::map<std::pair<std::string, std::string>, uint64_t>{{{"g", "a"}, 0b10}}));
  collect("a/");
  EXPECT_EQ(got, (std::map<std::pair<std::string, std::string>, uint64_t>{{{"h", "a/"}, 0b100}}));
}

// Shared subscriptions ("$share/{g}/{f}") against brute force, with empty levels ("a/", "/b",
// "a//b") among the filters, several groups per filter and several shards per group.
TEST(TopicIndexRandom, SharedAgreesWithReference) {
  const char* levels[] = {"a", "b", "", "$x"};
  const char* groups[] = {"g", "h", "gg"};
  std::mt19937 rng(11);
  auto random_levels = [&](bool wildcards) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      if (i) s += '/';
      const unsigned r = rng() % 8;
      if (wildcards && r == 0 && i == n - 1) {
        s += '#';
      } else if (wildcards && r <= 1) {
        s += '+';
      } else {
        s += levels[rng() % 4];
      }
    }
    return s;
  };
  using Key = std::pair<std::string, std::string>;  // (group, filter)
  for (int round = 0; round < 20; ++round) {
    smp::Qsbr qsbr(8);
    TopicIndex index(qsbr);
    std::vector<std::tuple<std::size_t, std::string, std::string>> subs;  // shard, group, filter
    for (int i = 0; i < 40; ++i) {
      subs.emplace_back(rng() % 8, groups[rng() % 3], random_levels(true));
      const auto& [shard, g, f] = subs.back();
      index.AddShared(shard, g, f);
    }
    for (int i = 0; i < 100; ++i) {
      const std::string topic = random_levels(false);
      std::map<Key, uint64_t> want;
      for (const auto& [shard, g, f] : subs) {
        if (RefMatches(f, topic)) want[{g, f}] |= uint64_t{1} << shard;
      }
      std::map<Key, uint64_t> got;
      index.SharedGroupsFor(topic, [&](std::string_view g, std::string_view f, uint64_t m) {
        const bool fresh = got.emplace(Key{std::string(g), std::string(f)}, m).second;
        EXPECT_TRUE(fresh) << "reported twice: " << g << " " << f;
      });
      EXPECT_EQ(got, want) << "round " << round << " topic '" << topic << "'";
    }
    for (const auto& [shard, g, f] : subs) ASSERT_TRUE(index.RemoveShared(shard, g, f));
    EXPECT_EQ(index.LinkedNodes(), 2u);
  }
}

// K readers call ShardsFor while writers add and remove from a small pool (maximal contention on
// the same nodes, including node deletion and re-creation). A permanent subscription must never
// disappear from a reader's view; the final state must match what the writers hold.
TEST(TopicIndexConcurrent, ReadersAndWritersRace) {
  constexpr std::size_t kReaders = 3;
  constexpr std::size_t kWriters = 2;
  constexpr std::size_t kShards = kReaders + kWriters + 1;  // last shard: permanent subscriber
  constexpr std::size_t kPermanent = kShards - 1;
  constexpr int kWriterOps = 30'000;
  const std::vector<std::string> pool = {"a/b",   "a/+",   "a/#", "+/b", "#",    "a/b/c",
                                         "a/+/c", "x/y/z", "x/#", "a",   "a/b/#"};
  smp::Qsbr qsbr(kShards);
  TopicIndex index(qsbr);
  index.Add(kPermanent, "a/b/#");
  index.AddShared(kPermanent, "grp", "a/+");
  qsbr.Offline(kPermanent);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> violations{0};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      const char* topics[] = {"a/b", "a/b/c", "x/y/z", "a", "q"};
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t m = index.ShardsFor(topics[n % 5]);
        if ((n % 5 == 0 || n % 5 == 1) && (m & (uint64_t{1} << kPermanent)) == 0) {
          violations.fetch_add(1);
        }
        if (n % 5 == 0) {
          bool seen = false;
          index.SharedGroupsFor("a/b", [&](std::string_view g, std::string_view, uint64_t mm) {
            if (g == "grp" && (mm & (uint64_t{1} << kPermanent)) != 0) seen = true;
          });
          if (!seen) violations.fetch_add(1);
        }
        ++n;
        if (n % 16 == 0) qsbr.Quiescent(r);
      }
      reads.fetch_add(n);
      qsbr.Offline(r);
    });
  }
  std::vector<std::map<std::string, int>> held(kWriters);
  std::vector<std::map<std::string, int>> held_shared(kWriters);
  std::vector<std::thread> writers;
  for (std::size_t w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::size_t shard = kReaders + w;
      std::mt19937 rng(static_cast<unsigned>(w + 1));
      for (int i = 0; i < kWriterOps; ++i) {
        const std::string& f = pool[rng() % pool.size()];
        const bool shared = rng() % 4 == 0;
        auto& h = shared ? held_shared[w] : held[w];
        if (rng() % 2 == 0 || h[f] == 0) {
          if (shared) {
            index.AddShared(shard, "g", f);
          } else {
            index.Add(shard, f);
          }
          ++h[f];
        } else {
          const bool ok = shared ? index.RemoveShared(shard, "g", f) : index.Remove(shard, f);
          if (!ok) violations.fetch_add(1);
          --h[f];
        }
        if (i % 8 == 0) qsbr.Quiescent(shard);
      }
      // Leave one writer's subscriptions in place, drop the other's entirely.
      if (w == 1) {
        for (auto& [f, c] : held[w]) {
          for (; c > 0; --c) index.Remove(shard, f);
        }
        for (auto& [f, c] : held_shared[w]) {
          for (; c > 0; --c) index.RemoveShared(shard, "g", f);
        }
      }
      qsbr.Offline(shard);
    });
  }
  for (auto& t : writers) t.join();
  stop.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0u);
  EXPECT_GT(reads.load(), 0u);

  // Final state: counts and bits equal what the writers hold.
  qsbr.Online(0);
  for (std::size_t w = 0; w < kWriters; ++w) {
    for (const std::string& f : pool) {
      const auto it = held[w].find(f);
      const int want = it == held[w].end() ? 0 : it->second;
      EXPECT_EQ(index.CountForTest(kReaders + w, f), static_cast<uint32_t>(want)) << f;
    }
  }
  for (const char* topic : {"a/b", "a/b/c", "x/y/z", "a", "q", "b/b"}) {
    uint64_t want = 0;
    if (RefMatches("a/b/#", topic)) want |= uint64_t{1} << kPermanent;
    for (std::size_t w = 0; w < kWriters; ++w) {
      for (const auto& [f, c] : held[w]) {
        if (c > 0 && RefMatches(f, topic)) want |= uint64_t{1} << (kReaders + w);
      }
    }
    EXPECT_EQ(index.ShardsFor(topic), want) << topic;
  }
  // Writer 1 removed everything, so removing writer 0's subscriptions leaves only the permanent
  // ones: the deleted branches were reclaimed.
  qsbr.Offline(0);
  qsbr.Online(kReaders);
  for (auto& [f, c] : held[0]) {
    for (; c > 0; --c) index.Remove(kReaders, f);
  }
  for (auto& [f, c] : held_shared[0]) {
    for (; c > 0; --c) index.RemoveShared(kReaders, "g", f);
  }
  // Permanent: a, a/b, a/b/# (plain) + a, a/+, leaf "grp" (shared), plus the two roots.
  EXPECT_EQ(index.LinkedNodes(), 2u + 3u + 3u);
  qsbr.Offline(kReaders);
}

// Writers on two shards add and remove hundreds of distinct children of the same nodes (plain
// "c/{w}-{i}" and shared groups on "c"), so the child tables grow and shrink (freeze, copy,
// replace) while readers look up permanent entries of those very tables.
TEST(TopicIndexConcurrent, TablesGrowAndShrinkUnderReaders) {
  constexpr std::size_t kReaders = 2;
  constexpr std::size_t kWriters = 2;
  constexpr std::size_t kShards = kReaders + kWriters + 1;
  constexpr std::size_t kPermanent = kShards - 1;
  constexpr uint64_t kBit = uint64_t{1} << kPermanent;
  smp::Qsbr qsbr(kShards);
  TopicIndex index(qsbr);
  index.Add(kPermanent, "c/keep");
  index.AddShared(kPermanent, "keep", "c");
  qsbr.Offline(kPermanent);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> violations{0};
  std::vector<std::thread> threads;
  for (std::size_t r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      for (uint64_t n = 0; !stop.load(std::memory_order_relaxed); ++n) {
        if ((index.ShardsFor("c/keep") & kBit) == 0) violations.fetch_add(1);
        bool seen = false;
        index.SharedGroupsFor("c", [&](std::string_view g, std::string_view, uint64_t m) {
          if (g == "keep" && (m & kBit) != 0) seen = true;
        });
        if (!seen) violations.fetch_add(1);
        if (n % 8 == 0) qsbr.Quiescent(r);
      }
      qsbr.Offline(r);
    });
  }
  std::vector<std::thread> writers;
  for (std::size_t w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::size_t shard = kReaders + w;
      for (int round = 0; round < 6; ++round) {
        for (int i = 0; i < 600; ++i) {
          const std::string id = std::to_string(w) + "-" + std::to_string(i);
          index.Add(shard, "c/" + id);
          index.AddShared(shard, "g" + id, "c");
          if (i % 16 == 0) qsbr.Quiescent(shard);
        }
        for (int i = 0; i < 600; ++i) {
          const std::string id = std::to_string(w) + "-" + std::to_string(i);
          if (!index.Remove(shard, "c/" + id)) violations.fetch_add(1);
          if (!index.RemoveShared(shard, "g" + id, "c")) violations.fetch_add(1);
          if (i % 16 == 0) qsbr.Quiescent(shard);
        }
      }
      qsbr.Offline(shard);
    });
  }
  for (auto& t : writers) t.join();
  stop.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0u);
  qsbr.Online(0);
  EXPECT_EQ(index.ShardsFor("c/0-1"), 0u);
  EXPECT_EQ(index.ShardsFor("c/keep"), kBit);
  // Roots, "c" and "c/keep" (plain), "c" and the "keep" leaf (shared).
  EXPECT_EQ(index.LinkedNodes(), 2u + 2u + 2u);
  qsbr.Offline(0);
}

// Writers subscribe and unsubscribe the same few filters (so their nodes die and come back, and
// tombstones are reused by whichever writer inserts that level first) while they also churn
// distinct siblings, so the same tables are frozen and replaced under them. Two entries for one
// level (invariant 2), or an insertion lost in a replaced table, shows as a writer that does not
// see its own subscription right after Add, or still sees it after its last Remove.
TEST(TopicIndexConcurrent, SameLevelsRaceWithTableReplacement) {
  constexpr std::size_t kWriters = 3;
  constexpr int kRounds = 1500;
  const char* shared_filters[] = {"s/k0", "s/k1/x", "s/k2", "s/k1"};
  smp::Qsbr qsbr(kWriters);
  TopicIndex index(qsbr);
  std::atomic<uint64_t> violations{0};
  std::vector<std::thread> writers;
  for (std::size_t w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const uint64_t bit = uint64_t{1} << w;
      std::mt19937 rng(static_cast<unsigned>(w + 7));
      for (int i = 0; i < kRounds; ++i) {
        const std::string f = shared_filters[rng() % 4];
        const std::string sibling = "s/w" + std::to_string(w) + "-" + std::to_string(i % 97);
        index.Add(w, f);
        index.AddShared(w, "g", f);
        index.Add(w, sibling);
        if ((index.ShardsFor(f) & bit) == 0) violations.fetch_add(1);
        if (index.CountForTest(w, f) != 1) violations.fetch_add(1);
        bool seen = false;
        index.SharedGroupsFor(f, [&](std::string_view g, std::string_view gf, uint64_t m) {
          if (g == "g" && gf == f && (m & bit) != 0) seen = true;
        });
        if (!seen) violations.fetch_add(1);
        if (!index.Remove(w, f)) violations.fetch_add(1);
        if (!index.RemoveShared(w, "g", f)) violations.fetch_add(1);
        if ((index.ShardsFor(f) & bit) != 0) violations.fetch_add(1);
        if (i % 3 != 0 && !index.Remove(w, sibling)) violations.fetch_add(1);
        if (i % 4 == 0) qsbr.Quiescent(w);
      }
      qsbr.Offline(w);
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(violations.load(), 0u);
  qsbr.Online(0);
  for (const char* f : shared_filters) EXPECT_EQ(index.ShardsFor(f), 0u) << f;
  qsbr.Offline(0);
}

}  // namespace
}  // namespace ringmq::route
