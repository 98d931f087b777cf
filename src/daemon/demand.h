/* demand.h: demand start (HttpWaitForDemandStart): a controller waits until one of its
 * queues has a request and no worker, then starts workers (DEMAND_WAIT, DEMAND). */
#ifndef PS_DAEMON_DEMAND_H
#define PS_DAEMON_DEMAND_H

#include <stdint.h>
#include "queue-t.h"

/* DEMAND_WAIT of a's session (its seq): the next demand on a's queue is sent to it, once;
 * a new wait replaces the one before. The caller answers the REPLY, then demand_check. */
void demand_wait(struct attach *a, uint32_t seq);
/* Sends DEMAND to q's waiting controllers when a request waits in q and q has no worker:
 * called wherever a request joins q or a worker leaves it. */
void demand_check(struct queue *q);
/* a leaves its queue: its wait goes with it. */
void demand_detach(struct attach *a);
/* q is being deleted: its waiting controllers get DEMAND with PS_ENOTFOUND. */
void demand_queue_gone(struct queue *q);

#endif
