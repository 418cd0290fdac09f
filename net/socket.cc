// Listener and connection socket setup, endpoint parsing and formatting.
#include "net/socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace ringmq::net {

namespace {

bool ParsePort(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

// An IPv6 literal, optionally with a zone ("fe80::1%eth0").
bool IsIpv6Literal(std::string_view text) {
  const std::string addr(text.substr(0, text.find('%')));
  in6_addr a;
  return inet_pton(AF_INET6, addr.c_str(), &a) == 1;
}

// A host name or IPv4 literal: letters, digits, '-', '.', '_'.
bool IsHostName(std::string_view text) {
  for (char ch : text) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::optional<Endpoint> ParseEndpoint(std::string_view text, std::string* error) {
  auto fail = [&](const char* why) {
    *error = "bad endpoint '" + std::string(text) + "': " + why;
    return std::nullopt;
  };
  Endpoint ep;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    const std::string_view host = text.substr(1, close - 1);
    if (!IsIpv6Literal(host)) return fail("not an IPv6 address inside '[...]'");
    if (close + 1 >= text.size() || text[close + 1] != ':') return fail("expected ':PORT'");
    ep.host = std::string(host);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("expected HOST:PORT");
    const std::string_view host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return fail("an IPv6 address must be written as [ADDRESS]:PORT");
    }
    if (!IsHostName(host)) return fail("invalid character in host");
    ep.host = std::string(host);
    port = text.substr(colon + 1);
  }
  if (!ParsePort(port, &ep.port)) return fail("the port must be a number from 0 to 65535");
  return ep;
}

std::string FormatEndpoint(const Endpoint& endpoint) {
  const std::string port = std::to_string(endpoint.port);
  if (endpoint.host.find(':') != std::string::npos) return "[" + endpoint.host + "]:" + port;
  return endpoint.host + ":" + port;
}

int ListenTcp(const std::string& host, uint16_t port, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (gai != 0) {
    *error = "cannot resolve listener host '" + host + "': " + gai_strerror(gai);
    return -1;
  }
  int fd = -1;
  std::string why = "no address";
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    const int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      why = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) *error = "cannot listen on " + FormatEndpoint({host, port}) + ": " + why;
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return 0;
}

std::string LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return FormatAddress(reinterpret_cast<sockaddr*>(&ss), len);
}

uint64_t RaiseOpenFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    const rlim_t soft = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = soft;
  }
  return rl.rlim_cur;
}

bool SetSocketOptions(int fd, int send_buffer, int recv_buffer) {
  const int one = 1;
  bool ok = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
  if (send_buffer > 0) {
    ok &= setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof(send_buffer)) == 0;
  }
  if (recv_buffer > 0) {
    ok &= setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &recv_buffer, sizeof(recv_buffer)) == 0;
  }
  return ok;
}

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return FormatAddress(reinterpret_cast<sockaddr*>(&ss), len);
}

std::string FormatAddress(const sockaddr* addr, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return std::string("[") + host + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  return "?";
}

}  // namespace ringmq::net
