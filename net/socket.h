// TCP sockets for listeners and accepted connections, and "HOST:PORT" endpoints. Plain syscalls,
// used at startup and once per accepted connection; all I/O on these sockets goes through a Ring.
//
// Every shard binds its own listening socket to the same address (SO_REUSEPORT) and the kernel
// spreads incoming connections among them. To listen on an ephemeral port, bind the first shard's
// socket to port 0, read the port with LocalPort, and bind the other shards' sockets to it.
//
// Thread-safety: free functions over file descriptors; no shared state.
#ifndef RINGMQ_NET_SOCKET_H_
#define RINGMQ_NET_SOCKET_H_

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringmq::net {

// A parsed "HOST:PORT" or "[IPv6]:PORT". `host` is without brackets; empty means every interface.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

// Parses "127.0.0.1:1883", "localhost:1883", "[::1]:8883", "[fe80::1%eth0]:1883" or ":1883" (every
// interface). The port is decimal, 0..65535 (0: ephemeral). An IPv6 address must be bracketed.
// Host names are resolved later, by ListenTcp. Returns nullopt with *error when malformed.
std::optional<Endpoint> ParseEndpoint(std::string_view text, std::string* error);

// "host:port", or "[host]:port" when host contains ':': the inverse of ParseEndpoint, for logs.
std::string FormatEndpoint(const Endpoint& endpoint);

// A listening TCP socket (SOCK_CLOEXEC, SO_REUSEADDR, SO_REUSEPORT) on host:port; an empty host is
// every interface. Returns the fd, or -1 with *error.
int ListenTcp(const std::string& host, uint16_t port, std::string* error);

// The port a socket is bound to (0 when unknown), and its full local address ("?" when unknown).
uint16_t LocalPort(int fd);
std::string LocalAddress(int fd);

// For an accepted socket: TCP_NODELAY, and SO_SNDBUF / SO_RCVBUF when > 0 (the kernel doubles the
// value and disables autotuning of that direction). False if any option was refused.
bool SetSocketOptions(int fd, int send_buffer, int recv_buffer);

// Raises the soft limit of open files to the hard one (a server holds a descriptor per client;
// the usual soft default of 1024 would refuse the 1021st). Returns the limit now in effect.
uint64_t RaiseOpenFileLimit();

// The peer's address, "ip:port" or "[ipv6]:port" ("?" when unknown), for logs.
std::string PeerAddress(int fd);

// Formats an IPv4 or IPv6 socket address as above; "?" for other families.
std::string FormatAddress(const sockaddr* addr, socklen_t len);

}  // namespace ringmq::net

#endif  // RINGMQ_NET_SOCKET_H_
