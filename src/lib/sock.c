/* sock.c: non-blocking-by-flag I/O on shared client connections (see sock.h). */
#include "sock.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "portshare.h"

static _Atomic uint32_t min_send_rate = 150;

void sock_set_min_send_rate(uint32_t rate)
{
	atomic_store_explicit(&min_send_rate, rate ? rate : 1, memory_order_relaxed);
}

/* How long a full socket may stay full: what is queued in it, at MinSendRate. */
static int64_t sock_send_deadline(int fd)
{
	int outq = 0;
	ioctl(fd, SIOCOUTQ, &outq);
	uint64_t ms = (uint64_t)(outq > 0 ? outq : 0) * 1000 /
	              atomic_load_explicit(&min_send_rate, memory_order_relaxed);
	if (ms < SOCK_SEND_WAIT_MIN_MS)
		ms = SOCK_SEND_WAIT_MIN_MS;
	if (ms > SOCK_SEND_STALL_MS)
		ms = SOCK_SEND_STALL_MS;
	return deadline_after((int)ms);
}

/* Maps the errno of a failed socket call to a library code. */
static int sock_error(void)
{
	switch (errno) {
	case EPIPE:
	case ECONNRESET:
	case ENOTCONN:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return PS_ECLOSED;
	case ENOMEM:
	case ENOBUFS:
		return PS_ENOMEM;
	}
	return PS_ESYSTEM;
}

int sock_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, deadline_left(deadline));
		if (n > 0)
			return 0; /* POLLERR/POLLHUP too: the next call reports them */
		if (n == 0)
			return PS_ETIMEDOUT;
		if (errno != EINTR)
			return PS_ESYSTEM;
	}
}

int sock_send(int fd, struct iovec *iov, int iovcnt, int flags, uint64_t *count)
{
	while (iovcnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			iovcnt--;
			continue;
		}
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(fd, &mh, flags | MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return sock_error();
			int rc = sock_wait(fd, POLLOUT, sock_send_deadline(fd));
			if (rc < 0)
				return rc;
			continue;
		}
		*count += (uint64_t)n;
		size_t done = (size_t)n;
		while (iovcnt > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

/* For files sendfile(2) cannot read (some pseudo-files, pipes): plain copies. */
static int sock_copy(int fd, int file, off_t offset, size_t len, uint64_t *count)
{
	char buf[16384];
	while (len > 0) {
		ssize_t n = pread(file, buf, len < sizeof(buf) ? len : sizeof(buf), offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return PS_ESYSTEM;
		if (n == 0) {
			errno = ENODATA; /* the file is shorter than the response promised */
			return PS_ESYSTEM;
		}
		struct iovec iov = {buf, (size_t)n};
		int rc = sock_send(fd, &iov, 1, 0, count);
		if (rc < 0)
			return rc;
		offset += n;
		len -= (size_t)n;
	}
	return 0;
}

int sock_sendfile(int fd, int file, off_t offset, size_t len, uint64_t *count)
{
	bool sent_any = false;
	while (len > 0) {
		size_t want = len > (1u << 30) ? (1u << 30) : len;
		ssize_t n = sendfile(fd, file, &offset, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				int rc = sock_wait(fd, POLLOUT, sock_send_deadline(fd));
				if (rc < 0)
					return rc;
				continue;
			}
			if (!sent_any && (errno == EINVAL || errno == ENOSYS))
				return sock_copy(fd, file, offset, len, count);
			return sock_error();
		}
		if (n == 0) {
			errno = ENODATA;
			return PS_ESYSTEM;
		}
		sent_any = true;
		*count += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t sock_recv_now(int fd, void *buf, size_t len, uint64_t *count)
{
	for (;;) {
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n >= 0) {
			*count += (uint64_t)n;
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return PS_EAGAIN;
		return sock_error();
	}
}

ssize_t sock_recv(int fd, void *buf, size_t len, int64_t deadline, uint64_t *count)
{
	for (;;) {
		ssize_t n = sock_recv_now(fd, buf, len, count);
		if (n != PS_EAGAIN)
			return n;
		int rc = sock_wait(fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
	}
}

void sock_abort(int fd)
{
	struct sockaddr sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNSPEC;
	(void)connect(fd, &sa, sizeof(sa));
}
