/* accesslog.h: the access log (DESIGN §9, `AccessLog PATH`): the daemon's own answers and
 * the records libraries leave in their session pages' rings, formatted and written by
 * the daemon off the request path (functions in accesslog.c). */
#ifndef PS_DAEMON_ACCESSLOG_H
#define PS_DAEMON_ACCESSLOG_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct queue;
struct request;
struct session;

/* Opens the config's AccessLog (or closes the log when there is none), at start and on
 * reload, its lines in the combined format or (json) one JSON object each; arms the
 * once-a-second drain. Thread 0. */
void accesslog_configure(const char *path, bool json);
/* SIGUSR1: the same path opened again (logrotate's postrotate). Thread 0. */
void accesslog_reopen(void);
/* Whether an access log is open (records are asked of libraries only then). */
bool accesslog_on(void);
/* A session page was made: tells its library whether to write records. */
void accesslog_session_start(struct session *s);
/* Moves s's records into the next batch. dead: its process is gone and its connections
 * are about to be judged; a record whose response the kernel has not sent whole is then
 * logged as aborted or dropped (before session_orphan answers or requeues it). */
void accesslog_drain(struct session *s, bool dead);
/* The session ends: what accesslog_drain kept for it goes. */
void accesslog_session_end(struct session *s);
/* The head of the request the daemon is about to answer on c (a copy: the buffer it lies
 * in is consumed before the answer), when it came (CLOCK_MONOTONIC µs, 0: now) and the
 * queue it was for (NULL: none). Any thread. */
void accesslog_note(struct conn *c, const char *head, uint32_t len, uint64_t arrived_us,
                    const struct queue *q);
/* CLOCK_MONOTONIC in µs, for arrived_us. */
uint64_t accesslog_now_us(void);
/* The daemon answered c itself (status, body bytes), the request noted for c or else
 * the head its buffer starts with. Any thread. */
void accesslog_answer(struct conn *c, int status, uint64_t body_bytes);
/* Drains every session and writes the batch (at exit, before a takeover ends). */
void accesslog_flush_all(void);
void accesslog_close(void);

#endif
