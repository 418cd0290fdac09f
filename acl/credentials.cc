#include "acl/credentials.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <charconv>

namespace ringmq::acl {

Credentials CredentialsFromConnect(std::optional<std::string_view> username,
                                   std::optional<std::string_view> password) {
  Credentials c;
  std::string_view user = username.value_or(std::string_view());
  if (user.starts_with("FlespiToken ")) user.remove_prefix(12);
  if (!user.empty() && user.size() < kIdLoginPrefixChars && password.has_value() &&
      user.find_first_not_of("0123456789") == std::string_view::npos) {
    int64_t id = 0;
    const auto [end, ec] = std::from_chars(user.data(), user.data() + user.size(), id);
    if (ec == std::errc() && end == user.data() + user.size() && id > 0) {
      c.token_id = id;
      c.secret.assign(*password);
      return c;
    }
  }
  if (!user.empty()) {
    c.secret.assign(user);
  } else if (password.has_value()) {
    c.secret.assign(*password);
  }
  return c;
}

bool KeyPrefixMatches(std::string_view key, std::string_view prefix) {
  if (prefix.size() != kIdLoginPrefixChars || key.size() < kIdLoginPrefixChars) return false;
  return CRYPTO_memcmp(key.data(), prefix.data(), kIdLoginPrefixChars) == 0;
}

KeyDigest DigestKey(std::string_view key) {
  KeyDigest d;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d.data());
  return d;
}

}  // namespace ringmq::acl
