// Tests of spill files (broker/spill.h) on a real file system, and of their entry codec.
#include "broker/spill.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "broker/internal/spill_fixture.h"
#include "broker/session.h"

namespace ringmq::broker {
namespace {

class SpillTest : public internal::SpillFixture {
 protected:
  std::unique_ptr<SpillFile> Create() {
    std::string error;
    auto f = SpillFile::Create(ctx_, &error);
    EXPECT_NE(f, nullptr) << error;
    return f;
  }
};

std::string Entry(int i, size_t size = 100) {
  std::string e = std::to_string(i) + ":";
  e.resize(size, static_cast<char>('a' + i % 26));
  return e;
}

TEST_F(SpillTest, EntriesComeBackInOrderAcrossBufferAndFile) {
  auto f = Create();
  EXPECT_TRUE(f->empty());
  // Unlinked at once: the directory stays empty while the file is in use.
  EXPECT_TRUE(std::filesystem::is_empty(ctx_.dir));
  const int n = 5000;  // ~500 KB: several write buffers, several read-aheads
  for (int i = 0; i < n; ++i) ASSERT_TRUE(f->Append(Entry(i, 50 + i % 200)));
  EXPECT_GT(f->file_end(), 0u);
  EXPECT_EQ(budget_.used(), f->disk_bytes());
  std::string_view e;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(f->Next(&e)) << i;
    ASSERT_EQ(e, Entry(i, 50 + i % 200));
    if (i == n / 2) {
      ASSERT_TRUE(f->Append(Entry(n)));  // appending while reading
    }
  }
  ASSERT_TRUE(f->Next(&e));
  EXPECT_EQ(e, Entry(n));
  EXPECT_TRUE(f->empty());
  EXPECT_FALSE(f->Next(&e));
  // Empty: truncated, the budget given back.
  EXPECT_EQ(f->disk_bytes(), 0u);
  EXPECT_EQ(budget_.used(), 0u);
}

TEST_F(SpillTest, SpaceBehindTheReaderIsReturned) {
  auto f = Create();
  const int n = 40000;  // 4 MB
  for (int i = 0; i < n; ++i) ASSERT_TRUE(f->Append(Entry(i)));
  ASSERT_TRUE(f->Flush());
  const uint64_t full = f->disk_bytes();
  std::string_view e;
  for (int i = 0; i < n * 3 / 4; ++i) ASSERT_TRUE(f->Next(&e));
  // Punched in steps of kPunchBytes (the test's file system supports holes: tmpfs, ext4, xfs).
  EXPECT_LT(f->disk_bytes(), full / 4 + SpillFile::kPunchBytes + 4096);
  EXPECT_EQ(budget_.used(), f->disk_bytes());
}

TEST_F(SpillTest, PinnedRangeIsReadableByAnotherReaderWhileTheOwnerGoesOn) {
  auto f = Create();
  constexpr int kN = 15000;  // ~1.5 MB: past kPunchBytes
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(f->Append(Entry(i)));
  ASSERT_TRUE(f->Flush());
  const uint64_t begin = f->read_offset();
  const uint64_t end = f->file_end();
  f->Pin();
  std::string_view e;
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(f->Next(&e));  // read it all: nothing reclaimed
  for (int i = kN; i < kN + 100; ++i) ASSERT_TRUE(f->Append(Entry(i)));
  std::vector<std::string> seen;
  std::string error;
  ASSERT_TRUE(f->ReadFileRange(
      begin, end, [&](std::string_view v) { seen.emplace_back(v); }, &error))
      << error;
  ASSERT_EQ(seen.size(), size_t{kN});
  for (int i = 0; i < kN; ++i) ASSERT_EQ(seen[i], Entry(i));
  const uint64_t held = f->disk_bytes();
  f->Unpin();
  EXPECT_LT(f->disk_bytes(), held);  // reclaimed once unpinned
  std::vector<std::string> rest;
  ASSERT_TRUE(f->ForEachUnread([&](std::string_view v) { rest.emplace_back(v); }));
  ASSERT_EQ(rest.size(), 100u);
  EXPECT_EQ(rest.front(), Entry(kN));
}

TEST_F(SpillTest, BudgetRefusesAndNothingTakenIsLost) {
  DiskBudget small(200 << 10);  // ~3 write buffers
  ctx_.budget = &small;
  auto f = Create();
  int taken = 0;
  while (f->Append(Entry(taken))) ++taken;
  EXPECT_NE(f->error().find("max_queue_disk_bytes"), std::string::npos) << f->error();
  EXPECT_LE(small.used(), small.max());
  std::string_view e;
  for (int i = 0; i < taken; ++i) {
    ASSERT_TRUE(f->Next(&e)) << i;
    ASSERT_EQ(e, Entry(i));
  }
  EXPECT_FALSE(f->Next(&e));
  EXPECT_EQ(small.used(), 0u);
}

TEST_F(SpillTest, FullDiskRefusesWithTheErrorAndKeepsWhatItHas) {
  auto f = Create();
  // A disk that is full: /dev/full answers every write with ENOSPC (dup2 over the file's fd).
  const int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  int taken = 0;
  // The first write buffer is in memory; the flush that would make room fails.
  for (; taken < 1000; ++taken) {
    if (taken == 10) {
      // Swap the file for /dev/full underneath: every later write fails.
      ASSERT_TRUE(f->Flush());
      int fd = -1;
      for (int probe = 3; probe < 1024; ++probe) {
        struct stat st {};
        if (fstat(probe, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0) fd = probe;
      }
      ASSERT_GE(fd, 0);
      ASSERT_GE(dup2(full, fd), 0);
    }
    if (!f->Append(Entry(taken, 1000))) break;
  }
  close(full);
  EXPECT_LT(taken, 1000);
  EXPECT_NE(f->error().find("No space left"), std::string::npos) << f->error();
  EXPECT_EQ(budget_.used(), f->disk_bytes());
}

TEST(SpillCodec, DeliveryRoundTrips) {
  auto m = std::make_shared<route::Message>();
  m->topic = "data/u1/temp";
  m->payload = std::string("\0\x01payload", 9);
  m->payload_format_indicator = 1;
  m->content_type = "text/plain";
  m->response_topic = "r";
  m->correlation_data = "c";
  m->user_properties = {{"k", "v"}, {"k", "w"}};
  m->expires_at_ms = 123456;
  Delivery d{m, 2, true, {7, 9}, std::make_shared<const SharedKey>(SharedKey{"g", "data/#"}), 42};
  std::string e;
  EncodeSpillEntry(d, &e);
  Delivery back;
  ASSERT_TRUE(DecodeSpillEntry(e, &back));
  EXPECT_EQ(back.msg->topic, m->topic);
  EXPECT_EQ(back.msg->payload, m->payload);
  EXPECT_EQ(back.msg->payload_format_indicator, m->payload_format_indicator);
  EXPECT_EQ(back.msg->content_type, m->content_type);
  EXPECT_EQ(back.msg->response_topic, m->response_topic);
  EXPECT_EQ(back.msg->correlation_data, m->correlation_data);
  EXPECT_EQ(back.msg->user_properties, m->user_properties);
  EXPECT_EQ(back.msg->expires_at_ms, m->expires_at_ms);
  EXPECT_EQ(back.qos, 2);
  EXPECT_TRUE(back.retain);
  EXPECT_EQ(back.subscription_ids, d.subscription_ids);
  ASSERT_NE(back.shared, nullptr);
  EXPECT_EQ(back.shared->group, "g");
  EXPECT_EQ(back.shared->filter, "data/#");
  EXPECT_EQ(back.wal_id, 42u);
  EXPECT_EQ(QueuedBytes(back), QueuedBytes(d));  // the queue's byte count stays exact
  // Truncated entries are refused, never read past.
  for (size_t n = 0; n < e.size(); ++n) {
    Delivery x;
    EXPECT_FALSE(DecodeSpillEntry(std::string_view(e).substr(0, n), &x)) << n;
  }
}

}  // namespace
}  // namespace ringmq::broker
