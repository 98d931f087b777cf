/* transport.h: one control message over an AF_UNIX SOCK_SEQPACKET socket, with at most
 * one file descriptor attached: the only sendmsg/recvmsg of the control protocol, for
 * the daemon's sessions, the takeover link, the library and portsharectl (as OpenBSD's
 * imsg serves every relayd process). Which messages carry an fd is protocol.c's rule
 * (protocol_carries_fd); protocol.h states who owns a passed fd. */
#ifndef PS_TRANSPORT_H
#define PS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "protocol.h"

enum transport_result {
	TRANSPORT_MSG = 1,     /* a message, decoded into *m */
	TRANSPORT_NONE = 0,    /* nothing is waiting (EAGAIN) */
	TRANSPORT_CLOSED = -1, /* the peer closed the session */
	TRANSPORT_ERROR = -2,  /* the socket failed: errno says how */
	TRANSPORT_BAD = -3,    /* a message that breaks the rules (*why says which); its fds are closed */
};

/* Sends one encoded message (buf, len), with fd attached when fd >= 0 (the caller keeps
 * its copy). flags are sendmsg's (MSG_NOSIGNAL is always added). sendmsg's result. */
ssize_t transport_send(int sock, const void *buf, size_t len, int fd, int flags);

/* Receives one message into buf (PS_MSG_MAX bytes; *m's variable parts point into it),
 * with MSG_CMSG_CLOEXEC and flags, and decodes it. *fd: the fd it carried (the caller
 * owns it), or -1; *fd_lost: it should have carried one and the kernel dropped it because
 * this process is at its fd limit (MSG_CTRUNC): back-pressure, not an error. With
 * fds_allowed false (what a client sends the daemon) any fd is an error. */
enum transport_result transport_recv(int sock, void *buf, int flags, bool fds_allowed, struct ps_msg *m,
                                     int *fd, bool *fd_lost, const char **why);

#endif
