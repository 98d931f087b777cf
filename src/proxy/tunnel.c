/* tunnel.c: the byte pump of an upgraded connection (WebSocket and other upgrades):
 * poll on both sockets, one buffer each way, half-closes passed on with shutdown(). */
#include "tunnel.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TUNNEL_BUF 65536

/* One direction: bytes read from `from`, waiting in buf[off, len) to go to `to`. */
struct tunnel_dir {
	int from, to;
	size_t off, len;
	bool eof;  /* `from` sent its FIN (or failed) */
	bool shut; /* the FIN has been passed on to `to` */
	char buf[TUNNEL_BUF];
};

struct tunnel {
	struct tunnel_dir up, down; /* client → backend, backend → client */
	int idle_timeout_ms;
};

/* Moves what it can without waiting. False when the connection is broken. */
static bool tunnel_step(struct tunnel_dir *d)
{
	if (d->off == d->len && !d->eof) {
		ssize_t n = recv(d->from, d->buf, sizeof(d->buf), MSG_DONTWAIT);
		if (n > 0) {
			d->off = 0;
			d->len = (size_t)n;
		} else if (n == 0) {
			d->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			return false;
		}
	}
	while (d->off < d->len) {
		ssize_t n = send(d->to, d->buf + d->off, d->len - d->off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return false;
		}
		d->off += (size_t)n;
	}
	if (d->eof && d->off == d->len && !d->shut) {
		shutdown(d->to, SHUT_WR);
		d->shut = true;
	}
	return true;
}

static short tunnel_events(const struct tunnel_dir *d, int fd)
{
	short ev = 0;
	if (fd == d->from && d->off == d->len && !d->eof)
		ev |= POLLIN;
	if (fd == d->to && d->off < d->len)
		ev |= POLLOUT;
	return ev;
}

static void *tunnel_run(void *arg)
{
	struct tunnel *t = arg;
	int cfd = t->up.from, bfd = t->up.to;
	for (;;) {
		if (!tunnel_step(&t->up) || !tunnel_step(&t->down))
			break;
		if (t->up.shut && t->down.shut)
			break;
		struct pollfd p[2] = {
		    {cfd, (short)(tunnel_events(&t->up, cfd) | tunnel_events(&t->down, cfd)), 0},
		    {bfd, (short)(tunnel_events(&t->up, bfd) | tunnel_events(&t->down, bfd)), 0},
		};
		int n = poll(p, 2, t->idle_timeout_ms);
		if (n == 0)
			break; /* idle past the backend timeout both ways */
		if (n < 0 && errno != EINTR)
			break;
	}
	close(cfd);
	close(bfd);
	free(t);
	return NULL;
}

int tunnel_start(int client_fd, int backend_fd, const char *to_client, size_t to_client_len,
                 const char *to_backend, size_t to_backend_len, int idle_timeout_ms)
{
	if (to_client_len > TUNNEL_BUF || to_backend_len > TUNNEL_BUF)
		return -1;
	struct tunnel *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->up.from = t->down.to = client_fd;
	t->up.to = t->down.from = backend_fd;
	memcpy(t->up.buf, to_backend, to_backend_len);
	t->up.len = to_backend_len;
	memcpy(t->down.buf, to_client, to_client_len);
	t->down.len = to_client_len;
	t->idle_timeout_ms = idle_timeout_ms;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_t tid;
	int rc = pthread_create(&tid, &attr, tunnel_run, t);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(t);
		return -1;
	}
	return 0;
}
