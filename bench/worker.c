/* worker.c: the benchmark's application, serving /13, /16k and /1m either directly on a port (the "direct" reference of BASELINE.md, over TLS with GnuTLS when given a certificate) or as a portshare worker. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "portshare.h"

/* ---- the fixed responses, shared by both modes ---- */

enum { BODY_13, BODY_16K, BODY_1M, BODY_404, NBODIES };

struct body {
	const char *path;
	char *data;
	size_t len;
	int status;
};

static struct body bodies[NBODIES] = {
	{"/13", NULL, 13, 200},
	{"/16k", NULL, 16 * 1024, 200},
	{"/1m", NULL, 1024 * 1024, 200},
	{NULL, NULL, 10, 404},
};

static void bodies_init(void)
{
	for (int i = 0; i < NBODIES; i++) {
		struct body *b = &bodies[i];
		b->data = malloc(b->len);
		if (!b->data) {
			perror("malloc");
			exit(1);
		}
		if (i == BODY_13)
			memcpy(b->data, "Hello, World!", 13);
		else if (i == BODY_404)
			memcpy(b->data, "not found\n", 10);
		else
			for (size_t k = 0; k < b->len; k++)
				b->data[k] = (k % 64 == 63) ? '\n' : (char)('a' + k % 26);
	}
}

/* The body for a path (the query string ignored). */
static int body_for(const char *path, size_t len)
{
	const char *q = memchr(path, '?', len);
	if (q)
		len = (size_t)(q - path);
	for (int i = 0; i < BODY_404; i++)
		if (strlen(bodies[i].path) == len && memcmp(bodies[i].path, path, len) == 0)
			return i;
	return BODY_404;
}

/* ---- direct mode: a single-threaded epoll HTTP/1.1 server ---- */

#define RBUF_SIZE (64 * 1024)
#define OBUF_SIZE (64 * 1024)
#define MAX_HEAD 16384
#define MAX_BATCH 256      /* responses gathered from one read */
#define SMALL_BODY 512     /* bodies up to this size are copied next to their head */

struct conn {
	int fd;
	char *in;          /* bytes read and not yet used (a partial request), or NULL */
	size_t in_len;
	size_t skip;       /* request body bytes still to discard */
	struct iovec *out; /* output not yet sent (after a short write), or NULL */
	int out_n, out_i;
	char *out_mem;     /* the copies of the head bytes those iovecs point at */
	bool close_after;  /* shut down once out is sent */
	bool dead;
	gnutls_session_t tls; /* direct over TLS: the GnuTLS session, else NULL */
	bool handshaking;     /* ... whose handshake is not over */
	bool tls_again;       /* ... with out[0] partly in a record GnuTLS still has to send */
	bool want_out;        /* ... whose handshake waits for EPOLLOUT */
};

/* Direct over TLS: the versions and ciphers the portshare daemon offers (tls.c), and its
 * use of tickets; X25519 first, the key share OpenSSL's clients (wrk, curl) send, so that
 * no handshake needs a HelloRetryRequest (as with nginx, HAProxy and h2o). */
#define TLS_PRIORITY                                                                         \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:" \
	"+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"    \
	"%SERVER_PRECEDENCE"

static gnutls_certificate_credentials_t tls_cred;
static gnutls_priority_t tls_priority;
static gnutls_datum_t tls_ticket_key;
static const gnutls_datum_t alpn_http11 = {(unsigned char *)"http/1.1", 8};

static char rbuf[RBUF_SIZE];
static char obuf[OBUF_SIZE];
static char date_hdr[64]; /* "Date: ...\r\n" */
static time_t date_sec = -1;

static void date_update(void)
{
	time_t now = time(NULL);
	if (now == date_sec)
		return;
	date_sec = now;
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date_hdr, sizeof(date_hdr), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

_Noreturn static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void conn_free(int ep, struct conn *c)
{
	if (c->tls)
		gnutls_deinit(c->tls);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c->out_mem);
	free(c);
}

/* Case-insensitive: does the header value [v, v+n) hold the token tok? */
static bool value_has(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);
	for (size_t i = 0; i + tl <= n; i++)
		if (strncasecmp(v + i, tok, tl) == 0)
			return true;
	return false;
}

struct parsed {
	bool head;        /* HEAD: no body */
	bool http10;      /* an HTTP/1.0 request */
	bool close;       /* this is the last response */
	int body;         /* BODY_* */
	int status;       /* 0: from the body; else an error status (400, 405, 431, 501) */
	size_t head_len;  /* bytes of the request head */
	size_t body_len;  /* Content-Length of the request */
};

/* Parses one request head from buf[0..len). Returns 1 with *p filled, 0 when more
 * bytes are needed, -1 on a request that cannot be framed (answered, then closed). */
static int parse_request(const char *buf, size_t len, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	const char *end = NULL;
	for (size_t i = 0; i + 3 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			end = buf + i;
			break;
		}
	if (!end) {
		if (len >= MAX_HEAD) {
			p->status = 431;
			p->close = true;
			return -1;
		}
		return 0;
	}
	p->head_len = (size_t)(end - buf) + 4;
	const char *line_end = memchr(buf, '\r', (size_t)(end - buf) + 1);
	const char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || line_end - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1')) {
		p->status = 400;
		p->close = true;
		return -1;
	}
	bool http10 = sp2[8] == '0';
	p->http10 = http10;
	size_t mlen = (size_t)(sp1 - buf);
	if (mlen == 4 && memcmp(buf, "HEAD", 4) == 0)
		p->head = true;
	else if (!(mlen == 3 && memcmp(buf, "GET", 3) == 0))
		p->status = 405;
	p->body = body_for(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	bool ka = !http10, te = false;
	for (const char *l = line_end + 2; l < end;) {
		const char *le = memchr(l, '\r', (size_t)(end - l) + 1);
		const char *colon = memchr(l, ':', (size_t)(le - l));
		if (colon) {
			size_t nl = (size_t)(colon - l);
			const char *v = colon + 1;
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			size_t vl = (size_t)(le - v);
			if (nl == 10 && strncasecmp(l, "connection", 10) == 0) {
				if (value_has(v, vl, "close"))
					ka = false;
				else if (value_has(v, vl, "keep-alive"))
					ka = true;
			} else if (nl == 14 && strncasecmp(l, "content-length", 14) == 0) {
				p->body_len = strtoull(v, NULL, 10);
			} else if (nl == 17 && strncasecmp(l, "transfer-encoding", 17) == 0) {
				te = true;
			}
		}
		l = le + 2;
	}
	p->close = !ka;
	if (te) { /* chunked request bodies are not part of the benchmark */
		p->status = 501;
		p->close = true;
		return -1;
	}
	return 1;
}

static const char *status_line(int status)
{
	switch (status) {
	case 200: return "HTTP/1.1 200 OK\r\n";
	case 404: return "HTTP/1.1 404 Not Found\r\n";
	case 405: return "HTTP/1.1 405 Method Not Allowed\r\n";
	case 431: return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
	case 501: return "HTTP/1.1 501 Not Implemented\r\n";
	default: return "HTTP/1.1 400 Bad Request\r\n";
	}
}

struct batch {
	struct iovec iov[2 * MAX_BATCH + 2];
	int n;
	size_t used; /* bytes of obuf */
};

static bool batch_full(const struct batch *b)
{
	return b->n + 2 > 2 * MAX_BATCH || b->used + 512 + SMALL_BODY > OBUF_SIZE;
}

/* Appends one response to the batch: its head (and a small body) copied into obuf,
 * a big body pointed at where it lies. */
static void batch_add(struct batch *b, const struct parsed *p)
{
	int status = p->status ? p->status : bodies[p->body].status;
	const struct body *body = p->status ? &bodies[BODY_404] : &bodies[p->body];
	char *h = obuf + b->used;
	int n = snprintf(h, OBUF_SIZE - b->used, "%s%sContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
	                 status_line(status), date_hdr, body->len,
	                 p->close ? "Connection: close\r\n" : p->http10 ? "Connection: keep-alive\r\n" : "");
	size_t hl = (size_t)n;
	bool with_body = !p->head;
	if (with_body && body->len <= SMALL_BODY) {
		memcpy(h + hl, body->data, body->len);
		hl += body->len;
		with_body = false;
	}
	/* merge with the previous iovec when both lie in obuf back to back */
	if (b->n > 0 && (char *)b->iov[b->n - 1].iov_base + b->iov[b->n - 1].iov_len == h)
		b->iov[b->n - 1].iov_len += hl;
	else
		b->iov[b->n++] = (struct iovec){h, hl};
	b->used += hl;
	if (with_body)
		b->iov[b->n++] = (struct iovec){body->data, body->len};
}

static void set_events(int ep, struct conn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
		die("epoll_ctl");
}

/* Moves past w bytes sent from iov[*i..n): whole iovecs are skipped, the next one is cut. */
static void iov_advance(struct iovec *iov, int n, int *i, size_t w)
{
	while (*i < n && w >= iov[*i].iov_len)
		w -= iov[(*i)++].iov_len;
	if (*i < n) {
		iov[*i].iov_base = (char *)iov[*i].iov_base + w;
		iov[*i].iov_len -= w;
	}
}

/* Sends iov[0..n) on a plain connection; returns the index of the first iovec not wholly
 * sent (n when all of it left, the start of iov[i] cut off what did), -1 when the
 * connection is dead. The last response of a closing connection goes with MSG_MORE, so
 * that the FIN from shutdown() leaves in the same segment. */
static int plain_send(struct conn *c, struct iovec *iov, int n)
{
	int i = 0;
	while (i < n) {
		struct msghdr m = {.msg_iov = iov + i, .msg_iovlen = (size_t)(n - i > IOV_MAX ? IOV_MAX : n - i)};
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | (c->close_after ? MSG_MORE : 0));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
		iov_advance(iov, n, &i, (size_t)w);
	}
	return i;
}

/* The same over TLS: one record per gnutls_record_send (GnuTLS cuts a longer iovec at the
 * record size). When the socket is full GnuTLS keeps the record it sealed from the start
 * of iov[i] (tls_again), and the next call finishes that record before anything else. */
static int tls_send(struct conn *c, struct iovec *iov, int n)
{
	int i = 0;
	while (i < n) {
		ssize_t w = c->tls_again ? gnutls_record_send(c->tls, NULL, 0)
		                         : gnutls_record_send(c->tls, iov[i].iov_base, iov[i].iov_len);
		if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
			c->tls_again = true;
			break;
		}
		c->tls_again = false;
		if (w < 0)
			return -1;
		iov_advance(iov, n, &i, (size_t)w);
	}
	return i;
}

/* Sends iov[0..n): returns true when all of it left; else keeps the rest in c (copying
 * the parts that point into obuf) and waits for EPOLLOUT. */
static bool send_iov(int ep, struct conn *c, struct iovec *iov, int n, bool from_obuf)
{
	int i = c->tls ? tls_send(c, iov, n) : plain_send(c, iov, n);
	if (i < 0) {
		c->dead = true;
		return false;
	}
	if (i == n)
		return true;
	/* keep the rest */
	struct iovec *rest = malloc(sizeof(*rest) * (size_t)(n - i));
	if (!rest)
		die("malloc");
	size_t copy = 0;
	for (int k = i; k < n; k++)
		if (from_obuf && (char *)iov[k].iov_base >= obuf && (char *)iov[k].iov_base < obuf + OBUF_SIZE)
			copy += iov[k].iov_len;
	char *mem = copy ? malloc(copy) : NULL;
	if (copy && !mem)
		die("malloc");
	size_t off = 0;
	for (int k = i; k < n; k++) {
		rest[k - i] = iov[k];
		if (from_obuf && (char *)iov[k].iov_base >= obuf && (char *)iov[k].iov_base < obuf + OBUF_SIZE) {
			memcpy(mem + off, iov[k].iov_base, iov[k].iov_len);
			rest[k - i].iov_base = mem + off;
			off += iov[k].iov_len;
		}
	}
	c->out = rest;
	c->out_n = n - i;
	c->out_i = 0;
	c->out_mem = mem;
	set_events(ep, c, EPOLLOUT);
	return false;
}

static void conn_finish_close(int ep, struct conn *c)
{
	if (c->tls) /* close_notify, sent with MSG_MORE like the response before it */
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);
	shutdown(c->fd, SHUT_WR);
	conn_free(ep, c);
}

/* Parses every complete request in buf[0..len) (up to MAX_BATCH), answers them in one
 * send, and keeps an incomplete rest. Returns false when the connection is gone. */
static bool serve_bytes(int ep, struct conn *c, char *buf, size_t len)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		struct batch b;
		b.n = 0;
		b.used = 0;
		size_t off = 0;
		bool closing = false;
		while (off < len && !batch_full(&b) && !closing) {
			if (c->skip) {
				size_t s = c->skip < len - off ? c->skip : len - off;
				c->skip -= s;
				off += s;
				continue;
			}
			struct parsed p;
			int rc = parse_request(buf + off, len - off, &p);
			if (rc == 0)
				break;
			if (rc > 0) {
				off += p.head_len;
				c->skip = p.body_len;
			}
			batch_add(&b, &p);
			if (rc < 0 || p.close)
				closing = true;
		}
		if (closing) {
			c->close_after = true;
			off = len; /* whatever follows a closing request is dropped */
		}
		if (b.n > 0 && !send_iov(ep, c, b.iov, b.n, true)) {
			if (c->dead) {
				conn_free(ep, c);
				return false;
			}
			/* output pending: keep the unread rest for later */
		} else if (closing) {
			conn_finish_close(ep, c);
			return false;
		}
		size_t rest = len - off;
		if (c->out || rest == 0 || b.n == 0) {
			/* keep an incomplete request (or the rest behind pending output) */
			if (rest > 0) {
				char *keep = malloc(rest);
				if (!keep)
					die("malloc");
				memcpy(keep, buf + off, rest);
				free(c->in);
				c->in = keep;
				c->in_len = rest;
			}
			return true;
		}
		buf += off;
		len = rest;
	}
	return true;
}

/* Reads like read(2) through the connection's TLS session, if any: -1 with EAGAIN when
 * there is nothing to read yet, 0 at the end (close_notify, FIN, or a TLS error). */
static ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	if (!c->tls)
		return read(c->fd, buf, len);
	ssize_t n = gnutls_record_recv(c->tls, buf, len);
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
		errno = EAGAIN;
		return -1;
	}
	return n < 0 ? 0 : n;
}

/* Drives a TLS handshake: 1 when it is over, 0 while it waits for the socket, -1 when it
 * failed (the connection is freed). */
static int tls_handshake(int ep, struct conn *c)
{
	int rc = gnutls_handshake(c->tls);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		bool out = gnutls_record_get_direction(c->tls) == 1;
		if (out != c->want_out) {
			set_events(ep, c, out ? EPOLLOUT : EPOLLIN);
			c->want_out = out;
		}
		return 0;
	}
	if (rc < 0) {
		conn_free(ep, c);
		return -1;
	}
	c->handshaking = false;
	if (c->want_out) {
		set_events(ep, c, EPOLLIN);
		c->want_out = false;
	}
	return 1;
}

static void on_readable(int ep, struct conn *c)
{
	if (c->handshaking && tls_handshake(ep, c) <= 0)
		return;
	/* GnuTLS reads ahead: records it holds wake no epoll_wait, so read on while it has some */
	for (int rounds = 0; rounds < 64; rounds++) {
		size_t have = 0;
		if (c->in) {
			memcpy(rbuf, c->in, c->in_len);
			have = c->in_len;
			free(c->in);
			c->in = NULL;
			c->in_len = 0;
		}
		ssize_t n = conn_read(c, rbuf + have, sizeof(rbuf) - have);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (have) { /* put it back */
				c->in = malloc(have);
				if (!c->in)
					die("malloc");
				memcpy(c->in, rbuf, have);
				c->in_len = have;
			}
			return;
		}
		if (n <= 0) {
			conn_free(ep, c);
			return;
		}
		date_update();
		if (!serve_bytes(ep, c, rbuf, have + (size_t)n))
			return;
		if (!c->tls || c->out || !gnutls_record_check_pending(c->tls))
			return;
	}
}

static void on_writable(int ep, struct conn *c)
{
	struct iovec *iov = c->out;
	char *mem = c->out_mem;
	int n = c->out_n;
	c->out = NULL;
	c->out_mem = NULL;
	if (!send_iov(ep, c, iov, n, false)) {
		if (c->dead) {
			free(iov);
			free(mem);
			conn_free(ep, c);
			return;
		}
		/* send_iov kept a new copy of the rest (the arrays pointed into mem) */
		if (c->out_mem == NULL) {
			c->out_mem = mem; /* rest points into mem: keep it */
			mem = NULL;
		}
		free(iov);
		free(mem);
		return;
	}
	free(iov);
	free(mem);
	if (c->close_after) {
		conn_finish_close(ep, c);
		return;
	}
	set_events(ep, c, EPOLLIN);
	if (c->in) { /* requests read behind the pending output */
		size_t len = c->in_len;
		memcpy(rbuf, c->in, len);
		free(c->in);
		c->in = NULL;
		c->in_len = 0;
		date_update();
		if (!serve_bytes(ep, c, rbuf, len))
			return;
	}
	if (c->tls && !c->out && gnutls_record_check_pending(c->tls))
		on_readable(ep, c);
}

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct conn *c = p;
	ssize_t n = recv(c->fd, buf, len, 0);
	if (n < 0)
		gnutls_transport_set_errno(c->tls, errno);
	return n;
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct conn *c = p;
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | (c->close_after ? MSG_MORE : 0));
	if (n < 0)
		gnutls_transport_set_errno(c->tls, errno);
	return n;
}

/* The certificate and key of direct mode over TLS, and a ticket key (the daemon issues
 * tickets too). */
static void tls_setup(const char *cert, const char *key)
{
	int rc;
	const char *pos = NULL;
	if ((rc = gnutls_certificate_allocate_credentials(&tls_cred)) < 0 ||
	    (rc = gnutls_certificate_set_x509_key_file2(tls_cred, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0 ||
	    (rc = gnutls_priority_init(&tls_priority, TLS_PRIORITY, &pos)) < 0 ||
	    (rc = gnutls_session_ticket_key_generate(&tls_ticket_key)) < 0) {
		fprintf(stderr, "worker: TLS with %s and %s: %s\n", cert, key, gnutls_strerror(rc));
		exit(1);
	}
}

/* A new connection's TLS session: the handshake starts once the ClientHello is in. */
static void tls_conn_start(struct conn *c)
{
	if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0)
		die("gnutls_init");
	gnutls_priority_set(c->tls, tls_priority);
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, tls_cred);
	gnutls_session_ticket_enable_server(c->tls, &tls_ticket_key);
	gnutls_alpn_set_protocols(c->tls, &alpn_http11, 1, GNUTLS_ALPN_SERVER_PRECEDENCE);
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_pull_function(c->tls, tls_pull);
	gnutls_transport_set_push_function(c->tls, tls_push);
	c->handshaking = true;
}

static int run_direct(int port)
{
	raise_nofile(1 << 20);
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ls < 0)
		die("socket");
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (listen(ls, 4096) < 0)
		die("listen");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e) < 0)
		die("epoll_ctl");
	printf("ready direct%s 127.0.0.1:%d\n", tls_cred ? " tls" : "", port);
	fflush(stdout);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				for (int k = 0; k < 64; k++) {
					int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c = calloc(1, sizeof(*c));
					if (!c)
						die("calloc");
					c->fd = fd;
					if (tls_cred)
						tls_conn_start(c);
					struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce) < 0)
						die("epoll_ctl");
				}
				continue;
			}
			if (c->out) /* output pending: EPOLLOUT, or an error or hang-up */
				on_writable(ep, c);
			else
				on_readable(ep, c);
		}
	}
	return 0;
}

/* ---- portshare mode ---- */

static int run_portshare(const char *sock, const char *prefix, const char *queue, const char *join, long extra)
{
	ps_client *c;
	int rc = ps_connect(sock, &c);
	if (rc < 0) {
		fprintf(stderr, "worker: ps_connect: %s\n", ps_strerror(rc));
		return 1;
	}
	ps_queue *q;
	if (join) {
		rc = ps_queue_open(c, join, &q);
		if (rc < 0) {
			fprintf(stderr, "worker: ps_queue_open %s: %s %s\n", join, ps_strerror(rc), ps_client_message(c));
			return 1;
		}
	} else {
		rc = ps_queue_create(c, queue, NULL, &q);
		if (rc < 0) {
			fprintf(stderr, "worker: ps_queue_create %s: %s %s\n", queue, ps_strerror(rc), ps_client_message(c));
			return 1;
		}
		rc = ps_queue_add_url(q, prefix);
		if (rc < 0) {
			fprintf(stderr, "worker: add %s: %s %s\n", prefix, ps_strerror(rc), ps_client_message(c));
			return 1;
		}
		/* the extra prefixes: PREFIX without its trailing '/', then p/NNNNN/ */
		size_t pl = strlen(prefix);
		while (pl > 0 && prefix[pl - 1] == '/')
			pl--;
		for (long i = 0; i < extra; i++) {
			char url[512];
			snprintf(url, sizeof(url), "%.*s/p/%05ld/", (int)pl, prefix, i);
			rc = ps_queue_add_url(q, url);
			if (rc < 0) {
				fprintf(stderr, "worker: add %s: %s %s\n", url, ps_strerror(rc), ps_client_message(c));
				return 1;
			}
		}
	}
	printf("ready portshare %s%s (%ld extra prefixes)\n", join ? "joined " : "", join ? join : prefix, extra);
	fflush(stdout);
	static const ps_header type = {"Content-Type", "text/plain"};
	for (;;) {
		ps_request *r;
		rc = ps_receive(q, &r, -1);
		if (rc == PS_ESYSTEM && errno == EINTR)
			continue;
		if (rc < 0) {
			fprintf(stderr, "worker: ps_receive: %s\n", ps_strerror(rc));
			return 1;
		}
		const char *path = ps_request_path(r);
		const struct body *b = &bodies[body_for(path, strlen(path))];
		rc = ps_respond(r, b->status, &type, 1, b->data, b->len);
		if (rc < 0 && rc != PS_ECLOSED)
			fprintf(stderr, "worker: ps_respond: %s\n", ps_strerror(rc));
		ps_request_free(r);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: worker --direct PORT [--tls-cert FILE --tls-key FILE]\n"
	                "       worker --portshare PREFIX [--socket PATH] [--queue NAME] [--prefixes N]\n"
	                "       worker --join NAME [--socket PATH]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *prefix = NULL, *queue = "bench", *join = NULL, *cert = NULL, *key = NULL;
	long port = -1, extra = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "--direct") == 0)
			port = strtol(v, NULL, 10);
		else if (strcmp(a, "--portshare") == 0)
			prefix = v;
		else if (strcmp(a, "--socket") == 0)
			sock = v;
		else if (strcmp(a, "--queue") == 0)
			queue = v;
		else if (strcmp(a, "--join") == 0)
			join = v;
		else if (strcmp(a, "--prefixes") == 0)
			extra = strtol(v, NULL, 10);
		else if (strcmp(a, "--tls-cert") == 0)
			cert = v;
		else if (strcmp(a, "--tls-key") == 0)
			key = v;
		else
			usage();
	}
	bodies_init();
	if ((cert != NULL) != (key != NULL) || (cert && port < 0))
		usage();
	if (cert)
		tls_setup(cert, key);
	if (port > 0 && port < 65536 && !prefix && !join)
		return run_direct((int)port);
	if ((prefix != NULL) != (join != NULL) && port < 0 && extra >= 0)
		return run_portshare(sock, prefix, queue, join, extra);
	usage();
	return 2;
}
