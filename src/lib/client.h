/* client.h: libportshare's session with portshared and the queues made on it (internal).
 *
 * A client is one session on the control socket at a time. When the daemon goes away
 * the session ends and a new one (a new generation) is made by whatever call waits
 * next: the queues are re-created or re-opened, their URLs re-added. Queue ids and
 * conn ids belong to one generation; requests delivered in an older one finish on
 * their own fd without telling the new daemon anything. */
#ifndef PS_LIB_CLIENT_H
#define PS_LIB_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "conns.h"
#include "portshare.h"
#include "protocol.h"
#include "shared.h"

/* Internal to libportshare: not exported from the shared library. */
#pragma GCC visibility push(hidden)

/* How long a call that has no timeout of its own (queue operations) waits for the
 * daemon to come back and for its reply. */
#define CLIENT_CALL_MS 10000
/* Reconnect and re-open attempts: 50 ms, doubling, at most 2 s apart. */
#define CLIENT_BACKOFF_MIN_MS 50
#define CLIENT_BACKOFF_MAX_MS 2000

struct ps_queue {
	ps_client *c;
	struct ps_queue *next; /* the client's queues, in the order made (replay order) */
	char name[PS_QUEUE_NAME_MAX + 1];
	bool created; /* made by this client: re-created after a restart; else re-opened */
	ps_queue_opts opts;
	char **urls; /* prefixes this client added to it: re-added after a restart */
	size_t nurls;
	uint32_t id;      /* the daemon's id for it, valid in session generation `gen` */
	uint32_t gen;     /* 0: not attached in any session */
	int64_t retry_at; /* next attach attempt while not attached in this generation */
	int backoff_ms;
	int attach_error;     /* the daemon's answer to the last failed attach attempt */
	int replay_error;     /* a URL refused when replayed after a reconnect; ps_receive says it once */
	uint32_t outstanding; /* RECEIVEs posted and not yet consumed by a DELIVER */
	uint32_t window;      /* RECEIVEs kept posted (ps_queue_set_receive_window): 1 by default */
	bool drained, deleted;
	struct ps_request *first, *last; /* deliveries ps_receive has not returned yet */
	int counter;                     /* its entry in the session page's counters, or -1 */
	uint32_t counter_gen;            /* the session `counter` was found in (0: not looked up) */
	/* ps_queue_wait_demand (demand.c): its DEMAND_WAIT's seq, in session generation
	 * demand_gen (0: none registered), and the DEMAND that answered it */
	uint32_t demand_seq, demand_gen;
	bool demand_done;
	int demand_status;
};

struct delegation;

/* DESIGN §5's defaults, used until the daemon's LIMITS arrive */
#define PS_ENTITY_BODY_MS 120000u
#define PS_DRAIN_ENTITY_BODY_MS 120000u
#define PS_MIN_SEND_RATE 150u

struct ps_client {
	char *path;
	int epfd;  /* what ps_queue_fd returns: session socket, timer, kick, delegated conns */
	int sock;  /* the session socket; -1 while the daemon is away */
	int timer; /* timerfd, armed for the next reconnect or re-open attempt */
	/* eventfd in the epoll set: makes ps_queue_fd readable while a queue holds
	 * requests that no wait announced (read by another queue's ps_receive, or queued
	 * while the application was answering); see client_kick */
	int kick;
	bool kicked;         /* kick holds a count not read yet */
	ps_queue *receiving; /* the queue whose ps_receive is running, or NULL */
	int64_t timer_due;   /* what the timer is armed for (-1: disarmed): re-armed only on change */
	uint32_t gen;        /* bumps on every new session */
	uint32_t session_id;
	bool daemon_demand; /* this session's daemon takes DEMAND_WAIT (its HELLO reply says so) */
	bool daemon_yield;  /* and RECEIVE_CANCEL and REQUEUE (ps_client_yield) */
	uint32_t seq;
	int64_t retry_at; /* next reconnect attempt while sock < 0 */
	int backoff_ms;
	/* the call waiting for its REPLY (one at a time: the client is single-threaded) */
	uint32_t wait_seq;
	bool replied;
	int32_t reply_status;
	uint32_t reply_id;
	struct ps_queue *queues, *queues_last;
	struct conns conns;
	struct ps_request *requests; /* every live request, buffered or handed out */
	unsigned char *rbuf, *wbuf;  /* one message each */
	struct ps_limits limits;     /* the daemon's LIMITS (defaults until they come) */
	/* REATTACH came: a new daemon took over. No new work is taken from this session;
	 * once it holds nothing from it, the session ends and a new one is made (client_tick) */
	bool reattach;
	char message[PS_TEXT_MAX + 1];

	/* delegation (delegate.c) */
	bool delegation;          /* HELLO asks for it (PORTSHARE_DELEGATION is not "0") */
	bool prefetch;            /* post the next receive while a request is served (PORTSHARE_PREFETCH) */
	struct shared_page *page; /* this session's page, or NULL */
	size_t page_size;
	struct snapshot snap; /* the daemon's routes of snap.generation, when have_snap */
	bool have_snap;
	struct delegation *delegations;            /* every delegated connection */
	struct delegation *idle_first, *idle_last; /* the idle ones, least recently active first */
	struct delegation *dead;                   /* dropped ones, freed at the next wait */
	int64_t idle_check;                        /* when the idle list is looked at next (-1: never) */
	uint16_t *slot_free;                       /* free slots of the page, a stack */
	unsigned nslot_free;
	uint64_t delegate_ids;   /* ids given to requests read from delegated connections */
	uint64_t log_serials;    /* responses given an access-log serial (accesslog.c) */
	struct http_head *dhead; /* room to parse a delegated connection's head in */
	char *dpath, *dscratch;  /* room for its canonical path */
};

static inline bool client_connected(const ps_client *c)
{
	return c->sock >= 0;
}

/* Sets the text ps_client_message() returns. */
void client_message(ps_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends one message (a fresh seq is set). 0, or PS_EDISCONNECTED after ending the
 * session, or PS_EPROTO when the message cannot be encoded. */
int client_send(ps_client *c, struct ps_msg *m);
/* The seq client_send gives the next message: for an answer that may be handled before
 * its sender hears back (DEMAND after the REPLY in one read). */
static inline uint32_t client_next_seq(const ps_client *c)
{
	return c->seq + 1;
}
/* RETURN: the daemon reads the connection again, starting with tail; cn's byte counts
 * since the DELIVER go with it. 0 or as client_send. */
int client_send_return(ps_client *c, const struct held_conn *cn, uint64_t conn_id, uint64_t req_id, bool eof,
                       const char *tail, size_t tail_len);
/* NOFD or REQUEUE: a DELIVER the application will not get goes back to the daemon's
 * queue. 0 or as client_send. */
int client_send_untaken(ps_client *c, uint16_t type, uint64_t conn_id, uint64_t req_id);
/* END: the library is done with the connection (PS_END_* flags). 0 or as client_send. */
int client_send_end(ps_client *c, uint64_t conn_id, uint64_t req_id, uint32_t flags);
/* Sends a request and waits for its REPLY, handling whatever else arrives meanwhile.
 * Returns the reply's status (its text goes to the client message), or
 * PS_EDISCONNECTED / PS_ETIMEDOUT. *id gets the reply's id. */
int client_call(ps_client *c, struct ps_msg *m, uint32_t *id, int64_t deadline);
/* Makes ps_queue_fd readable until the next wait: a request was queued that the
 * application, polling that descriptor, would otherwise not hear of. */
void client_kick(ps_client *c);
/* Handles the messages waiting on the session socket, without waiting. */
void client_read(ps_client *c);
/* Arms the timer for the next reconnect, re-open or idle check, or disarms it; no
 * syscall when that time has not changed. */
void client_schedule(ps_client *c);
/* Waits until the session socket, the retry timer or a delegated connection is ready
 * (or the deadline), then reads and handles every message there. 0, PS_ETIMEDOUT, or PS_ESYSTEM (errno EINTR
 * when a signal interrupted the wait). */
int client_wait(ps_client *c, int64_t deadline);
/* Does the reconnect and re-attach attempts that are due, and arms the timer for the
 * next one. */
void client_tick(ps_client *c);
/* Waits (with the retry schedule) until there is a session and, if q is not NULL, q is
 * attached in it. 0, or PS_EDISCONNECTED / the queue's last refusal at the deadline. */
int client_ready(ps_client *c, ps_queue *q, int64_t deadline);

/* queue.c */
ps_queue *queue_find(const ps_client *c, uint32_t id);
bool queue_attached(const ps_queue *q);
/* Creates or opens q in the current session. replay: after a restart, so a create
 * the daemon refuses as existing becomes an open, and the URLs and drain are replayed;
 * a failure schedules the next attempt. */
int queue_attach(ps_queue *q, bool replay, int64_t deadline);
void queue_push(ps_queue *q, ps_request *r);
void queue_free(ps_queue *q);
/* The start of an operation on q: clears the client message; PS_ENOTFOUND (and why) once
 * q was deleted, else 0. */
int queue_op_start(ps_queue *q);

/* request.c: handles a DELIVER. fd: the attached fd or -1; fd_lost: PS_DELIVER_FD was
 * set but the kernel dropped the fd (MSG_CTRUNC). */
void request_deliver(ps_client *c, const struct ps_msg *m, int fd, bool fd_lost);

/* demand.c: handles a DEMAND. */
void demand_received(ps_client *c, const struct ps_msg *m);

/* response.c: what ps_close() does to a request it still finds. */
void response_orphan(ps_request *r);

#pragma GCC visibility pop

#endif
