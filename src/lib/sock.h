/* sock.h: I/O on a client connection that the daemon also holds a copy of (DESIGN §2a);
 * the library reads and writes client connections through here only. Never change file
 * status flags (O_NONBLOCK is shared), so every call passes MSG_DONTWAIT and waits with
 * poll(); sends pass MSG_NOSIGNAL. */
#ifndef PS_LIB_SOCK_H
#define PS_LIB_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Internal to libportshare: not exported from the shared library. */
#pragma GCC visibility push(hidden)

/* MinSendRate (HTTP.sys, DESIGN §5): a send that finds the socket full waits for the
 * bytes queued in it to drain at the daemon's MinSendRate, at least SOCK_SEND_WAIT_MIN_MS
 * and at most SOCK_SEND_STALL_MS; then the response is aborted: a client that reads
 * nothing must not hold a worker. */
#define SOCK_SEND_WAIT_MIN_MS 1000
#define SOCK_SEND_STALL_MS 120000
/* Bytes/s, for every connection of the process (from the daemon's LIMITS). */
void sock_set_min_send_rate(uint32_t rate);

/* Waits for `events` on fd until the deadline: 0, PS_ETIMEDOUT, or PS_ESYSTEM.
 * Interrupted waits are resumed. */
int sock_wait(int fd, short events, int64_t deadline);
/* Every call adds the bytes it moved to *count (sent, or received), partial transfers
 * included: a delegated connection's counters must match the kernel's exactly
 * (DESIGN §2a), so no byte may go uncounted, even one of a send that then failed. */

/* Sends the whole iovec (modified as it goes). flags: 0 or MSG_MORE. Returns 0,
 * PS_ECLOSED (the client went away), PS_ETIMEDOUT (stalled), or PS_ESYSTEM. */
int sock_send(int fd, struct iovec *iov, int iovcnt, int flags, uint64_t *count);
/* Sends len bytes of file from offset; falls back to pread + send where sendfile(2)
 * cannot read that file. Same results as sock_send. */
int sock_sendfile(int fd, int file, off_t offset, size_t len, uint64_t *count);
/* Reads what is there, without waiting: the count, 0 at the client's FIN, PS_EAGAIN
 * (nothing there), PS_ECLOSED (reset), PS_ENOMEM or PS_ESYSTEM. */
ssize_t sock_recv_now(int fd, void *buf, size_t len, uint64_t *count);
/* sock_recv_now, waiting until the deadline for something to read: PS_ETIMEDOUT
 * instead of PS_EAGAIN. */
ssize_t sock_recv(int fd, void *buf, size_t len, int64_t deadline, uint64_t *count);
/* Resets the connection whatever other copies of it exist: connect(AF_UNSPEC)
 * disconnects a TCP socket with a RST, where close() would do nothing while the
 * daemon's copy is open. */
void sock_abort(int fd);

#pragma GCC visibility pop

#endif
