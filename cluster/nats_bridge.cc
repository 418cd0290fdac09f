// NatsBridge (cluster/nats_bridge.h): NATS connections, the per-message path in both
// directions, filter interest and the node table.
#include "cluster/nats_bridge.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>

#include "base/json.h"
#include "base/log.h"
#include "broker/shard.h"
#include "cluster/envelope.h"
#include "cluster/nats_util.h"
#include "cluster/subject.h"
#include "smp/key_shard.h"

namespace ringmq::cluster {

namespace {

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

int64_t WallNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t RandomInstance() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof(v)) != 1 || v == 0) {
    v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) | 1;
  }
  return v;
}

const char* ConnState(natsConnection* nc) {
  if (nc == nullptr) return "closed";
  switch (natsConnection_Status(nc)) {
    case NATS_CONN_STATUS_CONNECTED:
      return "connected";
    case NATS_CONN_STATUS_CONNECTING:
      return "connecting";
    case NATS_CONN_STATUS_RECONNECTING:
      return "reconnecting";
    case NATS_CONN_STATUS_DISCONNECTED:
      return "disconnected";
    case NATS_CONN_STATUS_DRAINING_SUBS:
    case NATS_CONN_STATUS_DRAINING_PUBS:
      return "draining";
    case NATS_CONN_STATUS_CLOSED:
      return "closed";
  }
  return "unknown";
}

// Prometheus: one family with one sample.
void Family(std::string* out, const char* name, const char* type, const char* help, uint64_t v) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
          name + " " + std::to_string(v) + "\n";
}

}  // namespace

std::vector<std::string> NatsBridge::ParseServers(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view one = list.substr(0, comma);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
    if (!one.empty()) out.emplace_back(one);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

NatsBridge::NatsBridge(Options options, broker::Broker& broker)
    : options_(std::move(options)),
      broker_(broker),
      instance_(RandomInstance()),
      started_(UnixNow()),
      shards_(std::make_unique<PerShard[]>(broker.config().shards)),
      shard_count_(static_cast<uint16_t>(broker.config().shards)),
      node_subject_(options_.prefix + ".n." + TopicToken(options_.node_id)),
      node_prefix_(options_.prefix + ".n."),
      retained_prefix_(options_.prefix + ".r."),
      claims_subject_(options_.prefix + ".c") {}

NatsBridge::~NatsBridge() { Close(); }

bool NatsBridge::ConnectOne(const std::string& name, bool subscriber, natsConnection** out,
                            std::string* error) {
  return ConnectNats(
      options_.servers, name,
      [this, subscriber](natsOptions* opts) {
        // What is published while reconnecting waits here (then Publish fails: counted).
        natsStatus s = natsOptions_SetReconnectBufSize(opts, 64 << 20);
        if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, &OnError, this);
        if (!subscriber) return s;
        // The subscription connection's state is the node's (the others follow the same servers).
        if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, &OnDisconnected, this);
        if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &OnReconnected, this);
        if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(opts, true);
        return s;
      },
      out, error);
}

bool NatsBridge::Connect(std::string* error) {
  if (options_.servers.empty()) {
    *error = "--cluster names no NATS server";
    return false;
  }
  // Every subscription's messages on one delivery thread, in arrival order (the header).
  if (natsStatus s = nats_SetMessageDeliveryPoolSize(1); s != NATS_OK) {
    *error = "NATS: " + StatusText(s);
    return false;
  }
  const std::string base = "ringmq " + options_.node_id;
  for (uint16_t i = 0; i < shard_count_; ++i) {
    if (!ConnectOne(base + " shard " + std::to_string(i), false, &shards_[i].conn, error)) {
      Close();
      return false;
    }
  }
  if (!ConnectOne(base, true, &sub_conn_, error)) {
    Close();
    return false;
  }
  std::lock_guard lock(mu_);
  connected_ = true;
  if (!SubscribeRetainedLocked(error)) return false;
  natsStatus s = SubscribeLocked(node_prefix_ + "*", &nodes_sub_);
  if (s == NATS_OK) s = SubscribeLocked(claims_subject_, &claims_sub_);
  // Filters of sessions recovered before now (none yet: Connect runs before Broker::Start).
  for (auto& [subject, e] : interest_) {
    if (s == NATS_OK && e.sub == nullptr) s = SubscribeLocked(subject, &e.sub);
  }
  for (auto& [key, e] : shared_) {
    if (e.subs.empty()) SubscribeSharedLocked(e);
  }
  if (s != NATS_OK) {
    *error = "NATS subscribe: " + StatusText(s);
    return false;
  }
  NodeInfo self;
  self.node_id = options_.node_id;
  self.instance = instance_;
  self.shards = shard_count_;
  self.started = started_;
  self.last_seen = UnixNow();
  nodes_[instance_] = std::move(self);
  // A message must fit in one NATS message: the server's max_payload (1 MB by default).
  const int64_t max_payload = natsConnection_GetMaxPayload(sub_conn_);
  if (max_payload < int64_t{broker_.config().max_packet_size} + 1024) {
    LOG_WARN_S(kCluster,
               "cluster: NATS takes messages up to {} bytes, less than max_packet_size ({}) plus "
               "1 KiB: larger messages do not reach other nodes (raise max_payload in "
               "nats-server's configuration)",
               max_payload, broker_.config().max_packet_size);
  }
  LOG_INFO_S(kCluster, "cluster: node '{}' connected to NATS ({} connections, subjects {}.*)",
             options_.node_id, shard_count_ + 1, options_.prefix);
  return true;
}

natsStatus NatsBridge::SubscribeLocked(const std::string& subject, natsSubscription** sub) {
  natsStatus s = natsConnection_Subscribe(sub, sub_conn_, subject.c_str(), &OnMessage, this);
  if (s == NATS_OK) {
    s = natsSubscription_SetPendingLimits(*sub, static_cast<int>(kPendingMessages),
                                          static_cast<int>(kPendingBytes));
  }
  if (s != NATS_OK) {
    LOG_ERROR_S(kCluster, "cluster: cannot subscribe to {}: {}", subject, StatusText(s));
  }
  return s;
}

bool NatsBridge::SubscribeRetainedLocked(std::string* error) {
  const std::string subject = options_.prefix + ".r.>";
  std::string stream = options_.prefix + "_RETAINED";
  for (char& c : stream) {
    if (c == '.') c = '_';
  }
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = natsConnection_JetStream(&js_, sub_conn_, nullptr);
  jsStreamInfo* info = nullptr;
  // A JetStream cluster that has just started elects its leaders for a few seconds first: wait
  // for it (a server without JetStream answers at once: no responders).
  if (s == NATS_OK) {
    s = WhileJetStreamNotReady(
        kJetStreamWaitMs,
        [&](jsErrCode* e) { return js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, e); },
        &jerr);
  }
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {subject.c_str()};
    cfg.Name = stream.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.MaxMsgsPerSubject = 1;  // the retained message of each topic (an empty one clears it)
    cfg.Storage = js_FileStorage;
    cfg.Replicas = options_.replicas;
    jerr = static_cast<jsErrCode>(0);
    s = js_AddStream(&info, js_, &cfg, nullptr, &jerr);
    if (s != NATS_OK && options_.replicas > 1 &&
        (jerr == JSInsufficientResourcesErr || jerr == JSStreamReplicasNotSupportedErr ||
         jerr == JSClusterNoPeersErr)) {
      LOG_WARN_S(kCluster,
                 "cluster: NATS cannot keep {} replicas of the retained messages' stream {}: "
                 "it keeps one (add JetStream servers for more)",
                 options_.replicas, stream);
      cfg.Replicas = 1;
      jerr = static_cast<jsErrCode>(0);
      s = js_AddStream(&info, js_, &cfg, nullptr, &jerr);
    }
  }
  if (s != NATS_OK) {
    if (info != nullptr) jsStreamInfo_Destroy(info);
    // No JetStream (or no access to it): live routing of retained messages still works.
    LOG_WARN_S(kCluster,
               "cluster: no JetStream stream for retained messages ({}, JetStream error {}): a "
               "node gets only those published while it runs (start nats-server with -js)",
               StatusText(s), static_cast<int>(jerr));
    if (js_ != nullptr) jsCtx_Destroy(js_);
    js_ = nullptr;
    if (SubscribeLocked(subject, &retained_sub_) != NATS_OK) {
      *error = "NATS subscribe " + subject + ": " + StatusText(s);
      return false;
    }
    return true;
  }
  retained_backlog_last_ = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverLastPerSubject;
  // The consumer too waits for JetStream's leaders (a server may have just died).
  s = WhileJetStreamNotReady(
      kJetStreamWaitMs,
      [&](jsErrCode* e) {
        return js_Subscribe(&retained_sub_, js_, subject.c_str(), &OnMessage, this, nullptr, &so,
                            e);
      },
      &jerr);
  if (s == NATS_OK) {
    s = natsSubscription_SetPendingLimits(retained_sub_, static_cast<int>(kPendingMessages),
                                          static_cast<int>(kPendingBytes));
  }
  if (s != NATS_OK) {
    *error = "JetStream subscribe to " + stream + ": " + StatusText(s);
    return false;
  }
  LOG_INFO_S(kCluster, "cluster: retained messages from stream {} ({} stored so far)", stream,
             retained_backlog_last_);
  return true;
}

void NatsBridge::Activate() {
  {
    std::lock_guard lock(mu_);
    activated_ms_ = route::SteadyNowMs();
  }
  active_.store(true, std::memory_order_release);
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
}

void NatsBridge::StopInbound() { inbound_stopped_.store(true, std::memory_order_release); }

void NatsBridge::Close() {
  if (closed_) return;
  closed_ = true;
  StopInbound();
  {
    std::lock_guard lock(mu_);
    stop_heartbeat_ = true;
    connected_ = false;
  }
  stop_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  // What the shards published gets out before the connections close.
  for (uint16_t i = 0; i < shard_count_; ++i) {
    if (shards_[i].conn == nullptr) continue;
    (void)natsConnection_FlushTimeout(shards_[i].conn, 1000);
    natsConnection_Close(shards_[i].conn);
    natsConnection_Destroy(shards_[i].conn);
    shards_[i].conn = nullptr;
  }
  // Taken out under mu_, destroyed outside it: the delivery thread may wait for mu_.
  std::vector<natsSubscription*> subs;
  natsConnection* conn = nullptr;
  {
    std::lock_guard lock(mu_);
    for (auto& [subject, e] : interest_) {
      if (e.sub != nullptr) subs.push_back(e.sub);
      e.sub = nullptr;
    }
    for (auto& [key, e] : shared_) {
      subs.insert(subs.end(), e.subs.begin(), e.subs.end());
      e.subs.clear();
    }
    shared_by_sub_.clear();
    for (natsSubscription** sub : {&retained_sub_, &nodes_sub_, &claims_sub_}) {
      if (*sub != nullptr) subs.push_back(*sub);
      *sub = nullptr;
    }
    conn = sub_conn_;
    sub_conn_ = nullptr;
  }
  for (natsSubscription* sub : subs) natsSubscription_Destroy(sub);
  if (js_ != nullptr) jsCtx_Destroy(js_);
  js_ = nullptr;
  if (conn != nullptr) {
    natsConnection_Close(conn);
    natsConnection_Destroy(conn);
  }
  // nats.c's own threads (readers, flushers, the delivery pool) end here: no callback into this
  // object runs after Close.
  (void)nats_CloseAndWait(2000);
}

// ---- Outbound: shard threads ------------------------------------------------------------------

void NatsBridge::Publish(uint16_t shard, const route::MessagePtr& m) {
  PerShard& p = shards_[shard];
  if (!m->retain && p.interest != nullptr && !p.interest->Matches(m->topic)) {
    p.unwanted.Add();  // no other node subscribes to it (the stream wants every retained one)
    return;
  }
  const int64_t now = route::SteadyNowMs();
  if (p.conn == nullptr || route::Expired(*m, now)) return;
  p.buf.clear();
  EncodeEnvelope(instance_, shard, ++p.seq, *m, now, &p.buf);
  const std::string subject = TopicSubject(options_.prefix, m->retain ? "r" : "m", m->topic);
  const natsStatus s =
      natsConnection_Publish(p.conn, subject.c_str(), p.buf.data(), static_cast<int>(p.buf.size()));
  if (s == NATS_OK) {
    p.published.Add();
  } else {
    if (p.errors.Get() % 10000 == 0) {  // the first, then one line per 10,000
      LOG_WARN_S(kCluster, "cluster: shard {}: publish to NATS failed ({} so far): {}", shard,
                 p.errors.Get() + 1, natsStatus_GetText(s));
    }
    p.errors.Add();
  }
}

void NatsBridge::SessionClaimed(uint16_t shard, std::string_view client_id, int64_t stamp_ns) {
  PerShard& p = shards_[shard];
  if (p.conn == nullptr) return;
  p.buf.clear();
  EncodeClaim(Claim{instance_, stamp_ns, std::string(client_id)}, &p.buf);
  if (natsConnection_Publish(p.conn, claims_subject_.c_str(), p.buf.data(),
                             static_cast<int>(p.buf.size())) != NATS_OK) {
    p.errors.Add();
  }
}

void NatsBridge::HandleClaim(std::string_view data) {
  std::optional<Claim> c = DecodeClaim(data);
  if (!c) {
    invalid_.Add();
    return;
  }
  if (c->instance == instance_ || !active_.load(std::memory_order_acquire) ||
      inbound_stopped_.load(std::memory_order_acquire)) {
    return;
  }
  claims_received_.Add();
  const uint16_t home = smp::ShardOfKey(c->client_id, shard_count_);
  (void)broker_.shard(home).PostTask([c = std::move(*c)](broker::Shard& s) {
    s.ClusterSessionClaimed(c.client_id, c.stamp_ns, c.instance);
  });
}

void NatsBridge::Interest(uint16_t /*shard*/, std::string_view filter, bool add) {
  std::lock_guard lock(mu_);
  for (const std::string& subject :
       CoarseSubjects(options_.prefix, "m", filter, options_.subject_levels)) {
    if (add) {
      InterestEntry& e = interest_[subject];
      if (e.count++ == 0) {
        if (connected_) (void)SubscribeLocked(subject, &e.sub);
        ++interest_version_;
        heartbeat_now_ = true;  // the other nodes must start sending it now
        stop_cv_.notify_all();
      }
      continue;
    }
    auto it = interest_.find(subject);
    if (it == interest_.end()) continue;  // cannot happen (invariant 1): nothing to undo
    if (--it->second.count == 0) {
      ++interest_version_;  // told with the next heartbeat
      if (it->second.sub != nullptr) {
        (void)natsSubscription_Unsubscribe(it->second.sub);
        natsSubscription_Destroy(it->second.sub);
      }
      interest_.erase(it);
    }
  }
}

namespace {
// The queue group of $share/group/filter: the same on every node, one NATS token per part.
std::string QueueName(std::string_view group, std::string_view filter) {
  return TopicToken(group) + "_" + TopicToken(filter);
}
}  // namespace

void NatsBridge::SubscribeSharedLocked(SharedEntry& e) {
  const std::string queue = QueueName(e.key->group, e.key->filter);
  for (const std::string& subject : e.subjects) {
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_QueueSubscribe(&sub, sub_conn_, subject.c_str(), queue.c_str(),
                                                 &OnSharedMessage, this);
    if (s == NATS_OK) {
      s = natsSubscription_SetPendingLimits(sub, static_cast<int>(kPendingMessages),
                                            static_cast<int>(kPendingBytes));
    }
    if (s != NATS_OK) {
      LOG_ERROR_S(kCluster, "cluster: cannot subscribe to {} in queue group {}: {}", subject, queue,
                  StatusText(s));
      if (sub != nullptr) natsSubscription_Destroy(sub);
      continue;
    }
    shared_by_sub_[natsSubscription_GetID(sub)] = e.key;
    e.subs.push_back(sub);
  }
}

void NatsBridge::SharedInterest(uint16_t /*shard*/, std::string_view group, std::string_view filter,
                                bool add) {
  std::lock_guard lock(mu_);
  broker::SharedKey key{std::string(group), std::string(filter)};
  if (add) {
    SharedEntry& e = shared_[key];
    if (e.count++ != 0) return;
    e.key = std::make_shared<const broker::SharedKey>(std::move(key));
    e.subjects = CoarseSubjects(options_.prefix, "m", filter, options_.subject_levels);
    if (connected_) SubscribeSharedLocked(e);
    ++interest_version_;
    heartbeat_now_ = true;
    stop_cv_.notify_all();
    ShareInterestLocked();  // this node's own publishes must now go to NATS too
    return;
  }
  auto it = shared_.find(key);
  if (it == shared_.end() || --it->second.count != 0) return;
  for (natsSubscription* sub : it->second.subs) {
    shared_by_sub_.erase(natsSubscription_GetID(sub));
    (void)natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  shared_.erase(it);
  ++interest_version_;
  ShareInterestLocked();
}

std::vector<std::string> NatsBridge::OwnSubjectsLocked() const {
  std::vector<std::string> out;
  out.reserve(interest_.size());
  for (const auto& [subject, e] : interest_) out.push_back(subject);
  for (const auto& [key, e] : shared_) out.insert(out.end(), e.subjects.begin(), e.subjects.end());
  return out;
}

// ---- Inbound: the delivery thread -------------------------------------------------------------

void NatsBridge::OnMessage(natsConnection* /*nc*/, natsSubscription* /*sub*/, natsMsg* msg,
                           void* closure) {
  static_cast<NatsBridge*>(closure)->HandleMessage(msg);
  natsMsg_Destroy(msg);
}

void NatsBridge::OnSharedMessage(natsConnection* /*nc*/, natsSubscription* sub, natsMsg* msg,
                                 void* closure) {
  static_cast<NatsBridge*>(closure)->HandleSharedMessage(sub, msg);
  natsMsg_Destroy(msg);
}

void NatsBridge::HandleSharedMessage(natsSubscription* sub, natsMsg* msg) {
  broker::SharedKeyPtr key;
  {
    std::lock_guard lock(mu_);
    auto it = shared_by_sub_.find(natsSubscription_GetID(sub));
    if (it == shared_by_sub_.end()) return;  // the group's last member here left meanwhile
    key = it->second;
  }
  const std::string_view data(natsMsg_GetData(msg),
                              static_cast<size_t>(natsMsg_GetDataLength(msg)));
  std::optional<Envelope> e = DecodeEnvelope(data, route::SteadyNowMs());
  if (!e) {
    invalid_.Add();
    return;
  }
  // Our own messages too: NATS picked this node's member of the group. No copies to drop: a
  // group's coarse subjects are disjoint, and each group has its own queue subscriptions.
  shared_received_.Add();
  broker::ShardMsg m;
  m.kind = broker::ShardMsg::Kind::kFromClusterShared;
  m.from = shard_count_;
  m.shared = std::move(key);
  const uint16_t to = ShardOfSender(e->instance, e->shard);
  m.msg = std::move(e->msg);
  Push(to, std::move(m));
}

void NatsBridge::HandleMessage(natsMsg* msg) {
  const std::string_view subject = natsMsg_GetSubject(msg);
  const std::string_view data(natsMsg_GetData(msg),
                              static_cast<size_t>(natsMsg_GetDataLength(msg)));
  if (subject.starts_with(node_prefix_)) return HandleHeartbeat(data);
  if (subject == claims_subject_) return HandleClaim(data);
  // A retained message from the stream: its place in it (backlog or live) and its age there.
  const bool retained = subject.starts_with(retained_prefix_);
  bool backlog = false;
  int64_t age_ms = 0;
  if (jsMsgMetaData* meta = nullptr; retained && natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
    backlog = meta->Sequence.Stream <= retained_backlog_last_;
    age_ms = std::max<int64_t>(0, (WallNowNs() - meta->Timestamp) / 1'000'000);
    jsMsgMetaData_Destroy(meta);
  }
  const int64_t now = route::SteadyNowMs();
  std::optional<Envelope> e = DecodeEnvelope(data, now, age_ms);
  if (!e) {
    if (invalid_.Get() % 10000 == 0) {
      LOG_WARN_S(kCluster, "cluster: not a ringmq message on {} ({} bytes): ignored",
                 base::Cut(subject), data.size());
    }
    invalid_.Add();
    return;
  }
  if (e->instance == instance_) return;  // our own, back from NATS
  if (!retained) {
    // Plain messages may come once per overlapping subscription (the header, invariant 2).
    uint64_t& last = last_seq_[SenderKey{e->instance, e->shard}];
    if (e->seq <= last) {
      duplicates_.Add();
      return;
    }
    last = e->seq;
  } else if (route::Expired(*e->msg, now)) {
    return;  // it expired while stored
  }
  received_.Add();
  broker::ShardMsg m;
  m.kind = backlog ? broker::ShardMsg::Kind::kRetain : broker::ShardMsg::Kind::kFromCluster;
  m.from = shard_count_;
  // A plain message goes to one shard per sender, which routes it to the others through rings
  // that keep their order: a publisher's messages arrive in the order it sent them, whatever
  // their topics, as on one node. A retained one goes to the owner of its topic, so that one
  // topic's retained messages are stored in stream order (backlog before live).
  const uint16_t to = retained ? smp::ShardOfKey(e->msg->topic, shard_count_)
                               : ShardOfSender(e->instance, e->shard);
  m.msg = std::move(e->msg);
  Push(to, std::move(m));
}

void NatsBridge::Push(uint16_t to, broker::ShardMsg m) {
  // Until the broker runs (Activate) the shards cannot take it: wait, nats.c queues meanwhile.
  while (!active_.load(std::memory_order_acquire) &&
         !inbound_stopped_.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // A full ring: wait for room (backpressure, never a drop).
  for (int waited = 0; broker_.PushFromCluster(to, &m, 1) == 0; ++waited) {
    if (inbound_stopped_.load(std::memory_order_acquire)) {
      dropped_stopping_.Add();
      return;
    }
    if (waited == 0) ring_waits_.Add();
    std::this_thread::sleep_for(std::chrono::microseconds(waited < 100 ? 20 : 500));
  }
}

// ---- Nodes --------------------------------------------------------------------------------------

std::string NatsBridge::HeartbeatTextLocked() const {
  // "1 INSTANCE CLIENTS SHARDS STARTED INTEREST_VERSION\nNODE_ID\nSUBJECT\n...": the node id
  // on a line of its own (it may hold spaces), then its coarse subjects, or ">" past the cap.
  std::string text = "1 " + std::to_string(instance_) + " " +
                     std::to_string(broker_.connection_quota().total()) + " " +
                     std::to_string(shard_count_) + " " + std::to_string(started_) + " " +
                     std::to_string(interest_version_) + "\n" + options_.node_id;
  const size_t head = text.size();
  for (const std::string& subject : OwnSubjectsLocked()) {
    text.append("\n").append(subject);
    if (text.size() - head > kMaxHeartbeatSubjects) {
      text.resize(head);
      text.append("\n>");
      break;
    }
  }
  return text;
}

void NatsBridge::HandleHeartbeat(std::string_view data) {
  size_t nl = data.find('\n');
  if (nl == std::string_view::npos) return;
  const std::string head(data.substr(0, nl));
  data.remove_prefix(nl + 1);
  nl = data.find('\n');
  NodeInfo n;
  n.node_id = std::string(data.substr(0, nl));
  data = nl == std::string_view::npos ? std::string_view() : data.substr(nl + 1);
  unsigned version = 0;
  unsigned long long instance = 0, clients = 0, interest_version = 0;
  unsigned shards = 0;
  long long started = 0;
  if (std::sscanf(head.c_str(), "%u %llu %llu %u %lld %llu", &version, &instance, &clients, &shards,
                  &started, &interest_version) != 6 ||
      version != 1 || instance == instance_) {
    return;
  }
  n.instance = instance;
  n.clients = clients;
  n.shards = shards;
  n.started = started;
  n.last_seen = UnixNow();
  n.interest_version = interest_version;
  std::lock_guard lock(mu_);
  auto it = nodes_.find(n.instance);
  const bool changed = it == nodes_.end() || it->second.interest_version != interest_version;
  if (changed) {
    while (!data.empty()) {
      nl = data.find('\n');
      n.subjects.emplace_back(data.substr(0, nl));
      data = nl == std::string_view::npos ? std::string_view() : data.substr(nl + 1);
    }
  } else {
    n.subjects = std::move(it->second.subjects);
  }
  nodes_[n.instance] = std::move(n);
  if (changed) ShareInterestLocked();
}

void NatsBridge::ShareInterestLocked() {
  if (!warm_) return;  // until every live node was heard from, shards publish everything
  std::vector<std::string> subjects;
  for (const auto& [instance, n] : nodes_) {
    if (instance == instance_) continue;
    subjects.insert(subjects.end(), n.subjects.begin(), n.subjects.end());
  }
  // This node's own shared groups get its messages back from NATS (the header).
  for (const auto& [key, e] : shared_)
    subjects.insert(subjects.end(), e.subjects.begin(), e.subjects.end());
  auto interest = std::make_shared<const RemoteInterest>(options_.prefix, subjects);
  broker_.ForEachShard([this, interest](broker::Shard& s) { shards_[s.id()].interest = interest; });
}

void NatsBridge::HeartbeatLoop() {
  std::unique_lock lock(mu_);
  while (!stop_heartbeat_) {
    heartbeat_now_ = false;
    const std::string text = HeartbeatTextLocked();
    nodes_[instance_].clients = broker_.connection_quota().total();
    nodes_[instance_].last_seen = UnixNow();
    // Forget nodes not heard from lately (a node that left, or an old instance of a restarted
    // one), and with them what they subscribed to.
    bool forgot = false;
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      const bool old = it->second.last_seen < UnixNow() - kNodeTimeoutS;
      forgot = forgot || old;
      it = old ? nodes_.erase(it) : std::next(it);
    }
    if (!warm_ && route::SteadyNowMs() - activated_ms_ >= kWarmUpMs) {
      warm_ = true;
      forgot = true;  // share for the first time
    }
    if (forgot) ShareInterestLocked();
    lock.unlock();
    (void)natsConnection_Publish(sub_conn_, node_subject_.c_str(), text.data(),
                                 static_cast<int>(text.size()));
    lock.lock();
    stop_cv_.wait_for(lock, std::chrono::seconds(1),
                      [this] { return stop_heartbeat_ || heartbeat_now_; });
  }
}

void NatsBridge::OnDisconnected(natsConnection* /*nc*/, void* closure) {
  auto* self = static_cast<NatsBridge*>(closure);
  LOG_WARN_S(kCluster, "cluster: node '{}' lost its NATS connection; reconnecting",
             self->options_.node_id);
}

void NatsBridge::OnReconnected(natsConnection* nc, void* closure) {
  auto* self = static_cast<NatsBridge*>(closure);
  char url[256] = {};
  (void)natsConnection_GetConnectedUrl(nc, url, sizeof(url));
  LOG_INFO_S(kCluster, "cluster: node '{}' reconnected to NATS at {}", self->options_.node_id, url);
}

void NatsBridge::OnError(natsConnection* /*nc*/, natsSubscription* /*sub*/, natsStatus err,
                         void* /*closure*/) {
  // Slow consumer: nats.c dropped messages past the pending limits (counted by the subscription).
  LOG_WARN_S(kCluster, "cluster: NATS: {}", natsStatus_GetText(err));
}

// ---- Views --------------------------------------------------------------------------------------

bool NatsBridge::HealthJson(std::string* json) const {
  std::lock_guard lock(mu_);
  const char* state = ConnState(sub_conn_);
  char url[256] = {};
  if (sub_conn_ != nullptr) (void)natsConnection_GetConnectedUrl(sub_conn_, url, sizeof(url));
  *json = "{\"node_id\":" + base::JsonString(options_.node_id) +
          ",\"nats\":" + base::JsonString(state) + ",\"server\":" + base::JsonString(url) +
          ",\"nodes\":" + std::to_string(nodes_.size()) + "}";
  return std::strcmp(state, "connected") == 0;
}

std::vector<std::string> NatsBridge::NodesJson() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [instance, n] : nodes_) {
    const bool self = instance == instance_;
    std::string o =
        "{\"node_id\":" + base::JsonString(n.node_id) + ",\"self\":" + (self ? "true" : "false") +
        ",\"clients\":" + std::to_string(n.clients) + ",\"shards\":" + std::to_string(n.shards) +
        ",\"started\":" + std::to_string(n.started) +
        ",\"last_seen\":" + std::to_string(n.last_seen) +
        ",\"subjects\":" + std::to_string(self ? OwnSubjectsLocked().size() : n.subjects.size());
    if (self) o += ",\"nats\":" + base::JsonString(ConnState(sub_conn_));
    out.push_back(o + "}");
  }
  return out;
}

std::string NatsBridge::MetricsText() const {
  uint64_t published = 0, errors = 0, unwanted = 0;
  for (uint16_t i = 0; i < shard_count_; ++i) {
    published += shards_[i].published.Get();
    errors += shards_[i].errors.Get();
    unwanted += shards_[i].unwanted.Get();
  }
  uint64_t subscriptions = 0, nodes = 0, dropped = 0;
  bool connected = false;
  {
    std::lock_guard lock(mu_);
    connected =
        sub_conn_ != nullptr && natsConnection_Status(sub_conn_) == NATS_CONN_STATUS_CONNECTED;
    nodes = nodes_.size();
    subscriptions = interest_.size();
    const auto add_dropped = [&dropped](natsSubscription* sub) {
      int64_t d = 0;
      if (sub != nullptr && natsSubscription_GetDropped(sub, &d) == NATS_OK && d > 0) {
        dropped += static_cast<uint64_t>(d);
      }
    };
    for (const auto& [subject, e] : interest_) add_dropped(e.sub);
    add_dropped(retained_sub_);
  }
  std::string out;
  Family(&out, "ringmq_cluster_connected", "gauge",
         "1 while this node's NATS subscription connection is up", connected ? 1 : 0);
  Family(&out, "ringmq_cluster_nodes", "gauge",
         "Nodes heard from in the last 5 seconds, this one included", nodes);
  Family(&out, "ringmq_cluster_subscriptions", "gauge",
         "NATS subscriptions covering this node's filters (coarse subjects)", subscriptions);
  Family(&out, "ringmq_cluster_published_total", "counter",
         "Messages published on this node and sent to NATS", published);
  Family(&out, "ringmq_cluster_unwanted_total", "counter",
         "Messages published on this node that no other node's filters match (not sent)", unwanted);
  Family(&out, "ringmq_cluster_publish_errors_total", "counter",
         "Messages NATS did not take (disconnected past its reconnect buffer)", errors);
  Family(&out, "ringmq_cluster_received_total", "counter",
         "Messages from other nodes handed to this node's shards", received_.Get());
  Family(&out, "ringmq_cluster_shared_received_total", "counter",
         "Messages NATS handed this node for one of its shared subscription groups",
         shared_received_.Get());
  Family(&out, "ringmq_cluster_claims_received_total", "counter",
         "Connections other nodes accepted (client id claims), handed to this node's shards",
         claims_received_.Get());
  Family(&out, "ringmq_cluster_duplicates_total", "counter",
         "Copies of one message skipped (overlapping NATS subscriptions)", duplicates_.Get());
  Family(&out, "ringmq_cluster_invalid_total", "counter",
         "Messages on ringmq subjects that were not ringmq envelopes", invalid_.Get());
  Family(&out, "ringmq_cluster_ring_waits_total", "counter",
         "Times the NATS delivery thread waited for room in a shard's ring", ring_waits_.Get());
  Family(&out, "ringmq_cluster_dropped_total", "counter",
         "Messages the NATS client dropped past its pending limits, or at shutdown",
         dropped + dropped_stopping_.Get());
  return out;
}

}  // namespace ringmq::cluster
