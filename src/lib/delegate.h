/* delegate.h: delegated connections (DESIGN §6): after a response the session keeps a
 * keep-alive connection the daemon allowed it to keep, reads the next requests itself,
 * routes them by the daemon's route snapshot and serves those that are its own, so a
 * keep-alive request costs what a direct server pays (epoll_wait, recv, send).
 *
 * State kept per session (in ps_client): the session page the daemon mapped for us
 * (slots with each delegated connection's byte counters, per-queue served counters),
 * the route snapshot, and the delegated connections. A delegated connection is either
 * idle (watched in the client's epoll set, edge-triggered) or busy (a request read
 * from it is queued or being answered). Anything the library cannot decide goes back
 * to the daemon with RETURN and every byte it read past the last served request. */
#ifndef PS_LIB_DELEG_H
#define PS_LIB_DELEG_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "protocol.h"

/* Internal to libportshare: not exported from the shared library. */
#pragma GCC visibility push(hidden)

/* An idle delegated connection with no byte for this long goes back to the daemon, so
 * idle connections cost the worker nothing (the daemon keeps the absolute limit). */
#define DELEG_IDLE_MS 1000

struct delegation;

/* Whether the environment allows delegation: PS_DELEGATION_ENV (portshare.h) "0"
 * turns it off for the process (HELLO then goes without the flag). */
bool delegate_enabled(void);
/* An SHM message: fd is the attached memfd (taken), or -1 when the kernel dropped it. */
void delegate_shm(ps_client *c, const struct ps_msg *m, int fd);
/* The epoll event of a delegated connection (data.ptr). */
void delegate_event(struct delegation *d, uint32_t events);
/* Returns the idle connections whose time is up; keeps c->idle_check. */
void delegate_expire(ps_client *c);
/* CONN_CLOSED for a connection this session holds delegated. */
void delegate_conn_closed(struct delegation *d);
/* The daemon delivered a connection this session holds delegated: it owns it again,
 * so the delegation ends without a message. */
void delegate_forget(struct delegation *d);
/* The session ended (the daemon went away): idle delegated connections are shut down
 * and closed, busy ones finish with Connection: close; the page and snapshot go. */
void delegate_session_lost(ps_client *c);
/* A request read from a delegated connection that the application has not received
 * goes back to the daemon with its connection (RETURN with its bytes): true, and r is
 * then the caller's to free without a word; false when it cannot (r stays as it is). */
bool delegate_give_back_request(ps_request *r);
/* RETURNs every idle delegated connection (ps_queue_drain, ps_close, ps_client_yield), and with all,
 * every delegated request the application has not received yet (ps_close). */
void delegate_return_idle(ps_client *c, bool all);
/* Frees what was dropped since the last wait (never while an event batch that may
 * name it is being handled). */
void delegate_reap(ps_client *c);
/* Frees everything (ps_close; after delegate_return_idle and the requests). */
void delegate_free_all(ps_client *c);

/* response.c: a response was completed on r. Counts it in the session page: as served
 * when r is one the daemon never saw, as delivered otherwise, and by status class. */
void delegate_served(ps_request *r);
/* Before the last send of r's response on a delegated connection: records the slot as it
 * will stand once those `last` bytes are sent. Killed after the kernel took them, the
 * worker leaves a record the daemon reads as a complete response (idle, or a request
 * read, or, with the request's body not all read yet, a connection to end), not as one
 * half written; killed before, the counters disagree and it aborts. */
void delegate_pre_end(ps_request *r, size_t last);
/* delegate_pre_end on a TLS connection (a conn_io_last_fn, arg the request): the exact
 * byte count and record position are known only once the last bytes are sealed. */
struct conn_io_pos;
void delegate_pre_end_tls(void *arg, uint64_t written, const struct conn_io_pos *pos);
/* r's response is complete and the connection stays open: keeps it delegated (the
 * bytes r read past itself go to the connection's buffer, its slot is updated).
 * Returns the delegated connection, or NULL when the connection must go back to the
 * daemon (r->delegation, if any, is then still set: drop it after the RETURN). */
struct delegation *delegate_keep(ps_request *r);
/* Goes on reading a kept connection: serves what is buffered, else waits for bytes. */
void delegate_run(struct delegation *d);
/* r's connection leaves this session's hands (RETURN or END sent, or given to the
 * application): the delegation, if any, ends. */
void delegate_drop(ps_request *r);

#pragma GCC visibility pop

#endif
