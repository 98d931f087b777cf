/* tcp.h: what the kernel knows of a TCP connection, shared by every process holding a
 * copy of it (DESIGN §2a): bytes written and consumed, whether our FIN went out, bytes
 * not yet read. The daemon judges a worker's use of a connection by these. */
#ifndef PS_DAEMON_TCP_H
#define PS_DAEMON_TCP_H

#include <stdbool.h>
#include <stdint.h>

/* written: bytes acked plus still queued (tcpi_bytes_sent misses corked and unsent ones);
 * consumed: bytes received less those unread and less the peer's FIN. */
void tcp_counters(int fd, uint64_t *written, uint64_t *consumed);
/* Whether our side has sent its FIN (whichever copy of the socket did it); true when the
 * kernel cannot tell (nothing more can happen on it). */
bool tcp_fin_sent(int fd);
/* Bytes the kernel holds that nobody has read yet. */
uint32_t tcp_unread(int fd);

#endif
