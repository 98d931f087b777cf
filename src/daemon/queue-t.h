/* queue-t.h: queues, the requests they hold, and the sessions attached to them (functions in queue.h). */
#ifndef PS_DAEMON_QUEUE_T_H
#define PS_DAEMON_QUEUE_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "list.h"
#include "protocol.h"
#include "settings-t.h"
#include "shared.h"
#include "url_prefix.h"

struct conn;
struct session;
struct queue;

/* One request the daemon routed to a queue; lives until RETURN/END or an answer. */
struct request {
	uint64_t id;
	struct conn *conn;
	struct queue *queue;
	struct session *owner; /* while delivered */
	struct list link;      /* queue->pending while queued; owner->requests while delivered */
	char *data;            /* head then tail bytes, owned */
	uint32_t head_len, tail_len;
	char *path, *host; /* owned */
	uint32_t cap;      /* allocated size of data */
	uint8_t method;
	bool has_body;
	bool keep_alive;
	bool delegated;               /* its session may serve the connection's next requests */
	uint32_t nofd;                /* NOFD answers for this request so far */
	uint32_t requeues;            /* times a dead worker's request went back */
	uint64_t written0, consumed0; /* TCP byte counters at handoff (DESIGN §2a) */
	uint64_t wait_written;        /* ResponseWait: bytes written at its last check */
	bool answered;                /* ResponseWait: a response is complete, no more checks */
	uint64_t arrived_us;          /* CLOCK_MONOTONIC, with an access log: its lines' durations */
	bool demand_told;             /* a DEMAND was sent while it waited (demand.c) */
};

struct recv_token { /* one outstanding receive; queue->receives is oldest first */
	struct attach *a;
	struct list link;
};

/* A session's use of a queue (it created or opened it). */
struct attach {
	struct queue *q;
	struct session *s;
	uint32_t receives; /* outstanding */
	bool draining;
	bool creator;
	bool worker;      /* it has posted a RECEIVE on the queue (demand.c) */
	bool demand_wait; /* its DEMAND_WAIT (seq demand_seq) is not answered yet */
	uint32_t demand_seq;
	struct list qlink, slink;
};

struct queue {
	uint32_t id;
	char name[PS_QUEUE_NAME_MAX + 1];
	uid_t uid;
	pid_t creator_pid;
	char creator_user[33];
	bool persistent;
	uint32_t max_length;
	uint64_t max_body;
	uint32_t response_wait_ms;
	struct url_prefix *urls;
	size_t nurls, capurls;
	/* who else may join it, by its owner's grants (they live with the queue; an admin's
	 * are in the settings, acl.c) */
	struct principal grants[SETTINGS_PRINCIPALS_MAX];
	unsigned ngrants;
	char url_refused[PS_TEXT_MAX]; /* the last URL refused for it, and why ("": none) */
	struct list pending;           /* struct request, oldest first */
	uint32_t depth;
	struct list receives; /* struct recv_token */
	struct list attached; /* struct attach */
	uint32_t nattached;
	uint32_t demand_waits; /* attachments with demand_wait set */
	uint64_t served, refused;
	/* folded from ended sessions' pages: responses by status class (1xx..5xx); and the
	 * requests served whose status the daemon does not know (a library without a page) */
	uint64_t classes[SHARED_CLASSES], unclassed;
	uint64_t duration_us, buckets[SHARED_BUCKETS]; /* durations (shared.h), folded likewise */
	uint64_t bytes;                                /* response body bytes, folded likewise */
	/* portshared --upgrade, in the new daemon (DESIGN §10) */
	bool adopted;       /* came from the old daemon: re-adding one of its URLs is a no-op */
	bool recreate_due;  /* its owner's QUEUE_CREATE re-attaches (once) instead of "exists" */
	bool reattach_wait; /* no session yet: requests are held until ReattachGrace ends */
	struct list link;
};

#endif
