/* metrics.h: the daemon's counters in the Prometheus text format (DESIGN §9): what
 * `portsharectl metrics` prints and MetricsListen serves at /metrics. */
#ifndef PS_DAEMON_METRICS_H
#define PS_DAEMON_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue-t.h"

/* Counted on any thread (atomics; answers under a lock: they are not on the fast path). */
void metrics_answer(int status, const char *reason); /* one of the daemon's own answers */
void metrics_handoff(void);                          /* a DELIVER sent */
void metrics_return(void);                           /* a RETURN received */
void metrics_tls_handshake(int ok);                  /* 1 completed, 0 failed */

/* Main thread: q goes; its request counts stay, under its name, for a queue of that name
 * created later and for the metrics until then (counters never go backwards). */
void metrics_queue_gone(const struct queue *q);

/* --upgrade (DESIGN §10): the old daemon writes its counters to the state directory as it
 * exits (after its last session's counts); the new one adds them to its own when the link
 * closes, so counters do not go back across an upgrade. A file of another pid is ignored. */
void metrics_carry_write(void);
void metrics_carry_read(pid_t old_pid);
/* Requests served by the queue of that name before: by the daemons an upgrade took over
 * from, and by a removed queue of the name (status adds them to its own count). */
uint64_t metrics_served_before(const char *queue);

/* Main thread: the whole exposition (text format 0.0.4), malloc'd; NULL when out of memory. */
char *metrics_render(size_t *len);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
