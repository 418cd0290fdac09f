#include "net/ring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "net/internal/test_util.h"
#include "net/user_data.h"

namespace ringmq::net {
namespace {

using Clock = std::chrono::steady_clock;

TEST(UserData, RoundTrips) {
  constexpr uint64_t v = PackUserData(7, 0x123456, 0xDEADBEEF);
  constexpr UserData ud = UnpackUserData(v);
  static_assert(ud.kind == 7 && ud.generation == 0x123456 && ud.index == 0xDEADBEEF);
  EXPECT_EQ(UnpackUserData(PackUserData(255, kGenerationMask, 0xFFFFFFFF)).kind, 255);
}

TEST(UserData, GenerationIsMaskedNotSpilledIntoKind) {
  const UserData ud = UnpackUserData(PackUserData(3, 0x1FFFFFF, 9));
  EXPECT_EQ(ud.kind, 3);
  EXPECT_EQ(ud.generation, kGenerationMask);
  EXPECT_EQ(ud.index, 9u);
}

TEST(Ring, InitReportsModeFdAndLargeCq) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 4096);
  EXPECT_GE(ring.fd(), 0);
  EXPECT_NE(std::string(ring.mode()), "");
  EXPECT_EQ(ring.raw()->cq.ring_entries, 4096u);
  EXPECT_EQ(ring.raw()->sq.ring_entries, 64u);
  ::testing::Test::RecordProperty("setup_mode", ring.mode());
  std::printf("io_uring setup mode: %s (flags 0x%x)\n", ring.mode(), ring.setup_flags());
}

TEST(Ring, InitRejectsZeroEntriesWithAMessage) {
  if (std::string why = testing::IoUringUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Ring ring;
  std::string error;
  EXPECT_FALSE(ring.Init(0, 0, &error));
  EXPECT_NE(error.find("io_uring setup"), std::string::npos) << error;
}

TEST(Ring, SubmitAndWaitTimesOutWithoutCompletions) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 0);
  const auto start = Clock::now();
  EXPECT_EQ(ring.SubmitAndWait(1, 20'000'000), 0);
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(15));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(ring.ForEachCqe([](const Completion&) { ADD_FAILURE() << "unexpected completion"; }),
            0u);
}

TEST(Ring, TimeoutCompletesWithEtime) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 0);
  const __kernel_timespec ts = Timespec(5'000'000);
  ring.PrepTimeout(&ts, PackUserData(1, 0, 42));
  ASSERT_GE(ring.SubmitAndWait(1, 0), 0);
  std::vector<Completion> got;
  ring.ForEachCqe([&](const Completion& c) { got.push_back(c); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(UnpackUserData(got[0].user_data).index, 42u);
  EXPECT_EQ(got[0].res, -ETIME);
}

// Invariant 1: preparing more entries than the SQ holds submits the full queue first.
TEST(Ring, PrepSubmitsWhenTheSqIsFullAndOneAdvanceTakesTheBatch) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 4, 64);
  constexpr int kCount = 19;
  const __kernel_timespec ts = Timespec(1'000'000);
  for (int i = 0; i < kCount; ++i) ring.PrepTimeout(&ts, PackUserData(1, 0, i));
  std::vector<bool> seen(kCount, false);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  int total = 0;
  while (total < kCount && Clock::now() < deadline) {
    ASSERT_GE(ring.SubmitAndWait(1, 100'000'000), 0);
    total += static_cast<int>(ring.ForEachCqe([&](const Completion& c) {
      EXPECT_EQ(c.res, -ETIME);
      seen[UnpackUserData(c.user_data).index] = true;
    }));
  }
  EXPECT_EQ(total, kCount);
  for (int i = 0; i < kCount; ++i) EXPECT_TRUE(seen[i]) << i;
  EXPECT_EQ(*ring.raw()->cq.khead, *ring.raw()->cq.ktail);
}

TEST(Ring, WriteFsyncReadOnAFile) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 0);
  char path[] = "/tmp/ringmq_net_ring_testXXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  const std::string text = "write-ahead log record";
  ring.PrepWrite(fd, text.data(), text.size(), PackUserData(1, 0, 0), 100);
  ASSERT_GE(ring.SubmitAndWait(1, 0), 0);
  int res = -1;
  ring.ForEachCqe([&](const Completion& c) { res = c.res; });
  EXPECT_EQ(res, static_cast<int>(text.size()));

  ring.PrepFsync(fd, /*datasync=*/true, PackUserData(2, 0, 0));
  ASSERT_GE(ring.SubmitAndWait(1, 0), 0);
  ring.ForEachCqe([&](const Completion& c) { res = c.res; });
  EXPECT_EQ(res, 0);

  std::string back(text.size(), '\0');
  ring.PrepRead(fd, back.data(), back.size(), PackUserData(3, 0, 0), 100);
  ASSERT_GE(ring.SubmitAndWait(1, 0), 0);
  ring.ForEachCqe([&](const Completion& c) { res = c.res; });
  EXPECT_EQ(res, static_cast<int>(text.size()));
  EXPECT_EQ(back, text);
  close(fd);
}

TEST(Ring, PollAddSeesAReadableEventfd) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 0);
  const int efd = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  ring.PrepPollAdd(efd, POLLIN, PackUserData(1, 0, 0));
  ASSERT_GE(ring.SubmitAndWait(0, 0), 0);
  EXPECT_EQ(ring.ForEachCqe([](const Completion&) {}), 0u);  // not readable yet
  const uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, sizeof(one)), 8);
  ASSERT_GE(ring.SubmitAndWait(1, 2'000'000'000), 0);
  int res = 0;
  EXPECT_EQ(ring.ForEachCqe([&](const Completion& c) { res = c.res; }), 1u);
  EXPECT_TRUE(res & POLLIN);
  close(efd);
}

// The cross-thread wake-up as the shards do it (broker/shard.cc, WakeFromAnyThread): a ring asleep
// in SubmitAndWait with a READ armed on an eventfd is woken by another thread writing the eventfd.
TEST(Ring, EventfdWriteWakesARingBlockedInSubmitAndWait) {
  constexpr uint64_t kWake = PackUserData(9, 1, 77);
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  std::promise<bool> armed;  // false: init failed
  std::string sleeper_error;
  std::vector<Completion> got;
  uint64_t value = 0;
  Clock::duration slept{};
  std::thread sleeper([&] {
    Ring ring;  // created on, and owned by, the sleeping thread
    if (!ring.Init(8, 0, &sleeper_error)) {
      armed.set_value(false);
      return;
    }
    ring.PrepRead(efd, &value, sizeof(value), kWake);
    (void)ring.SubmitAndWait(0, 0);  // arm the read (a failure shows as no completion below)
    armed.set_value(true);
    const auto start = Clock::now();
    ring.SubmitAndWait(1, 10'000'000'000);  // 10 s: far longer than the test waits
    slept = Clock::now() - start;
    ring.ForEachCqe([&](const Completion& c) { got.push_back(c); });
  });
  if (!armed.get_future().get()) {
    sleeper.join();
    close(efd);
    if (testing::IsMissingKernelFeature(sleeper_error)) GTEST_SKIP() << sleeper_error;
    FAIL() << sleeper_error;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let it fall asleep
  const uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, sizeof(one)), 8);
  sleeper.join();
  close(efd);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_data, kWake);
  EXPECT_EQ(got[0].res, 8);
  EXPECT_EQ(value, 1u);
  EXPECT_LT(slept, std::chrono::seconds(5));
}

// The startup probe asks for what the broker uses: READ (the eventfd wake-up), not MSG_RING.
TEST(Ring, ProbeRequiresReadNotMsgRing) {
  const std::vector<std::string_view> names = Ring::RequiredOpcodeNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "READ"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "MSG_RING"), names.end());
}

TEST(Ring, CancelFdEndsAPendingPoll) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 0);
  const int efd = eventfd(0, EFD_CLOEXEC);
  ring.PrepPollAdd(efd, POLLIN, PackUserData(1, 0, 0));
  ASSERT_GE(ring.SubmitAndWait(0, 0), 0);
  ring.PrepCancelFd(efd, PackUserData(2, 0, 0));
  int poll_res = 0, cancel_res = -1, seen = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (seen < 2 && Clock::now() < deadline) {
    ASSERT_GE(ring.SubmitAndWait(1, 100'000'000), 0);
    ring.ForEachCqe([&](const Completion& c) {
      ++seen;
      (UnpackUserData(c.user_data).kind == 1 ? poll_res : cancel_res) = c.res;
    });
  }
  EXPECT_EQ(poll_res, -ECANCELED);
  EXPECT_EQ(cancel_res, 1);
  ring.PrepClose(efd, PackUserData(3, 0, 0));
  ASSERT_GE(ring.SubmitAndWait(1, 1'000'000'000), 0);
  int close_res = -1;
  ring.ForEachCqe([&](const Completion& c) { close_res = c.res; });
  EXPECT_EQ(close_res, 0);
  EXPECT_EQ(fcntl(efd, F_GETFD), -1);  // really closed
}

}  // namespace
}  // namespace ringmq::net
