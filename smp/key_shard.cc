#include "smp/key_shard.h"

#include <xxhash.h>

namespace ringmq::smp {

uint64_t KeyHash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

}  // namespace ringmq::smp
