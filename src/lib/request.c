/* request.c: a DELIVER made into a ps_request (its fd from the message or the cache),
 * the request's accessors, and its body, decoded by the same parser the daemon uses. */
#include "request.h"

#include <errno.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "deadline.h"
#include "delegate.h"
#include "http_body.h"
#include "log_record.h"
#include "conn_io.h"
#include "sock.h"

static const char *request_copy(char **p, const char *s, size_t n)
{
	char *dst = *p;
	memcpy(dst, s, n);
	dst[n] = '\0';
	*p += n + 1;
	return dst;
}

static const char *request_span(char **p, const ps_request *r, struct http_span sp)
{
	return request_copy(p, r->head + sp.off, sp.len);
}

/* Makes the NUL-terminated strings the accessors return, in one block. */
static int request_strings(ps_request *r, const struct ps_msg *m)
{
	const struct ps_deliver *d = &m->u.deliver;
	const struct http_head *h = &r->h;
	size_t size = h->method_s.len + h->target.len + h->query.len + d->path_len + d->host_len + 5;
	for (uint32_t i = 0; i < h->nfields; i++)
		size += h->fields[i].name.len + h->fields[i].value.len + 2;
	r->strings = malloc(size);
	r->fields = calloc(h->nfields ? h->nfields : 1, sizeof(*r->fields));
	if (!r->strings || !r->fields)
		return PS_ENOMEM;
	char *p = r->strings;
	r->method = request_span(&p, r, h->method_s);
	r->target = request_span(&p, r, h->target);
	r->query = request_span(&p, r, h->query);
	r->path = request_copy(&p, m->path, d->path_len);
	r->host = request_copy(&p, m->host, d->host_len);
	for (uint32_t i = 0; i < h->nfields; i++) {
		r->fields[i].name = request_span(&p, r, h->fields[i].name);
		r->fields[i].value = request_span(&p, r, h->fields[i].value);
	}
	return 0;
}

/* Parses the head again with the daemon's parser: the framing the library reads the
 * body with must be the one the daemon found the head's end with, or a body could be
 * read as a request (smuggling). Returns false if the two disagree. */
static bool request_parse(ps_request *r)
{
	struct http_scan scan;
	struct http_limits lim = HTTP_LIMITS_DEFAULT;
	/* The daemon's limits may be configured larger; what it accepted fits a DELIVER. */
	if (lim.max_request_bytes < r->head_len)
		lim.max_request_bytes = (uint32_t)r->head_len;
	if (lim.max_field_length < r->head_len)
		lim.max_field_length = (uint32_t)r->head_len;
	http_scan_init(&scan);
	if (http_head_parse(&scan, r->head, r->head_len, &lim, &r->h) != HTTP_HEAD_DONE)
		return false;
	return r->h.skip == 0 && r->h.head_len == r->head_len;
}

/* A DELIVER whose head the library cannot read: answered 400 and closed. */
static void request_unparsable(ps_request *r)
{
	memset(&r->h, 0, sizeof(r->h));
	r->h.version_major = 1;
	r->h.version_minor = 1;
	r->h.content_length = -1;
	r->method = r->target = r->path = r->query = r->host = "";
}

static ps_request *request_new(ps_client *c, ps_queue *q, const struct ps_msg *m, struct held_conn *cn,
                               const struct http_head *parsed, bool *unparsable)
{
	const struct ps_deliver *d = &m->u.deliver;
	ps_request *r = malloc(sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, offsetof(ps_request, h.fields));
	r->start_us = log_clock_us(CLOCK_MONOTONIC);
	r->head = malloc(d->head_len + 1);
	if (d->tail_len > 0)
		r->in = malloc(d->tail_len);
	if (!r->head || (d->tail_len > 0 && !r->in))
		goto fail;
	memcpy(r->head, m->head, d->head_len);
	r->head[d->head_len] = '\0';
	r->head_len = d->head_len;
	if (d->tail_len > 0)
		memcpy(r->in, m->tail, d->tail_len);
	r->in_len = r->in_cap = d->tail_len;

	/* A head the library delimited itself needs no second parse when it starts at the
	 * request line (the offsets are then the same). */
	if (parsed && parsed->skip == 0 && parsed->head_len == r->head_len) {
		memcpy(&r->h, parsed, http_head_used(parsed));
		*unparsable = false;
	} else {
		*unparsable = !request_parse(r);
	}
	if (*unparsable)
		request_unparsable(r);
	else if (request_strings(r, m) < 0)
		goto fail;
	r->local_len = addr_to_sockaddr(&d->local, &r->local);
	r->peer_len = addr_to_sockaddr(&d->remote, &r->peer);
	r->addr_local = d->local;
	r->addr_remote = d->remote;

	r->has_body = !*unparsable && (r->h.chunked || r->h.content_length > 0);
	r->body_done = !r->has_body;
	r->body_seen = r->has_body && d->tail_len > 0;
	r->head_only = strcmp(r->method, "HEAD") == 0;
	/* Only the creator knows the queue's body limit; the daemon enforces it too. */
	r->max_body = q->created ? q->opts.max_body : 0;

	r->c = c;
	r->q = q;
	r->conn = cn;
	conns_hold(cn);
	r->fd = cn->fd;
	r->tls = conn_io_tls_info(cn, &r->tls_version, r->tls_server_name);
	r->gen = c->gen;
	r->conn_id = d->conn_id;
	r->req_id = d->req_id;
	r->id = d->req_id;
	r->next = c->requests;
	if (c->requests)
		c->requests->prev = r;
	c->requests = r;
	return r;
fail:
	free(r->fields);
	free(r->strings);
	free(r->in);
	free(r->head);
	free(r);
	return NULL;
}

ps_request *request_delegated(ps_client *c, ps_queue *q, const struct ps_msg *m, struct held_conn *cn,
                              const struct http_head *parsed)
{
	bool unparsable = false;
	ps_request *r = request_new(c, q, m, cn, parsed, &unparsable);
	if (r && unparsable) {
		request_destroy(r);
		return NULL;
	}
	if (r) {
		r->delegated = true;
		/* every request of a delegated connection carries the req_id of the DELIVER
		 * that handed it over; the application gets an id of its own (top bit set,
		 * never one of the daemon's) */
		r->id = (1ull << 63) | ++c->delegate_ids;
	}
	return r;
}

void request_deliver(ps_client *c, const struct ps_msg *m, int fd, bool fd_lost)
{
	const struct ps_deliver *d = &m->u.deliver;
	ps_queue *q = queue_find(c, d->queue_id);
	if (q && q->outstanding > 0)
		q->outstanding--;

	/* The daemon delivers only a connection it reads itself: one this session still
	 * held delegated is the daemon's again (whichever way the fd comes). */
	struct held_conn *held = conns_find(&c->conns, d->conn_id);
	if (held && held->delegation)
		delegate_forget(held->delegation);

	struct held_conn *cn = NULL;
	if (fd >= 0) {
		cn = conns_add(&c->conns, d->conn_id, fd);
		if (!cn)
			close(fd);
	} else if (!fd_lost && !(d->flags & PS_DELIVER_FD)) {
		cn = conns_find(&c->conns, d->conn_id);
	}
	/* a TLS connection's records are ours until the response is done */
	if (cn && conn_io_set_tls(cn, d->flags & PS_DELIVER_TLS ? &m->tls : NULL, m->tls_raw) < 0)
		cn = NULL;
	bool unparsable = false;
	ps_request *r = q && cn ? request_new(c, q, m, cn, NULL, &unparsable) : NULL;
	if (!r) {
		/* No fd (at the fd limit, or never cached), no memory, or not our queue: the
		 * daemon queues the request again. Forget the fd so that our state matches
		 * what NOFD tells it: this session does not hold the connection (nor an
		 * older entry of that id, which a conns_add without memory leaves). */
		struct held_conn *cached = conns_find(&c->conns, d->conn_id);
		if (cached)
			conns_del(&c->conns, cached);
		client_send_untaken(c, PS_MSG_NOFD, d->conn_id, d->req_id);
		return;
	}
	/* The daemon took its counter snapshot at this DELIVER: ours start again with it. */
	cn->written = cn->consumed = 0;
	r->delegable = (d->flags & PS_DELIVER_DELEGATE) && c->delegation;

	if (unparsable) {
		response_refuse(r, 400);
		return;
	}
	queue_push(q, r);
}

void request_unlink(ps_request *r)
{
	if (!r->c)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		r->c->requests = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	r->c = NULL;
	r->q = NULL;
}

void request_destroy(ps_request *r)
{
	delegate_drop(r);
	if (r->conn) {
		conns_release(r->conn);
		r->conn = NULL;
	}
	request_unlink(r);
	http_body_free(r->body);
	free(r->fields);
	free(r->strings);
	free(r->in);
	free(r->out);
	free(r->head);
	free(r);
}

bool request_must_close(const ps_request *r)
{
	if (!r->h.keep_alive || r->body_failed || r->eof)
		return true;
	if (!r->has_body || r->body_done)
		return false;
	/* The client waits for a 100 Continue that can no longer come: its body will not
	 * follow, so the connection cannot be read past this request. */
	if (r->h.expect_continue && !r->continue_sent && !r->body_seen)
		return true;
	/* More than a drain may read is known to be still on its way. */
	return !r->h.chunked && (uint64_t)r->h.content_length - r->body_read > REQUEST_DRAIN_MAX;
}

/* Bytes to ask the socket for: never past a Content-Length body's end, so bytes of a
 * next request are read only when chunked framing leaves no choice. */
static size_t request_read_size(const ps_request *r)
{
	if (r->h.chunked)
		return REQUEST_READ_MAX;
	uint64_t left = (uint64_t)r->h.content_length - r->body_read;
	return left < REQUEST_READ_MAX ? (size_t)left : REQUEST_READ_MAX;
}

/* Makes the read buffer full-size unless a Content-Length body is already whole in it:
 * before any byte is consumed, so a lack of memory is reported by a read that has taken
 * nothing, never half-way through one. */
static int request_buffer(ps_request *r)
{
	if (r->in_cap >= REQUEST_READ_MAX ||
	    (!r->h.chunked && (uint64_t)r->h.content_length - r->body_read <= r->in_len - r->in_pos))
		return 0;
	char *bigger = realloc(r->in, REQUEST_READ_MAX);
	if (!bigger)
		return PS_ENOMEM;
	r->in = bigger;
	r->in_cap = REQUEST_READ_MAX;
	return 0;
}

/* Reads body bytes into buf: what the connection already holds, up to len, without
 * waiting once some are there (so a small body comes back whole from one call, and
 * ps_request_body_complete() can tell the application these were its last bytes);
 * waits until deadline only while it has none. */
ssize_t request_body(ps_request *r, void *buf, size_t len, int64_t deadline)
{
	if (r->body_done)
		return 0;
	if (r->body_failed)
		return PS_EBODY;
	if (!r->body) {
		r->body = http_body_new(r->head, r->head_len, r->max_body);
		if (!r->body && errno == ENOMEM)
			return PS_ENOMEM; /* nothing consumed yet: a later read tries again */
		if (!r->body) {
			r->body_failed = true;
			return PS_EBODY;
		}
		/* an upgrade request ends at its head whatever it declares */
		r->body_done = http_body_done(r->body);
		if (r->body_done)
			return 0;
	}
	if (request_buffer(r) < 0)
		return PS_ENOMEM; /* nothing consumed: a later read tries again */
	size_t got = 0;
	for (;;) {
		if (r->in_pos < r->in_len) {
			size_t produced = 0;
			const char *why = NULL;
			ssize_t used = http_body_feed(r->body, r->in + r->in_pos, r->in_len - r->in_pos,
			                              (char *)buf + got, len - got, &produced, &why);
			if (used < 0 || (used == 0 && produced == 0 && !http_body_done(r->body))) {
				r->body_failed = true;
				return got > 0 ? (ssize_t)got : PS_EBODY; /* the error comes next call */
			}
			r->in_pos += (size_t)used;
			r->body_read += produced;
			got += produced;
			r->body_done = http_body_done(r->body);
			if (r->body_done || got == len)
				return (ssize_t)got;
			continue;
		}
		/* Everything read has been consumed: read more from the client (into the
		 * buffer request_buffer made, whole). */
		r->in_pos = r->in_len = 0;
		r->read_sock = true;
		/* EntityBody (DESIGN §5): the client may go this long without sending any of
		 * its body, however the application waits (blocking, or polling with 0) */
		if (!r->body_wait_from)
			r->body_wait_from = deadline_now();
		int64_t body_deadline =
		    r->body_wait_from + (r->c ? r->c->limits.entity_body_ms : PS_ENTITY_BODY_MS);
		size_t want = request_read_size(r);
		ssize_t n = conn_io_recv(r->conn, r->in, want < r->in_cap ? want : r->in_cap,
		                         got > 0 ? deadline_now() : deadline_min(deadline, body_deadline));
		if (n <= 0 && got > 0)
			return (ssize_t)got; /* an end or error shows again at the next call */
		if (n == PS_ETIMEDOUT && deadline_passed(body_deadline)) {
			r->body_failed = true;
			if (r->state == RESPONSE_NONE)
				response_error(r, 408);
			else
				response_abort(r);
			return PS_ETIMEDOUT;
		}
		if (n > 0)
			r->body_wait_from = deadline_now();
		if (n == 0) {
			r->eof = true;
			r->body_failed = true;
			return PS_ECLOSED; /* the client ended the connection mid-body */
		}
		if (n < 0) {
			if (n != PS_ETIMEDOUT)
				r->body_failed = true;
			return n;
		}
		r->in_len = (size_t)n;
		r->body_seen = true;
	}
}

int request_drain(ps_request *r)
{
	if (request_must_close(r))
		return PS_ECLOSED;
	char scratch[REQUEST_READ_MAX];
	uint32_t drain_ms = r->c && r->c->limits.drain_entity_body_ms < REQUEST_DRAIN_MS
	                        ? r->c->limits.drain_entity_body_ms
	                        : REQUEST_DRAIN_MS;
	int64_t deadline = deadline_after((int)drain_ms);
	uint64_t drained = 0;
	while (!r->body_done) {
		if (drained > REQUEST_DRAIN_MAX)
			return PS_ELIMIT;
		ssize_t n = request_body(r, scratch, sizeof(scratch), deadline);
		if (n < 0)
			return (int)n;
		drained += (uint64_t)n;
	}
	return 0;
}

/* The 100 Continue rule (RFC 9110 §10.1.1): only on HTTP/1.1, only when the client
 * asked, only before any byte of the final response is on the wire, and only while the
 * body has not started to arrive anyway. */
static bool request_continue_due(const ps_request *r)
{
	return r->h.version_major == 1 && r->h.version_minor == 1 && r->h.expect_continue && !r->wire &&
	       r->has_body && !r->body_done && !r->body_seen;
}

ssize_t ps_request_read(ps_request *r, void *buf, size_t len, int timeout_ms)
{
	if (!r || !buf || len == 0)
		return PS_EINVAL;
	if (r->state == RESPONSE_UPGRADED) {
		/* bytes the client sent past the request, before the upgrade: the new
		 * protocol's first bytes */
		size_t n = r->in_len - r->in_pos;
		if (n > len)
			n = len;
		if (n > 0) /* r->in may be NULL when nothing came past the request */
			memcpy(buf, r->in + r->in_pos, n);
		r->in_pos += n;
		return (ssize_t)n;
	}
	if (!r->conn)
		return r->aborted ? PS_ECLOSED : PS_ESTATE;
	if (r->state != RESPONSE_NONE && r->state != RESPONSE_BEGUN)
		return PS_ESTATE;
	if (!r->read_once) {
		r->read_once = true;
		if (request_continue_due(r)) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			struct iovec iov = {(void *)cont, sizeof(cont) - 1};
			int rc = conn_io_send(r->conn, &iov, 1, 0);
			if (rc < 0) {
				response_abort(r);
				return rc;
			}
			r->continue_sent = true;
		}
	}
	ssize_t n = request_body(r, buf, len, deadline_after(timeout_ms));
	if (n == PS_ETIMEDOUT && timeout_ms == 0)
		return PS_EAGAIN;
	return n;
}

const char *ps_request_method(const ps_request *r)
{
	return r->method;
}

const char *ps_request_target(const ps_request *r)
{
	return r->target;
}

const char *ps_request_path(const ps_request *r)
{
	return r->path;
}

const char *ps_request_query(const ps_request *r)
{
	return r->query;
}

const char *ps_request_host(const ps_request *r)
{
	return r->host;
}

const char *ps_request_scheme(const ps_request *r)
{
	return r->tls ? "https" : "http";
}

const char *ps_request_tls_server_name(const ps_request *r)
{
	return r->tls ? r->tls_server_name : NULL;
}

const char *ps_request_tls_version(const ps_request *r)
{
	if (!r->tls)
		return NULL;
	return r->tls_version == TLS_RECORD_TLS13 ? "TLSv1.3" : "TLSv1.2";
}

int ps_request_version(const ps_request *r)
{
	return r->h.version_major * 10 + r->h.version_minor;
}

const char *ps_request_header(const ps_request *r, const char *name)
{
	for (uint32_t i = 0; i < r->h.nfields; i++)
		if (strcasecmp(r->fields[i].name, name) == 0)
			return r->fields[i].value;
	return NULL;
}

size_t ps_request_header_count(const ps_request *r)
{
	return r->h.nfields;
}

int ps_request_header_at(const ps_request *r, size_t i, ps_header *out)
{
	if (i >= r->h.nfields || !out)
		return PS_EINVAL;
	*out = r->fields[i];
	return 0;
}

int64_t ps_request_content_length(const ps_request *r)
{
	return r->h.chunked ? -1 : r->h.content_length;
}

int ps_request_has_body(const ps_request *r)
{
	return r->has_body;
}

int ps_request_body_complete(const ps_request *r)
{
	return !r->has_body || r->body_done;
}

const struct sockaddr *ps_request_peer(const ps_request *r, socklen_t *len)
{
	if (len)
		*len = r->peer_len;
	return r->peer_len ? (const struct sockaddr *)&r->peer : NULL;
}

const struct sockaddr *ps_request_local(const ps_request *r, socklen_t *len)
{
	if (len)
		*len = r->local_len;
	return r->local_len ? (const struct sockaddr *)&r->local : NULL;
}

uint64_t ps_request_id(const ps_request *r)
{
	return r->id;
}

uint64_t request_duration_us(ps_request *r)
{
	if (!r->duration_known) {
		uint64_t now = log_clock_us(CLOCK_MONOTONIC);
		r->duration_us = now > r->start_us ? now - r->start_us : 0;
		r->duration_known = true;
	}
	return r->duration_us;
}
