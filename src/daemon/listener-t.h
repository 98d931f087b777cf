/* listener-t.h: a listening socket and its per-thread copies (functions in listener.h). */
#ifndef PS_DAEMON_LISTENER_T_H
#define PS_DAEMON_LISTENER_T_H

#include "list.h"
#include "loop.h"
#include "protocol.h"
#include "threads-t.h"

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

#endif
