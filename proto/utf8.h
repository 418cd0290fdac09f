// UTF-8 validation with the MQTT rules (MQTT 5.0 section 1.5.4, 3.1.1 section 1.5.3).
//
// A valid MQTT string is well-formed UTF-8 (RFC 3629: no overlong forms, no code points above
// U+10FFFF), contains no surrogates (U+D800..U+DFFF) and no U+0000. Pure; thread-safe.
#ifndef RINGMQ_PROTO_UTF8_H_
#define RINGMQ_PROTO_UTF8_H_

#include <string_view>

namespace ringmq::proto {

// True when `s` is a valid MQTT UTF-8 string. Fast path for ASCII.
bool IsValidMqttUtf8(std::string_view s);

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_UTF8_H_
