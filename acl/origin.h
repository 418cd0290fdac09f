// Origins: a token's IP allow-list (the `origins` field of flespi's token object,
// doc/rest-api.md "Origins"). A token with origins authenticates only clients whose address is in
// one of its prefixes: MQTT CONNECT from elsewhere is refused (0x87 / 3.1.1 return code 5), a REST
// call answered 403.
//
//   IpPrefix p;
//   if (!ParseIpPrefix("10.0.0.0/8", &p, &error)) -> 400 with error
//   if (auto a = ParsePeerAddress("10.1.2.3:51234"); a && p.Contains(*a)) -> allowed
//
// Thread-safety: value types and pure functions.
// Invariants:
//   1. An IpAddress holds 16 bytes; an IPv4 address is held as its IPv4-mapped IPv6 form
//      (::ffff:a.b.c.d), so "10.0.0.0/8" and "::ffff:10.0.0.0/104" are the same prefix and an
//      IPv4 client on a dual-stack socket matches an IPv4 prefix.
//   2. An IpPrefix's bits are in [0, 128] and every address bit past them is zero (the text
//      "10.1.2.3/8" is refused rather than silently widened).
#ifndef RINGMQ_ACL_ORIGIN_H_
#define RINGMQ_ACL_ORIGIN_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::acl {

inline constexpr size_t kMaxOrigins = 64;  // entries of one token's `origins`

struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const IpAddress&) const = default;
};

// One entry of a token's `origins`, kept in the shape it was sent in: a bare string "10.0.0.0/8"
// or an object {"ip": "10.0.0.0/8"} (flespi accepts both).
struct Origin {
  std::string ip;  // an address or CIDR prefix (ParseIpPrefix)
  bool as_object = false;
  bool operator==(const Origin&) const = default;
};

struct IpPrefix {
  IpAddress address;
  int bits = 128;
  bool Contains(const IpAddress& a) const;
  bool operator==(const IpPrefix&) const = default;
};

// "192.0.2.7" or "2001:db8::1" (no brackets, no zone, no port).
std::optional<IpAddress> ParseIpAddress(std::string_view text);

// The address of a peer as the broker writes it for logs: "ip:port", "[ipv6]:port", or a bare
// address. nullopt for "?" (unknown) and anything else.
std::optional<IpAddress> ParsePeerAddress(std::string_view peer);

// An address ("192.0.2.7": one host) or a CIDR prefix ("192.0.2.0/24", "2001:db8::/32").
// Returns false with *error saying what is wrong.
bool ParseIpPrefix(std::string_view text, IpPrefix* prefix, std::string* error);

// True when `origins` is empty (no restriction) or one of them contains `peer`; false for an
// unknown peer address when there is a restriction.
bool OriginsAllow(const std::vector<IpPrefix>& origins, std::string_view peer);
// The same over a token's origins as stored (parsed on each call: for the REST API, not the MQTT
// path, which checks a CompiledAcl's parsed prefixes). An entry that does not parse allows nothing.
bool OriginsAllow(const std::vector<Origin>& origins, std::string_view peer);

}  // namespace ringmq::acl

#endif  // RINGMQ_ACL_ORIGIN_H_
