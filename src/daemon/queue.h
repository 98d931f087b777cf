/* queue.h: request queues: create, open, URLs, receives, and routing requests to workers. */
#ifndef PS_DAEMON_QUEUE_H
#define PS_DAEMON_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "acl.h"
#include "protocol.h"
#include "queue-t.h"
#include "session-t.h"

struct queue *queue_find(const char *name);
struct attach *queue_attach_find(struct session *s, uint32_t queue_id);
int queue_create(struct session *s, const struct ps_queue_create *m, struct queue **out, char *err,
                 size_t errlen);
int queue_open(struct session *s, const char *name, struct queue **out, char *err, size_t errlen);
/* Registers a URL prefix (text, len) for q on behalf of who (URL reservations, acl.c);
 * adopted: a URL the daemon taken over had (kept even while its port is excluded). 0, or
 * a PS_E* code with why in err. */
int queue_url_add(struct queue *q, const struct ident *who, const char *text, size_t len, bool adopted,
                  char *err, size_t errlen);
int queue_url_del(struct queue *q, const char *text, size_t len, char *err, size_t errlen);
int queue_delete(struct queue *q);
void queue_detach(struct attach *a);
void queue_receive(struct attach *a, uint32_t count);
/* RECEIVE_CANCEL: the attachment's posted receives are withdrawn (it may post more). */
void queue_receive_cancel(struct attach *a);
/* No more deliveries to this attachment (QUEUE_DRAIN, a session ending). */
void queue_drain(struct attach *a);
/* Routes a parsed request: holds it, delivers it, or answers it. Takes req. */
void queue_push(struct queue *q, struct request *req);
/* Why a delivered request comes back to the front of its queue. */
enum queue_again {
	QUEUE_AGAIN_NOFD,    /* the worker had no fd for it: tried a few times, then 503 */
	QUEUE_AGAIN_DIED,    /* its worker died before touching it: tried a few times, then 503 */
	QUEUE_AGAIN_YIELDED, /* REQUEUE: its session is busy; not counted, since a session gives a
	                      * request back only when its thread turned to a long request */
};
void queue_requeue(struct request *req, enum queue_again why);
void queue_request_timeout(struct conn *c);
/* ResponseWait of a delivered request's queue (its timer fired): true if it handled the
 * timer (answered, aborted or re-armed), false if the request is no longer waited on. */
bool queue_response_wait(struct conn *c);
void request_free(struct request *r);
bool queue_busy(void); /* shutdown: anything still queued or delivered? */
/* The new daemon of an upgrade: a queue the old daemon had, with no session yet (its
 * URLs follow). NULL on no memory or a name already taken. */
struct queue *queue_adopt(const struct ps_takeover_queue *m);
/* ReattachGrace is over: a queue nobody re-attached to is what it would be without the
 * upgrade (removed, or a persistent one answers AppOffline). */
void queue_reattach_over(void);

#endif
