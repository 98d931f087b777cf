/* threads-t.h: the event-loop threads and the messages between them (functions in threads.h). */
#ifndef PS_DAEMON_THREADS_T_H
#define PS_DAEMON_THREADS_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "http_head.h"
#include "list.h"
#include "loop.h"

#define THREADS_MAX 4

/* A message between event-loop threads (threads.c), pushed onto the receiver's inbox
 * without a lock; whoever sends it stops touching what it carries. */
enum thread_msg_type {
	THREAD_MSG_CONN,     /* to the main thread: a connection with an accepted head */
	THREAD_MSG_UNLISTEN, /* to a front thread: close this listener copy */
	THREAD_MSG_LIMITS,   /* to a front thread: the limits after a reload */
	THREAD_MSG_STOP,     /* to a front thread: shutting down, finish what you hold */
	THREAD_MSG_EXIT,     /* to a front thread: close everything and return */
	THREAD_MSG_HANDOVER, /* to a front thread: a new daemon took over (takeover.c): move
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

#endif
