/* transport.c: one control message, with at most one fd, over a SOCK_SEQPACKET socket. */
#include "transport.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* More than one fd is a protocol error, but they must be received to be closed; past
 * this room the kernel closes them itself (MSG_CTRUNC). */
#define TRANSPORT_FDS_ROOM 8

ssize_t transport_send(int sock, const void *buf, size_t len, int fd, int flags)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
}

static void close_all(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static enum transport_result refuse(const int *fds, size_t n, const char **why, const char *what)
{
	close_all(fds, n);
	*why = what;
	return TRANSPORT_BAD;
}

enum transport_result transport_recv(int sock, void *buf, int flags, bool fds_allowed, struct ps_msg *m,
                                     int *fd, bool *fd_lost, const char **why)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * TRANSPORT_FDS_ROOM)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = PS_MSG_MAX};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
	*fd = -1;
	*fd_lost = false;
	*why = NULL;
	ssize_t n;
	do
		n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? TRANSPORT_NONE : TRANSPORT_ERROR;

	int fds[TRANSPORT_FDS_ROOM];
	size_t nfds = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && nfds < TRANSPORT_FDS_ROOM; i++)
			memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
	if (n == 0) { /* SEQPACKET: the peer closed the session */
		close_all(fds, nfds);
		return TRANSPORT_CLOSED;
	}
	if (!fds_allowed && nfds)
		return refuse(fds, nfds, why, "sent a file descriptor");
	if (mh.msg_flags & MSG_TRUNC || (!fds_allowed && (mh.msg_flags & MSG_CTRUNC)))
		return refuse(fds, nfds, why, "message too large");
	if (protocol_decode(buf, (size_t)n, m, why) < 0)
		return refuse(fds, nfds, why, *why ? *why : "malformed message");
	bool wants = protocol_carries_fd(m);
	if (nfds > 1)
		return refuse(fds, nfds, why, "more than one file descriptor on one message");
	if (nfds == 1 && !wants)
		return refuse(fds, nfds, why, "a file descriptor on a message that carries none");
	if (wants && !nfds) {
		if (!(mh.msg_flags & MSG_CTRUNC))
			return refuse(fds, nfds, why, "a message without its file descriptor");
		*fd_lost = true;
	} else if (mh.msg_flags & MSG_CTRUNC) {
		return refuse(fds, nfds, why, "file descriptors dropped by the kernel");
	}
	if (nfds == 1)
		*fd = fds[0];
	return TRANSPORT_MSG;
}
