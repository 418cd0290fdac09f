// Token: the access-control unit of ringmq (DESIGN.md section 5), in the shape of flespi's platform
// token API (doc/rest-api.md). A backend creates tokens over REST; MQTT clients present the token's
// `key`; the token's `access` decides what they may do.
//
// This header holds the plain value types, their field limits, validity and key generation. JSON
// parsing and serialization live in acl/token_json.h, the compiled form used on the MQTT path in
// acl/acl.h.
//
// Thread-safety: value types and pure functions; GenerateTokenKey uses OpenSSL's thread-safe
// CSPRNG. Invariants of a Token that passed validation (ValidateToken):
//   1. key is 16..128 characters of [A-Za-z0-9_-] (URL-safe, usable as an MQTT username). Keys
//      the broker generates are 64 characters of [A-Za-z0-9] (flespi's alphabet); '-' and '_'
//      are accepted for keys of older stores and operator-given keys (RINGMQ_MASTER_TOKEN).
//   2. expire, ttl, created, accessed are in [0, kMaxTime].
//   3. metadata is empty (no metadata) or the minified text of one JSON object.
//   4. access.acl is empty unless access.type == kAcl; every entry has uri "mqtt", a valid
//      non-shared topic filter, and a non-empty action set or a non-empty REST method set.
//   5. cid >= 0; origins has at most kMaxOrigins entries, each a valid address or CIDR prefix
//      (acl/origin.h).
#ifndef RINGMQ_ACL_TOKEN_H_
#define RINGMQ_ACL_TOKEN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "acl/origin.h"

namespace ringmq::acl {

// Limits on what a token may hold; requests beyond them are refused with a reason.
inline constexpr int64_t kMaxTime = 253402300799;  // 9999-12-31T23:59:59Z, for expire and ttl
inline constexpr size_t kMaxInfoBytes = 1024;
inline constexpr size_t kMaxMetadataBytes = 64 * 1024;
inline constexpr size_t kMaxAclEntries = 256;
inline constexpr size_t kMaxAclTopicBytes = 1024;
inline constexpr size_t kMinKeyChars = 16;
inline constexpr size_t kMaxKeyChars = 128;

enum class AccessType : int {
  kStandard = 0,  // everything over MQTT, no REST API
  kMaster = 1,    // REST API and everything over MQTT
  kAcl = 2,       // only what the acl entries allow, no REST API
};

// Bits of AclEntry::actions.
inline constexpr uint8_t kActionPublish = 1;
inline constexpr uint8_t kActionSubscribe = 2;

// Bits of AclEntry::methods: the REST methods of the /mqtt API an ACL token may call on the
// entry's topics (doc/rest-api.md "REST calls by ACL tokens").
inline constexpr uint8_t kMethodGet = 1;
inline constexpr uint8_t kMethodPost = 2;
inline constexpr uint8_t kMethodPut = 4;
inline constexpr uint8_t kMethodPatch = 8;
inline constexpr uint8_t kMethodDelete = 16;
inline constexpr uint8_t kAllMethods = 31;
// The bit of an HTTP method name ("GET"), 0 for any other name.
uint8_t MethodBit(std::string_view method);

// One ACL entry: {"uri": "mqtt", "topic": filter, "actions": ["publish", "subscribe"],
// "methods": ["GET", "POST"]}.
struct AclEntry {
  std::string topic;    // a valid MQTT topic filter, never "$share/..."
  uint8_t actions = 0;  // kActionPublish | kActionSubscribe
  uint8_t methods = 0;  // kMethod* bits; 0: no REST calls
  bool operator==(const AclEntry&) const = default;
};

struct Access {
  AccessType type = AccessType::kStandard;
  std::vector<AclEntry> acl;  // only with type == kAcl
  bool operator==(const Access&) const = default;
};

struct Token {
  int64_t id = 0;        // > 0, assigned by the token store, never reused
  std::string key;       // the secret
  std::string info;      // free text
  bool enabled = true;   // a disabled token authenticates nothing, but is kept
  int64_t expire = 0;    // Unix time until which the token is valid; 0: unused
  int64_t ttl = 0;       // seconds after `accessed` until which the token is valid; 0: unused
  int64_t created = 0;   // Unix time
  int64_t accessed = 0;  // Unix time of the last use (REST or MQTT)
  std::string metadata;  // minified JSON object text, or empty
  Access access;
  // Concurrent MQTT connections that may use this token; 0: the broker's
  // max_connections_per_token applies (ringmq's own field, not in flespi's token object).
  uint32_t max_connections = 0;
  int64_t cid = 0;              // flespi's customer id: stored and returned, not interpreted
  std::vector<Origin> origins;  // IP allow-list; empty: any address
  bool operator==(const Token&) const = default;
};

enum class TokenState {
  kValid,
  kDisabled,  // enabled == false: refused, kept in the store
  kExpired,   // expire passed or unused for ttl seconds: refused, deleted by the store's sweep
};

// flespi's rule: a token is valid while it is enabled and EITHER `expire` (if non-zero) is in the
// future OR, if ttl > 0, fewer than ttl seconds passed since `accessed`. A token with neither
// (HasExpiry false: only the broker's own master token, or one loaded from an older store; the
// REST API refuses to create one) does not expire. Expiry wins over disabled in the answer.
TokenState CheckToken(const Token& token, int64_t now);
// Whether the token has a ttl or an expire, i.e. can expire at all.
inline bool HasExpiry(const Token& token) { return token.ttl > 0 || token.expire != 0; }
// The reason the REST API gives when a token would have neither (flespi's wording).
inline constexpr const char* kMustExpireReason = "a token must expire: set ttl or expire";
const char* TokenStateName(TokenState state);  // "valid", "disabled", "expired"

// Checks invariants 1-4 (not id/created, which the store assigns). Returns false with *error.
bool ValidateToken(const Token& token, std::string* error);

// Validates one ACL entry topic: a valid, non-shared MQTT topic filter of bounded length.
bool ValidateAclTopic(std::string_view topic, std::string* error);

// A new secret: kGeneratedKeyChars characters of [A-Za-z0-9] drawn uniformly from OpenSSL's
// CSPRNG (rejection sampling: a byte is used only below 248 = 4 * 62, so every character has the
// same probability, about 5.95 bits each, 381 bits per key). Returns false (and leaves *key
// empty) only if the CSPRNG fails.
inline constexpr size_t kGeneratedKeyChars = 64;
[[nodiscard]] bool GenerateTokenKey(std::string* key);

// Invariant 1 for a key given by an operator (RINGMQ_MASTER_TOKEN) or a client.
bool ValidateTokenKey(std::string_view key, std::string* error);

}  // namespace ringmq::acl

#endif  // RINGMQ_ACL_TOKEN_H_
