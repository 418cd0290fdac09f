#include "acl/origin.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace ringmq::acl {

bool IpPrefix::Contains(const IpAddress& a) const {
  const int whole = bits / 8;
  if (std::memcmp(a.bytes.data(), address.bytes.data(), static_cast<size_t>(whole)) != 0) {
    return false;
  }
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (a.bytes[static_cast<size_t>(whole)] & mask) == address.bytes[static_cast<size_t>(whole)];
}

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  // inet_pton needs a NUL-terminated string; an address is at most INET6_ADDRSTRLEN - 1 long.
  char buf[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    in_addr v4{};
    if (inet_pton(AF_INET, buf, &v4) != 1) return std::nullopt;
    a.bytes[10] = 0xFF;
    a.bytes[11] = 0xFF;
    std::memcpy(&a.bytes[12], &v4, 4);
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::optional<IpAddress> ParsePeerAddress(std::string_view peer) {
  if (!peer.empty() && peer.front() == '[') {
    const size_t close = peer.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    return ParseIpAddress(peer.substr(1, close - 1));
  }
  const size_t colon = peer.find(':');
  if (colon != std::string_view::npos && peer.find(':', colon + 1) == std::string_view::npos) {
    return ParseIpAddress(peer.substr(0, colon));  // "ip:port"
  }
  return ParseIpAddress(peer);  // bare IPv4 or IPv6
}

bool ParseIpPrefix(std::string_view text, IpPrefix* prefix, std::string* error) {
  const size_t slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  const std::optional<IpAddress> addr = ParseIpAddress(addr_text);
  if (!addr) {
    *error = "\"" + std::string(text.substr(0, 64)) +
             "\" is not an IPv4 or IPv6 address or CIDR prefix (e.g. 192.0.2.0/24, 2001:db8::/32)";
    return false;
  }
  const bool v4 = addr_text.find(':') == std::string_view::npos;
  int bits = 128;
  if (slash != std::string_view::npos) {
    const std::string_view len = text.substr(slash + 1);
    int n = -1;
    const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), n);
    const int max = v4 ? 32 : 128;
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || n < 0 || n > max) {
      *error = "prefix length of \"" + std::string(text.substr(0, 64)) + "\" must be 0 to " +
               std::to_string(max);
      return false;
    }
    bits = v4 ? n + 96 : n;
  }
  IpPrefix p{*addr, bits};
  IpPrefix masked = p;
  for (int i = bits; i < 128; ++i) {
    masked.address.bytes[static_cast<size_t>(i / 8)] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
  }
  if (!(masked == p)) {
    *error =
        "\"" + std::string(text.substr(0, 64)) + "\" has address bits set past its prefix length";
    return false;
  }
  *prefix = p;
  return true;
}

bool OriginsAllow(const std::vector<IpPrefix>& origins, std::string_view peer) {
  if (origins.empty()) return true;
  const std::optional<IpAddress> a = ParsePeerAddress(peer);
  if (!a) return false;
  for (const IpPrefix& p : origins) {
    if (p.Contains(*a)) return true;
  }
  return false;
}

bool OriginsAllow(const std::vector<Origin>& origins, std::string_view peer) {
  if (origins.empty()) return true;
  std::vector<IpPrefix> prefixes;
  for (const Origin& o : origins) {
    IpPrefix p;
    std::string ignored;
    if (ParseIpPrefix(o.ip, &p, &ignored)) prefixes.push_back(p);
  }
  return !prefixes.empty() && OriginsAllow(prefixes, peer);
}

}  // namespace ringmq::acl
