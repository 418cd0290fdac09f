// WAL record bodies and frames: round trips of every type, versioning, and garbage that must be
// refused without crashing.
#include "wal/wal_records.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ringmq::wal {
namespace {

route::Message FullMessage() {
  route::Message m;
  m.topic = "sensors/42/temp";
  m.payload = std::string("21.5\0\xff", 6);
  m.qos = 2;
  m.retain = true;
  m.payload_format_indicator = 1;
  m.expires_at_ms = 1'700'000'123'456;
  m.content_type = "text/plain";
  m.response_topic = "reply/42";
  m.correlation_data = std::string("\x01\x02\x00", 3);
  m.user_properties = {{"k", "v"}, {"", ""}, {"unit", "C"}};
  return m;
}

// One record of every type with every optional field set, plus minimal ones.
std::vector<WalRecord> AllRecords() {
  WalSubscriptionAdded sub{"c1", "$share/g/a/+/b", 1, 0, 0, {}};
  sub.options = WalSubscriptionAdded::kNoLocal | WalSubscriptionAdded::kRetainAsPublished |
                (2 << WalSubscriptionAdded::kRetainHandlingShift);
  sub.subscription_id = 268'435'455;
  sub.effective = {"$share/g/a/x/b", "$share/g/a/y/b"};
  route::Message minimal;
  minimal.topic = "t";
  return {
      WalSessionCreated{"client-1", 0xFFFFFFFF, 5, 1'700'000'000'000},
      WalSessionCreated{"owned", 60, 5, 1, 9'007'199'254'740'993},
      WalSessionCreated{"", 0, 4, 0},
      WalSessionRemoved{"client-1"},
      WalSessionDisconnected{"client-1", 1'700'000'000'999, 3600},
      WalSessionDisconnected{"c", -5, 0},
      sub,
      WalSubscriptionAdded{"c2", "#", 0, 0, 0, {}},
      WalSubscriptionRemoved{"c1", "a/+/b"},
      WalMessageQueued{"c1", 0xFFFFFFFFFFFFFFFF, FullMessage(), {1, 7, 268'435'455}},
      WalMessageQueued{"c1", 1, minimal, {}},
      WalMessageAcked{"c1", 123456789012},
      WalInflightState{"c1", 99, 65535, WalInflightPhase::kAwaitPubcomp},
      WalInflightState{"c1", 0, 1, WalInflightPhase::kIncomingQos2},
      WalRetainedSet{FullMessage()},
      WalRetainedSet{minimal},
      WalRetainedCleared{"a/b"},
      WalSnapshotEnd{42},
  };
}

std::string BodyOf(const WalRecord& r) {
  std::string frame;
  AppendWalRecord(r, &frame);
  return frame.substr(kWalFrameHeaderSize);
}

TEST(WalRecords, EveryTypeRoundTrips) {
  for (const WalRecord& r : AllRecords()) {
    const std::string body = BodyOf(r);
    ASSERT_EQ(static_cast<uint8_t>(body[0]), kWalBodyVersion);
    std::optional<WalRecord> back = DecodeWalRecord(TypeOf(r), body);
    ASSERT_TRUE(back.has_value()) << WalTypeName(TypeOf(r));
    EXPECT_EQ(*back, r) << WalTypeName(TypeOf(r));
  }
}

TEST(WalRecords, TypedDecodeResetsTheOutput) {
  WalMessageQueued q{"c", 1, FullMessage(), {3}};
  std::string body;
  Encode(q, &body);
  WalMessageQueued out = q;  // not empty: Decode must not append to it
  ASSERT_TRUE(Decode(body, &out));
  EXPECT_EQ(out, q);
}

TEST(WalRecords, EveryTruncatedBodyIsRefused) {
  for (const WalRecord& r : AllRecords()) {
    const std::string body = BodyOf(r);
    for (size_t n = 0; n < body.size(); ++n) {
      EXPECT_FALSE(DecodeWalRecord(TypeOf(r), body.substr(0, n)).has_value())
          << WalTypeName(TypeOf(r)) << " cut at " << n;
    }
  }
}

TEST(WalRecords, TrailingBytesOfAKnownVersionAreRefusedOfANewerOneIgnored) {
  std::string body;
  Encode(WalMessageAcked{"c", 7}, &body);
  EXPECT_FALSE(DecodeWalRecord(WalType::kMessageAcked, body + "x").has_value());
  body[0] = kWalBodyVersion + 1;  // a future version that appended a field
  std::optional<WalRecord> r = DecodeWalRecord(WalType::kMessageAcked, body + "new field");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::get<WalMessageAcked>(*r), (WalMessageAcked{"c", 7}));
  body[0] = 0;
  EXPECT_FALSE(DecodeWalRecord(WalType::kMessageAcked, body).has_value());
}

TEST(WalRecords, SessionCreatedOfVersion1HasNoOwner) {
  // Written before the owner existed: version 1, client id "c", expiry 60, level 5, created 2.
  const std::string v1(
      "\x01\x01"
      "c"
      "\x3c\x05\x04",
      6);
  std::optional<WalRecord> r = DecodeWalRecord(WalType::kSessionCreated, v1);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::get<WalSessionCreated>(*r), (WalSessionCreated{"c", 60, 5, 2, 0}));
  // Version 2 must carry it.
  std::string v2 = v1;
  v2[0] = 2;
  EXPECT_FALSE(DecodeWalRecord(WalType::kSessionCreated, v2).has_value());
  v2 += '\x0e';  // svarint 7
  r = DecodeWalRecord(WalType::kSessionCreated, v2);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::get<WalSessionCreated>(*r).owner_token_id, 7);
}

TEST(WalRecords, InvalidFieldValuesAreRefused) {
  std::string body;
  Encode(WalInflightState{"c", 1, 2, WalInflightPhase::kAwaitPuback}, &body);
  body.back() = 9;  // phase
  EXPECT_FALSE(DecodeWalRecord(WalType::kInflightState, body).has_value());
  route::Message m;
  m.topic = "t";
  body.clear();
  Encode(WalRetainedSet{m}, &body);
  body[4] = 3;  // flags byte after version, topic "t", empty payload: QoS 3
  EXPECT_FALSE(DecodeWalRecord(WalType::kRetainedSet, body).has_value());
  // A string length far past the end, and a varint of 11 bytes.
  EXPECT_FALSE(DecodeWalRecord(WalType::kSessionRemoved, std::string("\x01\xff\xff\xff\x0f", 5)));
  EXPECT_FALSE(
      DecodeWalRecord(WalType::kMessageAcked,
                      std::string("\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13)));
}

TEST(WalRecords, QueuedMessageWithSmallPayloadIsCompact) {
  route::Message m;
  m.topic = "sensors/0042/temp";
  m.payload = std::string(16, 'p');
  m.qos = 1;
  std::string frame;
  AppendWalRecord(WalMessageQueued{"client-0042", 1'000'000, m, {}}, &frame);
  // header 9 + version 1 + client 12 + id 3 + topic 18 + payload 17 + flags 1 + 2 counts
  EXPECT_EQ(frame.size(), 63u);
}

// The Ref records encode a message held elsewhere as the value records do: the delivery's
// qos/retain and the clock offset apply, not the message's own fields.
TEST(WalRecords, RefRecordsAreTheSameRecords) {
  const route::Message w = FullMessage();
  route::Message held = w;
  held.qos = 0;
  held.retain = false;
  held.expires_at_ms = w.expires_at_ms - 500;  // a steady-clock deadline, 500 ms behind wall
  held.origin_client_id = "publisher";         // not logged (invariant 5)
  const std::vector<uint32_t> ids{4, 9};
  std::string by_ref, by_value;
  AppendWalRecord(WalMessageQueuedRef{"c1", 77, &held, w.qos, w.retain, 500, &ids}, &by_ref);
  AppendWalRecord(WalMessageQueued{"c1", 77, w, ids}, &by_value);
  EXPECT_EQ(by_ref, by_value);

  WalFrame f;
  ASSERT_EQ(ParseWalFrame(by_ref, &f), WalFrameStatus::kOk);
  route::Message back;
  std::vector<uint32_t> back_ids;
  uint64_t id = 0;
  ASSERT_TRUE(DecodeMessageQueued(f.body, nullptr, &id, &back, &back_ids));
  EXPECT_EQ(id, 77u);
  EXPECT_EQ(back_ids, ids);
  EXPECT_EQ(back, w);  // wall-clock expiry, as written; no origin

  route::Message retained = held;
  retained.qos = 2;
  retained.retain = true;
  by_ref.clear();
  by_value.clear();
  AppendWalRecord(WalRetainedSetRef{&retained, 500}, &by_ref);
  AppendWalRecord(WalRetainedSet{w}, &by_value);
  EXPECT_EQ(by_ref, by_value);
}

TEST(WalFrame, ParsesWhatAppendWrote) {
  std::string buf;
  AppendWalFrame(WalType::kRetainedCleared, "\x01\x01x", &buf);
  AppendWalRecord(WalMessageAcked{"c", 5}, &buf);
  WalFrame f{};
  ASSERT_EQ(ParseWalFrame(buf, &f), WalFrameStatus::kOk);
  EXPECT_EQ(f.type, WalType::kRetainedCleared);
  EXPECT_EQ(f.body, "\x01\x01x");
  ASSERT_EQ(ParseWalFrame(std::string_view(buf).substr(f.size), &f), WalFrameStatus::kOk);
  EXPECT_EQ(f.type, WalType::kMessageAcked);
  EXPECT_EQ(f.size + 12, buf.size());
}

TEST(WalFrame, DetectsTruncationBadHeadersAndEveryFlippedBit) {
  std::string buf;
  AppendWalRecord(WalSessionCreated{"client", 60, 5, 123}, &buf);
  WalFrame f{};
  for (size_t n = 0; n < buf.size(); ++n) {
    EXPECT_EQ(ParseWalFrame(std::string_view(buf).substr(0, n), &f), WalFrameStatus::kTruncated);
  }
  for (size_t i = 4; i < buf.size(); ++i) {  // bytes after the length (covered by the CRC)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = buf;
      bad[i] ^= static_cast<char>(1 << bit);
      EXPECT_NE(ParseWalFrame(bad, &f), WalFrameStatus::kOk) << i << ":" << bit;
    }
  }
  std::string zeros(64, '\0');
  EXPECT_EQ(ParseWalFrame(zeros, &f), WalFrameStatus::kBadHeader);
  std::string huge = buf;
  StoreWalLe32(kWalMaxBodySize + 1, huge.data());
  EXPECT_EQ(ParseWalFrame(huge, &f), WalFrameStatus::kBadHeader);
}

TEST(WalRecords, RandomGarbageNeverDecodes) {
  std::mt19937 rng(7);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body(rng() % 64, '\0');
    for (char& c : body) c = static_cast<char>(rng());
    if (!body.empty() && rng() % 2) body[0] = 1;
    const auto type = static_cast<WalType>(1 + rng() % kWalTypeMax);
    decoded += DecodeWalRecord(type, body).has_value();  // must not crash (ASan/UBSan build)
    WalFrame f{};
    (void)ParseWalFrame(body, &f);
  }
  EXPECT_LT(decoded, 20000);
}

}  // namespace
}  // namespace ringmq::wal
