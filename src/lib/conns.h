/* conns.h: the session's cache of client connection fds, by the daemon's conn_id.
 *
 * The daemon attaches a connection's fd only to the first DELIVER this session sees
 * for it; later requests on that connection come without one and use the cached copy.
 * A cached fd is closed only when the daemon sends CONN_CLOSED or the library sends
 * END for it (DESIGN §2a): closing it earlier would race a DELIVER sent without the fd.
 *
 * Entries are reference counted: the table holds one reference while the fd is cached,
 * each request using the connection holds one. The last reference closes the fd, so a
 * request keeps its fd even after a reconnect empties the table. */
#ifndef PS_LIB_CONNS_H
#define PS_LIB_CONNS_H

#include <stddef.h>
#include <stdint.h>

/* Internal to libportshare: not exported from the shared library. */
#pragma GCC visibility push(hidden)

struct delegation;
struct conn_tls_io;

struct held_conn {
	uint64_t id;
	int fd; /* -1 once given away (upgrade) */
	unsigned refs;
	int cached;             /* the table holds a reference */
	struct held_conn *next; /* hash chain */
	/* Bytes this library sent to and read from the socket since the last DELIVER of the
	 * connection: the daemon compares them with the kernel's counters (DESIGN §2a). */
	uint64_t written, consumed;
	struct delegation *delegation; /* while this session keeps the connection (delegate.c) */
	struct conn_tls_io *tls;       /* a TLS connection's records (conn_io.c); NULL when plain */
};

struct conns {
	struct held_conn **slots;
	size_t nslots; /* a power of two, or 0 before the first add */
	size_t count;
};

struct held_conn *conns_find(const struct conns *t, uint64_t id);
/* Caches fd under id, replacing (and releasing) an entry with the same id. Returns the
 * entry, or NULL on no memory: the table is then unchanged (an entry with that id stays)
 * and fd is not taken (the caller closes it). */
struct held_conn *conns_add(struct conns *t, uint64_t id, int fd);
/* Takes the entry out of the table and drops the table's reference. */
void conns_del(struct conns *t, struct held_conn *cn);
/* Drops the table's reference to every entry (reconnect, close); entries still used by
 * a request live on outside the table. */
void conns_clear(struct conns *t);
/* conns_clear, then frees the table itself. */
void conns_free(struct conns *t);
void conns_hold(struct held_conn *cn);
/* Drops one reference; the last one closes the fd and frees the entry. */
void conns_release(struct held_conn *cn);

#pragma GCC visibility pop

#endif
