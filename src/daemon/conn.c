/* conn.c: the life of a client connection, and the only file that changes its state:
 * accepted, its request heads read and routed, queued, delivered, taken back, the
 * daemon's own answers written (answer.c composes them), ended (lingering close, abort).
 * The handoff itself is handoff.c; the takeover's handover is takeover.c.
 *
 * Every read and write goes through conn_recv/conn_send, which pass MSG_DONTWAIT: file
 * status flags are shared with the worker's copy of the socket, and a worker may clear
 * O_NONBLOCK (DESIGN §2a). */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "accesslog.h"
#include "answer.h"
#include "canon.h"
#include "conn-t.h"
#include "daemon-t.h"
#include "delegate.h"
#include "dispatch.h"
#include "handoff.h"
#include "list.h"
#include "listener-t.h"
#include "listener.h"
#include "llhttp.h"
#include "log.h"
#include "queue.h"
#include "redirect.h"
#include "route.h"
#include "session.h"
#include "takeover.h"
#include "tcp.h"
#include "threads.h"
#include "tls.h"
#include "tls_record.h"

#define LINGER_DRAIN_MAX (256 * 1024) /* bytes discarded at most while closing */

static void conn_on_io(struct loop_io *io, uint32_t events);
static void conn_on_timer(struct loop_timer *t);
static void conn_process(struct conn *c);
static void conn_route(struct conn *c, const struct http_head *h);
static void conn_read(struct conn *c);
static void conn_handshake(struct conn *c);

static inline struct conn *io_conn(struct loop_io *io)
{
	return container_of(io, struct conn, io);
}

static uint32_t conn_buf_cap(const struct conn *c)
{
	/* the head plus some of what follows it travels in one DELIVER (< PS_MSG_MAX); a TLS
	 * connection reads whole records, and needs room for one more past the head's limit */
	return this_thread->limits->max_request_bytes + (c->tls ? TLS_RECORD_DECRYPT_ROOM : 4096);
}

/* The connection becomes this thread's. */
static void conn_link(struct conn *c)
{
	list_add_tail(this_thread->conns, &c->link);
	atomic_fetch_add_explicit(&this_thread->nconns, 1, memory_order_relaxed);
}

static void conn_unlink(struct conn *c)
{
	struct thread *t = this_thread;
	list_del(&c->link);
	atomic_fetch_sub_explicit(&t->nconns, 1, memory_order_relaxed);
	if (t->index && t->stopping && list_empty(t->conns))
		loop_stop(t->loop); /* a front thread that is shutting down has finished */
}

/* A connection for fd (taken: closed if there is no memory), not yet on any list. */
static struct conn *conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	c->id = atomic_fetch_add_explicit(&dm->next_conn_id, 1, memory_order_relaxed) + 1;
	c->io.fd = fd;
	c->io.fn = conn_on_io;
	c->timer.fn = conn_on_timer;
	return c;
}

void conn_accept(struct endpoint *e, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c = conn_new(fd);
	if (!c)
		return;
	c->port = e->addr.port;
	addr_from_sockaddr(peer, &c->remote);
	if (addr_is_wildcard(&e->addr)) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			addr_from_sockaddr(&ss, &c->local);
	} else {
		c->local = e->addr; /* bound to one address: no need to ask */
	}
	c->state = CONN_READING;
	http_scan_init(&c->scan);
	conn_link(c);
	atomic_fetch_add_explicit(&this_thread->accepted, 1, memory_order_relaxed);
	loop_timer_set(this_thread->loop, &c->timer, this_thread->limits->header_wait_ms);
	if (listener_port_tls(c->port)) {
		/* HeaderWait covers the handshake too: a stalled one costs this timer only */
		if (tls_conn_start(c) < 0) {
			conn_free(c);
			return;
		}
		c->state = CONN_HANDSHAKE;
		conn_handshake(c);
		return;
	}
	/* TCP_DEFER_ACCEPT: the first bytes are usually here already. Registered with epoll
	 * only after this read: a request handed off at once is registered straight with
	 * the events its new state wants (0 while a worker holds it). */
	conn_read(c);
	if (c->io.fd >= 0 && c->state != CONN_MOVING && !c->io.registered &&
	    loop_io_mod(this_thread->loop, &c->io, EPOLLIN) < 0)
		conn_free(c);
}

/* Every read and write of a client connection in the daemon goes through this pair (the
 * place a TLS record layer plugs in): never blocking, whatever the worker did to the
 * file status flags (DESIGN §2a), and counted, so that the daemon knows what it consumed
 * and wrote without asking the kernel. recv's and send's results and errno. */
static ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
	if (tls_conn_live(c))
		return tls_conn_recv(c, buf, len);
	ssize_t n = recv(c->io.fd, buf, len, MSG_DONTWAIT);
	if (n > 0)
		c->received += (uint64_t)n;
	return n;
}

static ssize_t conn_send(struct conn *c, const void *buf, size_t len)
{
	ssize_t n = send(c->io.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		c->sent += (uint64_t)n;
	return n;
}

/* Bytes the next read may fill: a TLS read opens a whole record, so it needs room for one. */
static uint32_t conn_room(const struct conn *c)
{
	uint32_t room = c->cap - c->len;
	if (c->tls)
		return room >= TLS_RECORD_DECRYPT_ROOM ? room : 0;
	return room;
}

static void conn_drop_buf(struct conn *c)
{
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

/* The TLS handshake, as far as the socket lets it go. */
static void conn_handshake(struct conn *c)
{
	uint32_t events = EPOLLIN;
	switch (tls_conn_handshake(c)) {
	case TLS_STEP_DONE:
		c->state = CONN_READING;
		if (this_thread->handing_over) {
			/* a handshake begun before a new daemon took over: it routes the request (our
			 * route table is on its way there), from the records' state handed with it */
			takeover_hand_over_conn(c);
			return;
		}
		conn_read(c); /* the first request often came with the client's Finished */
		if (c->io.fd < 0 || c->state != CONN_READING)
			return;
		break;
	case TLS_STEP_READ:
		break;
	case TLS_STEP_WRITE:
		events = EPOLLOUT;
		break;
	case TLS_STEP_PLAIN:
		c->state = CONN_READING;
		if (accesslog_on()) { /* the request line for its log line: the bytes are still unread */
			char head[1024];
			ssize_t n = recv(c->io.fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
			if (n > 0)
				accesslog_note(c, head, (uint32_t)n, 0, NULL);
		}
		answer_send(c, 400, "BadRequest: plain HTTP sent to a TLS port", true, false, NULL);
		return;
	case TLS_STEP_FAILED:
		conn_linger(c); /* the alert, if any, is on its way: no reset over it */
		return;
	}
	if (loop_io_mod(this_thread->loop, &c->io, events) < 0)
		conn_free(c);
}

/* A read buffer of at least `need` bytes (a RETURN may carry more than a head buffer). */
static int conn_alloc_buf(struct conn *c, uint32_t need)
{
	uint32_t cap = conn_buf_cap(c);
	if (need > cap)
		cap = need;
	c->buf = malloc(cap);
	if (!c->buf)
		return -1;
	c->cap = cap;
	return 0;
}

/* Closes the daemon's copy. Sessions that cache the fd are told to drop theirs. */
void conn_free(struct conn *c)
{
	if (c->io.fd < 0)
		return;
	loop_timer_cancel(this_thread->loop, &c->timer);
	if (c->req) {
		request_free(c->req);
		c->req = NULL;
	}
	handoff_cache_drop(c);
	loop_io_del(this_thread->loop, &c->io);
	close(c->io.fd);
	c->io.fd = -1;
	conn_unlink(c);
	conn_drop_buf(c);
	free(c->out);
	c->out = NULL;
	tls_conn_free(c);
	loop_defer(this_thread->loop, free, c);
}

void conn_abort(struct conn *c)
{
	/* resets the connection whatever other copies of the fd exist */
	struct sockaddr sa = {.sa_family = AF_UNSPEC};
	connect(c->io.fd, &sa, sizeof(sa));
	conn_free(c);
}

void conn_linger(struct conn *c)
{
	if (c->req) {
		request_free(c->req);
		c->req = NULL;
	}
	conn_drop_buf(c);
	tls_conn_close_notify(c);
	shutdown(c->io.fd, SHUT_WR);
	if (c->eof) {
		conn_free(c);
		return;
	}
	/* drain what the client still sends, so a pipelined tail does not turn our FIN
	 * into a reset before the client has read the answer */
	c->state = CONN_LINGER;
	c->out_off = 0; /* counts drained bytes */
	if (loop_io_mod(this_thread->loop, &c->io, EPOLLIN) < 0) {
		conn_free(c);
		return;
	}
	loop_timer_set(this_thread->loop, &c->timer, this_thread->limits->linger_ms);
}

static void conn_linger_read(struct conn *c)
{
	char sink[16384];
	for (;;) {
		/* raw bytes: a TLS client's records are not opened any more */
		ssize_t n = recv(c->io.fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0) {
			c->received += (uint64_t)n;
			c->out_off += (uint32_t)n;
			if (c->out_off > LINGER_DRAIN_MAX)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		break;
	}
	conn_free(c); /* EOF, error, or enough drained */
}

/* 0 written, 1 pending (EPOLLOUT armed), -1 the connection failed */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = conn_send(c, c->out + c->out_off, c->out_len - c->out_off);
		if (n > 0) {
			c->out_off += (uint32_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (loop_io_mod(this_thread->loop, &c->io, EPOLLOUT) < 0)
				return -1;
			/* a client that does not read its answer: MinSendRate's cut-off */
			loop_timer_set(this_thread->loop, &c->timer, this_thread->limits->idle_connection_ms);
			return 1;
		}
		return -1;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return 0;
}

/* After an answer is written: close, or read the next request. */
static void conn_after_answer(struct conn *c)
{
	if (c->closing || this_thread->stopping) {
		conn_linger(c);
		return;
	}
	c->state = CONN_READING;
	if (this_thread->handing_over) {
		takeover_hand_over_conn(c); /* with the pipelined bytes, if any */
		return;
	}
	http_scan_init(&c->scan);
	if (loop_io_mod(this_thread->loop, &c->io, EPOLLIN) < 0) {
		conn_free(c);
		return;
	}
	if (c->len && !c->in_process) {
		/* pipelined bytes already read: parse them from the loop, not from under
		 * whoever answered (a queue timer, a dying session) */
		c->kick = true;
		loop_timer_set(this_thread->loop, &c->timer, 0);
		return;
	}
	loop_timer_set(this_thread->loop, &c->timer,
	               c->len ? this_thread->limits->header_wait_ms
	                      : this_thread->limits->idle_connection_ms);
}

void conn_write(struct conn *c, char *out, size_t len, bool close)
{
	if (tls_conn_live(c)) {
		char *sealed;
		size_t sealed_len;
		bool last = close || c->closing || this_thread->stopping;
		int rc = tls_conn_seal(c, out, len, last, &sealed, &sealed_len);
		free(out);
		if (rc < 0) {
			conn_free(c);
			return;
		}
		out = sealed;
		len = sealed_len;
	}
	free(c->out);
	c->out = out;
	c->out_len = (uint32_t)len;
	c->out_off = 0;
	c->closing = c->closing || close;
	c->state = CONN_WRITING;
	int r = conn_flush(c);
	if (r < 0)
		conn_free(c);
	else if (r == 0)
		conn_after_answer(c);
}

/* Drops the first n bytes of the read buffer (a request the daemon answered itself). */
static void conn_consume(struct conn *c, uint32_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	http_scan_init(&c->scan);
	if (!c->len)
		conn_drop_buf(c);
}

/* The head in c->buf is accepted: answer it, or make it a request for a queue. */
static void conn_push_to_main(void *p)
{
	struct conn *c = p;
	threads_post(&dm->threads[0], &c->move);
}

/* A front thread hands a connection with an accepted head to thread 0, which routes
 * it: the route table, queues and sessions are thread 0's alone. The push waits until
 * the current batch of events is done, when nothing on this thread's stack still
 * looks at c. */
void conn_move_to_main(struct conn *c, const struct http_head *h)
{
	struct thread *t = this_thread;
	/* no head: an upgrade's handover, where thread 0 passes the bytes on unparsed */
	c->moved_head = h ? malloc(sizeof(*h)) : NULL; /* a whole struct: the fields' room included */
	if (h && !c->moved_head) {
		answer_send(c, 503, "NoMemory", true, h->method == HTTP_HEAD, NULL);
		return;
	}
	if (h)
		memcpy(c->moved_head, h, http_head_used(h));
	loop_timer_cancel(t->loop, &c->timer);
	loop_io_del(t->loop, &c->io);
	conn_unlink(c);
	c->state = CONN_MOVING;
	c->move.type = THREAD_MSG_CONN;
	loop_defer(t->loop, conn_push_to_main, c);
}

void conn_adopt(struct conn *c)
{
	struct http_head *h = c->moved_head;
	c->moved_head = NULL;
	c->state = CONN_READING;
	conn_link(c);
	if (this_thread->handing_over) {
		/* the new daemon routes it: our queues are on their way there */
		free(h);
		takeover_hand_over_conn(c);
		return;
	}
	loop_timer_set(this_thread->loop, &c->timer, this_thread->limits->header_wait_ms);
	c->in_process = true;
	conn_route(c, h);
	c->in_process = false;
	free(h);
	conn_process(c); /* requests pipelined behind an answered one */
	if (c->io.fd >= 0 && c->state == CONN_READING && !c->io.registered &&
	    loop_io_mod(this_thread->loop, &c->io, EPOLLIN) < 0)
		conn_free(c);
}

static void conn_route(struct conn *c, const struct http_head *h)
{
	uint32_t end = h->skip + h->head_len;
	bool has_body = h->chunked || h->content_length > 0;
	bool ka = h->keep_alive && !has_body;
	bool head_method = h->method == HTTP_HEAD;
	const struct limits *lim = this_thread->limits;

	if (this_thread->index && !h->asterisk_form) {
		conn_move_to_main(c, h);
		return;
	}
	if (h->asterisk_form) { /* OPTIONS *: about the server, not a resource */
		accesslog_note(c, c->buf + h->skip, h->head_len, 0, NULL);
		conn_consume(c, end);
		answer_send(c, 200, NULL, !ka, false,
		            "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE\r\n");
		return;
	}
	struct canon_limits cl = {lim->url_segment_max_length, lim->url_segment_max_count};
	struct dispatch d = {.buf = c->buf, .h = h, .local = &c->local, .port = c->port, .canon = &cl};
	/* a head is at most 24 KiB (MaxRequestBytes), so its path always fits */
	static char path[(PS_MSG_MAX / 2) + 2], scratch[sizeof(path)];
	if (dispatch_path_cap(h) > sizeof(path)) {
		d.status = 414;
		d.reason = "URL";
	} else {
		dispatch_route(dm->routes, &d, path, scratch);
	}
	if (d.status) {
		accesslog_note(c, c->buf + h->skip, h->head_len, 0, NULL); /* consumed before its answer */
		/* 404 and an unknown host leave the connection usable; a bad path does not */
		bool usable = d.status == 404 || (d.status == 400 && !strcmp(d.reason, "InvalidHostname"));
		/* below every app's prefix: an admin's redirect to https (redirect.c) */
		char *location = usable && !c->tls ? redirect_location(c, h, d.host, path) : NULL;
		if (location) {
			conn_consume(c, end);
			answer_send(c, 308, NULL, !ka, head_method, location);
			free(location);
			return;
		}
		if (usable)
			conn_consume(c, end);
		answer_send(c, d.status, d.reason, !usable || !ka, head_method, NULL);
		return;
	}
	if (c->tls && tls_conn_misdirected(c, d.host)) {
		/* RFC 9110 §15.5.20: another name than the one the handshake was for, which this
		 * connection's certificate does not cover */
		accesslog_note(c, c->buf + h->skip, h->head_len, 0, d.owner);
		conn_consume(c, end);
		answer_send(c, 421,
		            "MisdirectedRequest: Host not covered by the certificate of the TLS server name",
		            !ka, head_method, NULL);
		return;
	}
	struct queue *qu = d.owner;
	if (qu->max_body && h->content_length > 0 && (uint64_t)h->content_length > qu->max_body) {
		answer_send(c, 413, "EntityTooLarge", true, head_method, NULL);
		return;
	}
	struct request *r = calloc(1, sizeof(*r));
	char *p = r ? strdup(path) : NULL, *ho = p ? strdup(d.host) : NULL;
	if (!ho) {
		free(p);
		free(r);
		answer_send(c, 503, "NoMemory", true, head_method, NULL);
		return;
	}
	if (h->skip) {
		memmove(c->buf, c->buf + h->skip, c->len - h->skip);
		c->len -= h->skip;
	}
	r->id = ++dm->next_req_id;
	r->conn = c;
	/* a request held in a queue or by a worker keeps only its own bytes, not the whole
	 * read buffer: idle delegated connections must cost the daemon little */
	char *shrunk = realloc(c->buf, c->len ? c->len : 1);
	r->data = shrunk ? shrunk : c->buf;
	r->cap = shrunk ? (c->len ? c->len : 1) : c->cap;
	r->head_len = h->head_len;
	r->tail_len = c->len - h->head_len;
	r->path = p;
	r->host = ho;
	r->method = h->method;
	r->has_body = has_body;
	r->keep_alive = h->keep_alive;
	if (accesslog_on())
		r->arrived_us = accesslog_now_us();
	list_init(&r->link);
	c->buf = NULL;
	c->len = c->cap = 0;
	http_scan_init(&c->scan);
	c->req = r;
	c->requests++;
	queue_push(qu, r);
}

static void conn_process(struct conn *c)
{
	const struct limits *lim = this_thread->limits;
	struct http_limits hl = {lim->max_request_bytes, lim->max_field_length};
	c->in_process = true;
	while (c->io.fd >= 0 && c->state == CONN_READING && c->len) {
		struct http_head *h = &this_thread->head;
		enum http_head_result res = http_head_parse(&c->scan, c->buf, c->len, &hl, h);
		if (res == HTTP_HEAD_INCOMPLETE) {
			if (c->eof)
				conn_free(c);   /* the client gave up mid-head */
			else if (!conn_room(c)) /* MaxRequestBytes grew by a reload past this buffer */
				answer_send(c, 431, "Header", true, false, NULL);
			break;
		}
		if (res == HTTP_HEAD_ERROR) {
			if (h->action == HTTP_GOAWAY)
				answer_goaway(c);
			else if (h->action == HTTP_DROP) {
				log_error_answer(c, 0, h->reason ? h->reason : "BadRequest: HTTP/0.9");
				conn_linger(c);
			} else
				answer_send(c, h->status, h->reason ? h->reason : "BadRequest", true, false,
				            NULL);
			break;
		}
		conn_route(c, h);
	}
	c->in_process = false;
	if (c->io.fd >= 0 && c->state == CONN_READING && !c->len && c->eof)
		conn_free(c);
}

static void conn_read(struct conn *c)
{
	if (!c->buf && conn_alloc_buf(c, 0) < 0) {
		conn_free(c);
		return;
	}
	if (conn_room(c) == 0 && c->cap < conn_buf_cap(c)) {
		/* a short buffer (pipelined bytes given back) grows to a head buffer */
		char *b = realloc(c->buf, conn_buf_cap(c));
		if (!b) {
			conn_free(c);
			return;
		}
		c->buf = b;
		c->cap = conn_buf_cap(c);
	}
	uint32_t room = conn_room(c);
	if (!room) { /* the parser answers 414/431 before this; never spin */
		conn_process(c);
		return;
	}
	bool was_empty = c->len == 0;
	ssize_t n = conn_recv(c, c->buf + c->len, room);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR) {
			if (!c->len)
				conn_drop_buf(c);
			return;
		}
		if (errno == EPROTO)
			conn_linger(c); /* a TLS error: its alert is sent, no reset over it */
		else
			conn_free(c);
		return;
	}
	if (n == 0) {
		c->eof = true;
		if (!c->len) {
			conn_free(c);
			return;
		}
	}
	c->len += (uint32_t)n;
	if (was_empty && n > 0) /* the head's clock starts at its first byte */
		loop_timer_set(this_thread->loop, &c->timer, this_thread->limits->header_wait_ms);
	conn_process(c);
	if (c->io.fd >= 0 && c->state == CONN_READING && !c->len) {
		conn_drop_buf(c);
		loop_timer_set(this_thread->loop, &c->timer, this_thread->limits->idle_connection_ms);
	}
}

static void conn_on_io(struct loop_io *io, uint32_t events)
{
	struct conn *c = io_conn(io);
	switch (c->state) {
	case CONN_HANDSHAKE:
		conn_handshake(c);
		break;
	case CONN_READING:
		conn_read(c);
		break;
	case CONN_WRITING: {
		if (events & (EPOLLERR | EPOLLHUP)) {
			conn_free(c);
			break;
		}
		int r = conn_flush(c);
		if (r < 0)
			conn_free(c);
		else if (r == 0) {
			conn_after_answer(c);
			if (c->io.fd >= 0 && c->state == CONN_READING)
				conn_process(c);
		}
		break;
	}
	case CONN_QUEUED:
		/* registered with events = 0: only both directions closed wakes us; nobody
		 * can be answered any more */
		conn_free(c);
		break;
	case CONN_DELIVERED:
		/* both directions are closed (registered with events = 0): nothing more can
		 * happen on it. The worker may have dropped its copy after shutdown without
		 * END (DESIGN §2a); a late RETURN/END finds no request and is ignored. A worker
		 * that sent the FIN has dropped (or, delegated, sees the close itself): no
		 * CONN_CLOSED for it; otherwise CONN_CLOSED tells it to drop its copy. */
		if (c->req)
			delegate_count_served(c->req, c->req->owner);
		if (c->req && c->req->owner && tcp_fin_sent(c->io.fd))
			handoff_cache_del(c, c->req->owner->id);
		conn_free(c);
		break;
	case CONN_LINGER:
		conn_linger_read(c);
		break;
	case CONN_MOVING: /* not registered any more: a late event from the same batch */
		break;
	}
}

static void conn_on_timer(struct loop_timer *t)
{
	struct conn *c = container_of(t, struct conn, timer);
	switch (c->state) {
	case CONN_HANDSHAKE:
		log_error_answer(c, 0, "Timer_HeaderWait: TLS handshake not finished");
		conn_free(c);
		break;
	case CONN_READING:
		if (c->kick) {
			c->kick = false;
			loop_timer_set(this_thread->loop, &c->timer, this_thread->limits->header_wait_ms);
			conn_process(c);
			break;
		}
		if (!c->len) {
			conn_linger(c); /* Timer_IdleConnection: a quiet close, as HTTP.sys does */
			break;
		}
		answer_send(c, 408, "Timer_HeaderWait", true, false, NULL);
		break;
	case CONN_WRITING:
		log_error_answer(c, 0, "Timer_MinSendRate");
		conn_abort(c);
		break;
	case CONN_QUEUED:
		queue_request_timeout(c);
		break;
	case CONN_DELIVERED:
		if (tcp_fin_sent(c->io.fd)) {
			/* the worker ended it with shutdown and dropped its copy without END
			 * (DESIGN §2a: allowed after Connection: close); the client kept its side */
			conn_free(c);
			break;
		}
		if (!queue_response_wait(c))
			delegate_idle_check(c);
		break;
	case CONN_LINGER:
		conn_free(c);
		break;
	case CONN_MOVING: /* its timer was cancelled */
		break;
	}
}

void conn_keep_pipelined(struct conn *c, struct request *r)
{
	if (!r->tail_len || c->buf)
		return;
	memmove(r->data, r->data + r->head_len, r->tail_len);
	c->buf = r->data;
	c->cap = r->cap;
	c->len = r->tail_len;
	r->data = NULL;
}

void conn_queued(struct conn *c)
{
	c->state = CONN_QUEUED;
	/* input is not watched while queued; both directions closed still wakes us */
	loop_io_mod(this_thread->loop, &c->io, 0);
	loop_timer_set(this_thread->loop, &c->timer, this_thread->limits->request_queue_ms);
}

void conn_unqueued(struct conn *c)
{
	c->state = CONN_READING;
}

void conn_delivered(struct conn *c, uint32_t check_ms)
{
	c->state = CONN_DELIVERED;
	loop_io_mod(this_thread->loop, &c->io, 0);
	loop_timer_set(this_thread->loop, &c->timer, check_ms);
}

void conn_keep_moved(struct conn *c)
{
	free(c->moved_head);
	c->moved_head = NULL;
	c->state = CONN_READING;
	conn_link(c);
}

struct conn *conn_from_handover(int fd, const struct ps_addr *local, const struct ps_addr *remote)
{
	struct conn *c = conn_new(fd);
	if (!c)
		return NULL;
	c->local = *local;
	c->remote = *remote;
	c->port = local->port;
	conn_link(c);
	return c;
}

void conn_returned(struct conn *c, const char *tail, size_t len, bool eof, uint64_t written,
                   uint64_t consumed)
{
	c->sent += written;
	c->received += consumed;
	if (c->req) {
		request_free(c->req);
		c->req = NULL;
	}
	c->state = CONN_READING;
	c->eof = c->eof || eof;
	http_scan_init(&c->scan);
	if (this_thread->stopping) {
		conn_linger(c); /* finishing up: no next request on this connection */
		return;
	}
	if (len) {
		if (len > PS_RETURN_TAIL_MAX || conn_alloc_buf(c, (uint32_t)len) < 0) {
			conn_abort(c);
			return;
		}
		memcpy(c->buf, tail, len);
		c->len = (uint32_t)len;
	}
	if (this_thread->handing_over) {
		takeover_hand_over_conn(c);
		return;
	}
	if (loop_io_mod(this_thread->loop, &c->io, EPOLLIN) < 0) {
		conn_free(c);
		return;
	}
	loop_timer_set(this_thread->loop, &c->timer,
	               len ? this_thread->limits->header_wait_ms : this_thread->limits->idle_connection_ms);
	conn_process(c);
	if (c->io.fd >= 0 && c->state == CONN_READING && !c->len && c->eof)
		conn_free(c);
}

void conn_ended(struct conn *c, uint32_t flags)
{
	if (c->req) {
		request_free(c->req);
		c->req = NULL;
	}
	if (flags & PS_END_ABORT)
		conn_abort(c);
	else if (flags & PS_END_UPGRADED)
		conn_free(c); /* the worker keeps the connection; only our copy goes */
	else
		conn_linger(c);
}

void conn_close_finished(void)
{
	struct list *p, *t;
	list_for_each_safe(p, t, this_thread->conns)
	{
		struct conn *c = container_of(p, struct conn, link);
		if (c->state == CONN_DELIVERED && tcp_fin_sent(c->io.fd)) {
			if (c->req)
				delegate_count_served(c->req, c->req->owner);
			conn_free(c);
		}
	}
}

void conn_close_idle(void)
{
	struct list *p, *t;
	list_for_each_safe(p, t, this_thread->conns)
	{
		struct conn *c = container_of(p, struct conn, link);
		if (c->state == CONN_READING)
			conn_linger(c);
	}
}

void conn_close_all(void)
{
	while (!list_empty(this_thread->conns)) {
		struct conn *c = container_of(this_thread->conns->next, struct conn, link);
		if (c->state == CONN_DELIVERED || c->state == CONN_WRITING) {
			log_error_answer(c, 0, "Shutdown: response unfinished after the grace period");
			conn_abort(c);
		} else if (c->state == CONN_QUEUED) {
			answer_request(c, 503, "Shutdown", true); /* best effort: the loop has stopped */
			if (c->io.fd >= 0)
				conn_free(c);
		} else {
			shutdown(c->io.fd, SHUT_WR);
			conn_free(c);
		}
	}
}
