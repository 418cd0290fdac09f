// The durability setting of the write-ahead log (doc/configuration.md `durability`): when a
// record counts as safe, and so when a PUBACK that waits for it may be sent. Its own header so the
// configuration can hold it without the writer.
#ifndef RINGMQ_WAL_DURABILITY_H_
#define RINGMQ_WAL_DURABILITY_H_

#include <cstdint>

namespace ringmq::wal {

enum class WalDurability : uint8_t {
  kSync,   // fdatasync after every write; PUBACK waits for durable_seq()
  kBatch,  // fdatasync at most every batch_interval_ms; PUBACK waits for written_seq()
  kNone,   // never fdatasync; PUBACK waits for written_seq()
};

}  // namespace ringmq::wal

#endif  // RINGMQ_WAL_DURABILITY_H_
