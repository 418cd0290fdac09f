// libFuzzer target for the cluster's envelope (cluster/envelope.h), which a node reads from NATS:
// anything published on a ringmq subject reaches it. Whatever decodes must encode back to an
// envelope that decodes to the same message (invariant 1), and no input may crash (invariant 2).
// The subject mapping of the decoded topic is exercised as well (cluster/subject.h), and the
// client id claims of the same header (DecodeClaim).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cluster/envelope.h"
#include "cluster/subject.h"

using namespace ringmq::cluster;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr int64_t kNow = 1'000'000;
  // The same bytes as a client id claim (PREFIX.c): whatever decodes encodes back to itself.
  if (std::optional<Claim> c = DecodeClaim(in)) {
    std::string bytes;
    EncodeClaim(*c, &bytes);
    if (bytes != in || DecodeClaim(bytes) != c) std::abort();
  }
  std::optional<Envelope> e = DecodeEnvelope(in, kNow);
  if (!e) return 0;
  if (e->msg->expires_at_ms != 0 && e->msg->expires_at_ms <= kNow) return 0;  // expired: not sent
  std::string again;
  EncodeEnvelope(e->instance, e->shard, e->seq, *e->msg, kNow, &again);
  std::optional<Envelope> back = DecodeEnvelope(again, kNow);
  if (!back || back->instance != e->instance || back->shard != e->shard || back->seq != e->seq ||
      !(*back->msg == *e->msg)) {
    std::abort();
  }
  const std::string subject = TopicSubject("ringmq", "m", e->msg->topic);
  if (!NatsSubjectMatches("ringmq.m.>", subject)) std::abort();
  return 0;
}
