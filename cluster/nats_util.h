// Helpers shared by the cluster's NATS clients (cluster/nats_bridge.h, cluster/token_bucket.h).
//
// Thread-safety: pure functions over nats.c, which is thread-safe.
#ifndef RINGMQ_CLUSTER_NATS_UTIL_H_
#define RINGMQ_CLUSTER_NATS_UTIL_H_

#include <nats/nats.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ringmq::cluster {

// natsStatus text with nats.c's last error detail of this thread, if any.
std::string StatusText(natsStatus s);

// JetStream answers so while its cluster elects leaders (at start, or after a server died).
bool JetStreamNotReady(natsStatus s, jsErrCode jerr);

// Connects to one of `servers` as `name`, reconnecting for ever every 250 ms; `extra` may set
// more options (callbacks). False with *error ("cannot connect to NATS at ...: ...").
bool ConnectNats(const std::vector<std::string>& servers, const std::string& name,
                 const std::function<natsStatus(natsOptions*)>& extra, natsConnection** out,
                 std::string* error);

// Calls `attempt` until it returns something else than "JetStream not ready" or `wait_ms` passed
// (250 ms apart), so a node started with a JetStream cluster that elects its leaders waits for
// them. Returns the last status; *jerr its JetStream error.
natsStatus WhileJetStreamNotReady(int64_t wait_ms,
                                  const std::function<natsStatus(jsErrCode*)>& attempt,
                                  jsErrCode* jerr);

}  // namespace ringmq::cluster

#endif  // RINGMQ_CLUSTER_NATS_UTIL_H_
