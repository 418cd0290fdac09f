// TokenStore: every token of the broker, durable in the data directory (DESIGN.md section 7).
//
// The file is <data_dir>/tokens.json (acl/token_json.h: SerializeTokenFile), mode 0600 since it
// holds secrets. Every change rewrites it atomically: the new contents go to tokens.json.tmp,
// which is fdatasync'ed, renamed over tokens.json, and the directory is fsync'ed; only then is the
// change applied in memory and the mutating method returns true. So a REST call answers 2xx only
// for a change that survives a crash, and a failed write changes nothing.
//
// `accessed` is refreshed by every use (Touch) in memory only; it reaches the disk with the next
// change or Flush() (losing it in a crash only makes a ttl token expire a little earlier).
//
// Thread-safety: none; owned by the admin thread (single writer), which is the only one to call it.
// Invariants:
//   1. Ids are unique, > 0 and below next_id(); an id is never reused, even after deletion.
//   2. Keys are unique; every stored token passes acl::ValidateToken.
//   3. The file on disk equals the memory state, except for `accessed` values newer than the file.
#ifndef RINGMQ_REST_TOKEN_STORE_H_
#define RINGMQ_REST_TOKEN_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "acl/credentials.h"
#include "acl/token.h"

namespace ringmq::rest {

class TokenStore {
 public:
  explicit TokenStore(std::string data_dir);
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // Creates the data directory (0700) if needed and loads tokens.json if it exists. A missing
  // file is an empty store; a corrupt one is an error (the operator must look, not lose tokens).
  bool Open(std::string* error);

  const acl::Token* FindById(int64_t id) const;
  const acl::Token* FindByKey(std::string_view key) const;
  // Every token, by increasing id.
  std::vector<const acl::Token*> All() const;
  size_t size() const { return tokens_.size(); }
  int64_t next_id() const { return next_id_; }

  // Assigns ids to `tokens` (in order) and stores them. REQUIRES: each passes ValidateToken.
  // Fails (nothing stored) on a key that exists already or a write error.
  [[nodiscard]] bool Insert(std::vector<acl::Token>* tokens, std::string* error);
  // Replaces the tokens with the same ids. Fails if an id is unknown or a key would change.
  [[nodiscard]] bool Update(const std::vector<acl::Token>& tokens, std::string* error);
  // Removes the tokens with these ids (unknown ids are ignored).
  [[nodiscard]] bool Erase(const std::vector<int64_t>& ids, std::string* error);

  // Sets `accessed` of token `id` to `now` (if it exists and now is later), in memory.
  void Touch(int64_t id, int64_t now);
  bool dirty() const { return dirty_; }
  // Writes the file if Touch changed something since the last write.
  [[nodiscard]] bool Flush(std::string* error);

  const std::string& path() const { return path_; }

 private:
  // Writes `tokens` (by increasing id) and next_id durably. Memory is not touched.
  bool WriteFile(const std::vector<const acl::Token*>& tokens, int64_t next_id, std::string* error);

  std::string dir_;
  std::string path_;
  std::map<int64_t, acl::Token> tokens_;
  // By the SHA-256 of the key, so a lookup's timing says nothing about stored keys
  // (acl/credentials.h "Timing").
  std::unordered_map<acl::KeyDigest, int64_t, acl::KeyDigestHash> by_key_;
  int64_t next_id_ = 1;
  bool dirty_ = false;
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_TOKEN_STORE_H_
