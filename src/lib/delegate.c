/* delegate.c: delegated connections: the session page and route snapshot the daemon maps
 * for us, keeping a keep-alive connection after a response, reading and routing its
 * next requests, and giving it back (RETURN) when it is not ours to serve (delegate.h). */
#include "delegate.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accesslog.h"
#include "deadline.h"
#include "dispatch.h"
#include "request.h"
#include "conn_io.h"
#include "sock.h"

/* What a delegated connection buffers at most: whatever it holds must fit the tail of
 * one RETURN. */
#define DELEG_BUF PS_RETURN_TAIL_MAX
/* Room for a canonical path: a path is never longer than the head it came in. */
#define DELEG_PATH_CAP (DELEG_BUF + 2)

struct delegation {
	ps_client *c;
	struct delegation *prev, *next;           /* c->delegations */
	struct delegation *idle_prev, *idle_next; /* c's idle list */
	bool idle;                                /* on the idle list (no request in progress) */
	bool dead;                                /* dropped; freed by delegate_reap */
	/* Edge-triggered: bytes may be waiting that no event will announce again (an event
	 * came while a request was in progress, or the last read filled what it asked). */
	bool readable;
	bool hup;                 /* the client's FIN (or an error) was announced: read until recv says so */
	bool eof;                 /* recv returned 0 */
	struct held_conn *conn;   /* our reference to the cached fd */
	uint64_t conn_id, req_id; /* of the DELIVER that handed the connection over */
	struct ps_addr local, remote;
	int slot; /* in the session page */
	uint64_t responses;
	int64_t active_ms; /* last byte read or response completed: the idle clock */
	int64_t last_ms;   /* last response completed */
	ps_request *busy;  /* the request read from it, queued or being answered */
	struct http_scan scan;
	uint64_t scan_gen; /* snapshot whose limits `scan` was made with (UINT64_MAX: none) */
	size_t len;        /* bytes in buf: read past the last request, not served yet */
	char *buf;         /* DELEG_BUF bytes */
};

bool delegate_enabled(void)
{
	const char *v = getenv(PS_DELEGATION_ENV);
	return !(v && strcmp(v, "0") == 0);
}

/* ---- the session page ---- */

/* A seqlock write: the daemon reads a slot only when the session has ended or for its
 * idle limit, but it may do so while this process is still writing. */
static uint64_t slot_write_begin(struct shared_slot *s)
{
	uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return seq;
}

static void slot_write_end(struct shared_slot *s, uint64_t seq)
{
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

static const struct conn_io_pos no_pos;

static void slot_set_pos(uint64_t seq[2], uint64_t key_updates[2], const struct conn_io_pos *pos)
{
	for (int i = 0; i < 2; i++) {
		__atomic_store_n(&seq[i], pos->seq[i], __ATOMIC_RELEASE);
		__atomic_store_n(&key_updates[i], pos->key_updates[i], __ATOMIC_RELEASE);
	}
}

static void slot_set_end(struct shared_slot *s, uint64_t written, uint64_t consumed, uint64_t buffered,
                         const struct conn_io_pos *pos)
{
	__atomic_store_n(&s->end_written, written, __ATOMIC_RELEASE);
	__atomic_store_n(&s->end_consumed, consumed, __ATOMIC_RELEASE);
	__atomic_store_n(&s->end_buffered, buffered, __ATOMIC_RELEASE);
	slot_set_pos(s->end_tls_seq, s->end_tls_key_updates, pos);
}

/* A whole record: a completed response (no response being finished). */
static void delegate_slot_store(struct shared_slot *s, uint64_t conn_id, uint64_t written, uint64_t consumed,
                                uint64_t responses, uint64_t last_ms, uint64_t buffered,
                                const struct conn_io_pos *pos)
{
	uint64_t seq = slot_write_begin(s);
	__atomic_store_n(&s->conn_id, conn_id, __ATOMIC_RELEASE);
	__atomic_store_n(&s->written, written, __ATOMIC_RELEASE);
	__atomic_store_n(&s->consumed, consumed, __ATOMIC_RELEASE);
	__atomic_store_n(&s->responses, responses, __ATOMIC_RELEASE);
	__atomic_store_n(&s->last_ms, last_ms, __ATOMIC_RELEASE);
	__atomic_store_n(&s->buffered, buffered, __ATOMIC_RELEASE);
	slot_set_pos(s->tls_seq, s->tls_key_updates, pos);
	slot_set_end(s, 0, 0, 0, &no_pos);
	slot_write_end(s, seq);
}

/* The end_* fields alone, beside the record (see delegate_pre_end). */
static void delegate_slot_store_end(struct shared_slot *s, uint64_t written, uint64_t consumed,
                                    uint64_t buffered, const struct conn_io_pos *pos)
{
	uint64_t seq = slot_write_begin(s);
	slot_set_end(s, written, consumed, buffered, pos);
	slot_write_end(s, seq);
}

static void delegate_slot_update(struct delegation *d)
{
	ps_client *c = d->c;
	struct conn_io_pos pos;
	conn_io_tls_pos(d->conn, &pos);
	if (c->page && d->slot >= 0)
		delegate_slot_store(&c->page->slots[d->slot], d->conn_id, d->conn->written, d->conn->consumed,
		                    d->responses, (uint64_t)d->last_ms, d->len, &pos);
}

static void delegate_slot_free(struct delegation *d)
{
	ps_client *c = d->c;
	if (d->slot < 0)
		return;
	if (c->page) {
		delegate_slot_store(&c->page->slots[d->slot], 0, 0, 0, 0, 0, 0, &no_pos);
		c->slot_free[c->nslot_free++] = (uint16_t)d->slot;
	}
	d->slot = -1;
}

static void delegate_unmap(ps_client *c)
{
	if (c->page)
		munmap(c->page, c->page_size);
	c->page = NULL;
	c->page_size = 0;
	c->nslot_free = 0;
}

static void delegate_page(ps_client *c, int fd, size_t size)
{
	/* A page replaced under slots in use would lose them: one page per session. */
	if (c->delegations)
		return;
	delegate_unmap(c);
	if (!c->slot_free) {
		c->slot_free = malloc(SHARED_SLOTS * sizeof(*c->slot_free));
		if (!c->slot_free)
			return;
	}
	/* a page shorter than it says would fault (SIGBUS) at the first slot past its end */
	struct stat st;
	if (size < sizeof(struct shared_page) || fstat(fd, &st) < 0 || (uint64_t)st.st_size < size)
		return;
	void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return;
	struct shared_page *page = map;
	if (page->magic != SHARED_PAGE_MAGIC || page->size != size) {
		munmap(map, size);
		return;
	}
	c->page = page;
	c->page_size = size;
	__atomic_store_n(&page->counts_delivered, 1, __ATOMIC_RELEASE);
	/* a stack that hands out slot 0 first */
	c->nslot_free = 0;
	for (unsigned i = SHARED_SLOTS; i-- > 0;)
		if (__atomic_load_n(&page->slots[i].conn_id, __ATOMIC_ACQUIRE) == 0)
			c->slot_free[c->nslot_free++] = (uint16_t)i;
}

static void delegate_drop_snapshot(ps_client *c)
{
	snapshot_clear(&c->snap);
	c->have_snap = false;
}

static void delegate_routes(ps_client *c, int fd, const struct ps_shm *shm)
{
	struct snapshot s;
	if (snapshot_read(fd, shm->size, &s) == 0) {
		if (s.generation == shm->generation) {
			delegate_drop_snapshot(c);
			c->snap = s;
			c->have_snap = true;
			return;
		}
		snapshot_clear(&s);
	}
	/* Never route by an older table than the daemon's: without one every delegated
	 * request goes back to the daemon. */
	delegate_drop_snapshot(c);
}

void delegate_shm(ps_client *c, const struct ps_msg *m, int fd)
{
	if (fd < 0) { /* lost at the fd limit */
		if (m->u.shm.kind == PS_SHM_ROUTES)
			delegate_drop_snapshot(c);
		return;
	}
	/* the page is mapped delegating or not: its counters and access-log ring serve both */
	if (m->u.shm.kind == PS_SHM_SESSION_PAGE)
		delegate_page(c, fd, m->u.shm.size);
	else if (c->delegation)
		delegate_routes(c, fd, &m->u.shm);
	close(fd); /* the mapping (or the private copy of the routes) is all we keep */
}

void delegate_served(ps_request *r)
{
	ps_client *c = r->c;
	ps_queue *q = r->q;
	if (!c || !q || r->gen != c->gen || !c->page || r->counted)
		return;
	r->counted = true;
	if (q->counter_gen != c->gen) {
		/* find the queue's entry, else claim a free one; only this process writes them */
		struct shared_counter *ct = c->page->counters;
		q->counter = -1;
		for (int i = 0; i < SHARED_QUEUES && q->counter < 0; i++)
			if (__atomic_load_n(&ct[i].queue_id, __ATOMIC_RELAXED) == q->id)
				q->counter = i;
		for (int i = 0; i < SHARED_QUEUES && q->counter < 0; i++) {
			if (__atomic_load_n(&ct[i].queue_id, __ATOMIC_RELAXED) == 0) {
				__atomic_store_n(&ct[i].queue_id, q->id, __ATOMIC_RELEASE);
				q->counter = i;
			}
		}
		q->counter_gen = c->gen;
	}
	if (q->counter < 0)
		return;
	struct shared_counter *ct = &c->page->counters[q->counter];
	if (r->status >= 100 && r->status < 600)
		__atomic_fetch_add(&ct->classes[r->status / 100 - 1], 1, __ATOMIC_RELAXED);
	uint64_t us = request_duration_us(r);
	__atomic_fetch_add(&ct->duration_us, us, __ATOMIC_RELAXED);
	__atomic_fetch_add(&ct->buckets[shared_bucket(us)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&ct->bytes, r->body_sent, __ATOMIC_RELAXED);
	__atomic_fetch_add(r->delegated ? &ct->served : &ct->delivered, 1, __ATOMIC_RELEASE);
}

/* The end record: end_written the byte count when the last send is done, pos the TLS
 * records' position then. */
static void delegate_pre_end_at(ps_request *r, uint64_t end_written, const struct conn_io_pos *pos)
{
	struct delegation *d = r->delegation;
	ps_client *c = r->c;
	if (!c || !c->page || r->gen != c->gen)
		return;
	/* the request's access-log record goes with the slot's end record: a worker killed
	 * after either has left both (accesslog.c) */
	accesslog_last(r, end_written);
	int slot;
	if (d && d->slot >= 0) {
		slot = d->slot; /* holds the last response recorded: it stays */
	} else if (!d && r->delegable && !r->pre_slot_held && c->nslot_free > 0) {
		/* a request the daemon delivered: the slot it will keep if it stays delegated
		 * is taken now, so this response is covered too (delegate_new takes it over); it
		 * records the handoff itself: nothing written, nothing read, no response */
		slot = c->slot_free[--c->nslot_free];
		r->pre_slot = (uint16_t)slot;
		r->pre_slot_held = true;
		delegate_slot_store(&c->page->slots[slot], r->conn_id, 0, 0, 0, (uint64_t)deadline_now(), 0,
		                    &no_pos);
	} else if (r->pre_slot_held) {
		slot = r->pre_slot;
	} else {
		return;
	}
	/* unread body bytes must never look like a next request to the daemon: with the body
	 * not all read, it learns only that the response went out whole */
	delegate_slot_store_end(&c->page->slots[slot], end_written, r->conn->consumed,
	                        r->body_done ? r->in_len - r->in_pos : SHARED_END_BODY_UNREAD, pos);
}

void delegate_pre_end(ps_request *r, size_t last)
{
	delegate_pre_end_at(r, r->conn->written + last, &no_pos);
}

void delegate_pre_end_tls(void *arg, uint64_t written, const struct conn_io_pos *pos)
{
	delegate_pre_end_at(arg, written, pos);
}

/* A slot delegate_pre_end took for a request that did not stay delegated goes back (after
 * its RETURN or END: until the daemon has that, the slot is its evidence). */
static void delegate_pre_release(ps_request *r)
{
	ps_client *c = r->c;
	if (!r->pre_slot_held)
		return;
	r->pre_slot_held = false;
	if (!c || !c->page || r->gen != c->gen)
		return; /* the page it was taken from is gone */
	delegate_slot_store(&c->page->slots[r->pre_slot], 0, 0, 0, 0, 0, 0, &no_pos);
	c->slot_free[c->nslot_free++] = r->pre_slot;
}

/* ---- the idle list: least recently active first, so the timer looks at its head ---- */

static void delegate_idle_remove(struct delegation *d)
{
	ps_client *c = d->c;
	if (!d->idle)
		return;
	if (d->idle_prev)
		d->idle_prev->idle_next = d->idle_next;
	else
		c->idle_first = d->idle_next;
	if (d->idle_next)
		d->idle_next->idle_prev = d->idle_prev;
	else
		c->idle_last = d->idle_prev;
	d->idle_prev = d->idle_next = NULL;
	d->idle = false;
}

/* Marks d active now (at the list's tail). The timer is not re-armed: when it fires it
 * finds the real deadlines, so activity costs no syscall. */
static void delegate_idle_touch(struct delegation *d, int64_t now)
{
	ps_client *c = d->c;
	delegate_idle_remove(d);
	d->active_ms = now;
	d->idle_prev = c->idle_last;
	if (c->idle_last)
		c->idle_last->idle_next = d;
	else
		c->idle_first = d;
	c->idle_last = d;
	d->idle = true;
	if (c->idle_check < 0) {
		c->idle_check = now + DELEG_IDLE_MS;
		client_schedule(c);
	}
}

/* ---- ending a delegation ---- */

/* Ends the delegation: out of the epoll set (before our reference can close the fd,
 * DESIGN §2a), slot freed, off the lists. A request in progress on it goes on without
 * it and closes the connection when it ends. The memory waits for delegate_reap, since
 * an event of the batch being handled may still name it. */
static void delegate_kill(struct delegation *d)
{
	ps_client *c = d->c;
	if (d->dead)
		return;
	d->dead = true;
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, d->conn->fd, NULL);
	delegate_slot_free(d);
	delegate_idle_remove(d);
	if (d->busy) {
		d->busy->delegation = NULL;
		d->busy->close = true;
		d->busy = NULL;
	}
	if (d->prev)
		d->prev->next = d->next;
	else
		c->delegations = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->prev = NULL;
	d->next = c->dead;
	c->dead = d;
	d->conn->delegation = NULL;
	conns_release(d->conn);
	d->conn = NULL;
}

/* RETURN: the daemon reads the connection again, starting with every byte we hold.
 * The slot is freed only once the RETURN is sent: until then it is the daemon's
 * evidence of what this session did with the connection. */
static void delegate_give_back(struct delegation *d)
{
	/* a failure ends the session, which drops every delegation */
	client_send_return(d->c, d->conn, d->conn_id, d->req_id, d->eof, d->buf, d->len);
	delegate_kill(d); /* the cached fd stays: the daemon may deliver on it again */
}

/* END: the client closed (shut down our side too) or the connection failed (reset). */
static void delegate_end(struct delegation *d, uint32_t flags)
{
	ps_client *c = d->c;
	if (flags & PS_END_SHUTDOWN) {
		conn_io_close_notify(d->conn);
		shutdown(d->conn->fd, SHUT_WR);
	} else
		sock_abort(d->conn->fd);
	client_send_end(c, d->conn_id, d->req_id, flags);
	if (d->dead)
		return;
	/* END gives up the cached fd too; our own reference keeps it open until the
	 * epoll registration is gone */
	if (d->conn->cached)
		conns_del(&c->conns, d->conn);
	delegate_kill(d);
}

void delegate_expire(ps_client *c)
{
	if (c->idle_check < 0)
		return;
	int64_t now = deadline_now();
	if (now < c->idle_check)
		return;
	/* an idle connection costs the worker nothing once the daemon has it again */
	while (c->idle_first && c->idle_first->active_ms + DELEG_IDLE_MS <= now)
		delegate_give_back(c->idle_first);
	c->idle_check = c->idle_first ? c->idle_first->active_ms + DELEG_IDLE_MS : -1;
}

void delegate_conn_closed(struct delegation *d)
{
	delegate_kill(d);
}

void delegate_forget(struct delegation *d)
{
	delegate_kill(d);
}

void delegate_drop(ps_request *r)
{
	delegate_pre_release(r);
	struct delegation *d = r->delegation;
	if (!d)
		return;
	r->delegation = NULL;
	if (d->busy == r)
		d->busy = NULL;
	delegate_kill(d);
}

void delegate_session_lost(ps_client *c)
{
	while (c->delegations) {
		struct delegation *d = c->delegations;
		if (!d->busy) {
			/* no daemon to give it back to: end it as a request of an old session
			 * ends (the FIN after the last response) */
			conn_io_close_notify(d->conn);
			shutdown(d->conn->fd, SHUT_WR);
			if (d->conn->cached)
				conns_del(&c->conns, d->conn);
		}
		delegate_kill(d);
	}
	c->idle_check = -1;
	delegate_unmap(c);
	delegate_drop_snapshot(c);
}

bool delegate_give_back_request(ps_request *r)
{
	/* the daemon gets it back whole, as if it had never been read */
	struct delegation *d = r->delegation;
	size_t tail = r->in_len - r->in_pos;
	if (!d || r->handed_out || d->busy != r || r->read_sock || r->head_len + tail > DELEG_BUF ||
	    !client_connected(r->c))
		return false;
	memcpy(d->buf, r->head, r->head_len);
	if (tail > 0) /* r->in may be NULL then */
		memcpy(d->buf + r->head_len, r->in + r->in_pos, tail);
	d->len = r->head_len + tail;
	d->busy = NULL;
	r->delegation = NULL;
	delegate_give_back(d);
	return true;
}

void delegate_return_idle(ps_client *c, bool all)
{
	for (ps_request *r = c->requests; all && r && client_connected(c); r = r->next)
		delegate_give_back_request(r);
	while (c->idle_first && client_connected(c))
		delegate_give_back(c->idle_first);
}

void delegate_reap(ps_client *c)
{
	while (c->dead) {
		struct delegation *d = c->dead;
		c->dead = d->next;
		free(d->buf);
		free(d);
	}
}

void delegate_free_all(ps_client *c)
{
	while (c->delegations)
		delegate_kill(c->delegations);
	delegate_reap(c);
	c->idle_check = -1;
	delegate_unmap(c);
	delegate_drop_snapshot(c);
	free(c->slot_free);
	free(c->dhead);
	free(c->dpath);
	free(c->dscratch);
	c->slot_free = NULL;
	c->dhead = NULL;
	c->dpath = c->dscratch = NULL;
}

/* ---- keeping a connection, reading its next requests ---- */

/* Makes the delegated connection for r's connection: a slot, and a place in the epoll
 * set (edge-triggered: registered once for the whole delegation, so neither a request
 * in progress nor its end costs an epoll_ctl). */
static struct delegation *delegate_new(ps_client *c, ps_request *r)
{
	if (c->nslot_free == 0 && !(r->pre_slot_held && r->gen == c->gen))
		return NULL;
	if (!c->dhead) {
		c->dhead = malloc(sizeof(*c->dhead));
		c->dpath = malloc(DELEG_PATH_CAP);
		c->dscratch = malloc(DELEG_PATH_CAP);
		if (!c->dhead || !c->dpath || !c->dscratch) {
			free(c->dhead);
			free(c->dpath);
			free(c->dscratch);
			c->dhead = NULL;
			c->dpath = c->dscratch = NULL;
			return NULL;
		}
	}
	struct delegation *d = calloc(1, sizeof(*d));
	char *buf = d ? malloc(DELEG_BUF) : NULL;
	if (!buf) {
		free(d);
		return NULL;
	}
	d->buf = buf;
	d->c = c;
	d->conn = r->conn;
	d->conn_id = r->conn_id;
	d->req_id = r->req_id;
	d->local = r->addr_local;
	d->remote = r->addr_remote;
	d->slot = -1;
	http_scan_init(&d->scan);
	/* Bytes already waiting make the registration report at once. */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = d};
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, r->conn->fd, &ev) < 0) {
		free(buf);
		free(d);
		return NULL;
	}
	conns_hold(d->conn);
	d->conn->delegation = d;
	if (r->pre_slot_held && r->gen == c->gen) {
		d->slot = r->pre_slot; /* the slot delegate_pre_end recorded this response in */
		r->pre_slot_held = false;
	} else {
		d->slot = c->slot_free[--c->nslot_free];
	}
	d->next = c->delegations;
	if (c->delegations)
		c->delegations->prev = d;
	c->delegations = d;
	return d;
}

struct delegation *delegate_keep(ps_request *r)
{
	ps_client *c = r->c;
	struct delegation *d = r->delegation;
	size_t left = r->in_len - r->in_pos;
	if (!d && !r->delegable)
		return NULL;
	/* A drained queue's process is on its way out, and so is a session told to
	 * re-attach: their connections go back. (A missing
	 * route snapshot is no reason: it follows a route change by ~20 ms and is picked up
	 * when the next head is complete.) */
	if (!c->page || !r->q || r->q->drained || r->q->deleted || !r->conn->cached || r->fd < 0 ||
	    left > DELEG_BUF || c->reattach)
		return NULL; /* after REATTACH: back to the daemon, which passes it on (DESIGN §10) */
	if (!d) {
		d = delegate_new(c, r);
		if (!d)
			return NULL;
	} else {
		d->busy = NULL;
		r->delegation = NULL;
		/* the request read the socket itself: edges it caused may be gone */
		if (r->read_sock)
			d->readable = true;
	}
	if (left > 0)
		memcpy(d->buf, r->in + r->in_pos, left);
	d->len = left;
	r->in_pos = r->in_len;
	http_scan_init(&d->scan);
	d->responses++;
	int64_t now = deadline_now();
	d->last_ms = now;
	delegate_slot_update(d);
	delegate_idle_touch(d, now);
	return d;
}

/* Makes the request in d's buffer (head h) a delivery of the queue it routes to, as
 * the daemon would have. False when it is not ours to serve: then it goes back. */
static bool delegate_request(struct delegation *d, const struct http_head *h)
{
	ps_client *c = d->c;
	if (dispatch_path_cap(h) > DELEG_PATH_CAP)
		return false;
	struct dispatch dp = {
	    .buf = d->buf, .h = h, .local = &d->local, .port = d->local.port, .canon = &c->snap.canon};
	if (dispatch_route(c->snap.routes, &dp, c->dpath, c->dscratch) != 0)
		return false; /* 400/404/414: the daemon answers them */
	uint32_t qid = (uint32_t)(uintptr_t)dp.owner;
	ps_queue *q = queue_find(c, qid);
	if (!q || q->drained)
		return false;
	uint64_t max_body = snapshot_max_body(&c->snap, qid);
	if (max_body && h->content_length > 0 && (uint64_t)h->content_length > max_body)
		return false; /* the daemon answers 413 */

	size_t end = (size_t)h->skip + h->head_len;
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_DELIVER;
	struct ps_deliver *dv = &m.u.deliver;
	/* RETURN and END name the connection by the DELIVER that handed it over */
	dv->conn_id = d->conn_id;
	dv->req_id = d->req_id;
	dv->queue_id = qid;
	dv->flags = PS_DELIVER_DELEGATE;
	dv->local = d->local;
	dv->remote = d->remote;
	dv->head_len = h->head_len;
	dv->path_len = (uint32_t)dp.path_len;
	dv->host_len = (uint32_t)strlen(dp.host);
	dv->tail_len = (uint32_t)(d->len - end);
	m.head = d->buf + h->skip;
	m.path = c->dpath;
	m.host = dp.host;
	m.tail = d->buf + end;
	ps_request *r = request_delegated(c, q, &m, d->conn, h);
	if (!r)
		return false;
	r->max_body = max_body;
	r->delegable = true;
	r->delegation = d;
	d->busy = r;
	d->len = 0;
	http_scan_init(&d->scan);
	delegate_idle_remove(d);
	queue_push(q, r);
	return true;
}

/* Whether the snapshot held is the daemon's newest. */
static bool delegate_routes_current(const ps_client *c)
{
	return c->page && c->have_snap &&
	       __atomic_load_n(&c->page->routes_generation, __ATOMIC_ACQUIRE) == c->snap.generation;
}

/* Looks at the bytes buffered: true when the connection was handed on (a request is
 * queued, or it went back or ended), false when more bytes are needed. */
static bool delegate_parse(struct delegation *d)
{
	ps_client *c = d->c;
	/* Until the first snapshot comes, the default limits find the head's end; a head
	 * they refuse goes back to the daemon, which applies its own. */
	static const struct http_limits fallback = HTTP_LIMITS_DEFAULT;
	struct http_head *h = c->dhead;
	for (bool reread = false;; reread = true) {
		const struct http_limits *lim = c->have_snap ? &c->snap.http : &fallback;
		uint64_t gen = c->have_snap ? c->snap.generation : UINT64_MAX;
		if (gen != d->scan_gen) {
			/* other limits: what was scanned under the old ones is scanned again */
			http_scan_init(&d->scan);
			d->scan_gen = gen;
		}
		enum http_head_result res = http_head_parse(&d->scan, d->buf, d->len, lim, h);
		if (res == HTTP_HEAD_INCOMPLETE) {
			if (d->len < DELEG_BUF && d->len < lim->max_request_bytes)
				return false;
			break;
		}
		/* refusals and OPTIONS * are the daemon's to answer */
		if (res == HTTP_HEAD_ERROR || h->asterisk_form)
			break;
		if (delegate_routes_current(c) && gen == c->snap.generation) {
			if (!delegate_request(d, h))
				break;
			return true;
		}
		if (reread)
			break;
		client_read(c); /* the newer snapshot may be waiting on the session socket */
		if (d->dead)
			return true;
		if (!delegate_routes_current(c))
			break;
	}
	delegate_give_back(d);
	return true;
}

void delegate_run(struct delegation *d)
{
	while (!d->dead && !d->busy) {
		if (d->len > 0 && delegate_parse(d))
			continue;
		if (d->eof) {
			if (d->len == 0)
				delegate_end(d, PS_END_SHUTDOWN);
			else
				delegate_give_back(d); /* a partial head: the daemon decides */
			return;
		}
		if (!d->readable)
			return; /* the next edge brings us back */
		size_t want = DELEG_BUF - d->len;
		ssize_t n = conn_io_recv_now(d->conn, d->buf + d->len, want);
		if (n > 0) {
			d->len += (size_t)n;
			/* A short read emptied the socket: the next byte makes a new edge. After
			 * a FIN was announced, read on to see it. A TLS connection may hold opened
			 * records still, which no edge announces. */
			if ((size_t)n < want && !d->hup && !conn_io_pending(d->conn))
				d->readable = false;
			delegate_idle_touch(d, deadline_now());
		} else if (n == 0) {
			d->eof = true;
		} else if (n == PS_EAGAIN) {
			d->readable = false;
		} else {
			delegate_end(d, PS_END_ABORT);
		}
	}
}

void delegate_event(struct delegation *d, uint32_t events)
{
	if (d->dead)
		return;
	d->readable = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		d->hup = true;
	if (!d->busy)
		delegate_run(d);
}
