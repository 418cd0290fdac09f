#include "net/buffer_ring.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "net/internal/test_util.h"
#include "net/ring.h"
#include "net/user_data.h"

namespace ringmq::net {
namespace {

using Clock = std::chrono::steady_clock;

// Collects completions until one arrives without F_MORE (the multishot receive ended), `want`
// bytes arrived, or 5 s passed.
std::vector<Completion> CollectUntilEnd(Ring& ring, size_t want) {
  std::vector<Completion> got;
  bool ended = false;
  size_t bytes = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!ended && bytes < want && Clock::now() < deadline) {
    ring.SubmitAndWait(1, 100'000'000);
    ring.ForEachCqe([&](const Completion& c) {
      got.push_back(c);
      ended |= !c.more();
      if (c.res > 0) bytes += static_cast<size_t>(c.res);
    });
  }
  return got;
}

TEST(BufferRing, RejectsACountThatIsNotAPowerOfTwo) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 0);
  BufferRing buffers;
  std::string error;
  EXPECT_FALSE(buffers.Init(ring, 0, 3, 1024, &error));
  EXPECT_NE(error.find("power of two"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(buffers.Init(ring, 0, 65536, 1024, &error));
  EXPECT_FALSE(error.empty());
}

TEST(BufferRing, TwoGroupsCoexistButAGroupIdIsUsedOnce) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 0);
  BufferRing a, b, c;
  std::string error;
  if (!a.Init(ring, 0, 4, 512, &error)) {
    if (testing::IsMissingKernelFeature(error)) GTEST_SKIP() << error;
    FAIL() << error;
  }
  EXPECT_TRUE(b.Init(ring, 1, 8, 512, &error)) << error;
  EXPECT_FALSE(c.Init(ring, 1, 8, 512, &error));
  EXPECT_EQ(b.group(), 1);
  EXPECT_EQ(b.count(), 8u);
  EXPECT_EQ(b.buffer_size(), 512u);
}

// Invariant 2: a multishot receive that runs out of buffers ends with -ENOBUFS; recycling and
// re-arming delivers the rest of the bytes, none lost.
TEST(BufferRing, MultishotRecvEndsWithEnobufsAndResumesAfterRecycle) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 64);
  BufferRing buffers;
  std::string error;
  if (!buffers.Init(ring, 7, 2, 1024, &error)) {
    if (testing::IsMissingKernelFeature(error)) GTEST_SKIP() << error;
    FAIL() << error;
  }
  testing::TcpPair pair;
  ASSERT_TRUE(testing::MakeTcpPair(&pair, &error)) << error;
  std::string sent(4096, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(testing::SendAll(pair.client, sent.data(), sent.size()));

  const uint64_t ud = PackUserData(1, 1, 0);
  ring.PrepMultishotRecv(pair.server, buffers.group(), ud);
  std::vector<Completion> first = CollectUntilEnd(ring, sent.size());
  ASSERT_EQ(first.size(), 3u);  // two full buffers, then no buffer left
  std::string received;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(first[i].has_buffer());
    ASSERT_TRUE(first[i].more());
    ASSERT_EQ(first[i].res, 1024);
    const auto data = buffers.Get(first[i].buffer_id(), first[i].res);
    received.append(reinterpret_cast<const char*>(data.data()), data.size());
  }
  EXPECT_EQ(first[2].res, -ENOBUFS);
  EXPECT_FALSE(first[2].more());
  EXPECT_FALSE(first[2].has_buffer());

  // Recycle and re-arm until everything arrived; each round may end with ENOBUFS again.
  std::vector<uint16_t> lent = {first[0].buffer_id(), first[1].buffer_id()};
  for (int round = 0; round < 8 && received.size() < sent.size(); ++round) {
    for (uint16_t id : lent) buffers.Recycle(id);
    lent.clear();
    ring.PrepMultishotRecv(pair.server, buffers.group(), ud);
    for (const Completion& c : CollectUntilEnd(ring, sent.size() - received.size())) {
      if (c.has_buffer()) {
        const auto data = buffers.Get(c.buffer_id(), c.res);
        received.append(reinterpret_cast<const char*>(data.data()), data.size());
        lent.push_back(c.buffer_id());
      } else {
        EXPECT_EQ(c.res, -ENOBUFS);
      }
    }
  }
  EXPECT_EQ(received, sent);
}

TEST(BufferRing, SingleShotRecvPicksABufferAndSeesEof) {
  Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 8, 0);
  BufferRing buffers;
  std::string error;
  if (!buffers.Init(ring, 0, 4, 64, &error)) {
    if (testing::IsMissingKernelFeature(error)) GTEST_SKIP() << error;
    FAIL() << error;
  }
  testing::TcpPair pair;
  ASSERT_TRUE(testing::MakeTcpPair(&pair, &error)) << error;
  ASSERT_TRUE(testing::SendAll(pair.client, "hello", 5));
  ring.PrepRecv(pair.server, buffers.group(), 1);
  ring.SubmitAndWait(1, 2'000'000'000);
  Completion got{};
  ASSERT_EQ(ring.ForEachCqe([&](const Completion& c) { got = c; }), 1u);
  ASSERT_TRUE(got.has_buffer());
  ASSERT_EQ(got.res, 5);
  const auto data = buffers.Get(got.buffer_id(), got.res);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data.data()), data.size()), "hello");
  buffers.Recycle(got.buffer_id());

  shutdown(pair.client, SHUT_WR);
  ring.PrepRecv(pair.server, buffers.group(), 2);
  ring.SubmitAndWait(1, 2'000'000'000);
  ASSERT_EQ(ring.ForEachCqe([&](const Completion& c) { got = c; }), 1u);
  EXPECT_EQ(got.res, 0);  // EOF
}

}  // namespace
}  // namespace ringmq::net
