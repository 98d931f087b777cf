/* queue.c: request queues on the client side: create, open, URLs, drain, delete,
 * ps_receive (the pull model: one RECEIVE posted, one DELIVER consumes it) and its
 * counterpart ps_client_yield (the receives withdrawn, what they brought given back). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "deadline.h"
#include "delegate.h"
#include "request.h"

ps_queue *queue_find(const ps_client *c, uint32_t id)
{
	for (ps_queue *q = c->queues; q; q = q->next)
		if (q->id == id && queue_attached(q))
			return q;
	return NULL;
}

bool queue_attached(const ps_queue *q)
{
	return !q->deleted && q->gen == q->c->gen && client_connected(q->c);
}

void queue_push(ps_queue *q, ps_request *r)
{
	/* Only the ps_receive of this very queue returns it without being told. */
	if (q->c->receiving != q)
		client_kick(q->c);
	r->queue_next = NULL;
	if (q->last)
		q->last->queue_next = r;
	else
		q->first = r;
	q->last = r;
}

static ps_request *queue_pop(ps_queue *q)
{
	ps_request *r = q->first;
	if (r) {
		q->first = r->queue_next;
		if (!q->first)
			q->last = NULL;
		r->queue_next = NULL;
	}
	return r;
}

void queue_free(ps_queue *q)
{
	for (size_t i = 0; i < q->nurls; i++)
		free(q->urls[i]);
	free(q->urls);
	free(q);
}

/* One request/REPLY exchange about q (its id filled in here, since it changes with
 * each session). */
static int queue_call(ps_queue *q, struct ps_msg *m, uint32_t *id, int64_t deadline)
{
	switch (m->hdr.type) {
	case PS_MSG_URL_ADD:
	case PS_MSG_URL_DEL:
		m->u.url.queue_id = q->id;
		m->u.url.prefix_len = (uint32_t)m->text_len;
		break;
	case PS_MSG_QUEUE_CREATE:
		break;
	default: /* QUEUE_OPEN, QUEUE_DELETE, QUEUE_DRAIN */
		m->u.queue.queue_id = q->id;
		snprintf(m->u.queue.name, sizeof(m->u.queue.name), "%s", q->name);
	}
	return client_call(q->c, m, id, deadline);
}

static int queue_send_simple(ps_queue *q, uint16_t type, const char *text, int64_t deadline)
{
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = type;
	m.text = text;
	m.text_len = text ? strlen(text) : 0;
	return queue_call(q, &m, NULL, deadline);
}

static int queue_send_open(ps_queue *q, uint32_t *id, int64_t deadline)
{
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_QUEUE_OPEN;
	return queue_call(q, &m, id, deadline);
}

int queue_attach(ps_queue *q, bool replay, int64_t deadline)
{
	ps_client *c = q->c;
	uint32_t id = 0;
	int rc;
	if (q->created) {
		struct ps_msg m;
		memset(&m, 0, sizeof(m));
		m.hdr.type = PS_MSG_QUEUE_CREATE;
		m.u.create.opt_flags = q->opts.persistent ? PS_QUEUE_PERSISTENT : 0;
		m.u.create.max_length = q->opts.max_length;
		m.u.create.max_body = q->opts.max_body;
		m.u.create.response_wait_ms = q->opts.response_wait_ms;
		snprintf(m.u.create.name, sizeof(m.u.create.name), "%s", q->name);
		rc = queue_call(q, &m, &id, deadline);
		/* After a restart the name may exist already: a persistent queue restored by
		 * the daemon, or re-created by another worker of the same application. Join it. */
		if (rc == PS_EEXIST && replay)
			rc = queue_send_open(q, &id, deadline);
	} else {
		rc = queue_send_open(q, &id, deadline);
	}
	if (rc < 0) {
		if (replay && rc != PS_EDISCONNECTED) {
			/* e.g. PS_ENOTFOUND: its creator has not re-created it yet */
			q->attach_error = rc;
			q->retry_at = deadline_now() + q->backoff_ms;
			q->backoff_ms = q->backoff_ms * 2 > CLIENT_BACKOFF_MAX_MS ? CLIENT_BACKOFF_MAX_MS
			                                                          : q->backoff_ms * 2;
		}
		return rc;
	}
	q->id = id;
	q->gen = c->gen;
	q->outstanding = 0;
	q->attach_error = 0;
	q->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	if (!replay)
		return 0;
	/* A refused URL (someone else registered it meanwhile, its reservation was deleted)
	 * leaves its reason in the client message and is reported by the next ps_receive;
	 * the queue still serves its other URLs. */
	for (size_t i = 0; i < q->nurls && client_connected(c); i++) {
		rc = queue_send_simple(q, PS_MSG_URL_ADD, q->urls[i], deadline);
		if (rc < 0 && rc != PS_EDISCONNECTED)
			q->replay_error = rc;
	}
	if (q->drained && client_connected(c))
		queue_send_simple(q, PS_MSG_QUEUE_DRAIN, NULL, deadline);
	return client_connected(c) ? 0 : PS_EDISCONNECTED;
}

/* Runs one operation on q, reconnecting (and re-making the queue) first if the daemon
 * restarted, and again if the session ends while the call waits. */
int queue_op_start(ps_queue *q)
{
	q->c->message[0] = '\0';
	if (!q->deleted)
		return 0;
	client_message(q->c, "queue %s was deleted", q->name);
	return PS_ENOTFOUND;
}

static int queue_op(ps_queue *q, uint16_t type, const char *text)
{
	ps_client *c = q->c;
	int rc = queue_op_start(q);
	if (rc < 0)
		return rc;
	int64_t deadline = deadline_after(CLIENT_CALL_MS);
	for (;;) {
		rc = client_ready(c, q, deadline);
		if (rc < 0)
			return rc;
		rc = queue_send_simple(q, type, text, deadline);
		if (rc != PS_EDISCONNECTED || deadline_passed(deadline))
			return rc;
	}
}

static bool queue_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 1 || n > PS_QUEUE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		          ch == '.' || ch == '_' || ch == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* Makes a queue object and attaches it (create or open) in the current session. */
static int queue_new(ps_client *c, const char *name, bool created, const ps_queue_opts *opts, ps_queue **out)
{
	if (!c || !out)
		return PS_EINVAL;
	*out = NULL;
	c->message[0] = '\0';
	if (!queue_name_ok(name)) {
		client_message(c, "a queue name is 1-%d bytes of A-Z a-z 0-9 . _ -", PS_QUEUE_NAME_MAX);
		return PS_EINVAL;
	}
	for (ps_queue *q = c->queues; q; q = q->next) {
		if (!q->deleted && strcmp(q->name, name) == 0) {
			client_message(c, "this client already has queue %s", name);
			return PS_EEXIST;
		}
	}
	ps_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return PS_ENOMEM;
	q->c = c;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->created = created;
	q->window = 1;
	if (opts)
		q->opts = *opts;
	q->backoff_ms = CLIENT_BACKOFF_MIN_MS;

	int64_t deadline = deadline_after(CLIENT_CALL_MS);
	int rc;
	for (;;) {
		rc = client_ready(c, NULL, deadline);
		if (rc == 0)
			rc = queue_attach(q, false, deadline);
		if (rc != PS_EDISCONNECTED || deadline_passed(deadline))
			break;
	}
	if (rc < 0) {
		queue_free(q);
		return rc;
	}
	if (c->queues_last)
		c->queues_last->next = q;
	else
		c->queues = q;
	c->queues_last = q;
	*out = q;
	return 0;
}

int ps_queue_create(ps_client *c, const char *name, const ps_queue_opts *opts, ps_queue **out)
{
	return queue_new(c, name, true, opts, out);
}

int ps_queue_open(ps_client *c, const char *name, ps_queue **out)
{
	return queue_new(c, name, false, NULL, out);
}

const char *ps_queue_name(const ps_queue *q)
{
	return q ? q->name : "";
}

static bool queue_prefix_ok(ps_queue *q, const char *prefix)
{
	size_t n = prefix ? strlen(prefix) : 0;
	if (n >= 1 && n <= PS_PREFIX_MAX)
		return true;
	client_message(q->c, "a URL prefix is 1-%d bytes: http://HOST:PORT/PATH/", PS_PREFIX_MAX);
	return false;
}

int ps_queue_add_url(ps_queue *q, const char *prefix)
{
	if (!q)
		return PS_EINVAL;
	if (!queue_prefix_ok(q, prefix))
		return PS_EINVAL;
	/* Room to remember it first, so a registration the daemon made is never forgotten
	 * (it must be replayed after a restart). */
	char *copy = strdup(prefix);
	char **urls = copy ? realloc(q->urls, (q->nurls + 1) * sizeof(*urls)) : NULL;
	if (!urls) {
		free(copy);
		return PS_ENOMEM;
	}
	q->urls = urls;
	int rc = queue_op(q, PS_MSG_URL_ADD, prefix);
	if (rc < 0) {
		free(copy);
		return rc;
	}
	q->urls[q->nurls++] = copy;
	return 0;
}

/* Whether two prefixes name the same registration, the final '/' being optional. */
static bool queue_same_prefix(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 0 && a[la - 1] == '/')
		la--;
	if (lb > 0 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

int ps_queue_remove_url(ps_queue *q, const char *prefix)
{
	if (!q)
		return PS_EINVAL;
	if (!queue_prefix_ok(q, prefix))
		return PS_EINVAL;
	int rc = queue_op(q, PS_MSG_URL_DEL, prefix);
	if (rc < 0 && rc != PS_ENOTFOUND)
		return rc;
	for (size_t i = 0; i < q->nurls; i++) {
		if (queue_same_prefix(q->urls[i], prefix)) {
			free(q->urls[i]);
			q->urls[i] = q->urls[--q->nurls];
			break;
		}
	}
	return rc;
}

int ps_queue_drain(ps_queue *q)
{
	if (!q)
		return PS_EINVAL;
	int rc = queue_op(q, PS_MSG_QUEUE_DRAIN, NULL);
	if (rc == 0) {
		q->drained = true;
		q->outstanding = 0;
		/* a process on its way out keeps no connection waiting for a next request */
		delegate_return_idle(q->c, false);
	}
	return rc;
}

int ps_queue_delete(ps_queue *q)
{
	if (!q)
		return PS_EINVAL;
	int rc = queue_op(q, PS_MSG_QUEUE_DELETE, NULL);
	if (rc == 0)
		q->deleted = true;
	return rc;
}

int ps_queue_fd(const ps_queue *q)
{
	return q ? q->c->epfd : -1;
}

/* Fills the window of posted receives again once half of it has been consumed (a window
 * of one: when none is outstanding), so a window of n costs one RECEIVE per n/2
 * requests. */
static void queue_post_receive(ps_queue *q)
{
	/* PORTSHARE_PREFETCH=0 promises that nothing is delivered while a request is served:
	 * a window of one then */
	uint32_t window = q->c->prefetch ? q->window : 1;
	/* after REATTACH nothing more is asked of the daemon being replaced */
	if (!queue_attached(q) || q->outstanding > window / 2 || q->c->reattach)
		return;
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_RECEIVE;
	m.u.receive.queue_id = q->id;
	m.u.receive.count = window - q->outstanding;
	if (client_send(q->c, &m) == 0)
		q->outstanding = window;
}

int ps_queue_set_receive_window(ps_queue *q, unsigned n)
{
	if (!q || n < 1 || n > PS_RECEIVE_WINDOW_MAX)
		return PS_EINVAL;
	/* receives already posted beyond a smaller window are consumed by DELIVERs as usual;
	 * none is posted again until fewer than half the new window are left */
	q->window = n;
	return 0;
}

static int queue_receive(ps_queue *q, ps_request **out, int timeout_ms)
{
	ps_client *c = q->c;
	int64_t deadline = deadline_after(timeout_ms);
	for (;;) {
		ps_request *r = queue_pop(q);
		if (r) {
			r->handed_out = true;
			*out = r;
			/* the next receive is posted while this request is served, so the next
			 * handoff never waits for a round trip; receives are served oldest
			 * first, so idle workers still come before this one (but not workers
			 * that joined later: PORTSHARE_PREFETCH=0 is for a process whose
			 * requests may last long, and that starts workers as they get busy) */
			if (c->prefetch && !q->first && !q->drained && !q->deleted)
				queue_post_receive(q);
			return 0;
		}
		if (q->deleted)
			return PS_ENOTFOUND;
		if (q->drained)
			return PS_ESTATE;
		client_tick(c);
		if (q->replay_error) /* the reconnect just now had a URL refused: say so at once */
			break;
		/* A receive that timed out stays posted: the next DELIVER answers it. */
		queue_post_receive(q);
		int rc = client_wait(c, deadline);
		if (rc == PS_ETIMEDOUT) {
			if (q->first)
				continue;
			return timeout_ms == 0 ? PS_EAGAIN : PS_ETIMEDOUT;
		}
		if (rc < 0)
			return rc; /* EINTR: the application may want to look at its signal flags */
	}
	int rc = q->replay_error;
	q->replay_error = 0;
	return rc;
}

/* The end of a ps_receive: requests another queue received meanwhile (the wait that
 * announced them is over) must keep ps_queue_fd readable, or an application polling
 * it would sleep with a request waiting. */
int ps_receive(ps_queue *q, ps_request **out, int timeout_ms)
{
	if (!q || !out)
		return PS_EINVAL;
	*out = NULL;
	ps_client *c = q->c;
	c->receiving = q;
	int rc = queue_receive(q, out, timeout_ms);
	c->receiving = NULL;
	for (ps_queue *o = c->queues; o; o = o->next)
		if (o != q && o->first && !o->deleted)
			client_kick(c);
	return rc;
}

/* Gives r, which the application has not taken, back to the daemon: true when it went
 * (r is then freed), false when it stays here. */
static bool queue_give_back(ps_request *r)
{
	ps_client *c = r->c;
	if (r->delegated) {
		if (!delegate_give_back_request(r))
			return false;
	} else if (!c->daemon_yield || r->gen != c->gen || r->read_sock ||
	           client_send_untaken(c, PS_MSG_REQUEUE, r->conn_id, r->req_id) < 0) {
		return false; /* a daemon without REQUEUE, an older session's, or touched: served here */
	}
	request_destroy(r);
	return true;
}

int ps_request_give_back(ps_request *r)
{
	if (!r || !r->handed_out)
		return PS_EINVAL;
	/* untouched: nothing of its body read, nothing sent, so nobody can tell it was here */
	if (!r->c || r->state != RESPONSE_NONE || r->wire || r->read_once || r->body_seen)
		return PS_ESTATE;
	r->handed_out = false; /* what the give-back of a request not yet taken asks */
	if (queue_give_back(r))
		return 0;
	r->handed_out = true;
	return PS_ESTATE;
}

/* A thread about to block on one request for long (a stream, a long poll, a slow
 * backend) would otherwise keep waiting, for as long as it lasts, what its session
 * holds but is not serving: the request the prefetched receive brings, requests read
 * from delegated connections, and those connections' next requests. All of it goes
 * back to the daemon, which gives it to other receives. */
int ps_client_yield(ps_client *c)
{
	if (!c)
		return PS_EINVAL;
	c->message[0] = '\0';
	/* First the receives: the daemon answers after every DELIVER it sent for them, and
	 * client_call takes those in (queue_push) while it waits for that answer. */
	int rc = 0;
	for (ps_queue *q = c->queues; q && client_connected(c); q = q->next) {
		if (!queue_attached(q) || q->outstanding == 0 || !c->daemon_yield)
			continue; /* a daemon without RECEIVE_CANCEL: only what RETURN gives back goes */
		int sent = queue_send_simple(q, PS_MSG_RECEIVE_CANCEL, NULL, deadline_after(CLIENT_CALL_MS));
		if (sent == 0 || sent == PS_ENOTFOUND) /* ENOTFOUND: the queue went meanwhile */
			q->outstanding = 0;
		else if (rc == 0)
			rc = sent;
	}
	for (ps_queue *q = c->queues; q && client_connected(c); q = q->next) {
		ps_request *keep = NULL, *keep_last = NULL, *r;
		while ((r = queue_pop(q)) != NULL) {
			if (queue_give_back(r))
				continue;
			if (keep_last)
				keep_last->queue_next = r;
			else
				keep = r;
			keep_last = r;
		}
		q->first = keep;
		q->last = keep_last;
	}
	delegate_return_idle(c, false);
	return client_connected(c) ? rc : PS_EDISCONNECTED;
}
