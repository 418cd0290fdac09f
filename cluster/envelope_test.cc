#include "cluster/envelope.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ringmq::cluster {
namespace {

route::Message Full() {
  route::Message m;
  m.topic = "data/u1/t";
  m.payload = std::string("\0\xff payload", 10);
  m.qos = 2;
  m.retain = true;
  m.payload_format_indicator = 0;
  m.content_type = "application/octet-stream";
  m.response_topic = "reply/here";
  m.correlation_data = "corr";
  m.user_properties = {{"k", "v"}, {"k", "v2"}};
  m.expires_at_ms = 10'000 + 60'000;  // a minute left at 10,000 ms
  m.origin_client_id = "publisher-1";
  return m;
}

TEST(Envelope, RoundTripsEveryField) {
  const route::Message m = Full();
  std::string bytes;
  EncodeEnvelope(0x1122334455667788ULL, 7, 42, m, 10'000, &bytes);
  // The receiver's steady clock is another: the minute left is kept, not the deadline.
  std::optional<Envelope> e = DecodeEnvelope(bytes, 500'000);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->instance, 0x1122334455667788ULL);
  EXPECT_EQ(e->shard, 7);
  EXPECT_EQ(e->seq, 42u);
  route::Message want = m;
  want.expires_at_ms = 500'000 + 60'000;
  EXPECT_EQ(*e->msg, want);
}

TEST(Envelope, TimeSpentStoredComesOffTheExpiry) {
  std::string bytes;
  EncodeEnvelope(1, 0, 1, Full(), 10'000, &bytes);  // a minute left
  std::optional<Envelope> e = DecodeEnvelope(bytes, 5, 20'000);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->msg->expires_at_ms, 40'005);
  e = DecodeEnvelope(bytes, 5, 90'000);  // stored past its expiry: expired on arrival
  ASSERT_TRUE(e);
  EXPECT_TRUE(route::Expired(*e->msg, 5));
}

TEST(Envelope, WithoutExpiryOrProperties) {
  route::Message m;
  m.topic = "a";
  std::string bytes;
  EncodeEnvelope(1, 0, 1, m, 5, &bytes);
  std::optional<Envelope> e = DecodeEnvelope(bytes, 99);
  ASSERT_TRUE(e);
  EXPECT_EQ(*e->msg, m);
}

TEST(Envelope, RefusesWhatIsNotOne) {
  std::string bytes;
  EncodeEnvelope(1, 0, 1, Full(), 10'000, &bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeEnvelope(bytes.substr(0, n), 0)) << "truncated at " << n;
  }
  EXPECT_FALSE(DecodeEnvelope(bytes + "x", 0));  // trailing bytes
  std::string other = bytes;
  other[0] = 2;  // another version
  EXPECT_FALSE(DecodeEnvelope(other, 0));
  route::Message wild;
  wild.topic = "data/+";  // not a topic name: no node sends it, none takes it
  std::string w;
  EncodeEnvelope(1, 0, 1, wild, 0, &w);
  EXPECT_FALSE(DecodeEnvelope(w, 0));
  EXPECT_FALSE(DecodeEnvelope("hello", 0));
}

TEST(Claim, RoundTripsAndRefusesWhatIsNotOne) {
  const Claim c{0x0102030405060708ULL, 1'796'528'381'123'456'789LL,
                std::string("dev") + '\0' + "ice/7"};
  std::string bytes;
  EncodeClaim(c, &bytes);
  EXPECT_EQ(bytes.size(), 17u + 9u);  // a NUL in the id travels too
  EXPECT_EQ(DecodeClaim(bytes), c);
  EXPECT_EQ(DecodeClaim(bytes.substr(0, 16)), std::nullopt);  // shorter than the header
  bytes[0] = 2;                                               // a version it does not know
  EXPECT_EQ(DecodeClaim(bytes), std::nullopt);
}

}  // namespace
}  // namespace ringmq::cluster
