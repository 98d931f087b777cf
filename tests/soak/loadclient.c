/* loadclient.c: the soak test's own HTTP/1.1 load client: keep-alive, close and pipelined
 * connections to hello and echo apps, every request counted as answered, closed cleanly
 * or lost, and one machine-readable line of counts at the end (tests/soak.sh). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TARGETS_MAX 8
#define CONNS_MAX 256
#define BATCH_MAX 4            /* requests written together on a pipelined connection */
#define BODY_POOL 65536        /* request bodies are slices of one random buffer */
#define BODY_MAX 16384         /* largest request body */
#define RESPONSE_MAX (1 << 18) /* a bigger response is a protocol error here */
#define PROGRESS_TIMEOUT 15.0  /* seconds without a byte while a request waits: lost */
#define DRAIN_TIMEOUT 20.0     /* after --seconds, how long outstanding requests may take */
#define LOSS_REPORTS 20        /* lost requests described on stderr, at most */
#define STATUS_MAX 600

enum target_kind { TARGET_HELLO, TARGET_ECHO };

/* An app behind the daemon: hello answers "TEXT pid=N path=PATH\n", echo returns the body. */
struct target {
	const char *prefix;
	const char *text;
	enum target_kind kind;
};

enum conn_mode { MODE_KEEPALIVE, MODE_CLOSE, MODE_PIPELINE };
static const char *const mode_names[] = {"keep-alive", "close", "pipelined"};

struct request {
	const struct target *t;
	char path[96];
	bool post;
	const char *body; /* a slice of the body pool; the expected echo */
	size_t body_len;
};

/* How a connection ended, for the requests still waiting on it. */
enum conn_end { END_EOF, END_RESET, END_TIMEOUT, END_PROTOCOL };

struct conn {
	bool used;
	int fd;
	unsigned id;
	unsigned port; /* our local port: the daemon's error log names the client by it */
	enum conn_mode mode;
	bool connecting;
	bool want_out; /* registered for EPOLLOUT */
	int batches_left;
	struct request batch[BATCH_MAX];
	int nbatch;         /* requests written in the current batch */
	int nanswered;      /* of them answered */
	unsigned completed; /* responses completed on this connection */
	bool close_announced;
	char out[BATCH_MAX * (BODY_MAX * 2 + 512)];
	size_t out_len, out_off;
	char *in;
	size_t in_len, in_cap;
	double wake_at;     /* > 0: the next batch waits until then (think time) */
	double progress_at; /* last byte received or batch written */
};

/* Every request sent lands in exactly one of answered, closed_* or lost_*. */
struct counts {
	unsigned long sent, answered, closed_idle, closed_after_close;
	unsigned long lost_reset, lost_eof, lost_truncated, lost_timeout, lost_badbody;
	unsigned long status[STATUS_MAX];
	/* connection events, as the daemon's error log counts them (one line per connection) */
	unsigned long conns, connect_failed, idle_closes, idle_resets, reset_conns, broken_closes, bad_extra;
};

static struct {
	struct sockaddr_in addr;
	char host[64];
	struct target targets[TARGETS_MAX];
	int ntargets;
	int nconns;
	double end_at;
	bool stopping;
	int epfd;
	uint64_t rng;
	char pool[BODY_POOL];
	char scratch[RESPONSE_MAX];
	struct conn conns[CONNS_MAX];
	unsigned next_id;
	struct counts n;
	unsigned reports;
} lc;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t rnd(void)
{
	/* xorshift64*: reproducible with --seed */
	lc.rng ^= lc.rng >> 12;
	lc.rng ^= lc.rng << 25;
	lc.rng ^= lc.rng >> 27;
	return (uint32_t)((lc.rng * 2685821657736338717ULL) >> 32);
}

static void usage(void)
{
	fprintf(stderr, "usage: loadclient --port P --seconds S [--conns N] [--seed N]\n"
	                "                  (--hello PREFIX TEXT | --echo PREFIX)...\n"
	                "  --hello: an app answering 'TEXT pid=N path=PATH' (portshare-hello --text TEXT)\n"
	                "  --echo:  an app echoing the request body (portshare-upload-echo)\n"
	                "  prints one line of counts on stdout when done; lost requests on stderr\n");
	exit(2);
}

/* ---------------------------------------------------------------- responses */

struct response {
	int status;
	bool close;
	const char *body;
	size_t body_len;
};

/* Decodes a chunked body at p into lc.scratch. Length consumed, 0 if incomplete, -1 if bad. */
static long chunked_parse(const char *p, size_t len, struct response *r)
{
	size_t pos = 0, out = 0;
	for (int guard = 0; guard < 100000; guard++) {
		const char *eol = memmem(p + pos, len - pos, "\r\n", 2);
		if (!eol)
			return 0;
		char *end;
		unsigned long size = strtoul(p + pos, &end, 16);
		if (end == p + pos || (end != eol && *end != ';'))
			return -1;
		pos = (size_t)(eol - p) + 2;
		if (size == 0) {
			/* trailers up to an empty line */
			for (int t = 0; t < 100; t++) {
				const char *e = memmem(p + pos, len - pos, "\r\n", 2);
				if (!e)
					return 0;
				bool empty = e == p + pos;
				pos = (size_t)(e - p) + 2;
				if (empty) {
					r->body = lc.scratch;
					r->body_len = out;
					return (long)pos;
				}
			}
			return -1;
		}
		if (size > sizeof(lc.scratch) - out)
			return -1;
		if (len - pos < size + 2)
			return 0;
		memcpy(lc.scratch + out, p + pos, size);
		out += size;
		if (memcmp(p + pos + size, "\r\n", 2) != 0)
			return -1;
		pos += size + 2;
	}
	return -1;
}

/* Parses one response at the start of buf (eof: no more bytes will come). Its length,
 * 0 if more bytes are needed, -1 if it is not HTTP. */
static long response_parse(const char *buf, size_t len, bool eof, struct response *r)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return len > 5 && memcmp(buf, "HTTP/", 5) != 0 ? -1 : 0;
	if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return -1;
	memset(r, 0, sizeof(*r));
	r->status = atoi(buf + 9);
	if (r->status < 100 || r->status >= STATUS_MAX)
		return -1;
	long content_length = -1;
	bool chunked = false;
	const char *line = memmem(buf, len, "\r\n", 2) + 2;
	while (line < end) {
		const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon)
			return -1;
		size_t nlen = (size_t)(colon - line);
		const char *v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		size_t vlen = (size_t)(eol - v);
		if (nlen == 14 && !strncasecmp(line, "Content-Length", nlen))
			content_length = atol(v);
		else if (nlen == 17 && !strncasecmp(line, "Transfer-Encoding", nlen))
			chunked = vlen >= 7 && !strncasecmp(eol - 7, "chunked", 7);
		else if (nlen == 10 && !strncasecmp(line, "Connection", nlen))
			r->close = vlen >= 5 && memmem(v, vlen, "close", 5) != NULL;
		line = eol + 2;
	}
	size_t head = (size_t)(end - buf) + 4;
	if (r->status < 200 || r->status == 204 || r->status == 304)
		return (long)head;
	if (chunked) {
		long n = chunked_parse(buf + head, len - head, r);
		return n <= 0 ? n : (long)head + n;
	}
	if (content_length >= 0) {
		if (content_length > RESPONSE_MAX)
			return -1;
		if (len - head < (size_t)content_length)
			return 0;
		r->body = buf + head;
		r->body_len = (size_t)content_length;
		return (long)(head + (size_t)content_length);
	}
	if (!eof)
		return 0; /* the body runs to the end of the connection */
	r->body = buf + head;
	r->body_len = len - head;
	return (long)len;
}

/* Whether a 200's body is what the app must answer to q. Other statuses come from the
 * daemon (404 while an app restarts, 503 when one dies) and carry its own text. */
static bool response_matches(const struct request *q, const struct response *r)
{
	if (r->status != 200)
		return true;
	if (q->t->kind == TARGET_ECHO)
		return r->body_len == q->body_len && memcmp(r->body, q->body, q->body_len) == 0;
	char want[160];
	int n = snprintf(want, sizeof(want), "%s pid=", q->t->text);
	if (r->body_len < (size_t)n + 2 || memcmp(r->body, want, (size_t)n) != 0)
		return false;
	const char *p = r->body + n, *end = r->body + r->body_len;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	int m = snprintf(want, sizeof(want), " path=%s\n", q->path);
	return end - p == m && memcmp(p, want, (size_t)m) == 0;
}

/* ---------------------------------------------------------------- connections */

static void report_loss(const struct conn *c, const struct request *q, const char *what)
{
	if (lc.reports++ >= LOSS_REPORTS)
		return;
	fprintf(stderr,
	        "loadclient: lost: %s: %s %s (%zu-byte body) on %s connection #%u from 127.0.0.1:%u after %u "
	        "responses\n",
	        what, q->post ? "POST" : "GET", q->path, q->body_len, mode_names[c->mode], c->id, c->port,
	        c->completed);
}

/* An event names the slot and the connection, so that one for a connection already
 * ended (and its slot reused) in the same batch of events is told apart. */
static uint64_t conn_tag(const struct conn *c)
{
	return (uint64_t)c->id << 16 | (uint64_t)(c - lc.conns);
}

static void conn_events(struct conn *c, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u64 = conn_tag(c)};
	if (c->want_out != out && epoll_ctl(lc.epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = out;
}

static void conn_open(struct conn *c);

/* Closes our end; reopen: a new connection takes the slot (unless the run is ending). */
static void conn_close(struct conn *c, bool reopen)
{
	epoll_ctl(lc.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->used = false;
	if (reopen && !lc.stopping)
		conn_open(c);
}

/* Ends a connection; the requests still waiting on it are closed cleanly or lost. */
static void conn_end(struct conn *c, enum conn_end how)
{
	bool partial = c->in_len > 0, broken = false;
	for (int i = c->nanswered; i < c->nbatch; i++) {
		const struct request *q = &c->batch[i];
		if (c->close_announced) {
			/* behind a response that said Connection: close: never processed, and
			 * the client knows it (RFC 9112 §9.6) */
			lc.n.closed_after_close++;
		} else if (how == END_EOF && !partial && c->completed > 0) {
			/* a reused keep-alive connection closed before any byte of the answer:
			 * the race HTTP lets a client retry (RFC 9112 §9.3.1) */
			lc.n.closed_idle++;
		} else if (how == END_TIMEOUT) {
			lc.n.lost_timeout++;
			report_loss(c, q, "no answer in time");
		} else if (how == END_PROTOCOL) {
			lc.n.lost_badbody++;
			report_loss(c, q, "wrong response or body");
		} else if (partial && i == c->nanswered) {
			lc.n.lost_truncated++;
			broken = true;
			report_loss(
			    c, q, how == END_RESET ? "truncated response, then reset" : "truncated response");
		} else if (how == END_RESET) {
			lc.n.lost_reset++;
			report_loss(c, q, "connection reset");
		} else {
			lc.n.lost_eof++;
			broken = true;
			report_loss(c, q, "new connection closed without an answer");
		}
	}
	if (how == END_RESET)
		lc.n.reset_conns++;
	else if (how == END_EOF && broken)
		lc.n.broken_closes++;
	if (c->nanswered == c->nbatch && !c->close_announced) {
		if (how == END_RESET)
			lc.n.idle_resets++;
		else if (how == END_EOF)
			lc.n.idle_closes++;
	}
	conn_close(c, true);
}

/* Our own close of a connection with nothing outstanding. */
static void conn_done(struct conn *c)
{
	c->nbatch = c->nanswered = 0;
	conn_close(c, true);
}

static void conn_open(struct conn *c)
{
	memset(c, 0, offsetof(struct conn, out));
	c->out_len = c->out_off = c->in_len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("loadclient: socket");
		exit(1);
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->used = true;
	c->id = ++lc.next_id;
	uint32_t m = rnd() % 10;
	c->mode = m < 5 ? MODE_KEEPALIVE : m < 8 ? MODE_PIPELINE : MODE_CLOSE;
	c->batches_left = c->mode == MODE_CLOSE ? 1 : 1 + (int)(rnd() % 20);
	c->connecting = true;
	c->progress_at = now();
	lc.n.conns++;
	if (connect(c->fd, (struct sockaddr *)&lc.addr, sizeof(lc.addr)) < 0 && errno != EINPROGRESS) {
		fprintf(stderr, "loadclient: connect: %s\n", strerror(errno));
		lc.n.connect_failed++;
		close(c->fd);
		c->fd = -1;
		c->used = false;
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = conn_tag(c)};
	c->want_out = true;
	if (epoll_ctl(lc.epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		perror("loadclient: epoll_ctl");
		exit(1);
	}
}

static void out_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->out + c->out_len, sizeof(c->out) - c->out_len, fmt, ap);
	va_end(ap);
	c->out_len += (size_t)n;
}

static void out_bytes(struct conn *c, const char *p, size_t len)
{
	memcpy(c->out + c->out_len, p, len);
	c->out_len += len;
}

/* Appends one request of random shape to the connection's output. */
static void request_write(struct conn *c, struct request *q, bool last)
{
	q->t = &lc.targets[rnd() % (uint32_t)lc.ntargets];
	snprintf(q->path, sizeof(q->path), "%sc%u-r%u", q->t->prefix, c->id,
	         c->completed + (unsigned)c->nbatch);
	/* echo: mostly POST; hello: mostly GET, sometimes a body it does not read */
	q->post = q->t->kind == TARGET_ECHO ? rnd() % 5 != 0 : rnd() % 5 == 0;
	q->body_len = 0;
	q->body = lc.pool;
	if (q->post) {
		q->body_len = rnd() % 2 ? rnd() % 512 : rnd() % BODY_MAX;
		q->body = lc.pool + rnd() % (BODY_POOL - BODY_MAX);
	}
	bool chunked = q->post && rnd() % 4 == 0;
	out_printf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portshare-soak\r\n",
	           q->post ? "POST" : "GET", q->path, lc.host);
	if (c->mode == MODE_CLOSE && last)
		out_printf(c, "Connection: close\r\n");
	if (!q->post) {
		out_printf(c, "\r\n");
		return;
	}
	out_printf(c, "Content-Type: application/x-soak\r\n");
	if (!chunked) {
		out_printf(c, "Content-Length: %zu\r\n\r\n", q->body_len);
		out_bytes(c, q->body, q->body_len);
		return;
	}
	out_printf(c, "Transfer-Encoding: chunked\r\n\r\n");
	size_t off = 0;
	while (off < q->body_len) {
		size_t n = 256 + rnd() % 4096;
		if (n > q->body_len - off)
			n = q->body_len - off;
		out_printf(c, "%zx\r\n", n);
		out_bytes(c, q->body + off, n);
		out_printf(c, "\r\n");
		off += n;
	}
	out_printf(c, "0\r\n\r\n");
}

static void conn_flush(struct conn *c);

static void conn_send_batch(struct conn *c)
{
	if (lc.stopping || c->batches_left <= 0) {
		conn_done(c);
		return;
	}
	c->batches_left--;
	c->wake_at = 0;
	c->nbatch = c->nanswered = 0;
	c->out_len = c->out_off = 0;
	int n = c->mode == MODE_PIPELINE ? 2 + (int)(rnd() % (BATCH_MAX - 1)) : 1;
	for (int i = 0; i < n; i++) {
		request_write(c, &c->batch[i], i == n - 1);
		c->nbatch++;
	}
	lc.n.sent += (unsigned long)n;
	c->progress_at = now();
	conn_flush(c);
}

/* Reads what the connection holds; -1 on reset, 0 on EOF, 1 if it may send more. */
static int conn_fill(struct conn *c)
{
	for (int guard = 0; guard < 64; guard++) {
		if (c->in_cap - c->in_len < 16384) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 65536;
			if (cap > RESPONSE_MAX * 2)
				return -2;
			c->in = realloc(c->in, cap);
			if (!c->in) {
				perror("loadclient: realloc");
				exit(1);
			}
			c->in_cap = cap;
		}
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (n > 0) {
			c->in_len += (size_t)n;
			c->progress_at = now();
			continue;
		}
		if (n == 0)
			return 0;
		if (errno == EAGAIN || errno == EINTR)
			return 1;
		return -1;
	}
	return 1;
}

/* Takes complete responses off the input; false if the connection was ended. */
static bool conn_take_responses(struct conn *c, bool eof)
{
	size_t off = 0;
	while (off < c->in_len && c->nanswered < c->nbatch) {
		struct response r;
		long n = response_parse(c->in + off, c->in_len - off, eof, &r);
		if (n == 0)
			break;
		if (n < 0 || !response_matches(&c->batch[c->nanswered], &r)) {
			memmove(c->in, c->in + off, c->in_len - off);
			c->in_len -= off;
			conn_end(c, END_PROTOCOL);
			return false;
		}
		off += (size_t)n;
		lc.n.answered++;
		lc.n.status[r.status]++;
		c->nanswered++;
		c->completed++;
		c->close_announced = c->close_announced || r.close;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	if (c->in_len && c->nanswered == c->nbatch) {
		lc.n.bad_extra++; /* bytes nobody asked for */
		fprintf(stderr, "loadclient: %zu unexpected bytes on connection #%u\n", c->in_len, c->id);
		c->in_len = 0;
		conn_done(c);
		return false;
	}
	return true;
}

static void conn_after_batch(struct conn *c)
{
	if (c->close_announced || c->mode == MODE_CLOSE || c->batches_left <= 0 || lc.stopping) {
		conn_done(c);
		return;
	}
	if (rnd() % 50 == 0) /* think time: the connection sits idle a moment */
		c->wake_at = now() + 0.005 + (rnd() % 100) / 1000.0;
	else
		conn_send_batch(c);
}

static void conn_readable(struct conn *c)
{
	int r = conn_fill(c);
	if (r == -2) {
		conn_end(c, END_PROTOCOL);
		return;
	}
	if (!conn_take_responses(c, r == 0))
		return;
	if (r <= 0) {
		conn_end(c, r == 0 ? END_EOF : END_RESET);
		return;
	}
	if (c->nbatch && c->nanswered == c->nbatch && c->out_off == c->out_len)
		conn_after_batch(c);
}

static void conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n =
		    send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			conn_events(c, true);
			return;
		}
		/* the peer is gone: what it sent before (an answer, a FIN) decides */
		int r = conn_fill(c);
		if (conn_take_responses(c, r <= 0))
			conn_end(c, r == 0 ? END_EOF : END_RESET);
		return;
	}
	conn_events(c, false);
}

/* A refused connection: no request was sent on it; the main loop reopens the slot. */
static void conn_connect_failed(struct conn *c, const char *why)
{
	fprintf(stderr, "loadclient: connect: %s\n", why);
	lc.n.connect_failed++;
	conn_close(c, false);
}

static void conn_writable(struct conn *c)
{
	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			conn_connect_failed(c, strerror(err));
			return;
		}
		c->connecting = false;
		struct sockaddr_in local;
		socklen_t local_len = sizeof(local);
		if (getsockname(c->fd, (struct sockaddr *)&local, &local_len) == 0)
			c->port = ntohs(local.sin_port);
		conn_send_batch(c);
		return;
	}
	conn_flush(c);
}

/* ---------------------------------------------------------------- main */

static void parse_args(int argc, char **argv, double *seconds)
{
	int port = 0;
	lc.nconns = 16;
	lc.rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "--port") && more)
			port = atoi(argv[++i]);
		else if (!strcmp(a, "--seconds") && more)
			*seconds = atof(argv[++i]);
		else if (!strcmp(a, "--conns") && more)
			lc.nconns = atoi(argv[++i]);
		else if (!strcmp(a, "--seed") && more)
			lc.rng = strtoull(argv[++i], NULL, 10) | 1;
		else if (!strcmp(a, "--hello") && i + 2 < argc && lc.ntargets < TARGETS_MAX)
			lc.targets[lc.ntargets++] =
			    (struct target){.prefix = argv[i + 1], .text = argv[i + 2], .kind = TARGET_HELLO},
			i += 2;
		else if (!strcmp(a, "--echo") && more && lc.ntargets < TARGETS_MAX)
			lc.targets[lc.ntargets++] = (struct target){.prefix = argv[++i], .kind = TARGET_ECHO};
		else
			usage();
	}
	if (port <= 0 || port > 65535 || *seconds <= 0 || lc.ntargets == 0 || lc.nconns < 1 ||
	    lc.nconns > CONNS_MAX)
		usage();
	lc.addr.sin_family = AF_INET;
	lc.addr.sin_port = htons((uint16_t)port);
	lc.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(lc.host, sizeof(lc.host), "127.0.0.1:%d", port);
}

static void print_counts(void)
{
	const struct counts *n = &lc.n;
	unsigned long closed = n->closed_idle + n->closed_after_close;
	unsigned long lost =
	    n->lost_reset + n->lost_eof + n->lost_truncated + n->lost_timeout + n->lost_badbody;
	unsigned long cls[6] = {0};
	for (int s = 100; s < STATUS_MAX; s++)
		cls[s / 100] += n->status[s];
	printf(
	    "loadclient sent=%lu answered=%lu closed=%lu lost=%lu 1xx=%lu 2xx=%lu 3xx=%lu 4xx=%lu 5xx=%lu "
	    "closed_idle=%lu closed_after_close=%lu lost_reset=%lu lost_eof=%lu lost_truncated=%lu "
	    "lost_timeout=%lu lost_badbody=%lu conns=%lu connect_failed=%lu idle_closes=%lu idle_resets=%lu "
	    "reset_conns=%lu broken_closes=%lu bad_extra=%lu",
	    n->sent, n->answered, closed, lost, cls[1], cls[2], cls[3], cls[4], cls[5], n->closed_idle,
	    n->closed_after_close, n->lost_reset, n->lost_eof, n->lost_truncated, n->lost_timeout,
	    n->lost_badbody, n->conns, n->connect_failed, n->idle_closes, n->idle_resets, n->reset_conns,
	    n->broken_closes, n->bad_extra);
	for (int s = 300; s < STATUS_MAX; s++)
		if (n->status[s])
			printf(" status_%d=%lu", s, n->status[s]);
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	double seconds = 0;
	parse_args(argc, argv, &seconds);
	for (size_t i = 0; i < sizeof(lc.pool); i++)
		lc.pool[i] = (char)(' ' + rnd() % 95);
	lc.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (lc.epfd < 0) {
		perror("loadclient: epoll_create1");
		return 1;
	}
	double start = now();
	lc.end_at = start + seconds;
	for (int i = 0; i < lc.nconns; i++)
		conn_open(&lc.conns[i]);

	struct epoll_event evs[64];
	for (;;) {
		double t = now();
		if (!lc.stopping && t >= lc.end_at)
			lc.stopping = true;
		int busy = 0;
		for (int i = 0; i < lc.nconns; i++) {
			struct conn *c = &lc.conns[i];
			if (!c->used) {
				if (!lc.stopping)
					conn_open(c);
				continue;
			}
			if (c->wake_at > 0 && (t >= c->wake_at || lc.stopping))
				conn_send_batch(c);
			else if (c->connecting && t - c->progress_at > PROGRESS_TIMEOUT)
				conn_connect_failed(c, "timed out");
			else if (c->nanswered < c->nbatch && t - c->progress_at > PROGRESS_TIMEOUT)
				conn_end(c, END_TIMEOUT);
			else if (lc.stopping && t > lc.end_at + DRAIN_TIMEOUT)
				conn_end(c, END_TIMEOUT);
			busy += c->used;
		}
		if (lc.stopping && busy == 0)
			break;
		int n = epoll_wait(lc.epfd, evs, 64, 20);
		if (n < 0 && errno != EINTR) {
			perror("loadclient: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			struct conn *c = &lc.conns[tag & 0xffff];
			/* an earlier event of this batch may have ended it and reused the slot */
			if (!c->used || conn_tag(c) != tag)
				continue;
			if (evs[i].events & (EPOLLOUT | EPOLLERR) && (c->connecting || c->want_out))
				conn_writable(c);
			if (c->used && conn_tag(c) == tag && !c->connecting &&
			    (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_readable(c);
		}
	}
	print_counts();
	return 0;
}
