/* handoff.c: a request goes from the daemon to a worker (DESIGN §2, §2a), in one
 * sequence: it is held in its queue (the connection's input not watched), then delivered
 * to a session with an outstanding receive (DELIVER, with the client fd the first time
 * that session sees the connection), and the fd stays cached by the session until the
 * daemon sends CONN_CLOSED or the library sends END. queue.c decides which request goes
 * to which receive; conn.c changes the connection's state. */
#include "handoff.h"

#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "conn.h"
#include "daemon-t.h"
#include "list.h"
#include "metrics.h"
#include "session.h"
#include "takeover.h"
#include "threads-t.h"
#include "tls.h"

static bool handoff_cached_by(const struct conn *c, uint32_t session_id)
{
	for (uint32_t i = 0; i < c->ncached; i++)
		if (c->cached_by[i] == session_id)
			return true;
	return false;
}

static void handoff_cache_add(struct conn *c, uint32_t session_id)
{
	if (handoff_cached_by(c, session_id))
		return;
	if (c->ncached == c->capcached) {
		uint32_t cap = c->capcached ? c->capcached * 2 : 2;
		uint32_t *n = realloc(c->cached_by, cap * sizeof(*n));
		if (!n)
			return; /* worst case the session is not told CONN_CLOSED and keeps a dead fd */
		c->cached_by = n;
		c->capcached = cap;
	}
	c->cached_by[c->ncached++] = session_id;
}

void handoff_cache_del(struct conn *c, uint32_t session_id)
{
	for (uint32_t i = 0; i < c->ncached; i++)
		if (c->cached_by[i] == session_id) {
			c->cached_by[i] = c->cached_by[--c->ncached];
			return;
		}
}

/* DELIVER: the request, and the client fd the first time this session sees the
 * connection. 0, or -1 when the session is going away. */
static int handoff_send(struct session *s, struct request *r)
{
	struct conn *c = r->conn;
	bool pass_fd = !handoff_cached_by(c, s->id);
	struct ps_msg m = {.hdr = {.type = PS_MSG_DELIVER}};
	struct ps_deliver *d = &m.u.deliver;
	d->conn_id = c->id;
	d->req_id = r->id;
	d->queue_id = r->queue->id;
	/* delegation: the library may keep the connection after this response (DESIGN §6);
	 * a TLS one too, its slot recording the records' position */
	r->delegated = s->page && s->delegating && !dm->stopping;
	d->flags = (pass_fd ? PS_DELIVER_FD : 0) | (r->delegated ? PS_DELIVER_DELEGATE : 0);
	if (c->tls) {
		d->flags |= PS_DELIVER_TLS;
		tls_conn_deliver(c, &m);
	}
	d->local = c->local;
	d->remote = c->remote;
	m.head = r->data;
	d->head_len = r->head_len;
	m.path = r->path;
	d->path_len = (uint32_t)strlen(r->path);
	m.host = r->host;
	d->host_len = (uint32_t)strlen(r->host);
	m.tail = r->data + r->head_len;
	d->tail_len = r->tail_len;
	if (session_send_fd(s, &m, pass_fd ? c->io.fd : -1) < 0)
		return -1;
	if (pass_fd)
		handoff_cache_add(c, s->id);
	metrics_handoff();
	return 0;
}

void handoff_hold(struct queue *q, struct request *r, bool again)
{
	struct conn *c = r->conn;
	if (this_thread->handing_over) {
		takeover_hand_over_conn(c); /* the new daemon queues it, for the same workers */
		return;
	}
	struct list *before = &q->pending; /* a new request: at the tail */
	if (again) {
		/* back in its place by arrival (ids grow as requests are routed), before what
		 * came after it: a burst given back is served oldest first, as it came */
		struct list *p, *t;
		list_for_each_safe(p, t, &q->pending)
		{
			if (container_of(p, struct request, link)->id > r->id) {
				before = p;
				break;
			}
		}
	}
	list_add_tail(before, &r->link);
	q->depth++;
	conn_queued(c);
}

void handoff_deliver(struct attach *a, struct request *r)
{
	struct conn *c = r->conn;
	if (c->tls && !a->s->tls) {
		/* its library predates TLS (a worker re-attached after an upgrade): the record
		 * state would be lost on it */
		answer_request(c, 503, "AppOffline: the worker's libportshare cannot take TLS connections",
		               false);
		return;
	}
	r->owner = a->s;
	list_add_tail(&a->s->requests, &r->link);
	r->written0 = r->wait_written = c->sent;
	r->consumed0 = c->received;
	a->receives--;
	/* the timer is not on the request path: it fires once per idle period, for the
	 * absolute idle limit of delegated connections and for a worker's copy dropped
	 * without END; sooner when the queue has a ResponseWait */
	uint32_t wait = a->q->response_wait_ms, idle = dm->cfg.limits.idle_connection_ms;
	conn_delivered(c, wait && wait < idle ? wait : idle);
	if (handoff_send(a->s, r) < 0) {
		/* the session is going away: the request goes to the next receive */
		r->owner = NULL;
		list_del(&r->link);
		handoff_hold(a->q, r, true);
	}
}

void handoff_cache_drop(struct conn *c)
{
	for (uint32_t i = 0; i < c->ncached; i++)
		session_send_conn_closed(c->cached_by[i], c->id);
	c->ncached = 0;
	free(c->cached_by);
	c->cached_by = NULL;
}
