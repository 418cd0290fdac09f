#include "cluster/nats_util.h"

#include <chrono>
#include <thread>

#include "base/log.h"

namespace ringmq::cluster {

std::string StatusText(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  if (const char* detail = nats_GetLastError(&last); detail != nullptr && *detail != '\0') {
    text += std::string(" (") + detail + ")";
  }
  return text;
}

bool JetStreamNotReady(natsStatus s, jsErrCode jerr) {
  return s == NATS_TIMEOUT || jerr == JSClusterNotAvailErr || jerr == JSClusterNotLeaderErr ||
         jerr == JSClusterIncompleteErr;
}

bool ConnectNats(const std::vector<std::string>& servers, const std::string& name,
                 const std::function<natsStatus(natsOptions*)>& extra, natsConnection** out,
                 std::string* error) {
  natsOptions* opts = nullptr;
  if (natsOptions_Create(&opts) != NATS_OK) {
    *error = "NATS options: out of memory";
    return false;
  }
  std::vector<const char*> urls;
  urls.reserve(servers.size());
  for (const std::string& s : servers) urls.push_back(s.c_str());
  natsStatus s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, name.c_str());
  // A node keeps trying for ever: NATS being away for a while must not end the node.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
  if (s == NATS_OK && extra) s = extra(opts);
  if (s == NATS_OK) s = natsConnection_Connect(out, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    std::string all;
    for (const std::string& u : servers) all += (all.empty() ? "" : ",") + u;
    *error = "cannot connect to NATS at " + all + ": " + StatusText(s);
    return false;
  }
  return true;
}

natsStatus WhileJetStreamNotReady(int64_t wait_ms,
                                  const std::function<natsStatus(jsErrCode*)>& attempt,
                                  jsErrCode* jerr) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (bool said = false;; said = true) {
    *jerr = static_cast<jsErrCode>(0);
    const natsStatus s = attempt(jerr);
    if (!JetStreamNotReady(s, *jerr) || std::chrono::steady_clock::now() > give_up) return s;
    if (!said) LOG_INFO_S(kCluster, "cluster: waiting for JetStream to be ready");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace ringmq::cluster
