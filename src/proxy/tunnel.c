/* tunnel.c: the byte pump of an upgraded connection (WebSocket and other upgrades): one
 * buffer each way, half-closes passed on. The client's side is libportshare's stream
 * (ps_request_upgrade_stream), so a TLS client's records are sealed and opened by the
 * library; the backend's is a plain socket. Writes to the backend never block the pump;
 * a write to the client waits as a response's writes do (MinSendRate bounds it). */
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

struct tunnel {
	ps_stream *client;
	int backend;
	int idle_timeout_ms;
	atomic_int *users; /* counted down at the end; NULL: none */
	/* client -> backend: bytes read from the client, up_buf[up_off, up_len) still to send */
	size_t up_off, up_len;
	bool up_eof, up_shut;
	bool down_eof, down_shut; /* backend -> client */
	char up_buf[TUNNEL_BUF], down_buf[TUNNEL_BUF];
};

/* Client to backend, as far as it goes without waiting. False when broken. */
static bool tunnel_up(struct tunnel *t)
{
	if (t->up_off == t->up_len && !t->up_eof) {
		ssize_t n = ps_stream_read(t->client, t->up_buf, sizeof(t->up_buf), 0);
		if (n > 0) {
			t->up_off = 0;
			t->up_len = (size_t)n;
		} else if (n == 0) {
			t->up_eof = true;
		} else if (n != PS_EAGAIN) {
			return false;
		}
	}
	while (t->up_off < t->up_len) {
		ssize_t n = send(t->backend, t->up_buf + t->up_off, t->up_len - t->up_off,
		                 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return false;
		}
		t->up_off += (size_t)n;
	}
	if (t->up_eof && t->up_off == t->up_len && !t->up_shut) {
		shutdown(t->backend, SHUT_WR);
		t->up_shut = true;
	}
	return true;
}

/* Backend to client: what the backend has, written to the client whole. */
static bool tunnel_down(struct tunnel *t)
{
	if (t->down_eof)
		return true;
	ssize_t n = recv(t->backend, t->down_buf, sizeof(t->down_buf), MSG_DONTWAIT);
	if (n > 0)
		return ps_stream_write(t->client, t->down_buf, (size_t)n) == 0;
	if (n == 0) {
		t->down_eof = true;
		if (ps_stream_shutdown(t->client) < 0)
			return false;
		t->down_shut = true;
		return true;
	}
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static void *tunnel_run(void *arg)
{
	struct tunnel *t = arg;
	for (;;) {
		if (!tunnel_up(t) || !tunnel_down(t))
			break;
		if (t->up_shut && t->down_shut)
			break;
		bool up_reads = t->up_off == t->up_len && !t->up_eof;
		if (up_reads && ps_stream_pending(t->client))
			continue; /* bytes already in the library: no poll would announce them */
		struct pollfd p[2] = {
		    {ps_stream_fd(t->client), (short)(up_reads ? POLLIN : 0), 0},
		    {t->backend, (short)((t->down_eof ? 0 : POLLIN) | (t->up_off < t->up_len ? POLLOUT : 0)),
		     0},
		};
		int n = poll(p, 2, t->idle_timeout_ms);
		if (n == 0)
			break; /* idle past the backend timeout both ways */
		if (n < 0 && errno != EINTR)
			break;
	}
	ps_stream_close(t->client);
	close(t->backend);
	if (t->users)
		atomic_fetch_sub(t->users, 1);
	free(t);
	return NULL;
}

int tunnel_start(ps_stream *client, int backend_fd, const char *to_client, size_t to_client_len,
                 int idle_timeout_ms, atomic_int *users)
{
	struct tunnel *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	/* the backend's first bytes after its 101 go before anything else */
	if (to_client_len && ps_stream_write(client, to_client, to_client_len) < 0) {
		free(t);
		return -1;
	}
	t->client = client;
	t->backend = backend_fd;
	t->idle_timeout_ms = idle_timeout_ms;
	t->users = users;
	if (users)
		atomic_fetch_add(users, 1); /* before the caller's own hold on it ends */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_t tid;
	int rc = pthread_create(&tid, &attr, tunnel_run, t);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		if (users)
			atomic_fetch_sub(users, 1);
		free(t);
		return -1;
	}
	return 0;
}
