// Small helpers to write JSON text: string escaping (RFC 8259) and integers. Reading JSON is done
// with simdjson (acl/token_json.h, rest/); writing is plain appends, which needs only correct
// escaping.
//
// Thread-safety: pure functions.
#ifndef RINGMQ_BASE_JSON_H_
#define RINGMQ_BASE_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace ringmq::base {

// Appends `s` as a quoted JSON string: '"' and '\\' are escaped, control characters below 0x20
// become \n, \t, ... or \u00XX; every other byte is copied (the caller passes valid UTF-8; bytes
// of invalid UTF-8 are copied as they are).
void AppendJsonString(std::string* out, std::string_view s);

// The same, returned.
std::string JsonString(std::string_view s);

inline void AppendJsonInt(std::string* out, int64_t v) { out->append(std::to_string(v)); }

}  // namespace ringmq::base

#endif  // RINGMQ_BASE_JSON_H_
