// Worker: one load generator thread with its own io_uring (net::Ring) and provided buffer ring,
// driving the clients assigned to it (client k of the plan goes to worker k % threads).
//
// The main thread steers all workers through Control: it moves `phase` forward and reads each
// worker's Counters for progress and phase completion; workers never talk to each other.
// Loop turn (as the broker's shard): react to the phase, start paced connects, generate due
// publishes, queue keep-alives, one send per dirty client, one SubmitAndWait (with a timeout that
// is the next scheduled event), one batch of completions.
// Thread-safety: Control and Counters are atomics (relaxed counters: they are statistics; `phase`
// is stored with release and loaded with acquire so a worker that sees a phase also sees the
// timestamps the main thread wrote before it). Result is read only after the thread joined.
#ifndef RINGMQ_TOOLS_BENCH_WORKER_H_
#define RINGMQ_TOOLS_BENCH_WORKER_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "net/buffer_ring.h"
#include "net/ring.h"
#include "proto/framer.h"
#include "tools/bench/client.h"
#include "tools/bench/histogram.h"
#include "tools/bench/options.h"
#include "tools/bench/scenario.h"
#include "tools/bench/transport.h"

namespace ringmq::bench {

enum class Phase : int {
  kIdle = 0,
  kConnectGroup0,
  kSeed,  // retained: the seeder publishes
  kConnectGroup1,
  kRun,
  kDrain,  // publishing stopped; waiting for what is in flight
  kDisconnect,
  kExit,
};

struct Control {
  std::atomic<Phase> phase{Phase::kIdle};
  std::atomic<int64_t> phase_start_ns{0};  // written before `phase`
  std::atomic<int64_t> run_start_ns{0};    // first scheduled publish
  std::atomic<int64_t> run_end_ns{0};      // no publish is scheduled at or after this (0: none)
};

// Live statistics of one worker, written by it, read by the main thread.
struct alignas(64) Counters {
  std::atomic<uint64_t> settled[2] = {0, 0};  // clients of a group that are ready or failed
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> closed{0};  // every client closed, for whatever reason
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> inflight{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> publishers_done{0};  // --count reached (or the seeder finished)
  std::atomic<uint64_t> retained_complete{0};
};

// Final statistics of one worker, merged by the main thread after join.
struct Result {
  Histogram latency;          // end-to-end, ns
  Histogram connect_latency;  // TCP connect start -> CONNACK, ns
  Histogram ack_latency;      // publish -> PUBACK / PUBCOMP (QoS 1 / 2), ns: the publisher's wait
  Histogram retained_time;    // SUBSCRIBE sent -> last retained message, ns (retained)
  uint64_t published = 0;
  uint64_t acked = 0;
  uint64_t received = 0;
  uint64_t unique = 0;
  uint64_t duplicates = 0;
  uint64_t late = 0;
  uint64_t gaps = 0;
  uint64_t untracked = 0;  // payloads without a header (not from ringmq-bench)
  uint64_t connected = 0;
  uint64_t failed = 0;
  uint64_t unexpected_closes = 0;
  uint64_t rejected_publishes = 0;  // PUBACK/PUBREC with a failure reason (MQTT 5)
  uint64_t inflight_lost = 0;       // QoS 1/2 publishes unacknowledged when a client closed
  uint64_t retained = 0;            // messages with the retain flag (not in latency statistics)
  int64_t connect_first_ns[2] = {0, 0};  // first connect attempt of the group
  int64_t connect_last_ns[2] = {0, 0};   // last client of the group ready
  int64_t last_publish_ns = 0;
  int64_t last_receive_ns = 0;
  std::map<std::string, uint64_t> errors;  // reason -> occurrences
};

class Worker {
 public:
  // REQUIRES: `transports` was initialised and outlives the worker.
  Worker(const Options& options, const Plan& plan, const sockaddr_storage& address,
         socklen_t address_len, const TransportFactory& transports, Control& control, unsigned id);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // On the worker's own thread: sets up the ring and runs until Phase::kExit.
  // False with *error when the ring cannot be set up.
  bool Run(std::string* error);

  Counters& counters() { return counters_; }
  Result& result() { return result_; }

 private:
  // Loop pieces (worker.cc).
  void EnterPhase(Phase phase);
  int64_t StartConnects(int64_t now);  // returns the time of the next paced connect (or INT64_MAX)
  void StartConnect(Client& c, int64_t now);
  void ArmRecv(Client& c);
  void MarkDirty(Client& c);
  void FlushOutput(int64_t now);
  void OnConnectDone(Client& c, int res);
  void OnRecv(Client& c, int res, uint32_t flags, int64_t now);
  void OnSend(Client& c, int res);
  void Close(Client& c, bool expected, const std::string& why);
  void KeepAlive(int64_t now);
  void Disconnect(Client& c);
  void PublishCounters();

  // MQTT (client.cc).
  void SendConnect(Client& c);
  void HandleInput(Client& c, std::span<const uint8_t> data, int64_t now);
  bool HandlePacket(Client& c, const proto::Frame& f, int64_t now);
  void OnConnack(Client& c, const proto::Frame& f, int64_t now);
  void OnSuback(Client& c, const proto::Frame& f, int64_t now);
  void OnPublish(Client& c, const proto::Frame& f, int64_t now);
  void OnAck(Client& c, const proto::Frame& f, int64_t now);
  void BecomeReady(Client& c, int64_t now);
  void Fail(Client& c, const std::string& why);
  void BuildPublishTemplate(Client& c);
  void AppendPublish(Client& c, int64_t timestamp_ns);
  // Queues the publishes due by `now`; returns the next time this client has one due.
  int64_t Generate(Client& c, int64_t now);
  void Seed(Client& c);
  void HarvestStreams();

  const Options& options_;
  const Plan& plan_;
  sockaddr_storage address_;
  socklen_t address_len_;
  const TransportFactory& transports_;
  Control& control_;
  const unsigned id_;

  net::Ring ring_;
  std::unique_ptr<net::BufferRing> buffers_;
  std::vector<Client> clients_;
  std::vector<uint32_t> group_members_[2];  // slots, in connect order
  size_t next_to_connect_[2] = {0, 0};
  std::vector<uint32_t> publishers_;  // slots of publishers and seeders
  std::vector<uint32_t> dirty_;
  std::vector<uint8_t> filler_;  // the payload body every publish copies
  Phase phase_ = Phase::kIdle;
  int64_t phase_start_ns_ = 0;
  int64_t run_start_ns_ = 0;
  int64_t run_end_ns_ = 0;
  int64_t next_keepalive_ns_ = 0;
  uint32_t pending_connects_ = 0;
  uint64_t seeded_ = 0;  // retained messages queued by this worker's seeder
  double connect_interval_ns_ = 0;
  Counters counters_;
  Result result_;
};

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_WORKER_H_
