/* backend.c: backend addresses, non-blocking connections with deadlines and the
 * per-thread keep-alive pool of the proxy. */
#include "backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int64_t backend_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct backend_target *backend_target_new(const struct backend_addr *addr, unsigned gen)
{
	struct backend_target *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->addr = *addr;
	t->gen = gen;
	t->floor = gen;
	atomic_init(&t->users, 0);
	atomic_init(&t->down, false);
	return t;
}

static bool backend_port(const char *s, uint16_t *port)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < 1 || v > 65535 || s[0] < '1' || s[0] > '9')
		return false;
	*port = (uint16_t)v;
	return true;
}

bool backend_addr_parse(const char *spec, struct backend_addr *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
		const char *path = spec + 5;
		if (path[0] != '/' || strlen(path) >= sizeof(un->sun_path)) {
			*why = "unix: needs an absolute path shorter than 108 bytes";
			return false;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
		snprintf(out->name, sizeof(out->name), "unix:%.100s", path);
		return true;
	}
	if (strncmp(spec, "http://", 7) != 0) {
		*why = "the backend is http://ADDRESS:PORT or unix:/PATH";
		return false;
	}
	char host[64];
	const char *h = spec + 7, *colon;
	uint16_t port;
	if (h[0] == '[') {
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':' || (size_t)(close - h - 1) >= sizeof(host)) {
			*why = "an IPv6 backend is http://[ADDRESS]:PORT";
			return false;
		}
		memcpy(host, h + 1, (size_t)(close - h - 1));
		host[close - h - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon || (size_t)(colon - h) >= sizeof(host)) {
			*why = "the backend needs an IP address and a port: http://127.0.0.1:PORT";
			return false;
		}
		memcpy(host, h, (size_t)(colon - h));
		host[colon - h] = '\0';
	}
	char portbuf[8];
	size_t plen = strcspn(colon + 1, "/");
	if (plen == 0 || plen >= sizeof(portbuf) || (colon[1 + plen] && strcmp(colon + 1 + plen, "/") != 0)) {
		*why = "the backend URL takes no path: http://ADDRESS:PORT";
		return false;
	}
	memcpy(portbuf, colon + 1, plen);
	portbuf[plen] = '\0';
	if (!backend_port(portbuf, &port)) {
		*why = "the backend port must be 1-65535";
		return false;
	}
	struct sockaddr_in *in4 = (struct sockaddr_in *)&out->sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->sa;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		out->len = sizeof(*in4);
		snprintf(out->name, sizeof(out->name), "%s:%u", host, port);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		out->len = sizeof(*in6);
		snprintf(out->name, sizeof(out->name), "[%s]:%u", host, port);
	} else {
		/* no name lookups: a backend is a local address the admin names exactly */
		*why = "the backend address must be an IP literal (127.0.0.1, [::1])";
		return false;
	}
	return true;
}

void backend_alarm_ring(struct backend_alarm *alarm, bool waiting)
{
	alarm->at = 0;
	alarm->fn(alarm->arg, waiting);
}

void backend_alarm_check(struct backend_alarm *alarm)
{
	if (alarm->at != 0 && backend_now_ms() >= alarm->at)
		backend_alarm_ring(alarm, false);
}

int backend_wait(int fd, short events, int64_t deadline_ms, struct backend_alarm *alarm)
{
	struct pollfd p = {fd, events, 0};
	for (;;) {
		int64_t now = backend_now_ms();
		if (alarm && alarm->at != 0 && now >= alarm->at)
			backend_alarm_ring(alarm, true);
		int64_t until = alarm && alarm->at != 0 && alarm->at < deadline_ms ? alarm->at : deadline_ms;
		int64_t left = until - now;
		if (left < 0)
			left = 0;
		int n = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (p.revents)
			return 1;
		if (n == 0 && backend_now_ms() >= deadline_ms)
			return 0;
	}
}

static struct backend_conn *backend_connect(const struct backend_addr *a, int64_t deadline_ms,
                                            struct backend_alarm *alarm)
{
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN)
			goto fail;
		int w = backend_wait(fd, POLLOUT, deadline_ms, alarm);
		if (w <= 0) {
			if (w == 0)
				errno = ETIMEDOUT;
			goto fail;
		}
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			goto fail;
		if (err) {
			errno = err;
			goto fail;
		}
	}
	if (a->sa.ss_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	struct backend_conn *bc = malloc(sizeof(*bc));
	if (!bc) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	bc->fd = fd;
	bc->reused = false;
	bc->alarm = alarm;
	bc->off = bc->len = 0;
	return bc;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return NULL;
}

struct backend_conn *backend_get(struct backend_pool *p, const struct backend_target *t, int64_t deadline_ms)
{
	struct backend_conn *bc;
	return backend_get_n(p, t, deadline_ms, &bc, 1) == 1 ? bc : NULL;
}

/* Moves clean pooled connections to t into out[got, n), most recently used first: those
 * taken are checked with one poll (anything readable is a close, a reset or bytes no
 * request asked for); a failed poll keeps none. Connections to an earlier set are closed,
 * those to another target of t's set stay pooled. Returns the new got; *tried says
 * whether any was taken (none left to t: connect). */
static int backend_take_clean(struct backend_pool *p, const struct backend_target *t,
                              struct backend_conn **out, int got, int n, bool *tried)
{
	struct pollfd pf[BACKEND_POOL_MAX];
	struct backend_conn *left[BACKEND_POOL_MAX];
	int from = got, np = 0, nleft = 0;
	for (int i = p->n - 1; i >= 0; i--) {
		struct backend_conn *bc = p->idle[i];
		if (bc->gen < t->floor) {
			backend_drop(bc); /* an earlier set's */
		} else if (bc->gen != t->gen || got == n) {
			left[nleft++] = bc; /* another process's of the set, or not needed */
		} else {
			pf[np++] = (struct pollfd){bc->fd, POLLIN, 0};
			out[got++] = bc;
		}
	}
	/* the ones left, back in their order (most recently used last, where put adds) */
	for (int i = 0; i < nleft; i++)
		p->idle[i] = left[nleft - 1 - i];
	p->n = nleft;
	*tried = np > 0;
	int rc;
	do
		rc = np > 0 ? poll(pf, (nfds_t)np, 0) : 0;
	while (rc < 0 && errno == EINTR);
	int kept = from;
	for (int i = 0; i < np; i++) {
		struct backend_conn *bc = out[from + i];
		if (rc < 0 || pf[i].revents) {
			backend_drop(bc);
			continue;
		}
		bc->reused = true;
		bc->alarm = &p->alarm;
		out[kept++] = bc;
	}
	return kept;
}

int backend_get_n(struct backend_pool *p, const struct backend_target *t, int64_t deadline_ms,
                  struct backend_conn **out, int n)
{
	int got = 0;
	bool tried = true;
	while (got < n && p->n > 0 && tried) /* again when some taken were not clean */
		got = backend_take_clean(p, t, out, got, n, &tried);
	while (got < n) {
		struct backend_conn *bc = backend_connect(&t->addr, deadline_ms, &p->alarm);
		if (!bc)
			break;
		bc->gen = t->gen;
		out[got++] = bc;
	}
	return got;
}

void backend_put(struct backend_pool *p, struct backend_conn *bc)
{
	if (bc->off != bc->len || p->n == BACKEND_POOL_MAX) {
		backend_drop(bc);
		return;
	}
	bc->off = bc->len = 0;
	p->idle[p->n++] = bc;
}

void backend_drop(struct backend_conn *bc)
{
	if (!bc)
		return;
	close(bc->fd);
	free(bc);
}

int backend_take_fd(struct backend_conn *bc)
{
	int fd = bc->fd;
	free(bc);
	return fd;
}

int backend_send(struct backend_conn *bc, struct iovec *iov, int iovcnt, int64_t deadline_ms,
                 bool stop_on_input)
{
	while (iovcnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			iovcnt--;
			continue;
		}
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(bc->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			short ev = stop_on_input ? POLLOUT | POLLIN : POLLOUT;
			struct pollfd pf = {bc->fd, ev, 0};
			int w = backend_wait(bc->fd, ev, deadline_ms, bc->alarm);
			if (w < 0)
				return -1;
			if (w == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (stop_on_input && poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN) &&
			    !(pf.revents & POLLOUT)) {
				errno = EAGAIN; /* the backend answers before taking the whole body */
				return -1;
			}
			continue;
		}
		size_t left = (size_t)n;
		while (iovcnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

ssize_t backend_fill_now(struct backend_conn *bc)
{
	if (bc->off > 0) {
		memmove(bc->buf, bc->buf + bc->off, bc->len - bc->off);
		bc->len -= bc->off;
		bc->off = 0;
	}
	if (bc->len == sizeof(bc->buf)) {
		errno = ENOBUFS;
		return -1;
	}
	for (;;) {
		ssize_t n = recv(bc->fd, bc->buf + bc->len, sizeof(bc->buf) - bc->len, MSG_DONTWAIT);
		if (n > 0)
			bc->len += (size_t)n;
		if (n >= 0 || errno != EINTR)
			return n;
	}
}

ssize_t backend_fill(struct backend_conn *bc, int64_t deadline_ms)
{
	/* recv first, even for a reply just asked for: a backend on the same CPU is woken by
	 * our send and usually runs (and answers) before we get the CPU back, so a poll
	 * first would be a call for nothing (bench/README.md, p1) */
	for (;;) {
		ssize_t n = backend_fill_now(bc);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return n;
		int w = backend_wait(bc->fd, POLLIN, deadline_ms, bc->alarm);
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
}
