// TokenStore: every token of the broker (DESIGN.md section 7), kept durably by a TokenBackend: a
// file in the data directory (FileTokenBackend, below) or, in cluster mode, a replicated bucket
// every node shares (cluster/token_bucket.h).
//
// Every change is made durable first (the backend's Commit); only then is it applied in memory
// and the mutating method returns true. So a REST call answers 2xx only for a change that
// survives a crash, and a failed write changes nothing.
//
// `accessed` is refreshed by every use (Touch) in memory only; it reaches the backend with the
// next change or Flush() (losing it in a crash only makes a ttl token expire a little earlier).
//
// Changes other writers made (the other nodes of a cluster) arrive through ApplyRemote.
//
// Thread-safety: none; owned by the admin thread (single writer), which is the only one to call it.
// Invariants:
//   1. Ids are unique, > 0 and below next_id(); an id is never reused, even after deletion.
//   2. Keys are unique; every stored token passes acl::ValidateToken.
//   3. The backend holds the memory state, except for `accessed` values newer than what it has
//      and, in a cluster, changes of other nodes not yet applied.
#ifndef RINGMQ_REST_TOKEN_STORE_H_
#define RINGMQ_REST_TOKEN_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "acl/credentials.h"
#include "acl/token.h"

namespace ringmq::rest {

// Why a change was not made, with the HTTP status the REST API answers.
struct StoreError {
  // 500: the disk failed; 503: the cluster's token bucket cannot be reached; 409: the change
  // conflicts with one made at the same time elsewhere (a key taken, a token changed meanwhile).
  int status = 500;
  std::string text;
};

// Where a TokenStore keeps its tokens. Admin thread only.
class TokenBackend {
 public:
  struct Change {
    const std::vector<const acl::Token*>* all = nullptr;  // every token after it, by id
    int64_t next_id = 1;                                  // above every id ever assigned
    std::vector<const acl::Token*> created;
    // Changed: each with the token it replaces (same id and key).
    std::vector<std::pair<const acl::Token*, const acl::Token*>> updated;  // {before, after}
    std::vector<const acl::Token*> erased;
    bool touch_only = false;  // Flush: only `accessed` of `updated` tokens changed
  };
  // A token another writer created, changed (token set) or erased (token empty).
  struct Remote {
    int64_t id = 0;
    std::optional<acl::Token> token;
  };

  virtual ~TokenBackend() = default;
  // Every token and the next id. *may_seed: whether a first master key may be generated when
  // there is no token (false for a node joining a cluster that another node set up).
  virtual bool Load(int64_t* next_id, std::vector<acl::Token>* tokens, bool* may_seed,
                    std::string* error) = 0;
  // The first of n new ids; `next_id` is the store's.
  virtual bool ReserveIds(size_t n, int64_t next_id, int64_t* first, StoreError* error) = 0;
  virtual bool Commit(const Change& change, StoreError* error) = 0;
  // How much later than `ttl` after `accessed` an unused token may be deleted: the time another
  // writer may take to report its uses (0 for a file).
  virtual int64_t ttl_grace_s() const { return 0; }

  // Other writers (a cluster): from Follow until Unfollow returns, every change another writer
  // makes runs apply(change) on the admin thread, in the order they made them (through `post`,
  // AdminServer::Post). Both from the controlling thread. Nothing to do for a file.
  using Post = std::function<bool(std::function<void()> fn)>;
  using Apply = std::function<void(Remote remote)>;
  virtual void Follow(const Post& /*post*/, const Apply& /*apply*/) {}
  virtual void Unfollow() {}
  // The token with this key (id 0) or id that another writer may have created a moment ago and
  // this store has not heard of yet (a cluster: asks the bucket); empty when there is none or it
  // is known already. Admin thread.
  virtual std::optional<Remote> Fetch(int64_t /*id*/, std::string_view /*key*/) {
    return std::nullopt;
  }
};

// tokens.json in the data directory, mode 0600 since it holds secrets. Every change rewrites it
// atomically: the new contents go to tokens.json.tmp, which is fdatasync'ed, renamed over
// tokens.json, and the directory is fsync'ed.
class FileTokenBackend final : public TokenBackend {
 public:
  explicit FileTokenBackend(std::string data_dir);
  // Creates the data directory (0700) if needed and reads tokens.json if it exists. A missing
  // file is an empty store; a corrupt one is an error (the operator must look, not lose tokens).
  bool Load(int64_t* next_id, std::vector<acl::Token>* tokens, bool* may_seed,
            std::string* error) override;
  bool ReserveIds(size_t, int64_t next_id, int64_t* first, StoreError*) override {
    *first = next_id;
    return true;
  }
  bool Commit(const Change& change, StoreError* error) override;
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

class TokenStore {
 public:
  explicit TokenStore(std::string data_dir);  // in tokens.json (FileTokenBackend)
  explicit TokenStore(std::unique_ptr<TokenBackend> backend);
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // Loads the tokens (TokenBackend::Load).
  bool Open(std::string* error);
  // Whether a first master key may be generated (the store is empty and the backend allows it).
  bool may_seed() const { return may_seed_ && tokens_.empty(); }

  const acl::Token* FindById(int64_t id) const;
  const acl::Token* FindByKey(std::string_view key) const;
  // Every token, by increasing id.
  std::vector<const acl::Token*> All() const;
  size_t size() const { return tokens_.size(); }
  int64_t next_id() const { return next_id_; }
  int64_t ttl_grace_s() const { return backend_->ttl_grace_s(); }
  TokenBackend& backend() { return *backend_; }

  // Assigns ids to `tokens` (in order) and stores them. REQUIRES: each passes ValidateToken.
  // Fails (nothing stored) on a key that exists already or a write error.
  [[nodiscard]] bool Insert(std::vector<acl::Token>* tokens, StoreError* error);
  // Replaces the tokens with the same ids. Fails if an id is unknown or a key would change.
  [[nodiscard]] bool Update(const std::vector<acl::Token>& tokens, StoreError* error);
  // Removes the tokens with these ids (unknown ids are ignored).
  [[nodiscard]] bool Erase(const std::vector<int64_t>& ids, StoreError* error);

  // Sets `accessed` of token `id` to `now` (if it exists and now is later), in memory.
  void Touch(int64_t id, int64_t now);
  bool dirty() const { return !touched_.empty(); }
  // Hands the backend the tokens Touch changed since the last write.
  [[nodiscard]] bool Flush(StoreError* error);

  // A change another writer made (TokenBackend::Remote), applied in memory; a later `accessed`
  // of this store is kept. Returns the token as it was (empty when unknown).
  std::optional<acl::Token> ApplyRemote(TokenBackend::Remote remote);

 private:
  void Put(acl::Token token);  // in memory, replacing a token of the same id or key

  std::unique_ptr<TokenBackend> backend_;
  std::map<int64_t, acl::Token> tokens_;
  // By the SHA-256 of the key, so a lookup's timing says nothing about stored keys
  // (acl/credentials.h "Timing").
  std::unordered_map<acl::KeyDigest, int64_t, acl::KeyDigestHash> by_key_;
  int64_t next_id_ = 1;
  bool may_seed_ = false;
  std::set<int64_t> touched_;  // ids whose `accessed` the backend does not have yet
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_TOKEN_STORE_H_
