/* delegate.h: delegation (DESIGN §6), the daemon side: the shared page, route snapshots, judging a dead
 * worker's connections. */
#ifndef PS_DAEMON_DELEGATE_H
#define PS_DAEMON_DELEGATE_H

#include <stdbool.h>
#include <stdint.h>
#include "conn-t.h"
#include "queue-t.h"
#include "session-t.h"

/* A session that asked for delegation gets its shared page (and the routes). 0 or -1. */
int delegate_session_start(struct session *s);
void delegate_session_end(struct session *s);
void delegate_send_routes(struct session *s);
/* The route table or a limit changed: invalidate at once, publish a snapshot soon. */
void delegate_routes_changed(void);
/* How a connection a session held stands now (DESIGN §2a, §6), by the kernel's counters
 * against those at handoff plus what the library recorded after its last response. */
enum delegate_state {
	DELEGATE_UNTOUCHED, /* its first request: nothing read past the head, nothing written */
	DELEGATE_IDLE,      /* between two requests: every response complete, nothing read since */
	DELEGATE_READ,      /* a request (or part) was read and not answered */
	DELEGATE_WRITING,   /* a response was begun and not finished (or the record is torn) */
	DELEGATE_ANSWERED,  /* the response went out whole before the request's body was all
	                     * read: where the next request begins is unknown, so it is ended */
};
/* Where a TLS connection's records were at the slot record the judgement rests on (the
 * last response, or the one being finished): valid false when no response was recorded
 * (then the records are where the handoff left them, as far as the writing side goes). */
struct delegate_tls_pos {
	bool valid;
	uint64_t seq[2], key_updates[2];
};
enum delegate_state delegate_judge(const struct session *s, const struct request *r,
                                   struct delegate_tls_pos *pos);
/* Whether the library recorded a complete response on r's delegated connection. */
bool delegate_answered(const struct request *r);
/* The absolute idle limit of a delegated connection (its timer fired). */
void delegate_idle_check(struct conn *c);
/* Requests of q served by libraries without the daemon. */
uint64_t delegate_served(const struct queue *q);
/* What the live sessions' pages count for q: served alone, responses to delivered
 * requests, and every response by status class (ended sessions' are in q itself). */
struct delegate_counts {
	uint64_t served, delivered, classes[SHARED_CLASSES];
	uint64_t duration_us, buckets[SHARED_BUCKETS];
	uint64_t bytes;
};
void delegate_counts(const struct queue *q, struct delegate_counts *out);
/* Whether s's library counts the responses to the requests the daemon delivered. */
bool delegate_lib_counts(struct session *s);
/* A delivered request came back (RETURN), ended (END, the connection's close) or was
 * judged complete after its worker died: counted in q, unless s's library counted it
 * already when its response ended. s: the session it was delivered to (NULL: gone). */
void delegate_count_served(struct request *r, struct session *s);
void delegate_close(void);

#endif
