// TokenBucket (cluster/token_bucket.h): the tokens of a cluster in a JetStream key-value bucket.
#include "cluster/token_bucket.h"

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include "acl/token_json.h"
#include "base/log.h"
#include "cluster/nats_util.h"

namespace ringmq::cluster {

namespace {

constexpr int kMaxCasAttempts = 20;

std::string TokenKey(int64_t id) { return "t." + std::to_string(id); }

// k.<hex SHA-256 of the token's key>: the key itself never appears in a subject.
std::string KeyClaim(const std::string& key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "k.";
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

// The value of a kv entry (empty for a deletion).
std::string_view ValueOf(kvEntry* e) {
  const int len = kvEntry_ValueLen(e);
  return len > 0 ? std::string_view(kvEntry_ValueString(e), static_cast<size_t>(len))
                 : std::string_view();
}

bool ParseInt(std::string_view text, int64_t* v) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *v);
  return ec == std::errc() && end == text.data() + text.size();
}

rest::StoreError Unavailable(const std::string& what, natsStatus s) {
  return {503,
          "the cluster's token bucket cannot be reached (" + what + ": " + StatusText(s) + ")"};
}

}  // namespace

TokenBucket::TokenBucket(Options options) : options_(std::move(options)) {}

TokenBucket::~TokenBucket() {
  Unfollow();
  if (watch_ != nullptr) natsSubscription_Destroy(watch_);
  if (kv_ != nullptr) kvStore_Destroy(kv_);
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (conn_ != nullptr) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
  }
}

int64_t TokenBucket::Granularity(const acl::Token& t) {
  return t.ttl > 0 ? std::clamp<int64_t>(t.ttl / 10, 1, kMaxGranularityS) : kMaxGranularityS;
}

TokenBucket::OpenResult TokenBucket::Open(std::string* error) {
  // A new connection or a consumer gone silent: the watcher is made anew (Rewatch), so other
  // nodes' changes keep coming after a NATS server dies.
  const auto events = [this](natsOptions* opts) {
    natsStatus st = natsOptions_SetReconnectedCB(opts, &OnConnectionEvent, this);
    if (st == NATS_OK) st = natsOptions_SetErrorHandler(opts, &OnError, this);
    return st;
  };
  if (!ConnectNats(options_.servers, "ringmq " + options_.node_id + " tokens", events, &conn_,
                   error)) {
    return OpenResult::kFailed;
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 2000;  // a JetStream request (a write): then the REST call answers 503
  natsStatus s = natsConnection_JetStream(&js_, conn_, &jo);
  std::string bucket = options_.prefix + "_tokens";
  std::replace(bucket.begin(), bucket.end(), '.', '_');
  jsErrCode jerr = static_cast<jsErrCode>(0);
  // A JetStream cluster that has just started elects its leaders first: wait for it (the
  // bucket is the stream KV_<bucket>; a server without JetStream answers at once).
  const std::string stream = "KV_" + bucket;
  if (s == NATS_OK) {
    s = WhileJetStreamNotReady(
        kJetStreamWaitMs,
        [&](jsErrCode* e) {
          jsStreamInfo* info = nullptr;
          const natsStatus st = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, e);
          if (info != nullptr) jsStreamInfo_Destroy(info);
          return st;
        },
        &jerr);
  }
  if (s == NATS_OK) s = js_KeyValue(&kv_, js_, bucket.c_str());
  if (jerr == JSStreamNotFoundErr) s = NATS_NOT_FOUND;
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket.c_str();
    cfg.Description = "ringmq tokens (doc/cluster.md)";
    cfg.History = 1;
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = static_cast<int>(options_.replicas);
    s = js_CreateKeyValue(&kv_, js_, &cfg);
    if (s != NATS_OK && options_.replicas > 1) {
      LOG_WARN_S(kCluster,
                 "cluster: NATS cannot keep {} replicas of the token bucket {} ({}): it keeps one "
                 "(add JetStream servers for more)",
                 options_.replicas, bucket, StatusText(s));
      cfg.Replicas = 1;
      s = js_CreateKeyValue(&kv_, js_, &cfg);
    }
  }
  if (s == NATS_NO_RESPONDERS) {
    *error = "NATS has no JetStream";
    return OpenResult::kNoJetStream;
  }
  if (s != NATS_OK) {
    *error = "token bucket " + bucket + ": " + StatusText(s);
    return OpenResult::kFailed;
  }
  return OpenResult::kOk;
}

bool TokenBucket::ImportFile(std::string* error) {
  rest::FileTokenBackend file(options_.data_dir);
  int64_t next_id = 1;
  std::vector<acl::Token> tokens;
  bool unused = false;
  if (!file.Load(&next_id, &tokens, &unused, error)) return false;
  for (const acl::Token& t : tokens) {
    rest::StoreError e;
    if (!Write(nullptr, t, false, &e)) {
      *error = "importing " + file.path() + ": " + e.text;
      return false;
    }
  }
  const std::string next = std::to_string(next_id);
  if (natsStatus s = kvStore_PutString(nullptr, kv_, "meta.next_id", next.c_str()); s != NATS_OK) {
    *error = "meta.next_id: " + StatusText(s);
    return false;
  }
  if (!tokens.empty()) {
    LOG_INFO_S(kCluster, "cluster: {} tokens of {} imported into the token bucket", tokens.size(),
               file.path());
  }
  return true;
}

bool TokenBucket::Load(int64_t* next_id, std::vector<acl::Token>* tokens, bool* may_seed,
                       std::string* error) {
  tokens->clear();
  *next_id = 1;
  // The node that creates meta.init set the bucket up: it brings its tokens.json along.
  natsStatus s = kvStore_CreateString(nullptr, kv_, "meta.init", options_.node_id.c_str());
  *may_seed = s == NATS_OK;
  if (*may_seed && !ImportFile(error)) return false;
  if (!*may_seed) {
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, kv_, "meta.init") != NATS_OK) {  // not a conflict: NATS failed
      *error = "token bucket: " + StatusText(s);
      return false;
    }
    kvEntry_Destroy(e);
  }
  // One watch reads what the bucket holds, then (Follow) what changes after: nothing between
  // the two is missed. Every value it reads first is loaded, those just imported too.
  revisions_.clear();
  s = Watch(&watch_);
  if (s != NATS_OK) {
    *error = "token bucket watch: " + StatusText(s);
    return false;
  }
  for (bool more = InitialPending(watch_); more;) {
    natsMsg* msg = nullptr;
    s = natsSubscription_NextMsg(&msg, watch_, 10000);
    if (s != NATS_OK) {
      *error = "token bucket: reading the tokens: " + StatusText(s);
      return false;
    }
    Entry e;
    const bool ok = ReadMsg(msg, &e, &more);
    natsMsg_Destroy(msg);
    if (!ok) continue;
    if (std::optional<Remote> r = Accept(e); r && r->token) {
      *next_id = std::max(*next_id, r->id + 1);
      tokens->push_back(std::move(*r->token));
    }
  }
  kvEntry* e = nullptr;
  if (kvStore_Get(&e, kv_, "meta.next_id") == NATS_OK) {
    int64_t v = 0;
    if (ParseInt(ValueOf(e), &v)) {
      *next_id = std::max(*next_id, v);
    }
    kvEntry_Destroy(e);
  }
  LOG_INFO_S(kCluster, "cluster: {} tokens in the token bucket {}", tokens->size(),
             kvStore_Bucket(kv_));
  return true;
}

natsStatus TokenBucket::Watch(natsSubscription** sub) {
  // What kvStore_Watch does (an ordered consumer of the last message of each t.* key), with a
  // heartbeat of 1 s instead of 5: a consumer lost with its NATS server is noticed within 2 s
  // (OnError, NATS_MISSED_HEARTBEAT), not 10.
  const std::string bucket = kvStore_Bucket(kv_);
  const std::string stream = "KV_" + bucket;
  subject_prefix_ = "$KV." + bucket + ".";
  const std::string subject = subject_prefix_ + "t.>";
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverLastPerSubject;
  so.Config.Heartbeat = int64_t{1'000'000'000};  // ns
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_SubscribeSync(sub, js_, subject.c_str(), nullptr, &so, &jerr);
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(*sub, -1, -1);
  return s;
}

bool TokenBucket::InitialPending(natsSubscription* sub) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsSubscription_GetConsumerInfo(&ci, sub, nullptr, &jerr) != NATS_OK) return true;
  // Nothing to deliver and nothing delivered: the bucket holds no token.
  const bool pending = ci->NumPending > 0 || ci->Delivered.Consumer > 0;
  jsConsumerInfo_Destroy(ci);
  return pending;
}

bool TokenBucket::ReadMsg(natsMsg* msg, Entry* out, bool* more) const {
  *more = true;
  const std::string_view subject = natsMsg_GetSubject(msg);
  jsMsgMetaData* meta = nullptr;
  if (!subject.starts_with(subject_prefix_) || natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
    return false;
  }
  out->revision = meta->Sequence.Stream;
  *more = meta->NumPending > 0;
  jsMsgMetaData_Destroy(meta);
  out->key = subject.substr(subject_prefix_.size());
  const char* op = nullptr;
  out->deleted = natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK && op != nullptr &&
                 (std::string_view(op) == "DEL" || std::string_view(op) == "PURGE");
  const int len = natsMsg_GetDataLength(msg);
  if (!out->deleted && len > 0) out->value.assign(natsMsg_GetData(msg), static_cast<size_t>(len));
  return true;
}

bool TokenBucket::ReadEntry(kvEntry* kv_entry, Entry* out) {
  const char* key = kvEntry_Key(kv_entry);
  if (key == nullptr) return false;
  out->key = key;
  out->revision = kvEntry_Revision(kv_entry);
  const kvOperation op = kvEntry_Operation(kv_entry);
  out->deleted = op == kvOp_Delete || op == kvOp_Purge;
  if (!out->deleted) out->value.assign(ValueOf(kv_entry));
  return true;
}

std::optional<rest::TokenBackend::Remote> TokenBucket::Accept(const Entry& e) {
  int64_t id = 0;
  if (!e.key.starts_with("t.") || !ParseInt(std::string_view{e.key}.substr(2), &id) || id <= 0) {
    return std::nullopt;
  }
  uint64_t& known = revisions_[id];
  if (e.revision <= known) return std::nullopt;  // invariant 1
  known = e.revision;
  Remote r;
  r.id = id;
  if (e.deleted) {
    shared_accessed_.erase(id);
    return r;
  }
  acl::Token t;
  std::string error;
  if (!acl::ParseStoredToken(e.value, &t, &error) || t.id != id) {
    LOG_ERROR_S(kCluster, "cluster: token bucket entry {} is not a valid token, ignored: {}", e.key,
                error.empty() ? "id differs from the key" : error);
    return std::nullopt;
  }
  shared_accessed_[id] = t.accessed;
  r.token = std::move(t);
  return r;
}

bool TokenBucket::Connected() const {
  return natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
}

bool TokenBucket::ReserveIds(size_t n, int64_t next_id, int64_t* first, rest::StoreError* error) {
  if (!Connected()) {
    *error = Unavailable("connection", NATS_CONNECTION_DISCONNECTED);
    return false;
  }
  for (int attempt = 0; attempt < kMaxCasAttempts; ++attempt) {
    kvEntry* e = nullptr;
    natsStatus s = kvStore_Get(&e, kv_, "meta.next_id");
    int64_t current = next_id;
    uint64_t revision = 0;
    if (s == NATS_OK) {
      int64_t v = 0;
      if (ParseInt(ValueOf(e), &v)) {
        current = std::max(current, v);
      }
      revision = kvEntry_Revision(e);
      kvEntry_Destroy(e);
    } else if (s != NATS_NOT_FOUND) {
      *error = Unavailable("meta.next_id", s);
      return false;
    }
    const std::string value = std::to_string(current + static_cast<int64_t>(n));
    s = revision == 0 ? kvStore_CreateString(nullptr, kv_, "meta.next_id", value.c_str())
                      : kvStore_UpdateString(nullptr, kv_, "meta.next_id", value.c_str(), revision);
    if (s == NATS_OK) {
      *first = current;
      return true;
    }
    // Another node reserved ids meanwhile (or NATS failed: the next Get says which).
  }
  *error = {503, "the cluster's token bucket is too busy to assign ids; repeat the request"};
  return false;
}

bool TokenBucket::Write(const acl::Token* before, const acl::Token& after, bool touch_only,
                        rest::StoreError* error) {
  const std::string key = TokenKey(after.id);
  std::string value = acl::TokenToJson(after);
  if (before == nullptr) {
    // A key is claimed first (k.<digest> -> id), so no two nodes store the same key.
    const std::string claim = KeyClaim(after.key);
    const std::string id = std::to_string(after.id);
    natsStatus s = kvStore_CreateString(nullptr, kv_, claim.c_str(), id.c_str());
    if (s != NATS_OK) {
      kvEntry* e = nullptr;
      const natsStatus g = kvStore_Get(&e, kv_, claim.c_str());
      const bool taken = g == NATS_OK && ValueOf(e) != id;
      if (e != nullptr) kvEntry_Destroy(e);
      if (taken) {
        *error = {409, "a token with this key exists already"};
        return false;
      }
      if (g != NATS_OK) {
        *error = Unavailable(claim, s);
        return false;
      }
      // Our own claim (an import repeated): go on.
    }
  }
  uint64_t& known = revisions_[after.id];
  acl::Token merged;
  for (int attempt = 0; attempt < kMaxCasAttempts; ++attempt) {
    uint64_t revision = 0;
    const natsStatus s = known == 0 ? kvStore_Create(&revision, kv_, key.c_str(), value.data(),
                                                     static_cast<int>(value.size()))
                                    : kvStore_Update(&revision, kv_, key.c_str(), value.data(),
                                                     static_cast<int>(value.size()), known);
    if (s == NATS_OK) {
      known = revision;
      shared_accessed_[after.id] = after.accessed;
      return true;
    }
    // Failed: changed by another node meanwhile, or NATS cannot be reached.
    kvEntry* e = nullptr;
    const natsStatus g = kvStore_Get(&e, kv_, key.c_str());
    if (g != NATS_OK && g != NATS_NOT_FOUND) {
      *error = Unavailable(key, s);
      return false;
    }
    std::string current;
    uint64_t current_revision = 0;
    if (g == NATS_OK) {
      current.assign(ValueOf(e));
      current_revision = kvEntry_Revision(e);
      kvEntry_Destroy(e);
    }
    if (g == NATS_NOT_FOUND && known != 0) {
      *error = {409, "token " + std::to_string(after.id) + " was deleted on another node"};
      return false;
    }
    if (current_revision == known || g == NATS_NOT_FOUND) {
      *error = Unavailable(key, s);  // not a conflict: the write itself failed
      return false;
    }
    // Another node's write. Taken over only if it changed nothing but `accessed` of the token
    // this change started from; its later `accessed` is kept.
    acl::Token theirs;
    std::string parse_error;
    if (before == nullptr || !acl::ParseStoredToken(current, &theirs, &parse_error)) {
      *error = {409, "token " + std::to_string(after.id) + " was changed on another node"};
      return false;
    }
    acl::Token base = *before;
    base.accessed = theirs.accessed;
    if (!(base == theirs)) {
      if (touch_only) return true;  // the watch brings their change; our uses go next time
      *error = {409, "token " + std::to_string(after.id) +
                         " was changed on another node at the same time; read it and repeat "
                         "the request"};
      return false;
    }
    known = current_revision;
    merged = after;
    merged.accessed = std::max(after.accessed, theirs.accessed);
    value = acl::TokenToJson(merged);
  }
  *error = {503, "token " + std::to_string(after.id) + " changes too often to be written"};
  return false;
}

bool TokenBucket::Commit(const Change& change, rest::StoreError* error) {
  if (!Connected()) {  // at once, not after a request's timeout
    *error = Unavailable("connection", NATS_CONNECTION_DISCONNECTED);
    return false;
  }
  if (change.touch_only) {
    // Uses of tokens: only those noticeably newer than the bucket's, best effort; not while
    // the node stops (a JetStream electing leaders must not hold up the exit).
    if (stopping_.load(std::memory_order_relaxed)) return true;
    for (const auto& [before, after] : change.updated) {
      const auto it = shared_accessed_.find(after->id);
      if (it != shared_accessed_.end() && after->accessed - it->second < Granularity(*after)) {
        continue;
      }
      if (!Write(before, *after, true, error) && error->status == 503) return false;
    }
    return true;
  }
  for (const acl::Token* t : change.created) {
    if (!Write(nullptr, *t, false, error)) return false;
  }
  for (const auto& [before, after] : change.updated) {
    if (!Write(before, *after, false, error)) return false;
  }
  for (const acl::Token* t : change.erased) {
    natsStatus s = kvStore_Delete(kv_, TokenKey(t->id).c_str());
    if (s == NATS_OK) s = kvStore_Delete(kv_, KeyClaim(t->key).c_str());
    if (s != NATS_OK) {
      *error = Unavailable(TokenKey(t->id), s);
      return false;
    }
    shared_accessed_.erase(t->id);
  }
  return true;
}

std::optional<rest::TokenBackend::Remote> TokenBucket::Fetch(int64_t id, std::string_view key) {
  if (!Connected()) return std::nullopt;  // no wait for NATS on the MQTT connect path
  kvEntry* e = nullptr;
  if (id <= 0) {
    if (kvStore_Get(&e, kv_, KeyClaim(std::string(key)).c_str()) != NATS_OK) return std::nullopt;
    const bool ok = ParseInt(ValueOf(e), &id);
    kvEntry_Destroy(e);
    if (!ok) return std::nullopt;
  }
  if (kvStore_Get(&e, kv_, TokenKey(id).c_str()) != NATS_OK) return std::nullopt;
  Entry entry;
  const bool ok = ReadEntry(e, &entry);
  kvEntry_Destroy(e);
  return ok ? Accept(entry) : std::nullopt;
}

void TokenBucket::Follow(const Post& post, const Apply& apply) {
  if (watch_ == nullptr || following_.exchange(true)) return;
  apply_ = apply;
  follower_ = std::thread([this, post] {
    for (;;) {
      if (rewatch_.exchange(false)) Rewatch();
      natsMsg* msg = nullptr;
      const natsStatus s = natsSubscription_NextMsg(&msg, watch_, 250);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        std::lock_guard lock(watch_mu_);
        if (stopping_.load(std::memory_order_relaxed)) break;  // Unfollow
        rewatch_.store(true);                                  // the subscription broke: a new one
        continue;
      }
      auto e = std::make_shared<Entry>();
      bool more = false;
      const bool ok = ReadMsg(msg, e.get(), &more);
      natsMsg_Destroy(msg);
      if (!ok) continue;
      // Decided on the admin thread, in order with this node's own writes (invariant 1).
      (void)post([this, e] {
        if (std::optional<Remote> r = Accept(*e)) apply_(std::move(*r));
      });
    }
  });
}

void TokenBucket::Rewatch() {
  std::lock_guard lock(watch_mu_);
  if (stopping_.load(std::memory_order_relaxed)) return;
  natsSubscription* fresh = nullptr;
  if (Watch(&fresh) != NATS_OK) {
    // JetStream not there yet (electing leaders): the next turn tries again.
    if (fresh != nullptr) natsSubscription_Destroy(fresh);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    rewatch_.store(true);
    return;
  }
  natsSubscription_Destroy(watch_);
  watch_ = fresh;
  LOG_INFO_S(kCluster, "cluster: token bucket watched again (every token read anew)");
}

void TokenBucket::OnConnectionEvent(natsConnection* /*nc*/, void* closure) {
  static_cast<TokenBucket*>(closure)->rewatch_.store(true);
}

void TokenBucket::OnError(natsConnection* /*nc*/, natsSubscription* /*sub*/, natsStatus err,
                          void* closure) {
  // The watcher's consumer stopped sending heartbeats (its NATS server died): a new one now,
  // rather than when nats.c's ordered consumer finds out by itself (15-20 s measured).
  // (The watch's is the connection's only subscription.)
  if (err == NATS_MISSED_HEARTBEAT) static_cast<TokenBucket*>(closure)->rewatch_.store(true);
}

void TokenBucket::Unfollow() {
  {
    std::lock_guard lock(watch_mu_);
    stopping_.store(true, std::memory_order_relaxed);
    if (!following_.exchange(false)) return;
    natsSubscription_Unsubscribe(watch_);
  }
  follower_.join();
}

}  // namespace ringmq::cluster
