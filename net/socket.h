// TCP sockets for listeners and accepted connections. Plain syscalls at setup time only; all I/O
// on these sockets goes through the Ring. Thread-safety: pure functions over file descriptors.
#ifndef RINGMQ_NET_SOCKET_H_
#define RINGMQ_NET_SOCKET_H_

#include <cstdint>
#include <string>

namespace ringmq::net {

// A listening TCP socket on host:port with SO_REUSEADDR and SO_REUSEPORT, so every shard binds its
// own socket to the same port and the kernel spreads connections. Port 0 picks a free port (read it
// with LocalPort). Returns the fd, or -1 with *error.
int ListenTcp(const std::string& host, uint16_t port, std::string* error);

// The port a socket is bound to.
uint16_t LocalPort(int fd);

// TCP_NODELAY, and SO_SNDBUF / SO_RCVBUF when > 0.
void SetSocketOptions(int fd, int send_buffer, int recv_buffer);

// "ip:port" of the peer, for logs ("?" when unknown).
std::string PeerAddress(int fd);

}  // namespace ringmq::net

#endif  // RINGMQ_NET_SOCKET_H_
