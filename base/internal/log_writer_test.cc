// The log's queue and writer thread: a reader that does not read never blocks the logging thread,
// lines beyond the bound are dropped and counted, the order is kept, Flush is bounded.
#include "base/internal/log_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace ringmq::base::log_internal {
namespace {

using std::chrono::milliseconds;

struct Pipe {
  Pipe() {
    EXPECT_EQ(pipe(fds), 0);
    (void)fcntl(fds[1], F_SETPIPE_SZ, 4096);  // fills at once
  }
  ~Pipe() {
    close(fds[0]);
    close(fds[1]);
  }
  // Everything written so far, once the writer is done.
  std::string ReadAvailable() {
    std::string out;
    const int flags = fcntl(fds[0], F_GETFL);
    fcntl(fds[0], F_SETFL, flags | O_NONBLOCK);
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    fcntl(fds[0], F_SETFL, flags);
    return out;
  }
  int fds[2] = {-1, -1};
};

TEST(LogWriter, WritesLinesInOrder) {
  Pipe p;
  std::string expected;
  {
    LogWriter w(p.fds[1], 1 << 20);
    for (int i = 0; i < 100; ++i) {
      const std::string line = "line " + std::to_string(i) + "\n";
      EXPECT_TRUE(w.Push(line));
      expected += line;
    }
    std::string got;
    while (got.size() < expected.size()) got += p.ReadAvailable();
    EXPECT_EQ(got, expected);
    EXPECT_TRUE(w.Flush(milliseconds(1000)));
    EXPECT_EQ(w.dropped(), 0u);
  }
}

TEST(LogWriter, AReaderThatDoesNotReadNeverBlocksPush) {
  Pipe p;
  LogWriter w(p.fds[1], 64 * 1024);
  const std::string line(1000, 'x');
  const auto start = std::chrono::steady_clock::now();
  int accepted = 0;
  for (int i = 0; i < 10'000; ++i) accepted += w.Push(line + "\n") ? 1 : 0;  // 10 MB
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // The pipe (4 KiB) and the queue (64 KiB) took what they could; the rest was counted.
  EXPECT_GT(w.dropped(), 9'000u);
  EXPECT_EQ(w.dropped() + static_cast<uint64_t>(accepted), 10'000u);
  // Flush gives up at its timeout while nobody reads.
  EXPECT_FALSE(w.Flush(milliseconds(50)));
  // A reader comes: everything accepted gets out, whole lines.
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(p.fds[0], buf, sizeof(buf));
      if (n <= 0) return;
      got.append(buf, static_cast<size_t>(n));
      if (got.size() >= static_cast<size_t>(accepted) * (line.size() + 1)) return;
    }
  });
  EXPECT_TRUE(w.Flush(milliseconds(5000)));
  reader.join();
  EXPECT_EQ(got.size(), static_cast<size_t>(accepted) * (line.size() + 1));
  EXPECT_EQ(got.find_first_not_of("x\n"), std::string::npos);
}

TEST(LogWriter, ALineLongerThanTheQueueIsDropped) {
  Pipe p;
  LogWriter w(p.fds[1], 16);
  EXPECT_FALSE(w.Push(std::string(17, 'y')));
  EXPECT_EQ(w.dropped(), 1u);
  EXPECT_TRUE(w.Push("short\n"));
  EXPECT_TRUE(w.Flush(milliseconds(1000)));
  EXPECT_EQ(p.ReadAvailable(), "short\n");
}

TEST(LogWriter, WriteNowGoesOutAfterWhatIsQueued) {
  Pipe p;
  LogWriter w(p.fds[1], 1 << 20);
  EXPECT_TRUE(w.Push("first\n"));
  w.WriteNow("last\n", milliseconds(1000));
  EXPECT_EQ(p.ReadAvailable(), "first\nlast\n");
}

}  // namespace
}  // namespace ringmq::base::log_internal
