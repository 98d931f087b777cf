/* metrics_http.c: MetricsListen, the daemon's own HTTP listener for Prometheus (DESIGN §9).
 * Not a registrable prefix and not a front listener: on the main thread, one request per
 * connection, GET or HEAD of /metrics (any query ignored); other paths get 404, other
 * methods 405. Bounded: MAX_CONNS connections, a request head of at most HEAD_MAX bytes,
 * TIMEOUT_MS for the whole exchange. */
#include "metrics_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "daemon-t.h"
#include "http_date.h"
#include "list.h"
#include "log.h"
#include "metrics.h"

#define MAX_CONNS 16
#define HEAD_MAX 4096
#define TIMEOUT_MS 5000

struct mconn {
	struct loop_io io;
	struct loop_timer timer;
	char in[HEAD_MAX];
	size_t in_len;
	char *out;
	size_t out_len, out_pos;
	bool dead;
};

static struct loop_io mlisten = {.fd = -1};
static unsigned nconns;

static void mconn_free(void *p)
{
	free(((struct mconn *)p)->out);
	free(p);
}

static void mconn_close(struct mconn *m)
{
	if (m->dead)
		return;
	m->dead = true;
	loop_timer_cancel(dm->loop, &m->timer);
	loop_io_del(dm->loop, &m->io);
	close(m->io.fd);
	m->io.fd = -1;
	nconns--;
	loop_defer(dm->loop, mconn_free, m);
}

static void mconn_timeout(struct loop_timer *t)
{
	mconn_close(container_of(t, struct mconn, timer));
}

static void mconn_flush(struct mconn *m)
{
	while (m->out_pos < m->out_len) {
		ssize_t n = send(m->io.fd, m->out + m->out_pos, m->out_len - m->out_pos, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_io_mod(dm->loop, &m->io, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			mconn_close(m);
			return;
		}
		m->out_pos += (size_t)n;
	}
	shutdown(m->io.fd, SHUT_WR);
	mconn_close(m);
}

/* The answer to the head in m->in (NUL-terminated, complete or cut at HEAD_MAX). */
static void mconn_answer(struct mconn *m)
{
	char method[8] = "", target[256] = "";
	int status = 400;
	const char *text = "Bad Request";
	char *body = NULL;
	size_t body_len = 0;
	bool head = false;
	if (sscanf(m->in, "%7s %255s HTTP/1.", method, target) == 2) {
		size_t path_len = strcspn(target, "?");
		head = !strcmp(method, "HEAD");
		if (strcmp(method, "GET") && !head) {
			status = 405, text = "Method Not Allowed";
		} else if (path_len != 8 || strncmp(target, "/metrics", 8)) {
			status = 404, text = "Not Found";
		} else {
			body = metrics_render(&body_len);
			status = body ? 200 : 503;
			text = body ? "OK" : "Service Unavailable";
		}
	}
	char small[64];
	if (!body) {
		body_len = (size_t)snprintf(small, sizeof(small), "%d %s\n", status, text);
	}
	int n = asprintf(&m->out,
	                 "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: portshare\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%.*s",
	                 status, text, http_date_now(), body ? METRICS_CONTENT_TYPE : "text/plain", body_len,
	                 status == 405 ? "Allow: GET, HEAD\r\n" : "", head ? 0 : (int)body_len,
	                 body ? body : small);
	free(body);
	if (n < 0) {
		m->out = NULL;
		mconn_close(m);
		return;
	}
	m->out_len = (size_t)n;
	mconn_flush(m);
}

static void mconn_on_io(struct loop_io *io, uint32_t events)
{
	struct mconn *m = container_of(io, struct mconn, io);
	if (m->dead)
		return;
	if (m->out) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			mconn_flush(m);
		return;
	}
	for (;;) {
		ssize_t n = recv(io->fd, m->in + m->in_len, sizeof(m->in) - 1 - m->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			mconn_close(m);
			return;
		}
		m->in_len += (size_t)n;
		m->in[m->in_len] = '\0';
		if (strstr(m->in, "\r\n\r\n") || strstr(m->in, "\n\n") || m->in_len == sizeof(m->in) - 1) {
			mconn_answer(m);
			return;
		}
	}
}

static void mlisten_on_io(struct loop_io *io, uint32_t events)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct mconn *m = nconns < MAX_CONNS ? calloc(1, sizeof(*m)) : NULL;
		if (!m) {
			close(fd); /* a scraper does not need more than a few at once */
			continue;
		}
		m->io = (struct loop_io){.fd = fd, .fn = mconn_on_io};
		m->timer.fn = mconn_timeout;
		if (loop_io_add(dm->loop, &m->io, EPOLLIN) < 0) {
			close(fd);
			free(m);
			continue;
		}
		nconns++;
		loop_timer_set(dm->loop, &m->timer, TIMEOUT_MS);
	}
}

int metrics_http_start(void)
{
	if (!dm->cfg.metrics_listen_set)
		return 0;
	char a[PS_ADDR_TEXT_MAX];
	addr_format(&dm->cfg.metrics_listen, a, sizeof(a));
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(&dm->cfg.metrics_listen, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	/* SO_REUSEPORT: during an upgrade both daemons hold it for a moment */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		log_error("MetricsListen %s: %s; no metrics over HTTP", a, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	mlisten = (struct loop_io){.fd = fd, .fn = mlisten_on_io};
	if (loop_io_add(dm->loop, &mlisten, EPOLLIN) < 0) {
		close(fd);
		mlisten.fd = -1;
		return -1;
	}
	log_info("metrics at http://%s/metrics", a);
	return 0;
}

void metrics_http_stop(void)
{
	if (mlisten.fd < 0)
		return;
	loop_io_del(dm->loop, &mlisten);
	close(mlisten.fd);
	mlisten.fd = -1;
}
