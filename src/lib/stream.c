/* stream.c: an upgraded connection as a byte stream of the new protocol (portshare.h,
 * ps_request_upgrade_stream). Its reads and writes go through conn_io.c, so a TLS
 * connection keeps its records after the 101, with the state the library holds. */
#include "stream.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn_io.h"
#include "deadline.h"

struct ps_stream {
	struct held_conn *conn;
	char *first; /* bytes the client sent past the request, not read yet */
	size_t first_len, first_off;
	bool shut; /* ps_stream_shutdown was called */
};

ps_stream *stream_new(struct held_conn *cn, const char *first, size_t len)
{
	ps_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (len) {
		s->first = malloc(len);
		if (!s->first) {
			free(s);
			return NULL;
		}
		memcpy(s->first, first, len);
		s->first_len = len;
	}
	conns_hold(cn);
	s->conn = cn;
	return s;
}

ssize_t ps_stream_read(ps_stream *s, void *buf, size_t len, int timeout_ms)
{
	if (!s || !buf || !len)
		return PS_EINVAL;
	if (s->first_off < s->first_len) {
		size_t n = s->first_len - s->first_off;
		if (n > len)
			n = len;
		memcpy(buf, s->first + s->first_off, n);
		s->first_off += n;
		return (ssize_t)n;
	}
	ssize_t n = timeout_ms == 0 ? conn_io_recv_now(s->conn, buf, len)
	                            : conn_io_recv(s->conn, buf, len, deadline_after(timeout_ms));
	return n == PS_ETIMEDOUT && timeout_ms == 0 ? PS_EAGAIN : n;
}

int ps_stream_write(ps_stream *s, const void *buf, size_t len)
{
	if (!s || (!buf && len))
		return PS_EINVAL;
	struct iovec iov = {(void *)buf, len};
	return conn_io_send(s->conn, &iov, 1, 0);
}

int ps_stream_fd(const ps_stream *s)
{
	return s ? s->conn->fd : -1;
}

int ps_stream_pending(const ps_stream *s)
{
	return s && (s->first_off < s->first_len || conn_io_pending(s->conn));
}

int ps_stream_shutdown(ps_stream *s)
{
	if (!s)
		return PS_EINVAL;
	if (!s->shut) {
		conn_io_close_notify(s->conn);
		s->shut = true;
		if (shutdown(s->conn->fd, SHUT_WR) < 0)
			return PS_ECLOSED;
	}
	return 0;
}

void ps_stream_close(ps_stream *s)
{
	if (!s)
		return;
	ps_stream_shutdown(s);
	conns_release(s->conn);
	free(s->first);
	free(s);
}
