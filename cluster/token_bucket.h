// TokenBucket: the tokens of a cluster in a replicated JetStream key-value bucket (doc/cluster.md
// "Tokens"), the TokenBackend of every node's TokenStore in cluster mode. A token created, changed
// or deleted over REST on any node is written here; every node watches the bucket and applies
// what the others wrote to its own store and shards (TokenBackend::Follow), so a DELETE on one
// node closes the token's connections on all of them.
//
// Bucket PREFIX_tokens (history 1, file storage, `replicas` copies; 1 when NATS cannot hold more):
//   t.<id>        the token, every field (acl::TokenToJson; acl::ParseStoredToken reads it)
//   k.<sha256>    the id holding a key (hex SHA-256 of it): created before the token, so two
//                 nodes cannot store one key twice
//   meta.next_id  the next id to assign: reserved by compare-and-set, so ids stay unique and are
//                 never reused
//   meta.init     created once, by the node that set the bucket up: that node imports its
//                 tokens.json and may generate the first master token
// Values are secrets as tokens.json is: the NATS servers must be as private as the data directory.
//
// Concurrent writers. A change is written with the revision this node last saw (compare-and-set):
// a token changed by another node in the meantime answers 409 (unless the other change only
// refreshed `accessed`: then this one is written over it). `accessed`: each node writes its uses
// of a token into the bucket (Flush, every 10 s) once they are kGranularity newer than what the
// bucket has, and every node deletes a ttl token only ttl_grace_s() after the ttl ran out.
//
// A NATS server that dies may take the watcher's consumer with it: on a reconnection or a missed
// heartbeat (the watch asks for one every second; nats.c reports one missing within 2 s) the
// watch is made anew and reads every token again; what is new (a deletion meanwhile) is applied.
//
// A token minted on one node may be used on another before that node's watch brought it: a key
// (or id) a node does not know is looked up in the bucket before it is refused (Fetch).
//
// Thread-safety: Open, Follow and Unfollow on the controlling thread; Load, ReserveIds and Commit
// on the admin thread (TokenBackend). The watcher thread only reads the bucket's changes and
// posts them to the admin thread, where revisions_ (admin thread only) decides what is new.
// Invariants:
//   1. revisions_[id] is the highest revision of t.<id> this node wrote or applied; a watched
//      entry at or below it is skipped (an echo of this node's write, or older than it).
//   2. After Unfollow returns, the watcher thread does not run.
//   3. watch_ is replaced only by the watcher thread, under watch_mu_, and not once stopping_
//      is set (Unfollow unsubscribes the current one under the same mutex).
#ifndef RINGMQ_CLUSTER_TOKEN_BUCKET_H_
#define RINGMQ_CLUSTER_TOKEN_BUCKET_H_

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rest/token_store.h"

namespace ringmq::cluster {

class TokenBucket final : public rest::TokenBackend {
 public:
  struct Options {
    std::vector<std::string> servers;  // nats://HOST:PORT
    std::string node_id;
    std::string prefix = "ringmq";
    unsigned replicas = 3;
    std::string data_dir;  // tokens.json imported by the node that sets the bucket up
  };
  enum class OpenResult { kOk, kNoJetStream, kFailed };

  explicit TokenBucket(Options options);
  ~TokenBucket() override;  // Unfollow, closes the connection
  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;

  // Connects and opens the bucket (creating it if missing, waiting for JetStream's leaders up to
  // kJetStreamWaitMs). kNoJetStream: NATS has no JetStream (tokens must then stay per node).
  OpenResult Open(std::string* error);

  // rest::TokenBackend.
  bool Load(int64_t* next_id, std::vector<acl::Token>* tokens, bool* may_seed,
            std::string* error) override;
  bool ReserveIds(size_t n, int64_t next_id, int64_t* first, rest::StoreError* error) override;
  bool Commit(const Change& change, rest::StoreError* error) override;
  int64_t ttl_grace_s() const override { return kMaxGranularityS + 2 * kFlushIntervalS; }
  void Follow(const Post& post, const Apply& apply) override;
  void Unfollow() override;
  std::optional<Remote> Fetch(int64_t id, std::string_view key) override;

  // How much newer than the bucket's a node's `accessed` of a token must be to be written.
  static int64_t Granularity(const acl::Token& t);

 private:
  static constexpr int64_t kJetStreamWaitMs = 15000;
  static constexpr int64_t kMaxGranularityS = 60;
  static constexpr int64_t kFlushIntervalS = 10;  // rest::Api's flush of `accessed`

  struct Entry {  // one watched change, as read by the watcher thread
    std::string key;
    std::string value;
    uint64_t revision = 0;
    bool deleted = false;
  };

  // The token of a watched entry, if it is new (invariant 1). Admin thread.
  std::optional<Remote> Accept(const Entry& e);
  static bool ReadEntry(kvEntry* kv_entry, Entry* out);  // a kvStore_Get answer
  // The watch: an ordered consumer of the t.* keys' last values, then their changes.
  natsStatus Watch(natsSubscription** sub);
  // Whether a new watch has values to deliver (false: the bucket holds no token).
  static bool InitialPending(natsSubscription* sub);
  // One message of the watch; *more: values of the initial read are still to come.
  bool ReadMsg(natsMsg* msg, Entry* out, bool* more) const;
  // Writes one token by compare-and-set (Create when new); 409 when it changed meanwhile.
  bool Write(const acl::Token* before, const acl::Token& after, bool touch_only,
             rest::StoreError* error);
  bool ImportFile(std::string* error);
  bool Connected() const;  // to NATS, now
  // Follower thread: replaces the watcher by a new one (which reads every token again; Accept
  // keeps what is new).
  void Rewatch();
  static void OnConnectionEvent(natsConnection* nc, void* closure);
  static void OnError(natsConnection* nc, natsSubscription* sub, natsStatus err,
                      void* closure);  // tokens.json of data_dir, into a new bucket

  const Options options_;
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  kvStore* kv_ = nullptr;
  natsSubscription* watch_ = nullptr;  // Watch(), from Load on
  std::string subject_prefix_;         // $KV.<bucket>.
  std::thread follower_;
  std::atomic<bool> following_{false};
  std::atomic<bool> stopping_{false};  // Unfollow ran: the node stops
  std::atomic<bool> rewatch_{false};   // the watcher must be made anew (Rewatch)
  std::mutex watch_mu_;  // watch_ replaced (follower thread) vs unsubscribed (Unfollow)

  // Admin thread only.
  Apply apply_;                                 // set before the watcher thread starts
  std::map<int64_t, uint64_t> revisions_;       // invariant 1
  std::map<int64_t, int64_t> shared_accessed_;  // `accessed` of t.<id> as the bucket has it
};

}  // namespace ringmq::cluster

#endif  // RINGMQ_CLUSTER_TOKEN_BUCKET_H_
