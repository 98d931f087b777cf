/* conn.h: the life of a client connection, and the one place its state changes: accept,
 * read and route request heads, queue, hand off, take back, write the daemon's own
 * answers, end (lingering close, abort). */
#ifndef PS_DAEMON_CONN_H
#define PS_DAEMON_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conn-t.h"
#include "http_head.h"
#include "listener-t.h"
#include "protocol.h"
#include "queue-t.h"

/* A connection a listener accepted (fd taken); the daemon keeps this fd for the
 * connection's whole life, whoever uses it (DESIGN §2.7). */
void conn_accept(struct endpoint *e, int fd, const struct sockaddr_storage *peer);
/* The new daemon of a takeover: a connection the old one handed over (fd taken), linked
 * to this thread, in no state yet (conn_returned follows); NULL on no memory. */
struct conn *conn_from_handover(int fd, const struct ps_addr *local, const struct ps_addr *remote);

/* A front thread hands a connection with an accepted head (h; NULL for a takeover's
 * handover, which passes the bytes on unparsed) to thread 0. */
void conn_move_to_main(struct conn *c, const struct http_head *h);
/* Thread 0 takes over a connection a front thread accepted the head of. */
void conn_adopt(struct conn *c);
/* Thread 0 at exit: a connection still on its way from a front thread is kept, to be
 * closed with the others. */
void conn_keep_moved(struct conn *c);

/* Its request waits in a queue: input not watched, RequestQueue's timer. */
void conn_queued(struct conn *c);
/* Its request left the queue without a worker (the queue timed out): the caller answers. */
void conn_unqueued(struct conn *c);
/* A worker owns it: registered with events = 0 (DESIGN §2a), checked after check_ms. */
void conn_delivered(struct conn *c, uint32_t check_ms);
/* The worker is done with the response and gives the connection back.
 * written/consumed: what the worker sent and read since the handoff (0 when unknown). */
void conn_returned(struct conn *c, const char *tail, size_t len, bool eof, uint64_t written,
                   uint64_t consumed);
/* The library is done with it (END; PS_END_* flags). */
void conn_ended(struct conn *c, uint32_t end_flags);

/* The daemon's own answer (out: malloc'd, taken), written as the client reads it; then
 * close, or read the next request. */
void conn_write(struct conn *c, char *out, size_t len, bool close);
/* The request r of c is answered by the daemon: bytes pipelined behind it are the
 * connection's again. */
void conn_keep_pipelined(struct conn *c, struct request *r);

/* Closes the daemon's copy at once; sessions that cache the fd are told to drop theirs. */
void conn_free(struct conn *c);
/* Resets the connection, whatever other copies of the fd exist, and closes ours. */
void conn_abort(struct conn *c);
/* shutdown(SHUT_WR), then drain input briefly and close (lingering close). */
void conn_linger(struct conn *c);
void conn_close_idle(void); /* shutdown: close connections nobody is using */
/* Closes delivered connections that are over: our side's FIN sent (the worker may drop
 * its copy without END after Connection: close) and nothing left to wait for. */
void conn_close_finished(void);
/* exit: close every connection; one a worker still writes to is aborted */
void conn_close_all(void);

#endif
