/* sockdiag.c: the TCP sockets listening on a port, from one NETLINK_SOCK_DIAG dump per
 * address family (inet_diag_req_v2, state LISTEN), as `ss -ltn` asks the kernel. */
#include "sockdiag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCKDIAG_MAX 65536 /* sockets kept at most: one port cannot have more worth showing */

struct listeners {
	struct sockdiag_socket *v;
	size_t n, cap;
};

static int listeners_add(struct listeners *l, const struct sockdiag_socket *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		if (cap > SOCKDIAG_MAX) {
			errno = E2BIG;
			return -1;
		}
		struct sockdiag_socket *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *s;
	return 0;
}

/* One answer of the dump: the socket and its attributes (INET_DIAG_SKV6ONLY, which the
 * kernel adds to every AF_INET6 socket unasked). */
static int listeners_take(struct listeners *l, const struct nlmsghdr *h, uint16_t port)
{
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return 0;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	if (m->idiag_state != TCP_LISTEN || ntohs(m->id.idiag_sport) != port)
		return 0;
	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return 0;
	struct sockdiag_socket s = {
	    .addr = {.family = m->idiag_family, .port = port}, .uid = m->idiag_uid, .inode = m->idiag_inode};
	memcpy(s.addr.addr, m->id.idiag_src, m->idiag_family == AF_INET ? 4 : 16);
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const void *)((const char *)m + NLMSG_ALIGN(sizeof(*m)));
	     RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == INET_DIAG_SKV6ONLY && RTA_PAYLOAD(a) >= 1)
			s.v6only = *(const uint8_t *)RTA_DATA(a) != 0;
	return listeners_add(l, &s);
}

/* Dumps the listening sockets of one family on fd; 0 or -1 with errno set. */
static int sockdiag_dump(int fd, int family, uint16_t port, uint32_t seq, struct listeners *l)
{
	/* idiag_sport set makes the kernel skip other ports' listeners itself (inet_diag's
	 * dump compares it when it is not 0); listeners_take checks the port anyway. */
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = {
	    .h = {.nlmsg_len = sizeof(req),
	          .nlmsg_type = SOCK_DIAG_BY_FAMILY,
	          .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
	          .nlmsg_seq = seq},
	    .r = {.sdiag_family = (uint8_t)family,
	          .sdiag_protocol = IPPROTO_TCP,
	          .idiag_states = 1u << TCP_LISTEN,
	          .id = {.idiag_sport = htons(port),
	                 .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
	};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -1;
	static long buf[8192]; /* 64 KiB, aligned for nlmsghdr */
	for (;;) {
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (got == 0) {
			errno = EPROTO;
			return -1;
		}
		int len = (int)got;
		for (const struct nlmsghdr *h = (const void *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				errno =
				    h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? -e->error : EPROTO;
				return -1;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && listeners_take(l, h, port) < 0)
				return -1;
		}
	}
}

static int sockdiag_compare(const void *a, const void *b)
{
	const struct sockdiag_socket *x = a, *y = b;
	if (x->addr.family != y->addr.family)
		return x->addr.family == AF_INET ? -1 : 1;
	return memcmp(x->addr.addr, y->addr.addr, sizeof(x->addr.addr));
}

int sockdiag_listeners(uint16_t port, struct sockdiag_socket **out, size_t *n)
{
	struct listeners l = {0};
	*out = NULL;
	*n = 0;
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -1;
	if (sockdiag_dump(fd, AF_INET, port, 1, &l) < 0 || sockdiag_dump(fd, AF_INET6, port, 2, &l) < 0) {
		int e = errno;
		close(fd);
		free(l.v);
		errno = e;
		return -1;
	}
	close(fd);
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), sockdiag_compare);
	*out = l.v;
	*n = l.n;
	return 0;
}
