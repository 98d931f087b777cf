/* response.c: the response on the client socket (status line, Date, the application's
 * headers, framing; bodies by writev or sendfile, chunked when asked), then the
 * connection handed back to the daemon (RETURN), ended (END) or taken by the
 * application (upgrade).
 *
 * Head and first body bytes go out in one send: the head is kept in r->out until the
 * first body bytes (or the end), and before sendfile it is sent with MSG_MORE. No
 * socket option is ever set (TCP_CORK would be shared with the daemon's copy and have
 * to be undone before RETURN), so none needs resetting. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "delegate.h"
#include "http_date.h"
#include "request.h"
#include "accesslog.h"
#include "conn_io.h"
#include "stream.h"
#include "sock.h"

static int response_reserve(ps_request *r, size_t more)
{
	if (r->out_cap - r->out_len >= more)
		return 0;
	size_t cap = r->out_cap ? r->out_cap : 512;
	while (cap - r->out_len < more)
		cap *= 2;
	char *p = realloc(r->out, cap);
	if (!p)
		return PS_ENOMEM;
	r->out = p;
	r->out_cap = cap;
	return 0;
}

static int response_add(ps_request *r, const char *s, size_t n)
{
	if (response_reserve(r, n) < 0)
		return PS_ENOMEM;
	memcpy(r->out + r->out_len, s, n);
	r->out_len += n;
	return 0;
}

static int response_str(ps_request *r, const char *s)
{
	return response_add(r, s, strlen(s));
}

/* prefix, the number v in base 10 or 16, then suffix: the numbers of every response
 * head and chunk, made without printf (a measurable share of a small response). */
static int response_number(ps_request *r, const char *prefix, uint64_t v, unsigned base, const char *suffix)
{
	char digits[24], *p = digits + sizeof(digits);
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	int rc = response_str(r, prefix);
	if (rc == 0)
		rc = response_add(r, p, (size_t)(digits + sizeof(digits) - p));
	return rc == 0 ? response_str(r, suffix) : rc;
}

static bool response_is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
		if (!alnum && !strchr("!#$%&'*+-.^_`|~", ch))
			return false;
	}
	return true;
}

/* No CR or LF (header injection), no other control character but HTAB. */
static bool response_is_value(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	return true;
}

/* Checks the application's headers before anything is built. Content-Length and
 * Transfer-Encoding belong to the library: the framing it writes must be the framing
 * it declares. *has_date: the application sent its own Date. */
static int response_check_headers(const ps_header *h, size_t nh, bool *has_date)
{
	if (nh > 0 && !h)
		return PS_EINVAL;
	*has_date = false;
	for (size_t i = 0; i < nh; i++) {
		if (!h[i].name || !h[i].value || !response_is_token(h[i].name) ||
		    !response_is_value(h[i].value))
			return PS_EINVAL;
		if (strcasecmp(h[i].name, "Content-Length") == 0 ||
		    strcasecmp(h[i].name, "Transfer-Encoding") == 0)
			return PS_EINVAL;
		if (strcasecmp(h[i].name, "Date") == 0)
			*has_date = true;
	}
	return 0;
}

/* Reads an application's Connection header: *close when it names "close". Returns
 * true when it names nothing but close and keep-alive, which the library writes
 * itself (so the header is left out). */
static bool response_connection(const char *v, bool *close)
{
	bool only_ours = true;
	const char *p = v;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ',')
			p++;
		const char *end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		size_t n = (size_t)(end - start);
		if (n == 5 && strncasecmp(start, "close", 5) == 0)
			*close = true;
		else if (n > 0 && !(n == 10 && strncasecmp(start, "keep-alive", 10) == 0))
			only_ours = false;
	}
	return only_ours;
}

/* Checks the application's headers, then writes into r->out the status line, a Date
 * (with_date, unless the application gave one) and those headers. */
static int response_head_start(ps_request *r, int status, const ps_header *h, size_t nh, bool with_date,
                               bool *app_close)
{
	bool has_date;
	int rc = response_check_headers(h, nh, &has_date);
	if (rc < 0)
		return rc;
	r->out_len = 0;
	const char *text = http_status_text(status);
	rc = response_number(r, "HTTP/1.1 ", (uint64_t)status, 10, " ");
	if (rc == 0)
		rc = response_str(r, text && *text ? text : "Unknown");
	if (rc == 0)
		rc = response_str(r, "\r\n");
	if (rc == 0 && with_date && !has_date) {
		rc = response_str(r, "Date: ");
		if (rc == 0)
			rc = response_str(r, http_date_now());
		if (rc == 0)
			rc = response_str(r, "\r\n");
	}
	for (size_t i = 0; i < nh && rc == 0; i++) {
		if (strcasecmp(h[i].name, "Connection") == 0 && response_connection(h[i].value, app_close))
			continue;
		rc = response_str(r, h[i].name);
		if (rc == 0)
			rc = response_add(r, ": ", 2);
		if (rc == 0)
			rc = response_str(r, h[i].value);
		if (rc == 0)
			rc = response_add(r, "\r\n", 2);
	}
	if (rc < 0)
		r->out_len = 0;
	return rc;
}

static bool response_http11(const ps_request *r)
{
	return r->h.version_major == 1 && r->h.version_minor >= 1;
}

/* Builds the head of a final response (kept in r->out, not ended yet) and chooses its
 * framing. length: the body's size, or -1 for "until ps_respond_end". */
static int response_start(ps_request *r, int status, const ps_header *h, size_t nh, int64_t length)
{
	if (status < 200 || status > 999 || length < -1)
		return PS_EINVAL;
	bool app_close = false;
	int rc = response_head_start(r, status, h, nh, true, &app_close);
	if (rc < 0)
		return rc;
	r->status = (uint16_t)status;

	/* RFC 9110 §6.4.1: no body for HEAD, 204 and 304. HEAD keeps the headers a GET
	 * would get; 204 has no Content-Length; a 304's describes the selected
	 * representation, so it is sent only when the application gives one. */
	if (status == 204 || status == 304 || r->head_only) {
		r->framing = FRAMING_NONE;
		bool head = status != 204 && status != 304;
		if (status == 304 ? length > 0 : head && length >= 0)
			rc = response_number(r, "Content-Length: ", (uint64_t)length, 10, "\r\n");
		else if (head && response_http11(r))
			rc = response_str(r, "Transfer-Encoding: chunked\r\n");
	} else if (length >= 0) {
		r->framing = FRAMING_LENGTH;
		r->remaining = (uint64_t)length;
		rc = response_number(r, "Content-Length: ", (uint64_t)length, 10, "\r\n");
	} else if (response_http11(r)) {
		r->framing = FRAMING_CHUNKED;
		rc = response_str(r, "Transfer-Encoding: chunked\r\n");
	} else {
		r->framing = FRAMING_CLOSE; /* HTTP/1.0 has no chunked framing */
	}
	if (rc < 0) {
		r->out_len = 0;
		return rc;
	}
	if (app_close)
		r->close = true;
	r->head_open = true;
	r->state = RESPONSE_BEGUN;
	return 0;
}

/* Whether the connection's RETURN/END belong to the current session: a request
 * delivered before a daemon restart has no conn id in the new one. */
static bool response_current(const ps_request *r)
{
	return r->c && client_connected(r->c) && r->gen == r->c->gen;
}

/* Ends the buffered head as it goes out: whether the connection stays open is
 * decided as late as possible (a 100 Continue sent meanwhile changes it). */
static int response_head_end(ps_request *r)
{
	if (r->framing == FRAMING_CLOSE || request_must_close(r) || !response_current(r))
		r->close = true;
	int rc;
	if (r->close)
		rc = response_str(r, "Connection: close\r\n\r\n");
	else if (!response_http11(r))
		rc = response_str(r, "Connection: keep-alive\r\n\r\n");
	else
		rc = response_add(r, "\r\n", 2);
	if (rc == 0)
		r->head_open = false;
	return rc;
}

/* Drops the request's hold on its connection; forget: the session is done with it
 * too (END sent, or it cannot be returned), so the cached fd goes as well. */
static void response_release(ps_request *r, bool forget)
{
	if (!r->conn)
		return;
	if (forget && r->conn->cached && r->c)
		conns_del(&r->c->conns, r->conn);
	conns_release(r->conn);
	r->conn = NULL;
	r->fd = -1;
}

void response_abort(ps_request *r)
{
	if (!r->conn)
		return;
	int e = errno;
	accesslog_abort(r);
	sock_abort(r->fd);
	r->aborted = true;
	r->state = RESPONSE_DONE;
	if (response_current(r))
		client_send_end(r->c, r->conn_id, r->req_id, PS_END_ABORT);
	/* the slot goes after the END: until the daemon has it, the slot is its evidence */
	delegate_drop(r);
	response_release(r, true);
	errno = e;
}

/* Sends the buffered bytes, then data as body bytes in the response's framing. last:
 * the response ends here; the chunked terminator goes with it, and when the
 * connection closes after it, MSG_MORE then shutdown puts the FIN in the same segment. */
static int response_send(ps_request *r, const void *data, size_t len, bool last)
{
	static const char crlf[] = "\r\n", last_chunk[] = "0\r\n\r\n";
	if (r->head_open && response_head_end(r) < 0) {
		response_abort(r);
		return PS_ENOMEM;
	}
	char line[24];
	struct iovec iov[5];
	int n = 0;
	iov[n++] = (struct iovec){r->out, r->out_len};
	if (len > 0 && r->framing != FRAMING_NONE) {
		if (r->framing == FRAMING_CHUNKED) {
			int k = snprintf(line, sizeof(line), "%zx\r\n", len);
			iov[n++] = (struct iovec){line, (size_t)k};
		}
		iov[n++] = (struct iovec){(void *)data, len};
		if (r->framing == FRAMING_CHUNKED)
			iov[n++] = (struct iovec){(void *)crlf, 2};
	}
	if (last && r->framing == FRAMING_CHUNKED)
		iov[n++] = (struct iovec){(void *)last_chunk, sizeof(last_chunk) - 1};
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	bool fin = last && r->close;
	int rc;
	if (len > 0 && r->framing != FRAMING_NONE)
		r->body_sent += len;
	if (!last)
		accesslog_send(r);
	/* counted before its last bytes go: a worker killed right after them still counted
	 * the response the client got (the daemon does not count it again) */
	if (last)
		delegate_served(r);
	if (last && conn_io_is_tls(r->conn)) {
		rc = conn_io_send_last(r->conn, iov, n, fin ? MSG_MORE : 0, delegate_pre_end_tls, r);
	} else {
		if (last)
			delegate_pre_end(r, total);
		rc = conn_io_send(r->conn, iov, n, fin ? MSG_MORE : 0);
	}
	r->out_len = 0;
	if (total > 0)
		r->wire = true;
	if (rc < 0) {
		response_abort(r);
		return rc;
	}
	if (fin) {
		conn_io_close_notify(r->conn);
		shutdown(r->fd, SHUT_WR);
		r->shut = true;
	}
	return 0;
}

/* The response is complete: keep reading the connection (delegation, delegate.c), give
 * it back to the daemon with the bytes read past the request (keep-alive), or end it. */
static void response_finish(ps_request *r)
{
	r->state = RESPONSE_DONE;
	delegate_served(r);
	accesslog_sent(r);
	if (!r->close && response_current(r) && request_drain(r) == 0) {
		struct delegation *d = delegate_keep(r);
		if (d) {
			response_release(r, false);
			delegate_run(d); /* a pipelined request may be waiting already */
			return;
		}
		if (client_send_return(r->c, r->conn, r->conn_id, r->req_id, r->eof, r->in + r->in_pos,
		                       r->in_len - r->in_pos) == 0) {
			delegate_drop(r);
			response_release(r, false); /* stays cached: the next request may come here */
			return;
		}
	}
	/* The side that wrote last shuts down; the daemon does the lingering close. */
	if (!r->shut) {
		conn_io_close_notify(r->conn);
		shutdown(r->fd, SHUT_WR);
		r->shut = true;
	}
	/* A whole request read, nothing after it, FIN sent: the daemon learns the end from
	 * the socket itself (EPOLLHUP once the client closes, or its timer), so no END is
	 * needed (DESIGN §2a). With bytes still coming, END asks for the lingering close
	 * that keeps them from turning the FIN into a reset. */
	bool quiet_end = r->body_done && r->in_pos == r->in_len && !r->eof;
	if (response_current(r) && !quiet_end)
		client_send_end(r->c, r->conn_id, r->req_id, PS_END_SHUTDOWN);
	delegate_drop(r);
	response_release(r, true);
}

static int response_check(const ps_request *r, enum response_state want)
{
	if (!r)
		return PS_EINVAL;
	if (!r->conn)
		return r->aborted || !r->c ? PS_ECLOSED : PS_ESTATE;
	return r->state == want ? 0 : PS_ESTATE;
}

/* 1xx: sent at once, no body; the final response still follows, except after 101. */
static int response_interim(ps_request *r, int status, const ps_header *h, size_t nh, size_t len)
{
	/* 100 is the library's, sent when the body is first read */
	if (status == 100 || len > 0)
		return PS_EINVAL;
	if (status == 101 && !(response_http11(r) && r->h.upgrade))
		return PS_EINVAL;
	if (!response_http11(r))
		return 0; /* RFC 9110 §15.2: never a 1xx to an HTTP/1.0 client */
	bool app_close = false;
	int rc = response_head_start(r, status, h, nh, false, &app_close);
	if (rc == 0)
		rc = response_add(r, "\r\n", 2);
	if (rc < 0) {
		r->out_len = 0;
		return rc;
	}
	struct iovec iov = {r->out, r->out_len};
	if (status == 101) {
		/* an upgraded request is counted at its 101: what follows is no HTTP response */
		r->status = 101;
		delegate_served(r);
		accesslog_upgrade(r);
	}
	rc = conn_io_send(r->conn, &iov, 1, 0);
	r->out_len = 0;
	if (rc < 0) {
		response_abort(r);
		return rc;
	}
	if (status == 101)
		r->state = RESPONSE_SWITCHING;
	return 0;
}

int ps_respond(ps_request *r, int status, const ps_header *h, size_t nh, const void *body, size_t len)
{
	int rc = response_check(r, RESPONSE_NONE);
	if (rc < 0)
		return rc;
	if (!body && len > 0)
		return PS_EINVAL;
	if (status >= 100 && status < 200)
		return response_interim(r, status, h, nh, len);
	rc = response_start(r, status, h, nh, (int64_t)len);
	if (rc < 0)
		return rc;
	r->remaining = 0; /* the whole body goes now */
	rc = response_send(r, body, len, true);
	if (rc < 0)
		return rc;
	response_finish(r);
	return 0;
}

int ps_respond_begin(ps_request *r, int status, const ps_header *h, size_t nh, int64_t content_length)
{
	int rc = response_check(r, RESPONSE_NONE);
	if (rc < 0)
		return rc;
	return response_start(r, status, h, nh, content_length);
}

/* Counts len body bytes against a Content-Length: more than it promised is PS_EINVAL. */
static int response_take(ps_request *r, size_t len)
{
	if (r->framing != FRAMING_LENGTH)
		return 0;
	if (len > r->remaining)
		return PS_EINVAL;
	r->remaining -= len;
	return 0;
}

int ps_respond_write(ps_request *r, const void *buf, size_t len)
{
	int rc = response_check(r, RESPONSE_BEGUN);
	if (rc < 0)
		return rc;
	if (!buf && len > 0)
		return PS_EINVAL;
	if (len == 0 || r->framing == FRAMING_NONE)
		return 0; /* HEAD, 204, 304: the body is not sent */
	rc = response_take(r, len);
	return rc < 0 ? rc : response_send(r, buf, len, false);
}

int ps_respond_sendfile(ps_request *r, int fd, off_t offset, size_t len)
{
	int rc = response_check(r, RESPONSE_BEGUN);
	if (rc < 0)
		return rc;
	if (fd < 0 || offset < 0)
		return PS_EINVAL;
	if (len == 0 || r->framing == FRAMING_NONE)
		return 0;
	if (response_take(r, len) < 0)
		return PS_EINVAL;
	rc = r->head_open ? response_head_end(r) : 0;
	if (rc == 0 && r->framing == FRAMING_CHUNKED)
		rc = response_number(r, "", len, 16, "\r\n");
	r->body_sent += len;
	if (rc == 0 && r->framing == FRAMING_LENGTH && r->remaining == 0)
		delegate_pre_end(r, r->out_len + len); /* these are the response's last bytes */
	else if (rc == 0)
		accesslog_send(r);
	if (rc == 0 && r->out_len > 0) {
		/* MSG_MORE: the head leaves in the same segment as the file's first bytes */
		struct iovec iov = {r->out, r->out_len};
		rc = conn_io_send(r->conn, &iov, 1, MSG_MORE);
		r->out_len = 0;
	}
	r->wire = true;
	if (rc == 0)
		rc = conn_io_sendfile(r->conn, fd, offset, len);
	/* the chunk's CRLF goes out with the next bytes */
	if (rc == 0 && r->framing == FRAMING_CHUNKED)
		rc = response_add(r, "\r\n", 2);
	if (rc < 0)
		response_abort(r);
	return rc;
}

int ps_respond_last(ps_request *r, const void *buf, size_t len)
{
	int rc = response_check(r, RESPONSE_BEGUN);
	if (rc < 0)
		return rc;
	if (!buf && len > 0)
		return PS_EINVAL;
	if (r->framing == FRAMING_NONE)
		len = 0; /* HEAD, 204, 304: the body is not sent */
	if (response_take(r, len) < 0)
		return PS_EINVAL;
	if (r->framing == FRAMING_LENGTH && r->remaining > 0) {
		response_abort(r); /* the client would wait for bytes that never come */
		return PS_ESTATE;
	}
	rc = response_send(r, buf, len, true);
	if (rc < 0)
		return rc;
	response_finish(r);
	return 0;
}

int ps_respond_end(ps_request *r)
{
	return ps_respond_last(r, NULL, 0);
}

int ps_request_upgrade(ps_request *r, int *fd)
{
	if (!fd)
		return PS_EINVAL;
	int rc = response_check(r, RESPONSE_SWITCHING);
	if (rc < 0)
		return rc;
	if (conn_io_is_tls(r->conn))
		return PS_EINVAL; /* its bytes are records: ps_request_upgrade_stream */
	delegate_drop(r);         /* out of our epoll set before the fd becomes the caller's */
	if (response_current(r))
		client_send_end(r->c, r->conn_id, r->req_id, PS_END_UPGRADED);
	/* The cache forgets the fd without closing it: it is the caller's now. */
	*fd = r->conn->fd;
	r->conn->fd = -1;
	response_release(r, true);
	r->state = RESPONSE_UPGRADED;
	return 0;
}

int ps_request_upgrade_stream(ps_request *r, ps_stream **out)
{
	if (!out)
		return PS_EINVAL;
	int rc = response_check(r, RESPONSE_SWITCHING);
	if (rc < 0)
		return rc;
	/* the bytes the client sent past the request are the stream's first */
	ps_stream *st = stream_new(r->conn, r->in + r->in_pos, r->in_len - r->in_pos);
	if (!st)
		return PS_ENOMEM;
	r->in_pos = r->in_len;
	delegate_drop(r); /* out of our epoll set before the stream has the connection */
	if (response_current(r))
		client_send_end(r->c, r->conn_id, r->req_id, PS_END_UPGRADED);
	response_release(r, true); /* the stream holds its own reference */
	r->state = RESPONSE_UPGRADED;
	*out = st;
	return 0;
}

void response_error(ps_request *r, int status)
{
	static const ps_header type = {"Content-Type", "text/plain; charset=utf-8"};
	char body[96];
	const char *text = http_status_text(status);
	int n = snprintf(body, sizeof(body), "%d %s\n", status, text ? text : "");
	r->close = true;
	ps_respond(r, status, &type, 1, body, n > 0 && (size_t)n < sizeof(body) ? (size_t)n : 0);
}

void response_refuse(ps_request *r, int status)
{
	response_error(r, status);
	request_destroy(r);
}

void ps_request_free(ps_request *r)
{
	if (!r)
		return;
	if (r->conn) {
		switch (r->state) {
		case RESPONSE_NONE: /* the application gave no answer */
			response_error(r, 500);
			break;
		case RESPONSE_SWITCHING: /* 101 sent, connection not taken: nobody speaks it */
			r->close = true;
			response_finish(r);
			break;
		default: /* a response begun and not ended */
			response_abort(r);
		}
	}
	request_destroy(r);
}

void response_orphan(ps_request *r)
{
	if (!r->handed_out) {
		/* The application never saw it: closing our copy does nothing to the
		 * connection, and the daemon, seeing the session end with nothing written,
		 * can give the request to another worker. */
		request_destroy(r);
		return;
	}
	response_abort(r);
	request_unlink(r); /* the application still frees it */
}
