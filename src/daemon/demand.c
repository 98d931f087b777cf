/* demand.c: demand start, as HTTP.sys's HttpWaitForDemandStart: a controller (a process
 * manager holding a queue open without receiving from it) asks to be told when a request
 * waits in the queue and no worker is there to take it, and then starts one. The
 * controller's session keeps the queue attached, so its requests are held (RequestQueue
 * applies) instead of answered 503 AppOffline, and the first worker that posts a receive
 * gets them. A worker is a session that has posted a RECEIVE on the queue and is not
 * draining: a worker between two receives (prefetch off, or the moment a DELIVER takes
 * its receive) is still a worker, so a busy queue does not look idle. A request is
 * announced once: a controller that waits again right after starting a worker is not
 * told again about the requests that worker is about to take (it would start one worker
 * per wait until the first one attaches), only about new ones, or about the same ones
 * once a worker that had them died. */
#include "demand.h"

#include "list.h"
#include "portshare.h"
#include "session.h"

void demand_wait(struct attach *a, uint32_t seq)
{
	if (!a->demand_wait)
		a->q->demand_waits++;
	a->demand_wait = true;
	a->demand_seq = seq;
}

void demand_detach(struct attach *a)
{
	if (a->demand_wait)
		a->q->demand_waits--;
	a->demand_wait = false;
}

static bool demand_has_worker(const struct queue *q)
{
	const struct list *p;
	for (p = q->attached.next; p != &q->attached; p = p->next) {
		const struct attach *a = container_of(p, struct attach, qlink);
		if (a->worker && !a->draining)
			return true;
	}
	return false;
}

/* Whether a request waits in q that no DEMAND has announced. */
static bool demand_untold(const struct queue *q)
{
	const struct list *p;
	for (p = q->pending.next; p != &q->pending; p = p->next)
		if (!container_of(p, struct request, link)->demand_told)
			return true;
	return false;
}

/* Each waiting controller of q gets DEMAND(status) once; what waits now is announced. */
static void demand_send(struct queue *q, int status)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &q->pending)
	{
		container_of(p, struct request, link)->demand_told = true;
	}
	list_for_each_safe(p, t, &q->attached)
	{
		struct attach *a = container_of(p, struct attach, qlink);
		if (!a->demand_wait)
			continue;
		demand_detach(a);
		session_send_demand(a->s, a->demand_seq, q->id, status);
	}
}

void demand_check(struct queue *q)
{
	/* most queues have no controller waiting: one test on the request path */
	if (!q->demand_waits || list_empty(&q->pending) || demand_has_worker(q) || !demand_untold(q))
		return;
	demand_send(q, 0);
}

void demand_queue_gone(struct queue *q)
{
	if (q->demand_waits)
		demand_send(q, PS_ENOTFOUND);
}
