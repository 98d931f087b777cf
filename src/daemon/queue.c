/* queue.c: named request queues: who may create and open them, their URL prefixes,
 * pending requests and the outstanding receives that pull them (DESIGN §4, §5). */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "acl.h"
#include "answer.h"
#include "conn.h"
#include "daemon-t.h"
#include "delegate.h"
#include "demand.h"
#include "handoff.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "portshare.h"
#include "queue-t.h"
#include "route.h"
#include "session.h"
#include "takeover.h"
#include "tcp.h"
#include "threads-t.h"

#define QUEUE_DEFAULT_LENGTH 1000
#define ATTACH_MAX_RECEIVES 4096 /* outstanding receives one session may post on one queue */
#define NOFD_RETRIES 3           /* a request bounced this often for lack of fds gets 503 */

struct queue *queue_find(const char *name)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->queues)
	{
		struct queue *q = container_of(p, struct queue, link);
		if (!strcmp(q->name, name))
			return q;
	}
	return NULL;
}

struct attach *queue_attach_find(struct session *s, uint32_t queue_id)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &s->attached)
	{
		struct attach *a = container_of(p, struct attach, slink);
		if (a->q->id == queue_id)
			return a;
	}
	return NULL;
}

static struct attach *attach_new(struct queue *q, struct session *s, bool creator)
{
	struct attach *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->q = q;
	a->s = s;
	a->creator = creator;
	list_add_tail(&q->attached, &a->qlink);
	list_add_tail(&s->attached, &a->slink);
	q->nattached++;
	q->reattach_wait = false; /* a worker is back: the queue works as usual */
	return a;
}

int queue_create(struct session *s, const struct ps_queue_create *m, struct queue **out, char *err,
                 size_t errlen)
{
	bool persistent = m->opt_flags & PS_QUEUE_PERSISTENT;
	struct queue *q = queue_find(m->name);
	if (q && q->recreate_due && q->uid == s->uid) {
		/* its creator re-attaching after an upgrade (DESIGN §10): the queue is the one it
		 * made in the old daemon, options, URLs and held requests included */
		q->recreate_due = false;
		if (!queue_attach_find(s, q->id) && !attach_new(q, s, true))
			return PS_ENOMEM;
		q->creator_pid = s->pid;
		log_info("queue %s re-attached by pid %d (user %s)", q->name, (int)s->pid, s->user);
		*out = q;
		return 0;
	}
	if (q) {
		snprintf(err, errlen,
		         "queue %s already exists (created by pid %d, user %s); open it to join it", q->name,
		         (int)q->creator_pid, q->creator_user);
		return PS_EEXIST;
	}
	if (persistent && !s->admin) {
		snprintf(err, errlen,
		         "persistent queues are for admins (root, the daemon's user, AdminGroup)");
		return PS_EDENIED;
	}
	if (acl_may_create(m->name, &s->ident, err, errlen) < 0)
		return PS_EDENIED;
	q = calloc(1, sizeof(*q));
	if (!q)
		return PS_ENOMEM;
	q->id = ++dm->next_queue_id;
	snprintf(q->name, sizeof(q->name), "%s", m->name);
	q->uid = s->uid;
	q->creator_pid = s->pid;
	snprintf(q->creator_user, sizeof(q->creator_user), "%s", s->user);
	q->persistent = persistent;
	q->max_length = m->max_length ? m->max_length : QUEUE_DEFAULT_LENGTH;
	q->max_body = m->max_body;
	q->response_wait_ms = m->response_wait_ms;
	list_init(&q->pending);
	list_init(&q->receives);
	list_init(&q->attached);
	if (!attach_new(q, s, true)) {
		free(q);
		return PS_ENOMEM;
	}
	list_add_tail(&dm->queues, &q->link);
	log_info("queue %s created by pid %d (user %s)%s", q->name, (int)s->pid, s->user,
	         persistent ? ", persistent" : "");
	*out = q;
	return 0;
}

int queue_open(struct session *s, const char *name, struct queue **out, char *err, size_t errlen)
{
	struct queue *q = queue_find(name);
	if (!q) {
		snprintf(err, errlen, "no queue named %s", name);
		return PS_ENOTFOUND;
	}
	if (!acl_may_join(q->name, q->uid, q->grants, q->ngrants, &s->ident)) {
		snprintf(err, errlen,
		         "queue %s belongs to user %s; its owner or an admin can let you join it "
		         "(portsharectl grant add "
		         "%s --user %s)",
		         name, q->creator_user, name, s->user);
		return PS_EDENIED;
	}
	if (!queue_attach_find(s, q->id) && !attach_new(q, s, false))
		return PS_ENOMEM;
	*out = q;
	return 0;
}

static int prefix_from_text(const char *text, size_t len, struct url_prefix *p, char *err, size_t errlen)
{
	char s[PS_PREFIX_MAX + 1];
	if (len > PS_PREFIX_MAX) {
		snprintf(err, errlen, "URL prefix longer than %d bytes", PS_PREFIX_MAX);
		return PS_EINVAL;
	}
	memcpy(s, text, len);
	s[len] = 0;
	if (url_prefix_parse(s, p, err, errlen) < 0)
		return PS_EINVAL;
	return 0;
}

/* Whether q has registered p already. */
static bool queue_has_url(const struct queue *q, const struct url_prefix *p)
{
	for (size_t i = 0; i < q->nurls; i++)
		if (url_prefix_equal(&q->urls[i], p))
			return true;
	return false;
}

int queue_url_add(struct queue *q, const struct ident *who, const char *text, size_t len, bool adopted,
                  char *err, size_t errlen)
{
	struct url_prefix p;
	int rc = prefix_from_text(text, len, &p, err, errlen);
	if (rc)
		return rc;
	if (route_port_scheme_count(dm->routes, p.port, !p.https)) {
		/* the first bytes decide whether a connection is TLS: a port is one or the other */
		snprintf(
		    err, errlen,
		    "port %u serves %s:// prefixes, so it cannot serve %s:// ones: a port is TLS or plain, "
		    "never both",
		    (unsigned)p.port, p.https ? "http" : "https", p.https ? "https" : "http");
		return PS_EINVAL;
	}
	if (q->nurls == q->capurls) {
		size_t cap = q->capurls ? q->capurls * 2 : 4;
		struct url_prefix *n = realloc(q->urls, cap * sizeof(*n));
		if (!n)
			return PS_ENOMEM;
		q->urls = n;
		q->capurls = cap;
	}
	/* a reservation also opens a port below 1024 to whom it names */
	if (acl_may_register(&p, who, err, errlen) < 0)
		return PS_EDENIED;
	int bound = listener_need(p.port, err, errlen);
	/* a URL the old daemon had keeps its place while its port is excluded, as it would
	 * have there (exclude delete binds it); a new one is refused, naming the rules */
	if (bound == -2 && !adopted && !(q->adopted && queue_has_url(q, &p)))
		return PS_EDENIED;
	if (bound == -1)
		return PS_EPORTINUSE;
	void *holder = NULL;
	rc = route_add(dm->routes, &p, q, &holder);
	if (rc == -2 && holder == q && q->adopted)
		return 0; /* a worker re-adding a URL its queue had in the old daemon */
	if (rc == -2) {
		struct queue *h = holder;
		char f[PS_PREFIX_MAX + 64];
		url_prefix_format(&p, f, sizeof(f));
		snprintf(err, errlen, "%s is already registered by queue %s (pid %d, user %s)", f, h->name,
		         (int)h->creator_pid, h->creator_user);
		return PS_EEXIST;
	}
	if (rc < 0) {
		listener_release(p.port);
		return PS_ENOMEM;
	}
	q->urls[q->nurls++] = p;
	listener_set_tls(p.port, p.https);
	delegate_routes_changed();
	return 0;
}

static void queue_url_remove_at(struct queue *q, size_t i)
{
	uint16_t port = q->urls[i].port;
	route_del(dm->routes, &q->urls[i]);
	delegate_routes_changed();
	q->urls[i] = q->urls[--q->nurls];
	listener_release(port);
}

int queue_url_del(struct queue *q, const char *text, size_t len, char *err, size_t errlen)
{
	struct url_prefix p;
	int rc = prefix_from_text(text, len, &p, err, errlen);
	if (rc)
		return rc;
	char want[PS_PREFIX_MAX + 64], have[PS_PREFIX_MAX + 64];
	url_prefix_format(&p, want, sizeof(want));
	for (size_t i = 0; i < q->nurls; i++) {
		url_prefix_format(&q->urls[i], have, sizeof(have));
		if (!strcmp(want, have)) {
			queue_url_remove_at(q, i);
			return 0;
		}
	}
	snprintf(err, errlen, "%s is not registered on queue %s", want, q->name);
	return PS_ENOTFOUND;
}

void request_free(struct request *r)
{
	if (!r)
		return;
	list_del(&r->link);
	if (r->queue && r->conn->state == CONN_QUEUED)
		r->queue->depth--;
	if (r->conn->req == r)
		r->conn->req = NULL;
	free(r->data);
	free(r->path);
	free(r->host);
	free(r);
}

/* Removes a's outstanding receives from its queue. */
static void attach_drop_receives(struct attach *a)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &a->q->receives)
	{
		struct recv_token *tok = container_of(p, struct recv_token, link);
		if (tok->a == a) {
			list_del(&tok->link);
			free(tok);
		}
	}
	a->receives = 0;
}

static void answer_all_pending(struct queue *q, const char *reason)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &q->pending)
	{
		struct request *r = container_of(p, struct request, link);
		q->refused++;
		answer_request(r->conn, 503, reason, false);
	}
}

/* Requests of q that workers hold outlive it: they must not point at it. */
static void queue_forget_delivered(struct queue *q)
{
	struct list *sp, *st, *rp, *rt;
	list_for_each_safe(sp, st, &dm->sessions)
	{
		struct session *s = container_of(sp, struct session, link);
		list_for_each_safe(rp, rt, &s->requests)
		{
			struct request *r = container_of(rp, struct request, link);
			if (r->queue == q)
				r->queue = NULL;
		}
	}
}

static void queue_destroy(struct queue *q)
{
	demand_queue_gone(q);
	metrics_queue_gone(q);
	answer_all_pending(q, "AppOffline");
	queue_forget_delivered(q);
	while (q->nurls)
		queue_url_remove_at(q, q->nurls - 1);
	struct list *p, *t;
	list_for_each_safe(p, t, &q->attached)
	{
		struct attach *a = container_of(p, struct attach, qlink);
		attach_drop_receives(a);
		demand_detach(a);
		list_del(&a->qlink);
		list_del(&a->slink);
		free(a);
	}
	log_info("queue %s removed (served %llu)", q->name, (unsigned long long)q->served);
	list_del(&q->link);
	free(q->urls);
	free(q);
}

int queue_delete(struct queue *q)
{
	queue_destroy(q);
	return 0;
}

void queue_detach(struct attach *a)
{
	struct queue *q = a->q;
	attach_drop_receives(a);
	demand_detach(a);
	list_del(&a->qlink);
	list_del(&a->slink);
	free(a);
	if (--q->nattached) {
		demand_check(q); /* it may have been the last worker */
		return;
	}
	if (!q->persistent)
		queue_destroy(q);
	else
		answer_all_pending(q, "AppOffline"); /* an IIS app pool that is stopped */
}

/* Hands pending requests to outstanding receives, oldest receive first. */
static void queue_pump(struct queue *q)
{
	while (!list_empty(&q->pending) && !list_empty(&q->receives)) {
		struct recv_token *tok = container_of(q->receives.next, struct recv_token, link);
		struct request *r = container_of(q->pending.next, struct request, link);
		struct attach *a = tok->a;
		list_del(&tok->link);
		free(tok);
		list_del(&r->link);
		q->depth--;
		handoff_deliver(a, r);
	}
	demand_check(q);
}

void queue_receive(struct attach *a, uint32_t count)
{
	if (a->draining)
		return;
	a->worker = true;
	while (count-- && a->receives < ATTACH_MAX_RECEIVES) {
		struct recv_token *tok = calloc(1, sizeof(*tok));
		if (!tok)
			break;
		tok->a = a;
		list_add_tail(&a->q->receives, &tok->link);
		a->receives++;
	}
	queue_pump(a->q);
}

void queue_receive_cancel(struct attach *a)
{
	attach_drop_receives(a);
}

void queue_drain(struct attach *a)
{
	a->draining = true;
	attach_drop_receives(a);
	demand_check(a->q);
}

void queue_push(struct queue *q, struct request *r)
{
	r->queue = q;
	if (!q->nattached && q->reattach_wait && q->depth < q->max_length) {
		handoff_hold(q, r, false); /* its workers are on their way from the old daemon */
		return;
	}
	if (!q->nattached) {
		q->refused++;
		answer_request(r->conn, 503, q->reattach_wait ? "QueueFull" : "AppOffline", false);
		return;
	}
	if (q->depth >= q->max_length && list_empty(&q->receives)) {
		q->refused++;
		answer_request(r->conn, 503, "QueueFull", false);
		return;
	}
	handoff_hold(q, r, false);
	queue_pump(q);
}

void queue_requeue(struct request *r, enum queue_again why)
{
	struct queue *q = r->queue;
	if (this_thread->handing_over) {
		takeover_hand_over_conn(r->conn); /* nothing of it was seen: the new daemon routes it */
		return;
	}
	if (!q) {
		answer_request(r->conn, 503, "AppOffline", true);
		return;
	}
	bool nofd = why == QUEUE_AGAIN_NOFD;
	if (why != QUEUE_AGAIN_YIELDED && (nofd ? ++r->nofd > NOFD_RETRIES : ++r->requeues > NOFD_RETRIES)) {
		q->refused++;
		answer_request(r->conn, 503, nofd ? "NoFileDescriptors" : "WorkerDied", true);
		return;
	}
	r->demand_told = false; /* its worker is gone: a controller may have to start one */
	handoff_hold(q, r, true);
	queue_pump(q);
}

void queue_request_timeout(struct conn *c)
{
	struct request *r = c->req;
	r->queue->refused++;
	list_del(&r->link);
	r->queue->depth--;
	conn_unqueued(c); /* no longer queued: request_free must not count it again */
	answer_request(c, 503, "Timer_QueueWait", false);
}

/* ResponseWait (DESIGN §5): while a delivered request is owed its response, the worker
 * may go at most response_wait_ms without writing any of it. Nothing written when it
 * expires: the daemon answers 503 and closes (its shutdown also ends the worker's copy,
 * so no second response can follow). Part written and then nothing for a whole period:
 * the worker stopped half-way, and the connection is aborted. A response that keeps
 * flowing (a stream) is left alone; so is everything after the first complete response
 * of a delegated connection, which the daemon does not see. */
bool queue_response_wait(struct conn *c)
{
	struct request *r = c->req;
	if (!r || !r->owner || !r->queue || !r->queue->response_wait_ms || r->answered)
		return false;
	if (delegate_answered(r)) {
		r->answered = true;
		return false;
	}
	uint64_t written, consumed;
	tcp_counters(c->io.fd, &written, &consumed);
	if (written == r->written0 && c->tls) {
		/* the worker is alive and holds the records: a record of ours could reuse its
		 * next sequence number (an AES-GCM nonce), so no 503 can be sealed for it */
		log_error_answer(c, 0,
		                 "Timer_ResponseWait: no response on a TLS connection, connection aborted");
		conn_abort(c);
		return true;
	}
	if (written == r->written0) {
		answer_request(c, 503, "Timer_ResponseWait", true);
		return true;
	}
	if (written == r->wait_written) {
		log_error_answer(c, 0,
		                 "Timer_ResponseWait: the worker stopped in the middle of its response");
		conn_abort(c);
		return true;
	}
	r->wait_written = written;
	loop_timer_set(dm->loop, &c->timer, r->queue->response_wait_ms);
	return true;
}

bool queue_busy(void)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->conns)
	{
		struct conn *c = container_of(p, struct conn, link);
		if (c->state == CONN_QUEUED || c->state == CONN_DELIVERED || c->state == CONN_WRITING)
			return true;
	}
	return false;
}

struct queue *queue_adopt(const struct ps_takeover_queue *m)
{
	if (queue_find(m->name))
		return NULL;
	struct queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->id = ++dm->next_queue_id;
	snprintf(q->name, sizeof(q->name), "%s", m->name);
	q->uid = m->uid;
	q->creator_pid = (pid_t)m->creator_pid;
	snprintf(q->creator_user, sizeof(q->creator_user), "%.*s", (int)sizeof(q->creator_user) - 1,
	         m->creator_user);
	q->persistent = m->opt_flags & PS_QUEUE_PERSISTENT;
	q->max_length = m->max_length ? m->max_length : QUEUE_DEFAULT_LENGTH;
	q->max_body = m->max_body;
	q->response_wait_ms = m->response_wait_ms;
	q->adopted = true;
	q->recreate_due = true;
	/* a queue that had workers holds its requests for them; one that had none (a
	 * persistent queue whose workers are gone) answers AppOffline at once, as before */
	q->reattach_wait = m->sessions > 0;
	list_init(&q->pending);
	list_init(&q->receives);
	list_init(&q->attached);
	list_add_tail(&dm->queues, &q->link);
	return q;
}

void queue_reattach_over(void)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->queues)
	{
		struct queue *q = container_of(p, struct queue, link);
		if (!q->reattach_wait)
			continue;
		q->reattach_wait = false;
		log_info("queue %s: no worker re-attached within ReattachGrace%s", q->name,
		         q->persistent ? "; requests get 503 AppOffline" : "; removed");
		if (!q->persistent)
			queue_destroy(q);
		else
			answer_all_pending(q, "AppOffline");
	}
}
