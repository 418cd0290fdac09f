// The WAL writer through a real io_uring on a temp directory, snapshots and pruning, and recovery
// from torn tails and corruption (doc/wal-format.md).
#include "wal/wal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "net/internal/test_util.h"
#include "net/user_data.h"
#include "wal/internal/wal_file.h"

namespace ringmq::wal {
namespace {

namespace fs = std::filesystem;

constexpr uint8_t kWalKind = 9;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ringmq-wal-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One shard loop turn, as broker/shard.cc runs it: Flush, SubmitAndWait, completions.
void Turn(net::Ring& ring, WalWriter& w) {
  w.Flush(ring, kWalKind, NowMs());
  ring.SubmitAndWait(w.idle() ? 0 : 1, 50'000'000);
  ring.ForEachCqe([&](const net::Completion& c) {
    ASSERT_EQ(net::UnpackUserData(c.user_data).kind, kWalKind);
    w.OnCompletion(c);
  });
}

// Turns until everything appended is durable (or 5 s pass).
void Drain(net::Ring& ring, WalWriter& w) {
  const int64_t deadline = NowMs() + 5000;
  while (!w.idle() && NowMs() < deadline) Turn(ring, w);
  ASSERT_TRUE(w.idle());
  ASSERT_FALSE(w.failed()) << w.error();
}

WalMessageQueued Queued(uint64_t id, size_t payload = 16) {
  WalMessageQueued q;
  q.client_id = "client-" + std::to_string(id % 7);
  q.message_id = id;
  q.message.topic = "sensors/" + std::to_string(id) + "/temp";
  q.message.payload = std::string(payload, static_cast<char>('a' + id % 26));
  q.message.qos = 1;
  return q;
}

struct Collected {
  std::vector<WalRecord> records;
  WalRecordCallback Fn() {
    return [this](const WalRecord& r) { records.push_back(r); };
  }
  std::vector<uint64_t> MessageIds() const {
    std::vector<uint64_t> ids;
    for (const WalRecord& r : records) {
      if (auto* q = std::get_if<WalMessageQueued>(&r)) ids.push_back(q->message_id);
    }
    return ids;
  }
};

std::vector<uint64_t> Iota(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

WalRecoverStats Recover(const std::string& dir, Collected* out, bool strict = false,
                        bool* ok = nullptr, std::string* error = nullptr) {
  WalRecoverStats stats;
  std::string e;
  const bool r = RecoverWal(dir, 0, WalRecoverOptions{strict, true}, out->Fn(), &stats, &e);
  if (ok != nullptr) *ok = r;
  if (error != nullptr) *error = e;
  if (ok == nullptr) {
    EXPECT_TRUE(r) << e;
  }
  return stats;
}

// Writes records 1..n (queued messages) through a real ring into dir; segment_bytes as given.
void WriteLog(const std::string& dir, uint64_t n, uint64_t segment_bytes = 64 << 20) {
  net::Ring ring;
  std::string error;
  ASSERT_TRUE(ring.Init(64, 0, &error)) << error;
  WalWriter w;
  ASSERT_TRUE(w.Open({dir, 0, segment_bytes, WalDurability::kSync, 10}, 1, &error)) << error;
  for (uint64_t i = 1; i <= n; ++i) {
    w.Append(Queued(i));
    if (i % 10 == 0) Turn(ring, w);
  }
  Drain(ring, w);
}

// Segments first_seq, first_seq + 1, ... through a real ring, one per group of message ids, as a
// broker writes them: Open (after its startup snapshot, if any), Roll between groups.
void WriteSegments(const std::string& dir, uint64_t first_seq,
                   const std::vector<std::vector<uint64_t>>& groups) {
  net::Ring ring;
  std::string error;
  ASSERT_TRUE(ring.Init(64, 0, &error)) << error;
  WalWriter w;
  ASSERT_TRUE(w.Open({dir, 0, 64 << 20, WalDurability::kSync, 10}, first_seq, &error)) << error;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (g > 0) w.Roll();
    for (uint64_t id : groups[g]) w.Append(Queued(id));
    Drain(ring, w);
  }
}

void WriteSnapshot(const std::string& dir, uint64_t seq, const std::vector<uint64_t>& ids) {
  WalSnapshotWriter snap;
  std::string error;
  ASSERT_TRUE(snap.Open(dir, 0, seq, &error)) << error;
  for (uint64_t id : ids) snap.Add(Queued(id));
  ASSERT_TRUE(snap.Commit(&error)) << error;
}

// The start offset of every frame of a segment or snapshot, and its end.
std::vector<size_t> Frames(std::string_view data) {
  std::vector<size_t> at;
  for (size_t off = kWalFileHeaderSize; off < data.size();) {
    at.push_back(off);
    WalFrame f{};
    if (ParseWalFrame(data.substr(off), &f) != WalFrameStatus::kOk) return at;
    off += f.size;
  }
  at.push_back(data.size());
  return at;
}

// Flips a byte in the body of frame i of a file.
void Damage(const std::string& path, size_t i) {
  std::string data = ReadAll(path);
  data[Frames(data)[i] + kWalFrameHeaderSize + 3] ^= 0x10;
  WriteAll(path, data);
}

// Header bytes 24..27: what precedes a segment (doc/wal-format.md, "Continuity").
uint32_t Link(const std::string& path) { return LoadWalLe32(ReadAll(path).data() + 24); }

// Rewrites a header as the earlier format wrote it: bytes 24..27 zero, checksum updated.
void ClearLink(const std::string& path) {
  std::string data = ReadAll(path);
  std::memset(&data[24], 0, 4);
  StoreWalLe32(base::Crc32c(data.data(), 28), &data[28]);
  WriteAll(path, data);
}

TEST(WalWriter, WritesSyncsAndAdvancesDurableSeqThroughTheRing) {
  TempDir dir;
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  WalWriter w;
  std::string error;
  ASSERT_TRUE(w.Open({dir.path(), 0, 64 << 20, WalDurability::kSync, 10}, 1, &error)) << error;
  EXPECT_EQ(w.durable_seq(), 0u);
  EXPECT_TRUE(w.idle());
  // Group commit: 100 appends before the turn become one write and one fdatasync.
  for (uint64_t i = 1; i <= 100; ++i) EXPECT_EQ(w.Append(Queued(i)), i);
  EXPECT_EQ(w.appended_seq(), 100u);
  w.Flush(ring, kWalKind, NowMs());
  // Appended while the batch is in flight: waits for the next batch (invariant 2).
  EXPECT_EQ(w.Append(WalMessageAcked{"client-1", 1}), 101u);
  while (w.durable_seq() < 100 && !w.failed()) Turn(ring, w);
  EXPECT_EQ(w.durable_seq(), 100u);
  EXPECT_EQ(w.stats().writes, 1u);
  EXPECT_EQ(w.stats().syncs, 1u);
  Drain(ring, w);
  EXPECT_EQ(w.durable_seq(), 101u);
  EXPECT_EQ(w.stats().syncs, 2u);
  EXPECT_EQ(w.stats().segments, 1u);

  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  EXPECT_EQ(st.records, 101u);
  EXPECT_EQ(got.MessageIds(), Iota(1, 101));
  EXPECT_EQ(std::get<WalMessageAcked>(got.records.back()), (WalMessageAcked{"client-1", 1}));
  EXPECT_EQ(st.next_segment_seq, 2u);
  EXPECT_EQ(st.truncated_bytes, 0u);
  EXPECT_TRUE(st.corrupt.empty());
}

TEST(WalWriter, RollsSegmentsAndRecoversThemInOrder) {
  TempDir dir;
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  WalWriter w;
  std::string error;
  ASSERT_TRUE(w.Open({dir.path(), 0, 2048, WalDurability::kSync, 10}, 5, &error)) << error;
  for (uint64_t i = 1; i <= 300; ++i) {
    w.Append(Queued(i));
    if (i % 7 == 0) Turn(ring, w);
  }
  Drain(ring, w);
  EXPECT_GT(w.stats().segments, 5u);
  EXPECT_EQ(w.segment_seq(), 5 + w.stats().segments - 1);
  EXPECT_TRUE(fs::exists(dir.File(WalSegmentName(0, 5))));
  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  EXPECT_EQ(got.MessageIds(), Iota(1, 301));
  EXPECT_TRUE(st.corrupt.empty());  // a log that starts at segment 5 is complete
  EXPECT_EQ(st.segments, w.stats().segments);
  EXPECT_EQ(st.next_segment_seq, w.segment_seq() + 1);
}

// Turns with the clock at `now_ms` until `done()` (or 100 turns pass).
template <typename Done>
void TurnsAt(net::Ring& ring, WalWriter& w, int64_t now_ms, Done&& done) {
  for (int i = 0; i < 100 && !done(); ++i) {
    w.Flush(ring, kWalKind, now_ms);
    ring.SubmitAndWait(w.idle() ? 0 : 1, 50'000'000);
    ring.ForEachCqe([&](const net::Completion& c) { w.OnCompletion(c); });
  }
}

// batch and none write every turn, so that a crash of the process loses nothing acknowledged
// (written_seq); batch fdatasyncs on its interval (durable_seq), none never.
TEST(WalWriter, BatchModeWritesAtOnceAndSyncsOnItsIntervalNoneModeNeverSyncs) {
  TempDir dir;
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  std::string error;
  {
    WalWriter w;
    ASSERT_TRUE(w.Open({dir.path(), 0, 1 << 20, WalDurability::kBatch, 60'000}, 1, &error));
    w.Append(Queued(1));
    TurnsAt(ring, w, 1000, [&] { return w.idle(); });  // the first fdatasync goes at once
    EXPECT_EQ(w.written_seq(), 1u);
    EXPECT_EQ(w.durable_seq(), 1u);
    w.Append(Queued(2));
    // Written at once, although the next fdatasync is not due before 61'000.
    TurnsAt(ring, w, 30'000, [&] { return w.written_seq() == 2; });
    EXPECT_EQ(w.written_seq(), 2u);
    EXPECT_EQ(w.ack_seq(), 2u);
    EXPECT_EQ(w.durable_seq(), 1u);
    EXPECT_EQ(w.next_flush_ms(), 61'000);
    EXPECT_FALSE(w.idle());
    w.Flush(ring, kWalKind, 30'000);  // too early
    ring.SubmitAndWait(0, 0);
    EXPECT_EQ(w.durable_seq(), 1u);
    EXPECT_EQ(w.stats().syncs, 1u);
    TurnsAt(ring, w, 61'000, [&] { return w.idle(); });
    EXPECT_EQ(w.durable_seq(), 2u);
    EXPECT_EQ(w.stats().syncs, 2u);
    EXPECT_EQ(w.stats().writes, 2u);
    EXPECT_EQ(w.next_flush_ms(), std::numeric_limits<int64_t>::max());
  }
  {
    WalWriter w;
    ASSERT_TRUE(w.Open({dir.path(), 0, 1 << 20, WalDurability::kNone, 10}, 2, &error));
    for (uint64_t i = 3; i <= 10; ++i) w.Append(Queued(i));
    Drain(ring, w);
    EXPECT_EQ(w.written_seq(), 8u);
    EXPECT_EQ(w.durable_seq(), 8u);
    EXPECT_EQ(w.stats().syncs, 0u);
    EXPECT_EQ(w.stats().writes, 1u);
  }
  Collected got;
  Recover(dir.path(), &got);
  EXPECT_EQ(got.MessageIds(), Iota(1, 11));
}

// batch: a segment is synced before the next one receives records (invariant 3), even long
// before its interval; kSync runs write and fdatasync in turn, in kBatch they may overlap.
TEST(WalWriter, BatchModeSyncsASegmentBeforeSwitching) {
  TempDir dir;
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  WalWriter w;
  std::string error;
  ASSERT_TRUE(w.Open({dir.path(), 0, 2048, WalDurability::kBatch, 60'000}, 1, &error)) << error;
  for (uint64_t i = 1; i <= 300; ++i) {
    w.Append(Queued(i));
    if (i % 7 == 0) Turn(ring, w);
  }
  w.Roll();
  Drain(ring, w);
  EXPECT_EQ(w.written_seq(), 300u);
  EXPECT_EQ(w.durable_seq(), 300u);
  EXPECT_GT(w.stats().segments, 5u);
  EXPECT_GE(w.stats().syncs, w.stats().segments - 1);
  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  EXPECT_EQ(got.MessageIds(), Iota(1, 301));
  EXPECT_TRUE(st.corrupt.empty());
}

// Reopening a failed log (ShardLog::MaybeReopen): a writer continues the numbering, keeps its
// records in memory until the snapshot exists, then opens the segment after it; the records up to
// the capture count as durable (the snapshot holds them).
TEST(WalWriter, ContinueKeepsRecordsUntilOpenAtAfterTheSnapshot) {
  TempDir dir;
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  std::string error;
  WalWriter w;
  w.Continue({dir.path(), 0, 1 << 20, WalDurability::kSync, 10}, 10, 3);
  EXPECT_FALSE(w.open());
  EXPECT_EQ(w.ack_seq(), 3u);
  EXPECT_EQ(w.Append(Queued(11)), 11u);
  w.Flush(ring, kWalKind, NowMs());  // nothing to write to yet
  (void)ring.SubmitAndWait(0, 0);
  EXPECT_EQ(w.durable_seq(), 3u);
  EXPECT_FALSE(w.idle());
  WriteSnapshot(dir.path(), 20, {1, 2, 3});
  ASSERT_TRUE(w.OpenAt(20, 10, &error)) << error;
  EXPECT_EQ(w.durable_seq(), 10u);
  Drain(ring, w);
  EXPECT_EQ(w.durable_seq(), 11u);
  EXPECT_EQ(Link(dir.File(WalSegmentName(0, 20))), 3u);  // after snapshot 20
  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  EXPECT_EQ(got.MessageIds(), (std::vector<uint64_t>{1, 2, 3, 11}));
  EXPECT_TRUE(st.corrupt.empty());

  WalWriter lost;  // its snapshot could not be written
  lost.Continue({dir.path(), 0, 1 << 20, WalDurability::kSync, 10}, 5, 5);
  lost.SetFailed(ENOSPC);
  EXPECT_TRUE(lost.failed());
  EXPECT_FALSE(lost.OpenAt(30, 5, &error));
  EXPECT_FALSE(fs::exists(dir.File(WalSegmentName(0, 30))));
}

// Completions are faked (the ring is never submitted): a short write is finished before the
// fdatasync, an error freezes durable_seq (invariant 5).
TEST(WalWriter, ShortWriteThenFailureFreezesDurability) {
  TempDir dir;
  WalWriter w;  // destroyed after the ring, which holds unsubmitted entries pointing into it
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  std::string error;
  ASSERT_TRUE(w.Open({dir.path(), 0, 1 << 20, WalDurability::kSync, 10}, 1, &error)) << error;
  auto ud = [](uint32_t op) { return net::PackUserData(kWalKind, 0, op); };
  std::string frame;
  AppendWalRecord(Queued(1), &frame);
  w.Append(Queued(1));
  w.Flush(ring, kWalKind, 0);  // write + directory fsync
  w.OnCompletion({ud(0), 10, 0});
  w.OnCompletion({ud(2), 0, 0});
  EXPECT_EQ(w.durable_seq(), 0u);
  w.Flush(ring, kWalKind, 0);  // the remaining bytes
  w.OnCompletion({ud(0), static_cast<int>(frame.size()) - 10, 0});
  EXPECT_EQ(w.durable_seq(), 0u);
  w.Flush(ring, kWalKind, 0);  // fdatasync
  w.OnCompletion({ud(1), 0, 0});
  EXPECT_EQ(w.durable_seq(), 1u);
  EXPECT_EQ(w.stats().writes, 2u);

  w.Append(Queued(2));
  w.Flush(ring, kWalKind, 0);
  w.OnCompletion({ud(0), -ENOSPC, 0});
  EXPECT_TRUE(w.failed());
  EXPECT_EQ(w.error(), ENOSPC);
  EXPECT_EQ(w.Append(Queued(3)), 3u);
  w.Flush(ring, kWalKind, 0);
  EXPECT_EQ(w.durable_seq(), 1u);
  EXPECT_TRUE(w.idle());
}

TEST(WalSnapshot, SnapshotPlusLaterSegmentsAndPruning) {
  TempDir dir;
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  WalWriter w;
  std::string error;
  ASSERT_TRUE(w.Open({dir.path(), 0, 64 << 20, WalDurability::kSync, 10}, 1, &error)) << error;
  for (uint64_t i = 1; i <= 50; ++i) w.Append(Queued(i));
  Turn(ring, w);  // 1..50 in flight
  for (uint64_t i = 51; i <= 60; ++i) w.Append(Queued(i));
  // The state "as of now" covers 1..60; everything after goes to segment S.
  const uint64_t s = w.Roll();
  EXPECT_EQ(s, 2u);
  for (uint64_t i = 61; i <= 70; ++i) w.Append(Queued(i));
  Drain(ring, w);
  EXPECT_EQ(w.segment_seq(), 2u);

  WalSnapshotWriter snap;
  ASSERT_TRUE(snap.Open(dir.path(), 0, s, &error)) << error;
  snap.Add(WalSessionCreated{"client-1", 3600, 5, 1});
  for (uint64_t i = 1; i <= 60; i += 10) snap.Add(Queued(i));  // the live state: 6 messages
  ASSERT_TRUE(snap.Commit(&error)) << error;

  WalFileList list;
  ASSERT_TRUE(ListWalFiles(dir.path(), 0, &list, &error)) << error;
  EXPECT_EQ(list.snapshot_seq, 2u);
  ASSERT_EQ(list.segments.size(), 1u);
  EXPECT_EQ(list.segments[0].seq, 2u);
  EXPECT_EQ(list.obsolete.size(), 1u);  // segment 1
  EXPECT_EQ(list.next_seq, 3u);
  size_t deleted = 0;
  ASSERT_TRUE(DeleteObsoleteWalFiles(dir.path(), 0, &deleted, &error)) << error;
  EXPECT_EQ(deleted, 1u);
  EXPECT_FALSE(fs::exists(dir.File(WalSegmentName(0, 1))));

  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  EXPECT_EQ(st.snapshot_seq, 2u);
  EXPECT_EQ(st.snapshot_records, 7u);
  std::vector<uint64_t> want = {1, 11, 21, 31, 41, 51};
  for (uint64_t i = 61; i <= 70; ++i) want.push_back(i);
  EXPECT_EQ(got.MessageIds(), want);
  EXPECT_EQ(std::get<WalSessionCreated>(got.records[0]).client_id, "client-1");
  EXPECT_EQ(ListWalShards(dir.path()), std::vector<uint16_t>{0});
}

// A snapshot cut short (its end record torn): lenient recovery keeps its complete records, reports
// the rest and sets the file aside; strict recovery refuses and changes nothing.
TEST(WalSnapshot, AnIncompleteSnapshotIsSalvagedAndSetAside) {
  TempDir dir;
  std::string error;
  {
    WalSnapshotWriter snap;  // abandoned: its temp file disappears
    ASSERT_TRUE(snap.Open(dir.path(), 0, 1, &error));
    snap.Add(Queued(1));
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
  WriteSnapshot(dir.path(), 3, {1, 2});
  const std::string path = dir.File(WalSnapshotName(0, 3));
  std::string bytes = ReadAll(path);
  const size_t end_record = Frames(bytes)[2];
  bytes.resize(bytes.size() - 1);  // cut into the end record
  WriteAll(path, bytes);

  Collected strict;
  bool ok = true;
  Recover(dir.path(), &strict, /*strict=*/true, &ok, &error);
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find(WalSnapshotName(0, 3)), std::string::npos) << error;
  EXPECT_TRUE(fs::exists(path));

  Collected got;
  WalRecoverStats st = Recover(dir.path(), &got);
  EXPECT_EQ(got.MessageIds(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(st.snapshot_seq, 3u);
  EXPECT_TRUE(st.snapshot_salvaged);
  ASSERT_EQ(st.corrupt.size(), 1u);
  EXPECT_EQ(st.corrupt[0].file, path);
  EXPECT_EQ(st.corrupt[0].begin, end_record);
  EXPECT_EQ(st.corrupt[0].end, bytes.size());
  EXPECT_EQ(st.next_segment_seq, 4u);  // never reuses the number
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(ReadAll(path + ".bad"), bytes);
}

// A flipped byte in the only snapshot (the segments before it were pruned when it was written):
// lenient recovery loses that one record and replays the segment after the snapshot.
TEST(WalSnapshot, AFlippedByteInTheOnlySnapshotLosesOnlyThatRecord) {
  TempDir dir;
  WriteSnapshot(dir.path(), 5, Iota(1, 21));
  WriteSegments(dir.path(), 5, {Iota(21, 31)});
  const std::string path = dir.File(WalSnapshotName(0, 5));
  const std::vector<size_t> frames = Frames(ReadAll(path));
  Damage(path, 6);  // message 7

  Collected strict;
  bool ok = true;
  std::string error;
  Recover(dir.path(), &strict, /*strict=*/true, &ok, &error);
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find(WalSnapshotName(0, 5)), std::string::npos) << error;

  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  std::vector<uint64_t> want = Iota(1, 31);
  want.erase(want.begin() + 6);
  EXPECT_EQ(got.MessageIds(), want);
  EXPECT_EQ(st.snapshot_seq, 5u);
  EXPECT_TRUE(st.snapshot_salvaged);
  EXPECT_EQ(st.snapshot_records, 19u);
  ASSERT_EQ(st.corrupt.size(), 1u);
  EXPECT_EQ(st.corrupt[0].file, path);
  EXPECT_EQ(st.corrupt[0].begin, frames[6]);
  EXPECT_EQ(st.corrupt[0].end, frames[7]);
  EXPECT_EQ(st.next_segment_seq, 6u);
}

// Snapshot 1, segments 1-3 and a damaged snapshot 3, as a crash between writing snapshot 3 and
// pruning leaves them: snapshot 1 and every segment after it hold the whole state, so they are
// used. Once segment 2 is gone, snapshot 3 holds more than snapshot 1 can give: it is salvaged.
TEST(WalSnapshot, AnOlderValidSnapshotIsUsedOnlyIfNoSegmentAfterItIsMissing) {
  TempDir dir;
  WriteSnapshot(dir.path(), 1, {});
  WriteSegments(dir.path(), 1, {Iota(1, 11), Iota(11, 21), Iota(21, 31)});
  WriteSnapshot(dir.path(), 3, Iota(1, 21));
  const std::string snap3 = dir.File(WalSnapshotName(0, 3));
  Damage(snap3, 4);  // message 5
  {
    Collected got;
    const WalRecoverStats st = Recover(dir.path(), &got);
    EXPECT_EQ(got.MessageIds(), Iota(1, 31));
    EXPECT_EQ(st.snapshot_seq, 1u);
    EXPECT_FALSE(st.snapshot_salvaged);
    ASSERT_EQ(st.corrupt.size(), 1u);  // nothing lost, but a damaged file is still reported
    EXPECT_EQ(st.corrupt[0].file, snap3);
    EXPECT_TRUE(fs::exists(snap3 + ".bad"));
  }
  fs::remove(dir.File(WalSegmentName(0, 2)));
  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  std::vector<uint64_t> want = Iota(1, 31);
  want.erase(want.begin() + 4);
  EXPECT_EQ(got.MessageIds(), want);
  EXPECT_EQ(st.snapshot_seq, 3u);
  EXPECT_TRUE(st.snapshot_salvaged);
  ASSERT_EQ(st.corrupt.size(), 1u);  // the damaged record; segment 3 follows snapshot 3
  EXPECT_EQ(st.corrupt[0].file, snap3 + ".bad");
  // While the state rests on a damaged snapshot, pruning deletes nothing.
  WalFileList list;
  std::string error;
  ASSERT_TRUE(ListWalFiles(dir.path(), 0, &list, &error)) << error;
  EXPECT_TRUE(list.snapshot_damaged);
  EXPECT_TRUE(list.obsolete.empty());
}

// After a salvage the broker writes its startup snapshot and prunes: the set-aside file stays,
// is never read again, and its number is never reused. Until that snapshot exists (a crash right
// after recovery) the next recovery salvages the same records again.
TEST(WalSnapshot, ASetAsideSnapshotIsKeptAndNeverReadAgain) {
  TempDir dir;
  WriteSnapshot(dir.path(), 4, Iota(1, 11));
  Damage(dir.File(WalSnapshotName(0, 4)), 0);
  const std::string bad = dir.File(WalSnapshotName(0, 4)) + ".bad";
  for (int start = 0; start < 2; ++start) {
    Collected got;
    const WalRecoverStats st = Recover(dir.path(), &got);
    EXPECT_EQ(got.MessageIds(), Iota(2, 11));
    EXPECT_EQ(st.corrupt.size(), 1u);
    EXPECT_EQ(st.next_segment_seq, 5u);
    EXPECT_TRUE(fs::exists(bad));
    EXPECT_FALSE(fs::exists(dir.File(WalSnapshotName(0, 4))));
    EXPECT_EQ(ListWalShards(dir.path()), std::vector<uint16_t>{0});
  }
  WriteSnapshot(dir.path(), 5, Iota(2, 11));
  WriteSegments(dir.path(), 5, {Iota(11, 13)});
  size_t deleted = 0;
  std::string error;
  ASSERT_TRUE(DeleteObsoleteWalFiles(dir.path(), 0, &deleted, &error)) << error;
  EXPECT_EQ(deleted, 0u);
  EXPECT_TRUE(fs::exists(bad));
  WalFileList list;
  ASSERT_TRUE(ListWalFiles(dir.path(), 0, &list, &error)) << error;
  EXPECT_EQ(list.snapshot_seq, 5u);
  EXPECT_FALSE(list.snapshot_damaged);
  EXPECT_TRUE(list.bad_snapshots.empty());
  EXPECT_EQ(list.next_seq, 6u);
  Collected later;
  const WalRecoverStats st = Recover(dir.path(), &later, /*strict=*/true);
  EXPECT_EQ(later.MessageIds(), Iota(2, 13));
  EXPECT_TRUE(st.corrupt.empty());
}

// Cuts the last segment at every byte of its last three records: recovery keeps the complete
// records, truncates the rest, and a second recovery finds nothing to repair.
// Recovery maps files and gives pages back behind its reader: what is read again is the same.
TEST(WalRecover, MappedFileReadsTheSameBytesAfterReleasingThem) {
  TempDir dir;
  std::string bytes;
  for (int i = 0; bytes.size() < (3u << 20); ++i) bytes += std::to_string(i) + ",";
  {
    std::ofstream f(dir.File("m"), std::ios::binary);
    f << bytes;
  }
  wal_internal::MappedFile m;
  std::string error;
  ASSERT_TRUE(m.Open(dir.File("m"), &error)) << error;
  ASSERT_EQ(m.bytes(), bytes);
  m.ReleaseBelow(2u << 20);
  EXPECT_EQ(m.bytes(), bytes);
  m.ReleaseBelow(m.bytes().size());
  EXPECT_EQ(m.bytes(), bytes);
  wal_internal::MappedFile moved = std::move(m);
  EXPECT_EQ(moved.bytes(), bytes);
  EXPECT_TRUE(m.bytes().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  { std::ofstream f(dir.File("empty"), std::ios::binary); }
  ASSERT_TRUE(m.Open(dir.File("empty"), &error)) << error;
  EXPECT_TRUE(m.bytes().empty());
  EXPECT_FALSE(m.Open(dir.File("missing"), &error));
  EXPECT_NE(error.find("missing"), std::string::npos);
}

TEST(WalRecover, TornTailAtEveryByteOfTheLastRecords) {
  TempDir src;
  WriteLog(src.path(), 20);
  const std::string name = WalSegmentName(0, 1);
  const std::string full = ReadAll(src.File(name));
  std::vector<size_t> ends;  // end offset of every record
  for (size_t off = kWalFileHeaderSize; off < full.size();) {
    WalFrame f{};
    ASSERT_EQ(ParseWalFrame(std::string_view(full).substr(off), &f), WalFrameStatus::kOk);
    off += f.size;
    ends.push_back(off);
  }
  ASSERT_EQ(ends.size(), 20u);
  for (size_t cut = ends[16]; cut < full.size(); ++cut) {
    TempDir dir;
    WriteAll(dir.File(name), full.substr(0, cut));
    size_t complete = 0;
    while (complete < ends.size() && ends[complete] <= cut) ++complete;
    Collected got;
    WalRecoverStats st = Recover(dir.path(), &got, /*strict=*/true);
    EXPECT_EQ(got.MessageIds(), Iota(1, complete + 1)) << cut;
    EXPECT_EQ(st.truncated_bytes, cut - ends[complete - 1]) << cut;
    EXPECT_TRUE(st.corrupt.empty());
    EXPECT_EQ(fs::file_size(dir.File(name)), ends[complete - 1]);
    Collected again;
    st = Recover(dir.path(), &again, /*strict=*/true);
    EXPECT_EQ(again.records.size(), complete);
    EXPECT_EQ(st.truncated_bytes, 0u);
  }
}

TEST(WalRecover, GarbageAfterTheLastRecordIsATornTail) {
  TempDir dir;
  WriteLog(dir.path(), 5);
  const std::string path = dir.File(WalSegmentName(0, 1));
  const std::string good = ReadAll(path);
  WriteAll(path, good + std::string(4096, '\0') + "\x07garbage");
  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got, /*strict=*/true);
  EXPECT_EQ(got.records.size(), 5u);
  EXPECT_EQ(st.truncated_bytes, 4096u + 8);
}

// A flipped byte inside an early record: lenient recovery skips that record and keeps the rest,
// strict recovery refuses.
TEST(WalRecover, FlippedByteInTheMiddleLenientVersusStrict) {
  TempDir dir;
  WriteLog(dir.path(), 20);
  const std::string path = dir.File(WalSegmentName(0, 1));
  std::string data = ReadAll(path);
  WalFrame f{};
  ASSERT_EQ(ParseWalFrame(std::string_view(data).substr(kWalFileHeaderSize), &f),
            WalFrameStatus::kOk);
  const size_t second = kWalFileHeaderSize + f.size;  // record 2 starts here
  data[second + kWalFrameHeaderSize + 5] ^= 0x20;
  WriteAll(path, data);

  Collected got;
  bool ok = false;
  std::string error;
  WalRecoverStats st = Recover(dir.path(), &got, /*strict=*/true, &ok, &error);
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find("corrupt bytes [" + std::to_string(second)), std::string::npos) << error;

  Collected lenient;
  st = Recover(dir.path(), &lenient);
  std::vector<uint64_t> want = Iota(1, 21);
  want.erase(want.begin() + 1);
  EXPECT_EQ(lenient.MessageIds(), want);
  ASSERT_EQ(st.corrupt.size(), 1u);
  EXPECT_EQ(st.corrupt[0].begin, second);
  EXPECT_EQ(st.corrupt[0].end, second + f.size);
  EXPECT_EQ(st.truncated_bytes, 0u);
  EXPECT_EQ(fs::file_size(path), data.size());  // corruption is never "repaired" away
}

TEST(WalRecover, ASnapshotEndRecordInASegmentIsCorruption) {
  TempDir dir;
  WriteLog(dir.path(), 3);
  const std::string path = dir.File(WalSegmentName(0, 1));
  std::string data = ReadAll(path);
  const size_t at = data.size();
  AppendWalRecord(WalSnapshotEnd{3}, &data);
  const size_t end = data.size();
  AppendWalRecord(Queued(4), &data);
  WriteAll(path, data);
  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  EXPECT_EQ(got.MessageIds(), Iota(1, 5));
  ASSERT_EQ(st.corrupt.size(), 1u);
  EXPECT_EQ(st.corrupt[0].begin, at);
  EXPECT_EQ(st.corrupt[0].end, end);
}

TEST(WalRecover, CorruptionInAnEarlierSegmentContinuesWithTheNext) {
  TempDir dir;
  WriteLog(dir.path(), 100, 1024);
  WalFileList list;
  std::string error;
  ASSERT_TRUE(ListWalFiles(dir.path(), 0, &list, &error));
  ASSERT_GE(list.segments.size(), 3u);
  // Destroy the second half of segment 1 and the header of segment 2.
  std::string s1 = ReadAll(list.segments[0].path);
  for (size_t i = s1.size() / 2; i < s1.size(); ++i) s1[i] = static_cast<char>(i * 7);
  WriteAll(list.segments[0].path, s1);
  std::string s2 = ReadAll(list.segments[1].path);
  s2[0] ^= 1;
  WriteAll(list.segments[1].path, s2);

  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  ASSERT_EQ(st.corrupt.size(), 2u);
  EXPECT_EQ(st.corrupt[0].end, s1.size());
  EXPECT_EQ(st.corrupt[1].file, list.segments[1].path);
  EXPECT_EQ(st.corrupt[1].end, kWalFileHeaderSize);  // only the header: its records are kept
  const std::vector<uint64_t> ids = got.MessageIds();
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 1u);
  EXPECT_EQ(ids.back(), 100u);  // later segments replayed in full
  const std::vector<size_t> frames = Frames(s2);
  for (size_t i = 0; i + 1 < frames.size(); ++i) {
    WalFrame f{};
    ASSERT_EQ(ParseWalFrame(std::string_view(s2).substr(frames[i]), &f), WalFrameStatus::kOk);
    WalMessageQueued q;
    ASSERT_TRUE(Decode(f.body, &q));
    EXPECT_NE(std::find(ids.begin(), ids.end(), q.message_id), ids.end()) << q.message_id;
  }
  bool ok = true;
  Collected strict;
  Recover(dir.path(), &strict, /*strict=*/true, &ok, &error);
  EXPECT_FALSE(ok);
}

TEST(WalRecover, MissingDirectoryAndEmptySegmentAreAFreshStart) {
  TempDir dir;
  Collected got;
  WalRecoverStats st = Recover(dir.path() + "/absent", &got, /*strict=*/true);
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(st.next_segment_seq, 1u);
  // A start wrote its snapshot, created segment 7 and was killed before the header was written.
  WriteSnapshot(dir.path(), 7, {});
  WriteAll(dir.File(WalSegmentName(0, 7)), "RW");
  st = Recover(dir.path(), &got, /*strict=*/true);
  EXPECT_EQ(st.records, 0u);
  EXPECT_TRUE(st.corrupt.empty());
  EXPECT_EQ(st.next_segment_seq, 8u);
  // Without that snapshot, what came before segment 7 is gone.
  fs::remove(dir.File(WalSnapshotName(0, 7)));
  st = Recover(dir.path(), &got);
  ASSERT_EQ(st.corrupt.size(), 1u);
  EXPECT_EQ(st.corrupt[0].file, dir.File(WalSnapshotName(0, 7)));
}

// Segments 3 and 4 of 2-5 deleted: reported as missing (lenient: the other segments replayed;
// strict: refused, naming the first missing file).
TEST(WalRecover, MissingSegmentsAreReported) {
  TempDir dir;
  WriteSnapshot(dir.path(), 2, {});
  WriteSegments(dir.path(), 2, {Iota(1, 11), Iota(11, 21), Iota(21, 31), Iota(31, 41)});
  fs::remove(dir.File(WalSegmentName(0, 3)));
  fs::remove(dir.File(WalSegmentName(0, 4)));
  Collected strict;
  bool ok = true;
  std::string error;
  Recover(dir.path(), &strict, /*strict=*/true, &ok, &error);
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find(WalSegmentName(0, 3) + ": missing file"), std::string::npos) << error;

  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  std::vector<uint64_t> want = Iota(1, 11);
  for (uint64_t i = 31; i < 41; ++i) want.push_back(i);
  EXPECT_EQ(got.MessageIds(), want);
  ASSERT_EQ(st.corrupt.size(), 1u);
  EXPECT_EQ(st.corrupt[0].file, dir.File(WalSegmentName(0, 3)));
  EXPECT_EQ(st.corrupt[0].begin, 0u);
  EXPECT_EQ(st.corrupt[0].end, 0u);
  EXPECT_NE(st.corrupt[0].reason.find("segments 3 to 4"), std::string::npos);
  EXPECT_EQ(st.next_segment_seq, 6u);
}

// The startup snapshot 7 and the segments opened after it: each header says what precedes it, so
// without the snapshot recovery knows the state before segment 7 is gone (rather than replaying
// the segments onto an empty state).
TEST(WalRecover, AMissingSnapshotIsReportedWhenItsSegmentsRemain) {
  TempDir dir;
  WriteSnapshot(dir.path(), 7, Iota(1, 11));
  WriteSegments(dir.path(), 7, {Iota(11, 21), Iota(21, 31)});
  EXPECT_EQ(Link(dir.File(WalSegmentName(0, 7))), 3u);  // opened after snapshot 7
  EXPECT_EQ(Link(dir.File(WalSegmentName(0, 8))), 2u);  // rolled from segment 7
  fs::remove(dir.File(WalSnapshotName(0, 7)));
  Collected strict;
  bool ok = true;
  std::string error;
  Recover(dir.path(), &strict, /*strict=*/true, &ok, &error);
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find(WalSnapshotName(0, 7) + ": missing file"), std::string::npos) << error;
  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got);
  EXPECT_EQ(got.MessageIds(), Iota(11, 31));
  ASSERT_EQ(st.corrupt.size(), 1u);
  EXPECT_EQ(st.corrupt[0].file, dir.File(WalSnapshotName(0, 7)));
}

// A crash between the startup snapshot 3 and pruning leaves snapshot 1 and segments 1-2: without
// snapshot 3 they and segment 3 still hold everything, so nothing is missing.
TEST(WalRecover, ADeletedSnapshotWhoseSegmentsRemainLosesNothing) {
  TempDir dir;
  WriteSnapshot(dir.path(), 1, {});
  WriteSegments(dir.path(), 1, {Iota(1, 11), Iota(11, 21)});
  WriteSnapshot(dir.path(), 3, Iota(1, 21));
  WriteSegments(dir.path(), 3, {Iota(21, 31)});
  fs::remove(dir.File(WalSnapshotName(0, 3)));
  Collected got;
  const WalRecoverStats st = Recover(dir.path(), &got, /*strict=*/true);
  EXPECT_EQ(got.MessageIds(), Iota(1, 31));
  EXPECT_TRUE(st.corrupt.empty());
}

// Files of the earlier format (header bytes 24..27 zero) recover as before; a missing snapshot
// is still found from the numbers: only a log starting at segment 1 needs none.
TEST(WalRecover, FilesOfTheEarlierFormatRecoverAndMissingSnapshotsAreFound) {
  TempDir dir;
  WriteSnapshot(dir.path(), 7, Iota(1, 11));
  WriteSegments(dir.path(), 7, {Iota(11, 21), Iota(21, 31)});
  ClearLink(dir.File(WalSegmentName(0, 7)));
  ClearLink(dir.File(WalSegmentName(0, 8)));
  Collected got;
  WalRecoverStats st = Recover(dir.path(), &got, /*strict=*/true);
  EXPECT_EQ(got.MessageIds(), Iota(1, 31));
  fs::remove(dir.File(WalSnapshotName(0, 7)));
  Collected lenient;
  st = Recover(dir.path(), &lenient);
  EXPECT_EQ(lenient.MessageIds(), Iota(11, 31));
  ASSERT_EQ(st.corrupt.size(), 1u);
  EXPECT_EQ(st.corrupt[0].file, dir.File(WalSnapshotName(0, 7)));

  TempDir fresh;
  WriteLog(fresh.path(), 5);
  EXPECT_EQ(Link(fresh.File(WalSegmentName(0, 1))), 1u);  // the log starts here
  ClearLink(fresh.File(WalSegmentName(0, 1)));
  Collected all;
  st = Recover(fresh.path(), &all, /*strict=*/true);
  EXPECT_EQ(all.MessageIds(), Iota(1, 6));
}

}  // namespace
}  // namespace ringmq::wal
