#include "acl/token.h"

#include <openssl/rand.h>

#include <array>

#include "acl/origin.h"
#include "proto/topic.h"

namespace ringmq::acl {

TokenState CheckToken(const Token& token, int64_t now) {
  if (HasExpiry(token)) {
    const bool by_expire = token.expire != 0 && now < token.expire;
    const bool by_ttl = token.ttl > 0 && now - token.accessed < token.ttl;
    if (!by_expire && !by_ttl) return TokenState::kExpired;
  }
  if (!token.enabled) return TokenState::kDisabled;
  return TokenState::kValid;
}

const char* TokenStateName(TokenState state) {
  switch (state) {
    case TokenState::kValid:
      return "valid";
    case TokenState::kDisabled:
      return "disabled";
    case TokenState::kExpired:
      return "expired";
  }
  return "?";
}

uint8_t MethodBit(std::string_view method) {
  if (method == "GET") return kMethodGet;
  if (method == "POST") return kMethodPost;
  if (method == "PUT") return kMethodPut;
  if (method == "PATCH") return kMethodPatch;
  if (method == "DELETE") return kMethodDelete;
  return 0;
}

bool ValidateAclTopic(std::string_view topic, std::string* error) {
  if (topic.size() > kMaxAclTopicBytes) {
    *error = "topic longer than " + std::to_string(kMaxAclTopicBytes) + " bytes";
    return false;
  }
  if (proto::ValidateTopicFilter(topic) != proto::ReasonCode::kSuccess) {
    *error = "invalid topic filter";
    return false;
  }
  if (proto::ParseSharedFilter(topic).has_value()) {
    *error = "a $share filter cannot be an ACL topic";
    return false;
  }
  return true;
}

bool ValidateTokenKey(std::string_view key, std::string* error) {
  if (key.size() < kMinKeyChars || key.size() > kMaxKeyChars) {
    *error = "key must have " + std::to_string(kMinKeyChars) + " to " +
             std::to_string(kMaxKeyChars) + " characters";
    return false;
  }
  for (char c : key) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) {
      *error = "key may contain only A-Z, a-z, 0-9, '-' and '_'";
      return false;
    }
  }
  return true;
}

bool ValidateToken(const Token& token, std::string* error) {
  if (!ValidateTokenKey(token.key, error)) return false;
  const auto time_ok = [](int64_t t) { return t >= 0 && t <= kMaxTime; };
  if (!time_ok(token.expire) || !time_ok(token.ttl) || !time_ok(token.created) ||
      !time_ok(token.accessed)) {
    *error = "time field out of range";
    return false;
  }
  if (token.info.size() > kMaxInfoBytes) {
    *error = "info too long";
    return false;
  }
  if (token.metadata.size() > kMaxMetadataBytes ||
      (!token.metadata.empty() && token.metadata.front() != '{')) {
    *error = "metadata must be a JSON object";
    return false;
  }
  if (token.access.type != AccessType::kAcl && !token.access.acl.empty()) {
    *error = "access.acl requires access.type 2";
    return false;
  }
  if (token.access.acl.size() > kMaxAclEntries) {
    *error = "too many access.acl entries";
    return false;
  }
  for (const AclEntry& e : token.access.acl) {
    if (!ValidateAclTopic(e.topic, error)) return false;
    if ((e.actions == 0 && e.methods == 0) ||
        (e.actions & ~(kActionPublish | kActionSubscribe)) != 0 ||
        (e.methods & ~kAllMethods) != 0) {
      *error = "bad actions or methods";
      return false;
    }
  }
  if (token.cid < 0) {
    *error = "cid must not be negative";
    return false;
  }
  if (token.origins.size() > kMaxOrigins) {
    *error = "more than " + std::to_string(kMaxOrigins) + " origins";
    return false;
  }
  for (const Origin& o : token.origins) {
    IpPrefix p;
    if (!ParseIpPrefix(o.ip, &p, error)) return false;
  }
  return true;
}

bool GenerateTokenKey(std::string* key) {
  key->clear();
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  constexpr unsigned kSize = sizeof(kAlphabet) - 1;  // 62
  constexpr unsigned kLimit = 256 / kSize * kSize;   // 248: bytes at or above are rejected
  std::string out;
  out.reserve(kGeneratedKeyChars);
  // 64 bytes give 64 characters 97% of the time; a short batch just draws another one.
  std::array<unsigned char, kGeneratedKeyChars> bytes;
  while (out.size() < kGeneratedKeyChars) {
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return false;
    for (unsigned char b : bytes) {
      if (b >= kLimit) continue;
      out.push_back(kAlphabet[b % kSize]);
      if (out.size() == kGeneratedKeyChars) break;
    }
  }
  *key = std::move(out);
  return true;
}

}  // namespace ringmq::acl
