/* types.h: the daemon's data model: connections, requests, queues, sessions, endpoints
 * (prototypes are in daemon.h). */
#ifndef PS_DAEMON_TYPES_H
#define PS_DAEMON_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "http_head.h"
#include "loop.h"
#include "protocol.h"
#include "shared.h"
#include "url_prefix.h"

struct list {
	struct list *prev, *next;
};
#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define list_for_each_safe(pos, tmp, head)                                                                   \
	for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)
static inline void list_init(struct list *l)
{
	l->prev = l->next = l;
}
static inline bool list_empty(const struct list *l)
{
	return l->next == l;
}
static inline void list_add_tail(struct list *head, struct list *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}
static inline void list_add_head(struct list *head, struct list *e)
{
	list_add_tail(head->next, e);
}
static inline void list_del(struct list *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	list_init(e);
}

enum conn_state {
	CONN_READING,   /* the daemon reads the next request head */
	CONN_WRITING,   /* the daemon writes its own answer */
	CONN_QUEUED,    /* a request waits in a queue; input not watched */
	CONN_DELIVERED, /* a worker owns the connection; registered with events = 0 */
	CONN_LINGER,    /* FIN sent; draining input briefly before close (lingering close) */
	CONN_MOVING,    /* head accepted on another thread; on its way to the main thread */
};

#define THREADS_MAX 4

/* A message between event-loop threads (threads.c), pushed onto the receiver's inbox
 * without a lock; whoever sends it stops touching what it carries. */
enum thread_msg_type {
	THREAD_MSG_CONN,     /* to the main thread: a connection with an accepted head */
	THREAD_MSG_UNLISTEN, /* to a front thread: close this listener copy */
	THREAD_MSG_LIMITS,   /* to a front thread: the limits after a reload */
	THREAD_MSG_STOP,     /* to a front thread: shutting down, finish what you hold */
	THREAD_MSG_EXIT,     /* to a front thread: close everything and return */
	THREAD_MSG_HANDOVER, /* to a front thread: a new daemon took over (upgrade.c): move
	                      * every connection that waits for a head to thread 0 */
};
struct thread_msg {
	struct thread_msg *next;
	enum thread_msg_type type;
	void *p; /* THREAD_MSG_CONN: struct conn; UNLISTEN: struct endpoint; LIMITS: struct limits */
};

/* One event-loop thread. Thread 0 (the main thread) owns queues, sessions, routes and
 * every connection from routing on; the others ("front" threads) accept, read and check
 * request heads, answer the bad ones, and hand each accepted head to thread 0. */
struct thread {
	unsigned index;
	struct loop *loop;
	pthread_t tid;
	const struct limits *limits; /* thread 0: the daemon's; front threads: own_limits */
	struct limits own_limits;
	struct list *conns; /* the connections this thread owns */
	struct list own_conns;
	_Atomic uint32_t nconns;
	_Atomic uint64_t accepted;
	int reserve_fd; /* closed to accept-and-refuse when out of fds */
	bool stopping;
	/* the old daemon of an upgrade: no head is parsed any more; a connection that would
	 * be read goes to the new daemon (thread 0) or to thread 0 first (front threads) */
	bool handing_over;
	_Atomic(struct thread_msg *) inbox; /* newest first */
	struct loop_io wake;                /* eventfd: the inbox became non-empty */
	struct thread_msg stop_msg, exit_msg, handover_msg;
	struct http_head head; /* scratch: the head being parsed */
};

extern _Thread_local struct thread *this_thread;

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
};

/* A client connection. The daemon keeps its own fd (io.fd) for the connection's
 * whole life, whichever process is using it, so it can always close it, time it out
 * and account for it (DESIGN §2.7). Only conn_free() closes it. */
struct conn {
	uint64_t id;
	struct loop_io io;
	struct loop_timer timer;
	uint16_t port;
	struct ps_addr local, remote;
	enum conn_state state;
	char *buf; /* bytes read, not handed off; NULL when none (idle connections hold no buffer) */
	uint32_t len, cap;
	struct http_scan scan;
	bool eof;        /* the client's FIN was seen */
	bool closing;    /* answer, then close */
	bool in_process; /* conn_process is on the stack */
	bool kick;       /* bytes wait in buf: parse them from the timer */
	char *out;       /* the daemon's own answer, being written */
	uint32_t out_len, out_off;
	struct request *req; /* queued or delivered */
	uint32_t *cached_by; /* ids of sessions holding a copy of the fd */
	uint32_t ncached, capcached;
	uint64_t requests;
	struct http_head *moved_head; /* CONN_MOVING: the accepted head, for thread 0 */
	struct thread_msg move;
	/* every byte sent to and read from the socket, by the daemon and (reported in
	 * RETURN) by workers: the kernel's written/consumed counters, without asking it */
	uint64_t sent, received;
	struct list link; /* dm->conns */
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
	struct list pending; /* struct request, oldest first */
	uint32_t depth;
	struct list receives; /* struct recv_token */
	struct list attached; /* struct attach */
	uint32_t nattached;
	uint64_t served, refused;
	/* portshared --upgrade, in the new daemon (DESIGN §10) */
	bool adopted;       /* came from the old daemon: re-adding one of its URLs is a no-op */
	bool recreate_due;  /* its owner's QUEUE_CREATE re-attaches (once) instead of "exists" */
	bool reattach_wait; /* no session yet: requests are held until ReattachGrace ends */
	struct list link;
};

struct outmsg {
	struct outmsg *next;
	int fd; /* a dup of the fd to pass, or -1; closed once sent */
	uint32_t len;
	char data[];
};

struct session {
	uint32_t id;
	struct loop_io io;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	char program[PS_PROGRAM_MAX + 1];
	char user[33];
	bool hello;
	bool admin;
	bool dead;
	bool killed;              /* the daemon ended it (protocol error); its process may live on */
	bool upgrade;             /* a new portshared taking over from this one (upgrade.c) */
	bool hung_up;             /* its process closed its end: read what is left, send nothing */
	struct shared_page *page; /* delegation (DESIGN §6): mapped by both sides, or NULL */
	struct list attached;     /* struct attach */
	struct list requests;     /* delivered, not yet returned */
	struct outmsg *out_head, *out_tail;
	size_t out_bytes;
	struct list link;
};

/* A listening socket. The primary is thread 0's (on dm->endpoints); each front thread
 * has a copy (a dup of the fd) registered with EPOLLEXCLUSIVE in its own loop, and
 * frees it itself when told to (THREAD_MSG_UNLISTEN). */
struct endpoint {
	struct ps_addr addr; /* with the port */
	struct loop_io io;
	struct loop_timer pause; /* accept paused after EMFILE */
	struct list link;
	struct endpoint *copies[THREADS_MAX]; /* primary: per front thread, or NULL */
	struct thread_msg unlisten;           /* copy: the message that closes it */
};

struct daemon {
	struct config cfg;
	struct loop *loop;
	struct route_table *routes;
	const char *socket_path;
	const char *state_dir;
	struct loop_io ctl;          /* the control socket's listener */
	struct loop_timer ctl_pause; /* accepting sessions paused after EMFILE */
	struct loop_io sig;          /* signalfd */
	struct list endpoints, sessions, queues, conns;
	_Atomic uint64_t next_conn_id; /* connections are accepted on every thread */
	uint64_t next_req_id;
	uint32_t next_queue_id, next_session_id;
	struct thread threads[THREADS_MAX]; /* [0] is the main thread */
	unsigned nthreads;
	bool stopping;
	struct loop_timer stop_timer;
	uint64_t stop_deadline_ms;
	uint64_t routes_generation; /* bumped on every route change */
	int snapshot_fd;            /* the published route snapshot (sealed memfd), or -1 */
	uint64_t snapshot_generation;
	uint32_t snapshot_size;
	struct loop_timer publish; /* route changes are published after a short quiet spell */
	/* portshared --upgrade (upgrade.c). The old daemon: */
	struct session *upgrade_to;    /* the new daemon's session, once it asked */
	uint64_t handover_deadline_ms; /* ShutdownGrace after the new one took over */
	/* the new daemon: */
	struct loop_io upgrade_from; /* the link to the old daemon, until it exits (fd -1: none) */
	pid_t upgrade_old_pid;
	/* old: checks whether it holds anything still; new: the end of ReattachGrace */
	struct loop_timer upgrade_timer;
	char msg[PS_MSG_MAX];      /* scratch: encode/receive buffer */
};

extern struct daemon *dm;

#endif
