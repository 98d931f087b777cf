/* demand.c: ps_queue_wait_demand, the controller's side of demand start (HTTP.sys's
 * HttpWaitForDemandStart): DEMAND_WAIT registers, the daemon's DEMAND answers it once
 * (src/daemon/demand.c says when). */
#include <string.h>

#include "client.h"
#include "deadline.h"

void demand_received(ps_client *c, const struct ps_msg *m)
{
	ps_queue *q = queue_find(c, m->u.demand.queue_id);
	if (!q || q->demand_gen != c->gen || m->hdr.seq != q->demand_seq)
		return; /* not this session's registration: nothing to keep */
	q->demand_done = true;
	q->demand_status = m->u.demand.status;
}

/* Registers q's wait in the current session: 0, or the daemon's refusal, or
 * PS_EDISCONNECTED / PS_ETIMEDOUT. */
static int demand_register(ps_queue *q, int64_t deadline)
{
	ps_client *c = q->c;
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_DEMAND_WAIT;
	m.u.demand.queue_id = q->id;
	q->demand_seq = client_next_seq(c);
	q->demand_gen = c->gen;
	q->demand_done = false;
	int rc = client_call(c, &m, NULL, deadline);
	if (rc < 0)
		q->demand_gen = 0;
	return rc;
}

/* The registration stays in the daemon until its DEMAND comes, across calls that time
 * out, and a DEMAND that comes while no call waits is kept for the next call: the daemon
 * announces each request once, so a demand dropped here would never come again (as an
 * HTTP.sys registration, it completes whether or not anyone is looking). */
int ps_queue_wait_demand(ps_queue *q, int timeout_ms)
{
	if (!q)
		return PS_EINVAL;
	ps_client *c = q->c;
	int rc = queue_op_start(q);
	if (rc < 0)
		return rc;
	int64_t deadline = deadline_after(timeout_ms);
	/* the registration is a round trip like any queue operation's, even with timeout 0 */
	int64_t call_deadline = timeout_ms == 0 ? deadline_after(CLIENT_CALL_MS) : deadline;
	for (;;) {
		rc = client_ready(c, q, call_deadline);
		if (rc < 0)
			return rc;
		if (!c->daemon_demand) {
			client_message(c,
			               "this portshared does not know ps_queue_wait_demand (it is older than "
			               "this libportshare): upgrade the daemon");
			return PS_EVERSION;
		}
		/* none registered in this session: the first call, the last one answered, or a new
		 * session (the daemon restarted or was upgraded, and knows nothing of the wait) */
		if (q->demand_gen != c->gen) {
			rc = demand_register(q, call_deadline);
			if (rc == PS_EDISCONNECTED && !deadline_passed(call_deadline))
				continue;
			if (rc < 0)
				return rc;
		}
		if (q->demand_done) {
			q->demand_gen = 0;
			q->demand_done = false;
			if (q->demand_status == PS_ENOTFOUND)
				client_message(c, "queue %s was deleted", q->name);
			return q->demand_status;
		}
		rc = client_wait(c, deadline);
		if (rc == PS_ETIMEDOUT && !q->demand_done)
			return timeout_ms == 0 ? PS_EAGAIN : PS_ETIMEDOUT;
		if (rc < 0 && rc != PS_ETIMEDOUT)
			return rc; /* EINTR: the application may want to look at its signal flags */
	}
}
