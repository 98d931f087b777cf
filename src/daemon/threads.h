/* threads.h: the event-loop threads: start, stop, messages between them. */
#ifndef PS_DAEMON_THREADS_H
#define PS_DAEMON_THREADS_H

#include <stdint.h>
#include "threads-t.h"

/* Sets up thread 0 (the caller); n threads in all. 0 or -1. */
int threads_init(unsigned n);
/* Starts the front threads. 0, or -1 with errno. */
int threads_start(void);
/* Pushes m onto t's inbox and wakes t if the inbox was empty. */
void threads_post(struct thread *t, struct thread_msg *m);
/* Sends the front threads the current limits (after a reload). */
void threads_limits_changed(void);
/* Shutdown begins: front threads stop reading new requests and finish what they hold. */
void threads_stop(void);
/* Tells the front threads to close everything, waits for them, and takes over
 * connections still on their way to thread 0 (the caller closes them). */
void threads_join(void);
/* Connections the daemon holds, on every thread. */
uint32_t threads_conns(void);
/* The thread count to use when none is asked for: the CPUs we may run on, at most THREADS_MAX. */
unsigned threads_default(void);

/* For takeover.c: tells the front threads that a new daemon took over. */
void threads_hand_over(void);

#endif
