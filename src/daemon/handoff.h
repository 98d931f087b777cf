/* handoff.h: a request from the daemon to a worker: held in its queue, delivered to a
 * session, the client fd cached by that session (DESIGN §2, §2a). */
#ifndef PS_DAEMON_HANDOFF_H
#define PS_DAEMON_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "conn-t.h"
#include "queue-t.h"

/* r waits in q: at its tail, or with again (a request that comes back: given back, its
 * worker died, its fd could not go) in its place by arrival, before every request routed
 * after it. During a takeover its connection goes to the new daemon instead. */
void handoff_hold(struct queue *q, struct request *r, bool again);
/* r goes to a's session, which has a receive outstanding; back to its place in the queue
 * if the session is going away. */
void handoff_deliver(struct attach *a, struct request *r);
/* The session no longer holds a copy of c's fd (END, NOFD, or it ended). */
void handoff_cache_del(struct conn *c, uint32_t session_id);
/* c is closing: every session caching its fd is told CONN_CLOSED. */
void handoff_cache_drop(struct conn *c);

#endif
