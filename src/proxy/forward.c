/* forward.c: one request to the backend and its reply to the client, streamed both ways
 * (docs/ADAPTERS.md): the head rewritten, the body passed on as it comes (re-chunked or
 * with its Content-Length), the reply checked by reply.c and re-framed by the library. */
#include "forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proxy.h"
#include "tunnel.h"

#define FORWARD_BODY_WAIT_MS 120000 /* silence while reading the client's body (EntityBody) */
#define FORWARD_EXPECT_WAIT_MS 1000 /* how long the backend's 100 Continue is waited for */
#define FORWARD_CONNECTION_MAX 8    /* Connection headers looked at */
/* A request not done by then is long (a slow backend, a stream, a big transfer): the
 * pool's alarm rings, and the thread gives back what its session holds (proxy.c).
 * Short enough that nothing waits behind it for long, long enough that a quick
 * request never pays the round trip (docs/ADAPTERS.md). */
#define FORWARD_LONG_MS 15
#define FORWARD_SOLO_MS 1000 /* forward_batching */

/* RFC 9110 §7.6.1: meant for one hop only. Content-Length and Transfer-Encoding are
 * written again by whoever frames the next hop (we towards the backend, the library
 * towards the client). Upgrade is passed on only as part of an upgrade. */
static const char *const forward_hop_by_hop[] = {
    "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding",
    "Upgrade",    "Trailer",    "Content-Length",   NULL,
};
/* What the proxy itself says about the client: never what the client claims. */
static const char *const forward_client_claims[] = {
    "Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", NULL,
};

void forward_init(struct forward *f, const struct proxy_config *cfg)
{
	memset(f, 0, offsetof(struct forward, reply));
	f->cfg = cfg;
}

void forward_fini(struct forward *f)
{
	while (f->pool.n > 0)
		backend_drop(f->pool.idle[--f->pool.n]);
}

/* ---------------------------------------------------------------- messages */

static void forward_log(struct forward *f, ps_request *r, const char *what, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s: error: %s: backend %s: %s (%s %s)\n", f->cfg->prog, what, f->target->addr.name,
	        msg, ps_request_method(r), ps_request_target(r));
}

/* Answers status (502, 504, 500) when nothing of the response has gone out yet. */
static void forward_fail(struct forward *f, ps_request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void forward_fail(struct forward *f, ps_request *r, int status, const char *fmt, ...)
{
	const char *text = status == 504   ? "Gateway Timeout"
	                   : status == 502 ? "Bad Gateway"
	                                   : "Internal Server Error";
	char what[64];
	snprintf(what, sizeof(what), "%d %s", status, text);
	va_list ap;
	va_start(ap, fmt);
	forward_log(f, r, what, fmt, ap);
	va_end(ap);
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, text);
	ps_header h = {"Content-Type", "text/plain"};
	ps_respond(r, status, &h, 1, body, (size_t)n);
}

/* A response already begun cannot become a 502: the connection is aborted (the caller
 * frees the request, which resets it), so the client never takes a cut body as whole. */
static void forward_abort(struct forward *f, ps_request *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void forward_abort(struct forward *f, ps_request *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	forward_log(f, r, "abort", fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- the request head */

struct forward_out {
	char *p;
	size_t len, cap;
	bool full;
};

static void out_add(struct forward_out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void out_str(struct forward_out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void out_header(struct forward_out *o, const char *name, const char *value)
{
	out_str(o, name);
	out_add(o, ": ", 2);
	out_str(o, value);
	out_add(o, "\r\n", 2);
}

/* A header name compared with a known one, case-insensitively; the first letters decide
 * most comparisons without a call (many per request: a measurable share of a small one). */
static bool name_is(const char *name, const char *known)
{
	return (name[0] | 0x20) == (known[0] | 0x20) && strcasecmp(name, known) == 0;
}

static bool name_in(const char *name, const char *const *names)
{
	for (; *names; names++)
		if (name_is(name, *names))
			return true;
	return false;
}

/* Whether the comma-separated list names token (case-insensitive, OWS around items). */
static bool list_has(const char *list, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ',')
			p++;
		const char *end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
			return true;
	}
	return false;
}

static bool listed_in(const char *const *lists, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (list_has(lists[i], name))
			return true;
	return false;
}

/* a.b.c.d without inet_ntop, whose printf was a measurable share of a small request */
static void forward_ipv4(const unsigned char *a, char *out)
{
	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];
		if (v >= 100)
			*out++ = (char)('0' + v / 100);
		if (v >= 10)
			*out++ = (char)('0' + v / 10 % 10);
		*out++ = (char)('0' + v % 10);
		*out++ = i < 3 ? '.' : '\0';
	}
}

/* The client's address as Forwarded and X-Forwarded-For give it (RFC 7239 §6); ip holds
 * INET6_ADDRSTRLEN bytes. */
static void forward_peer(ps_request *r, char *ip, size_t cap, bool *v6)
{
	socklen_t len = 0;
	const struct sockaddr *sa = ps_request_peer(r, &len);
	*v6 = false;
	if (sa && sa->sa_family == AF_INET) {
		forward_ipv4((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr, ip);
	} else if (!sa || sa->sa_family != AF_INET6) {
		snprintf(ip, cap, "unknown");
	} else {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			forward_ipv4(&a->s6_addr[12], ip);
		} else {
			inet_ntop(AF_INET6, a, ip, (socklen_t)cap);
			*v6 = true;
		}
	}
}

/* The host the client asked for: Host as sent (with its port) when it names the host
 * the daemon routed on, else that host (absolute-form authority wins, RFC 9112 §3.2.2). */
static const char *forward_host(ps_request *r)
{
	const char *host = ps_request_host(r);
	const char *sent = ps_request_header(r, "Host");
	size_t n = strlen(host);
	if (sent && strncasecmp(sent, host, n) == 0 && (sent[n] == '\0' || sent[n] == ':'))
		return sent;
	return host;
}

/* Bytes of the canonical path that --strip-prefix removes: the longest of our URLs'
 * paths it lies under (whole segments), less its final '/'. */
static size_t forward_strip_len(const struct proxy_config *cfg, const char *path)
{
	size_t best = 0, plen = strlen(path);
	for (size_t i = 0; i < cfg->nurls; i++) {
		const char *u = strstr(cfg->urls[i], "://");
		u = u ? strchr(u + 3, '/') : NULL;
		if (!u)
			continue;
		size_t n = strlen(u);
		if (n > 0 && u[n - 1] == '/')
			n--; /* "/app/" matches "/app/x" and the bare "/app" */
		if (n > best && n <= plen && strncmp(path, u, n) == 0 && (path[n] == '/' || path[n] == '\0'))
			best = n;
	}
	return best;
}

/* Builds the head for the backend into f->head. Returns its length, 0 if too large. */
static size_t forward_build_head(struct forward *f, ps_request *r, bool has_body, int64_t length,
                                 bool upgrade)
{
	struct forward_out o = {f->head, 0, sizeof(f->head), false};
	const char *connection[FORWARD_CONNECTION_MAX];
	size_t nconn = 0, nh = ps_request_header_count(r);
	ps_header h;

	for (size_t i = 0; i < nh && ps_request_header_at(r, i, &h) == 0; i++)
		if (name_is(h.name, "Connection") && nconn < FORWARD_CONNECTION_MAX)
			connection[nconn++] = h.value;

	/* the canonical path the daemon routed on, so the backend cannot read the target
	 * any other way than the routing did */
	const char *path = ps_request_path(r);
	if (f->cfg->strip_prefix) {
		path += forward_strip_len(f->cfg, path);
		if (*path == '\0')
			path = "/";
	}
	const char *query = ps_request_query(r);
	out_str(&o, ps_request_method(r));
	out_add(&o, " ", 1);
	out_str(&o, path);
	if (*query) {
		out_add(&o, "?", 1);
		out_str(&o, query);
	}
	out_str(&o, " HTTP/1.1\r\n");

	/* RFC 9112 §3.2.2: an absolute-form target's authority is the host, whatever Host
	 * says; the backend gets it as Host, since it gets the origin form */
	const char *target = ps_request_target(r), *scheme_end = strstr(target, "://");
	char authority[300] = "";
	if (target[0] != '/' && scheme_end) {
		size_t n = strcspn(scheme_end + 3, "/?#");
		snprintf(authority, sizeof(authority), "%.*s", (int)(n < 299 ? n : 299), scheme_end + 3);
	}
	bool has_host = authority[0] != '\0';
	if (has_host)
		out_header(&o, "Host", authority);
	for (size_t i = 0; i < nh && ps_request_header_at(r, i, &h) == 0; i++) {
		bool host = name_is(h.name, "Host");
		if (name_in(h.name, forward_hop_by_hop) || name_in(h.name, forward_client_claims) ||
		    listed_in(connection, nconn, h.name) || (host && authority[0]))
			continue;
		has_host |= host;
		out_header(&o, h.name, h.value);
	}
	if (!has_host) /* an HTTP/1.0 client's request; HTTP/1.1 requires one (RFC 9112 §3.2) */
		out_header(&o, "Host", ps_request_host(r));
	if (has_body && length >= 0) {
		char n[24];
		snprintf(n, sizeof(n), "%lld", (long long)length);
		out_header(&o, "Content-Length", n);
	} else if (has_body) {
		out_header(&o, "Transfer-Encoding", "chunked");
	}

	char ip[INET6_ADDRSTRLEN];
	bool v6;
	forward_peer(r, ip, sizeof(ip), &v6);
	const char *host = forward_host(r), *scheme = ps_request_scheme(r);
	bool quote_host = strpbrk(host, ":[]") != NULL;
	/* written piece by piece: a printf here was a measurable share of a small request */
	out_str(&o, "Forwarded: for=");
	out_str(&o, v6 ? "\"[" : "");
	out_str(&o, ip);
	out_str(&o, v6 ? "]\";host=" : ";host=");
	out_str(&o, quote_host ? "\"" : "");
	out_str(&o, host);
	out_str(&o, quote_host ? "\";proto=" : ";proto=");
	out_str(&o, scheme);
	out_add(&o, "\r\n", 2);
	out_header(&o, "X-Forwarded-For", ip);
	out_header(&o, "X-Forwarded-Proto", scheme);
	out_header(&o, "X-Forwarded-Host", host);
	if (upgrade) {
		out_header(&o, "Connection", "Upgrade");
		out_header(&o, "Upgrade", ps_request_header(r, "Upgrade"));
	}
	out_add(&o, "\r\n", 2);
	return o.full ? 0 : o.len;
}

/* ---------------------------------------------------------------- waiting */

/* A body that does not come before the long-request alarm (a slow upload) makes a long
 * request like a slow backend: the alarm rings, and what this thread's session holds (up
 * to its receive window of requests) goes back before the thread waits on. */
static ssize_t forward_read_client(struct forward *f, ps_request *r, void *buf, size_t cap)
{
	struct backend_alarm *alarm = &f->pool.alarm;
	backend_alarm_check(alarm);
	if (alarm->at != 0) {
		int64_t left = alarm->at - backend_now_ms();
		ssize_t n = ps_request_read(r, buf, cap, left > 0 ? (int)left : 0);
		if (n != PS_ETIMEDOUT && n != PS_EAGAIN)
			return n;
		backend_alarm_ring(alarm, true);
	}
	return ps_request_read(r, buf, cap, FORWARD_BODY_WAIT_MS);
}

/* ---------------------------------------------------------------- the reply head */

enum forward_head {
	HEAD_FINAL,    /* f->reply holds a final (or 101) head */
	HEAD_CONTINUE, /* 100 Continue came (when asked to return on it) */
	HEAD_NOT_YET,  /* nothing by the soft deadline */
	HEAD_FAILED,   /* f->why, f->fail_status; retry when f->retry */
};

struct forward_state {
	ps_request *r;
	struct backend_conn *bc;
	bool head_request, upgrade;
	bool body_started, body_done, answered_early;
	bool got_bytes; /* anything came from the backend on this connection */
	bool retry;     /* the failure is that of a stale pooled connection */
	int fail_status;
	char why[160];
};

static int forward_on_body(void *arg, const char *at, size_t n)
{
	struct forward *f = arg;
	if (n > sizeof(f->body) - f->body_len)
		return -1;
	memcpy(f->body + f->body_len, at, n);
	f->body_len += n;
	return 0;
}

/* Copies the reply's headers to pass on into f->store as ps_header entries. */
static int forward_reply_headers(struct forward *f, bool upgrade)
{
	struct reply *rp = &f->reply;
	const char *connection[FORWARD_CONNECTION_MAX];
	size_t nconn = 0, used = 0;
	int nh = 0;
	const char *upgrade_value = NULL;

	for (uint32_t pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < rp->nfields; i++) {
			char *name = f->store + used;
			size_t room = sizeof(f->store) - used;
			if (room < 4)
				return -1;
			char *value = name + room / 2;
			if (!reply_field_text(rp, i, name, room / 2, value, room - room / 2))
				return -1;
			if (pass == 0) {
				/* the Connection lists first: they name more hop-by-hop headers */
				if (name_is(name, "Connection") && nconn < FORWARD_CONNECTION_MAX) {
					size_t vl = strlen(value) + 1;
					memmove(name, value, vl);
					connection[nconn++] = name;
					used += vl;
				} else if (name_is(name, "Upgrade") && !upgrade_value) {
					size_t vl = strlen(value) + 1;
					memmove(name, value, vl);
					upgrade_value = name;
					used += vl;
				}
				continue;
			}
			if (name_in(name, forward_hop_by_hop) || listed_in(connection, nconn, name))
				continue;
			size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
			memmove(name + nl, value, vl);
			f->headers[nh].name = name;
			f->headers[nh].value = name + nl;
			nh++;
			used += nl + vl;
		}
	}
	if (upgrade && nh + 2 <= REPLY_FIELDS_MAX) {
		f->headers[nh++] = (ps_header){"Connection", "Upgrade"};
		if (upgrade_value)
			f->headers[nh++] = (ps_header){"Upgrade", upgrade_value};
	}
	return nh;
}

/* Reads reply heads until a final one (1xx but 100 and 101 are passed on at once).
 * soft: return HEAD_NOT_YET at that time instead of failing (the Expect wait). */
static enum forward_head forward_read_head(struct forward *f, struct forward_state *st, int64_t deadline,
                                           bool soft, bool stop_on_continue)
{
	struct backend_conn *bc = st->bc;
	for (;;) {
		ssize_t found = reply_head_length(bc->buf + bc->off, bc->len - bc->off);
		if (found < 0) {
			snprintf(st->why, sizeof(st->why), "malformed reply head: bare LF in the head");
			st->fail_status = 502;
			return HEAD_FAILED;
		}
		size_t hl = (size_t)found;
		if (hl == 0) {
			if (bc->off == 0 && bc->len == sizeof(bc->buf)) {
				snprintf(st->why, sizeof(st->why), "reply head larger than %zu bytes",
				         sizeof(bc->buf));
				st->fail_status = 502;
				return HEAD_FAILED;
			}
			ssize_t n = backend_fill(bc, deadline);
			if (n > 0) {
				st->got_bytes = true;
				continue;
			}
			if (n < 0 && errno == ETIMEDOUT && soft)
				return HEAD_NOT_YET;
			st->retry = bc->reused && !st->got_bytes && !st->body_started &&
			            (n == 0 || errno != ETIMEDOUT);
			if (n < 0 && errno == ETIMEDOUT) {
				snprintf(st->why, sizeof(st->why), "no reply within %d s",
				         f->cfg->backend_timeout_ms / 1000);
				st->fail_status = 504;
			} else {
				snprintf(st->why, sizeof(st->why), "connection %s before a reply head",
				         n == 0 ? "closed" : strerror(errno));
				st->fail_status = 502;
			}
			return HEAD_FAILED;
		}
		if (reply_head(&f->reply, bc->buf + bc->off, hl, st->head_request, forward_on_body, f) < 0) {
			snprintf(st->why, sizeof(st->why), "malformed reply head: %s", f->reply.why);
			st->fail_status = 502;
			return HEAD_FAILED;
		}
		int status = f->reply.status;
		if (status == 101 || status >= 200) {
			/* the head stays in bc->buf until the headers are copied out */
			return HEAD_FINAL;
		}
		bc->off += hl;
		if (status == 100) {
			if (stop_on_continue)
				return HEAD_CONTINUE;
			continue; /* the library sends the client its own 100 when the body is read */
		}
		int nh = forward_reply_headers(f, false);
		if (nh >= 0)
			ps_respond(st->r, status, f->headers, (size_t)nh, NULL, 0); /* 102, 103: passed on */
	}
}

/* ---------------------------------------------------------------- the request body */

enum forward_body {
	BODY_DONE,
	BODY_CLIENT_FAILED, /* st->why */
	BODY_BACKEND_FAILED,
	BODY_ANSWERED, /* the backend answered before taking it all */
};

static enum forward_body forward_body(struct forward *f, struct forward_state *st, bool chunked)
{
	st->body_started = true;
	for (;;) {
		ssize_t n = forward_read_client(f, st->r, f->body, sizeof(f->body));
		if (n < 0) {
			snprintf(st->why, sizeof(st->why), "reading the client's body: %s",
			         ps_strerror((int)n));
			return BODY_CLIENT_FAILED;
		}
		char line[24];
		struct iovec iov[3];
		int cnt = 0;
		if (chunked) {
			int ln = n > 0 ? snprintf(line, sizeof(line), "%zx\r\n", (size_t)n) : 0;
			iov[cnt++] = (struct iovec){line, (size_t)ln};
			iov[cnt++] = (struct iovec){f->body, (size_t)n};
			iov[cnt++] = n > 0 ? (struct iovec){"\r\n", 2} : (struct iovec){"0\r\n\r\n", 5};
		} else {
			iov[cnt++] = (struct iovec){f->body, (size_t)n};
		}
		int64_t deadline = backend_now_ms() + f->cfg->backend_timeout_ms;
		if (backend_send(st->bc, iov, cnt, deadline, true) < 0) {
			if (errno == EAGAIN)
				return BODY_ANSWERED;
			snprintf(st->why, sizeof(st->why), "sending the body: %s", strerror(errno));
			return BODY_BACKEND_FAILED;
		}
		if (n == 0) {
			st->body_done = true;
			return BODY_DONE;
		}
	}
}

/* ---------------------------------------------------------------- the reply */

static void forward_finish(struct forward *f, struct forward_state *st)
{
	struct backend_conn *bc = st->bc;
	st->bc = NULL;
	/* reusable only when both messages ended exactly and nothing more came */
	if (f->reply.complete && f->reply.keep_alive && st->body_done && bc->off == bc->len)
		backend_put(&f->pool, bc);
	else
		backend_drop(bc);
}

static void forward_upgrade(struct forward *f, struct forward_state *st, int nh)
{
	ps_request *r = st->r;
	struct backend_conn *bc = st->bc;
	if (!st->upgrade) {
		forward_fail(f, r, 502, "101 Switching Protocols to a request that asked for no upgrade");
		return;
	}
	/* a stream, not the fd: a TLS client's records stay the library's to seal and open;
	 * it starts with the client's first bytes of the new protocol */
	ps_stream *client = NULL;
	if (ps_respond(r, 101, f->headers, (size_t)nh, NULL, 0) < 0 ||
	    ps_request_upgrade_stream(r, &client) < 0) {
		forward_abort(f, r, "the client went away during the upgrade");
		return;
	}
	if (tunnel_start(client, bc->fd, bc->buf + bc->off, bc->len - bc->off, f->cfg->backend_timeout_ms,
	                 &f->target->users) < 0) {
		forward_abort(f, r, "cannot start the tunnel thread");
		ps_stream_close(client);
		return;
	}
	backend_take_fd(bc);
	st->bc = NULL;
}

/* Reads more of the reply body. False when the reply cannot go on (logged; the response
 * is aborted). close_ends: the backend's close may end the reply (close-delimited). */
static bool forward_more(struct forward *f, struct forward_state *st, bool close_ends)
{
	backend_alarm_check(&f->pool.alarm);
	ssize_t n = backend_fill(st->bc, backend_now_ms() + f->cfg->backend_timeout_ms);
	if (n > 0 || (n == 0 && close_ends && reply_eof(&f->reply) == 0))
		return true;
	if (n == 0)
		forward_abort(f, st->r, "the backend closed the connection in the middle of its reply");
	else if (errno == ETIMEDOUT)
		forward_abort(f, st->r, "no reply byte for %d s", f->cfg->backend_timeout_ms / 1000);
	else
		forward_abort(f, st->r, "reading the reply: %s", strerror(errno));
	return false;
}

/* A body of known length goes out from the read buffer as it is: no parser, no copy.
 * It ends exactly after `length` bytes; anything after them stays in the buffer, and the
 * connection is then not reused (forward_finish). */
static void forward_reply_length(struct forward *f, struct forward_state *st, int nh, uint64_t length)
{
	ps_request *r = st->r;
	struct backend_conn *bc = st->bc;
	int status = f->reply.status, rc;
	bool begun = false;
	for (;;) {
		size_t have = bc->len - bc->off;
		if (have >= length) {
			const char *at = bc->buf + bc->off;
			rc = begun ? ps_respond_last(r, at, (size_t)length)
			           : ps_respond(r, status, f->headers, (size_t)nh, at, (size_t)length);
			if (rc == PS_EINVAL && !begun) {
				forward_fail(f, r, 502, "a reply header the library refuses to send");
				return;
			}
			bc->off += (size_t)length;
			f->reply.complete = true;
			forward_finish(f, st);
			return;
		}
		if (!begun) {
			if (ps_respond_begin(r, status, f->headers, (size_t)nh, (int64_t)length) < 0) {
				forward_fail(f, r, 502, "a reply header the library refuses to send");
				return;
			}
			begun = true;
		}
		if (have > 0 && ps_respond_write(r, bc->buf + bc->off, have) < 0)
			return; /* the client went away */
		bc->off += have;
		length -= have;
		if (!forward_more(f, st, false))
			return;
	}
}

static void forward_reply(struct forward *f, struct forward_state *st)
{
	ps_request *r = st->r;
	struct backend_conn *bc = st->bc;
	struct reply *rp = &f->reply;
	size_t hl = (size_t)reply_head_length(bc->buf + bc->off, bc->len - bc->off);
	int nh = forward_reply_headers(f, rp->upgrade);
	bc->off += hl; /* the headers are copied: the buffer may move now */
	if (nh < 0) {
		forward_fail(f, r, 502, "reply headers too large");
		return;
	}
	if (rp->upgrade) {
		forward_upgrade(f, st, nh);
		return;
	}
	int status = rp->status, rc;
	int64_t length = rp->chunked || rp->content_length < 0 ? -1 : rp->content_length;
	if (!rp->has_body) {
		if (st->head_request || status == 304) {
			rc = ps_respond_begin(r, status, f->headers, (size_t)nh, length);
			if (rc == 0)
				rc = ps_respond_end(r);
		} else {
			rc = ps_respond(r, status, f->headers, (size_t)nh, NULL, 0);
		}
		if (rc == PS_EINVAL)
			forward_fail(f, r, 502, "a reply header the library refuses to send");
		forward_finish(f, st);
		return;
	}
	if (length >= 0) {
		forward_reply_length(f, st, nh, (uint64_t)length);
		return;
	}
	bool begun = false;
	for (;;) {
		f->body_len = 0;
		ssize_t used = reply_body(rp, bc->buf + bc->off, bc->len - bc->off);
		if (used < 0) {
			if (begun)
				forward_abort(f, r, "malformed reply body: %s", rp->why);
			else
				forward_fail(f, r, 502, "malformed reply body: %s", rp->why);
			return;
		}
		bc->off += (size_t)used;
		if (rp->complete) {
			rc = begun ? ps_respond_last(r, f->body, f->body_len)
			           : ps_respond(r, status, f->headers, (size_t)nh, f->body, f->body_len);
			if (rc == PS_EINVAL && !begun) {
				forward_fail(f, r, 502, "a reply header the library refuses to send");
				return;
			}
			forward_finish(f, st);
			return;
		}
		if (!begun) {
			rc = ps_respond_begin(r, status, f->headers, (size_t)nh, length);
			if (rc < 0) {
				forward_fail(f, r, 502, "a reply header the library refuses to send");
				return;
			}
			begun = true;
		}
		if (f->body_len > 0 && ps_respond_write(r, f->body, f->body_len) < 0)
			return; /* the client went away: nothing to tell it */
		if (!forward_more(f, st, true))
			return;
	}
}

/* ---------------------------------------------------------------- one request */

static bool forward_wants_upgrade(ps_request *r)
{
	if (ps_request_version(r) != 11 || !ps_request_header(r, "Upgrade"))
		return false;
	size_t nh = ps_request_header_count(r);
	ps_header h;
	for (size_t i = 0; i < nh && ps_request_header_at(r, i, &h) == 0; i++)
		if (name_is(h.name, "Connection") && list_has(h.value, "upgrade"))
			return true;
	return false;
}

/* target's process is gone or going, and the supervisor has not seen it yet: its connect
 * was refused, or reset before it was accepted, or a safe request's fresh connection was
 * closed without a reply byte (it died with the request in its accept queue). With other
 * processes of the app behind this proxy, target takes no request until it accepts again
 * (the supervisor's probe), and this one goes to another, as nginx's proxy_next_upstream
 * does: *other, held here. False when there is no other to try (errno kept). */
static bool forward_elsewhere(struct forward *f, struct backend_target **target,
                              struct backend_target **other)
{
	/* the config is the proxy's; only its targets' lock, counts and down flags change here */
	if (*other || !(*other = proxy_target_instead((struct proxy_config *)f->cfg, *target)))
		return false;
	*target = f->target = *other;
	return true;
}

static void forward_one_to(struct forward *f, ps_request *r, struct backend_target *target,
                           struct backend_target **other)
{
	const struct proxy_config *cfg = f->cfg;
	f->target = target;
	struct forward_state st;
	memset(&st, 0, sizeof(st));
	st.r = r;
	st.head_request = strcmp(ps_request_method(r), "HEAD") == 0;
	st.upgrade = forward_wants_upgrade(r);

	bool has_body = ps_request_has_body(r);
	int64_t length = ps_request_content_length(r);
	const char *expect = ps_request_header(r, "Expect");
	bool expect_continue =
	    has_body && ps_request_version(r) == 11 && expect && strcasecmp(expect, "100-continue") == 0;
	st.body_done = !has_body;
	size_t head_len = forward_build_head(f, r, has_body, length, st.upgrade);
	if (head_len == 0) {
		forward_fail(f, r, 500, "the request head is too large to forward");
		return;
	}

	enum forward_head hr = HEAD_FAILED;
	for (int attempt = 0; attempt < 2; attempt++) {
		int64_t deadline = backend_now_ms() + cfg->backend_timeout_ms;
		st.bc = backend_get(&f->pool, target, deadline);
		if (!st.bc && (errno == ECONNREFUSED || errno == ENOENT || errno == ECONNRESET) &&
		    forward_elsewhere(f, &target, other)) {
			attempt--;
			continue;
		}
		if (!st.bc) {
			if (errno == ETIMEDOUT)
				forward_fail(f, r, 504, "connect timed out after %d s",
				             cfg->backend_timeout_ms / 1000);
			else
				forward_fail(f, r, 502, "connect failed: %s", strerror(errno));
			return;
		}
		st.got_bytes = st.retry = false;
		struct iovec iov = {f->head, head_len};
		if (backend_send(st.bc, &iov, 1, deadline, false) < 0) {
			st.retry = st.bc->reused;
			st.fail_status = errno == ETIMEDOUT ? 504 : 502;
			snprintf(st.why, sizeof(st.why), "sending the request head: %s", strerror(errno));
			hr = HEAD_FAILED;
		} else {
			hr = HEAD_NOT_YET;
			if (expect_continue) {
				int64_t soon = backend_now_ms() + FORWARD_EXPECT_WAIT_MS;
				hr = forward_read_head(f, &st, soon < deadline ? soon : deadline,
				                       soon < deadline, true);
			}
			if (has_body && (hr == HEAD_NOT_YET || hr == HEAD_CONTINUE)) {
				enum forward_body b = forward_body(f, &st, length < 0);
				if (b == BODY_CLIENT_FAILED) {
					forward_abort(f, r, "%s", st.why);
					backend_drop(st.bc);
					return;
				}
				/* a backend that failed while taking the body may still have answered */
			}
			if (hr == HEAD_NOT_YET || hr == HEAD_CONTINUE)
				hr = forward_read_head(f, &st, backend_now_ms() + cfg->backend_timeout_ms,
				                       false, false);
		}
		if (hr == HEAD_FAILED && !st.bc->reused && !st.got_bytes && st.fail_status == 502 &&
		    forward_batchable(r) && forward_elsewhere(f, &target, other)) {
			backend_drop(st.bc);
			st.bc = NULL;
			attempt--;
			continue;
		}
		if (hr != HEAD_FAILED || !st.retry || attempt == 1)
			break;
		backend_drop(st.bc); /* a pooled connection the backend had closed meanwhile */
		st.bc = NULL;
	}
	if (hr == HEAD_FAILED) {
		forward_fail(f, r, st.fail_status ? st.fail_status : 502, "%s", st.why);
		backend_drop(st.bc);
		return;
	}
	forward_reply(f, &st);
	if (st.bc)
		backend_drop(st.bc);
}

static void forward_one(struct forward *f, ps_request *r, struct backend_target *target)
{
	struct backend_target *other = NULL;
	forward_one_to(f, r, target, &other);
	if (other) {
		f->target = target; /* a batch's next members go where it was sent */
		proxy_target_release(other);
	}
}

void forward_request(struct forward *f, ps_request *r, struct backend_target *target)
{
	if (f->pool.alarm.fn)
		f->pool.alarm.at = backend_now_ms() + FORWARD_LONG_MS;
	forward_one(f, r, target);
	f->pool.alarm.at = 0;
}

/* ---------------------------------------------------------------- a batch */

/* Where a member of a batch is. */
enum forward_stage {
	STAGE_WAITING, /* its head went to the backend; no reply head yet */
	STAGE_SERIAL,  /* to be finished on its own: a reply to stream, a 1xx, a failure */
	STAGE_UNSENT,  /* not sent (a failed connect, a request with a body): forward_one */
	STAGE_DONE,    /* answered, or given back */
};

struct forward_member {
	struct forward_state st;
	enum forward_stage stage;
};

bool forward_batchable(ps_request *r)
{
	const char *m = ps_request_method(r);
	return (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) && !ps_request_has_body(r) &&
	       !forward_wants_upgrade(r);
}

/* Sends m's head on bc (NULL: no connection could be had): STAGE_WAITING, else
 * STAGE_UNSENT (the request is then forwarded from the start on its own: its errors are
 * reported there). */
static void forward_member_send(struct forward *f, struct forward_member *m, ps_request *r,
                                struct backend_conn *bc)
{
	memset(&m->st, 0, sizeof(m->st));
	m->st.r = r;
	m->stage = STAGE_UNSENT;
	if (!bc)
		return;
	m->st.bc = bc;
	m->st.head_request = strcmp(ps_request_method(r), "HEAD") == 0;
	m->st.body_done = true;
	size_t head_len = forward_build_head(f, r, false, 0, false);
	struct iovec iov = {f->head, head_len};
	if (head_len == 0 ||
	    backend_send(bc, &iov, 1, backend_now_ms() + f->cfg->backend_timeout_ms, false) < 0) {
		backend_drop(bc);
		m->st.bc = NULL;
		return;
	}
	m->stage = STAGE_WAITING;
}

/* Answers m when its whole reply is in its buffer (then no wait on the backend is
 * needed: STAGE_DONE); a reply head that came without all its body (a stream, a large
 * body) or that needs more than an answer (1xx) makes it STAGE_SERIAL; no reply head
 * yet leaves it waiting. */
static void forward_member_try(struct forward *f, struct forward_member *m)
{
	struct backend_conn *bc = m->st.bc;
	struct reply *rp = &f->reply;
	ssize_t hl = reply_head_length(bc->buf + bc->off, bc->len - bc->off);
	if (hl == 0)
		return;
	m->stage = STAGE_SERIAL;
	if (hl < 0 ||
	    reply_head(rp, bc->buf + bc->off, (size_t)hl, m->st.head_request, forward_on_body, f) < 0)
		return; /* forward_read_head says why */
	if (rp->status < 200 || rp->upgrade)
		return;
	if (rp->has_body && (rp->chunked || rp->content_length < 0 ||
	                     bc->len - bc->off - (size_t)hl < (uint64_t)rp->content_length))
		return;
	forward_reply(f, &m->st);
	backend_drop(m->st.bc); /* NULL when forward_finish pooled it */
	m->st.bc = NULL;
	m->stage = STAGE_DONE;
}

/* Reads what the backend sent for the members whose reply head is missing, answering
 * each whose reply is whole, until none is missing or until long_at. The first time it
 * reads before it polls, last member first: the backend answers in order, and has often
 * answered already (backend_fill says why); the first member with nothing yet ends those
 * reads, so a backend that has not run yet costs one read for nothing, not one each. */
static void forward_collect(struct forward *f, struct forward_member *m, int n, int64_t long_at)
{
	for (bool first = true;; first = false) {
		struct pollfd pf[FORWARD_BATCH_MAX];
		int who[FORWARD_BATCH_MAX], np = 0;
		for (int i = n - 1; i >= 0; i--) {
			if (m[i].stage == STAGE_WAITING)
				forward_member_try(f, &m[i]);
			if (m[i].stage == STAGE_WAITING) {
				pf[np] = (struct pollfd){m[i].st.bc->fd, POLLIN, first ? POLLIN : 0};
				who[np++] = i;
			}
		}
		int64_t left = long_at - backend_now_ms();
		if (np == 0 || left <= 0)
			return;
		if (!first && poll(pf, (nfds_t)np, (int)left) < 0 && errno != EINTR)
			return;
		for (int j = 0; j < np; j++) {
			if (!pf[j].revents)
				continue;
			struct forward_member *x = &m[who[j]];
			ssize_t got = backend_fill_now(x->st.bc);
			if (got > 0)
				x->st.got_bytes = true;
			else if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				x->stage =
				    STAGE_SERIAL; /* a close or an error: forward_read_head reports it */
			else if (first)
				break; /* nothing yet: the ones before it are polled */
		}
	}
}

/* Finishes m on its own: its reply head read (with the retry of forward_one when a pooled
 * connection had been closed meanwhile), then its reply passed on as it comes. */
static void forward_member_finish(struct forward *f, struct forward_member *m)
{
	struct forward_state *st = &m->st;
	ps_request *r = st->r;
	if (m->stage == STAGE_UNSENT) {
		forward_one(f, r, f->target);
		return;
	}
	enum forward_head hr =
	    forward_read_head(f, st, backend_now_ms() + f->cfg->backend_timeout_ms, false, false);
	if (hr == HEAD_FAILED) {
		backend_drop(st->bc);
		st->bc = NULL;
		if (st->retry)
			forward_one(f, r, f->target);
		else
			forward_fail(f, r, st->fail_status ? st->fail_status : 502, "%s", st->why);
		return;
	}
	forward_reply(f, st);
	backend_drop(st->bc);
	st->bc = NULL;
}

bool forward_batching(const struct forward *f)
{
	return f->solo_until == 0 || backend_now_ms() >= f->solo_until;
}

void forward_give_back_rest(struct forward *f)
{
	for (int i = f->batch_next; i < f->batch_n; i++) {
		struct forward_member *m = &f->batch[i];
		if (m->stage == STAGE_DONE || ps_request_give_back(f->batch_rs[i]) < 0)
			continue; /* done, or it must stay (an older daemon): finished here in turn */
		backend_drop(m->st.bc);
		m->st.bc = NULL;
		f->batch_rs[i] = NULL;
		m->stage = STAGE_DONE;
	}
}

void forward_batch(struct forward *f, ps_request **rs, int n, struct backend_target *target)
{
	struct forward_member m[FORWARD_BATCH_MAX];
	struct backend_conn *bc[FORWARD_BATCH_MAX];
	f->target = target;
	int sendable = 0; /* the batchable ones come first (proxy.c) */
	while (sendable < n && forward_batchable(rs[sendable]))
		sendable++;
	/* connects that do not finish by long_at leave their members unsent: finished in turn
	 * below, under the alarm, not holding up the others */
	int64_t long_at = backend_now_ms() + FORWARD_LONG_MS;
	int got = backend_get_n(&f->pool, target, long_at, bc, sendable);
	for (int i = 0; i < n; i++)
		forward_member_send(f, &m[i], rs[i], i < got ? bc[i] : NULL);
	forward_collect(f, m, n, long_at);
	for (int i = 0; i < n; i++)
		if (m[i].stage == STAGE_WAITING || (m[i].stage == STAGE_SERIAL && m[i].st.got_bytes))
			f->solo_until = backend_now_ms() + FORWARD_SOLO_MS; /* a reply not whole at once */

	/* What is left waits on the backend or has a reply to pass on as it comes: each is
	 * finished in turn, and once the batch is long (FORWARD_LONG_MS from its start: a slow
	 * backend, a stream, a slow transfer) the alarm gives back every member not begun yet
	 * (forward_give_back_rest, from proxy.c's alarm), so none waits behind it. */
	f->batch = m;
	f->batch_rs = rs;
	f->batch_n = n;
	if (f->pool.alarm.fn)
		f->pool.alarm.at = long_at;
	for (int i = 0; i < n; i++) {
		if (m[i].stage == STAGE_DONE)
			continue;
		f->batch_next = i + 1;
		forward_member_finish(f, &m[i]);
	}
	f->batch = NULL;
	f->batch_n = f->batch_next = 0;
	f->pool.alarm.at = 0;
}
