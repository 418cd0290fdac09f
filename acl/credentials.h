// Credentials: what an MQTT CONNECT presents to authenticate with a token (DESIGN.md section 5,
// doc/rest-api.md "MQTT authentication"), and the constant-time helpers that check them.
//
//   1. the key as user name, bare or as "FlespiToken <key>" (the password is then ignored);
//   2. the key as password, with an empty or absent user name;
//   3. for constrained clients: the token's numeric id as user name and the first
//      kIdLoginPrefixChars characters of its key as password.
//
// Timing: a secret is never compared with memcmp or operator==. A key is looked up by its SHA-256
// digest (KeyDigest), so how long a lookup takes depends on the digest of what a client sent,
// which tells it nothing about any stored key; a key prefix is compared with CRYPTO_memcmp.
//
// Thread-safety: value types and pure functions.
#ifndef RINGMQ_ACL_CREDENTIALS_H_
#define RINGMQ_ACL_CREDENTIALS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace ringmq::acl {

inline constexpr size_t kIdLoginPrefixChars = 16;

struct Credentials {
  // > 0: login by token id (form 3) and `secret` is the password; 0: `secret` is the key.
  int64_t token_id = 0;
  std::string secret;
  bool empty() const { return token_id == 0 && secret.empty(); }
};

// The credentials of a CONNECT; empty when it presents none (an anonymous client). A user name of
// 1 to 15 decimal digits (shorter than any key) with a password is form 3.
Credentials CredentialsFromConnect(std::optional<std::string_view> username,
                                   std::optional<std::string_view> password);

// Does `key` begin with `prefix`, which must be exactly kIdLoginPrefixChars long? Constant time
// in the contents of both (the lengths are not secret).
bool KeyPrefixMatches(std::string_view key, std::string_view prefix);

// SHA-256 of a key: what maps of keys are indexed by (see "Timing" above).
using KeyDigest = std::array<unsigned char, 32>;
KeyDigest DigestKey(std::string_view key);
struct KeyDigestHash {
  size_t operator()(const KeyDigest& d) const {
    size_t h;
    std::memcpy(&h, d.data(), sizeof(h));  // a digest's bytes are uniformly distributed
    return h;
  }
};

}  // namespace ringmq::acl

#endif  // RINGMQ_ACL_CREDENTIALS_H_
