/* tcp.c: a TCP connection's counters and state from the kernel (TCP_INFO, SIOCINQ,
 * SIOCOUTQ), which every copy of the socket shares (DESIGN §2a). */
#include "tcp.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* tcpi_state numbers (the kernel's, stable ABI; <netinet/tcp.h> names them but clashes
 * with <linux/tcp.h>, whose tcp_info has the byte counters we need) */
enum {
	TCPI_ESTABLISHED = 1,
	TCPI_TIME_WAIT = 6,
	TCPI_CLOSE_WAIT = 8,
	TCPI_LAST_ACK = 9,
	TCPI_CLOSING = 11,
};

uint32_t tcp_unread(int fd)
{
	int inq = 0;
	ioctl(fd, SIOCINQ, &inq);
	return inq > 0 ? (uint32_t)inq : 0;
}

bool tcp_fin_sent(int fd)
{
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
		return true; /* nothing more can happen on it */
	switch (ti.tcpi_state) {
	case TCPI_ESTABLISHED:
	case TCPI_CLOSE_WAIT:
		return false;
	default: /* FIN_WAIT1/2, CLOSING, LAST_ACK, TIME_WAIT, CLOSE */
		return true;
	}
}

/* The peer's FIN has been received: it advanced rcv_nxt, and so tcpi_bytes_received, by
 * one, though it is no byte of data (checked on this kernel: 5 bytes then a FIN read as
 * 6 received, 0 in the queue, before and after read() returns 0). */
static bool tcp_fin_received(uint8_t state)
{
	return state == TCPI_CLOSE_WAIT || state == TCPI_LAST_ACK || state == TCPI_CLOSING ||
	       state == TCPI_TIME_WAIT;
}

void tcp_counters(int fd, uint64_t *written, uint64_t *consumed)
{
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	int outq = 0, inq = 0;
	memset(&ti, 0, sizeof(ti));
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl);
	ioctl(fd, SIOCOUTQ, &outq);
	ioctl(fd, SIOCINQ, &inq);
	*written = ti.tcpi_bytes_acked + (uint64_t)outq;
	*consumed = ti.tcpi_bytes_received - (uint64_t)inq - (tcp_fin_received(ti.tcpi_state) ? 1 : 0);
}
