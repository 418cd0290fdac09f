// Envelope (cluster/envelope.h): the WAL's message record behind a fixed header.
#include "cluster/envelope.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "proto/topic.h"
#include "wal/wal_records.h"

namespace ringmq::cluster {

namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeader = 1 + 8 + 2;

void PutLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t GetLe(std::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
  return v;
}

}  // namespace

void EncodeEnvelope(uint64_t instance, uint16_t shard, uint64_t seq, const route::Message& m,
                    int64_t now_ms, std::string* out) {
  out->push_back(static_cast<char>(kVersion));
  PutLe(instance, 8, out);
  PutLe(shard, 2, out);
  // The expiry travels as the time left: -now_ms turns the steady deadline into it.
  wal::EncodeMessageQueued(m.origin_client_id, seq, m, m.qos, m.retain, -now_ms, {}, out);
}

std::optional<Envelope> DecodeEnvelope(std::string_view bytes, int64_t now_ms, int64_t age_ms) {
  if (bytes.size() < kHeader || static_cast<uint8_t>(bytes[0]) != kVersion) return std::nullopt;
  Envelope e;
  e.instance = GetLe(bytes.substr(1), 8);
  e.shard = static_cast<uint16_t>(GetLe(bytes.substr(9), 2));
  auto m = std::make_shared<route::Message>();
  std::vector<uint32_t> subscription_ids;
  if (!wal::DecodeMessageQueued(bytes.substr(kHeader), &m->origin_client_id, &e.seq, m.get(),
                                &subscription_ids) ||
      !subscription_ids.empty() ||
      proto::ValidateTopicName(m->topic) != proto::ReasonCode::kSuccess) {
    return std::nullopt;
  }
  // The time left, back on our clock; none left: expired at once (the steady clock is never 0).
  if (m->expires_at_ms != 0) {
    m->expires_at_ms = std::max<int64_t>(m->expires_at_ms - age_ms, 0) + now_ms;
  }
  e.msg = std::move(m);
  return e;
}

void EncodeClaim(const Claim& claim, std::string* out) {
  out->push_back(static_cast<char>(kVersion));
  PutLe(claim.instance, 8, out);
  PutLe(static_cast<uint64_t>(claim.stamp_ns), 8, out);
  out->append(claim.client_id);
}

std::optional<Claim> DecodeClaim(std::string_view bytes) {
  constexpr size_t kClaimHeader = 1 + 8 + 8;
  if (bytes.size() < kClaimHeader || static_cast<uint8_t>(bytes[0]) != kVersion) {
    return std::nullopt;
  }
  Claim c;
  c.instance = GetLe(bytes.substr(1), 8);
  c.stamp_ns = static_cast<int64_t>(GetLe(bytes.substr(9), 8));
  c.client_id.assign(bytes.substr(kClaimHeader));
  return c;
}

}  // namespace ringmq::cluster
