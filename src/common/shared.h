/* shared.h: what the daemon and a library share in memory for delegation (DESIGN §6):
 * the session page (one per session, mapped by both) and the route snapshot format
 * (a sealed memfd, replaced on every route change). */
#ifndef PS_SHARED_H
#define PS_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include "canon.h"
#include "http_head.h"
#include "protocol.h"

#define SHARED_SLOTS 4096 /* delegated connections one session can hold */
#define SHARED_QUEUES 64  /* per-queue counters kept by the library */
/* The page's layout: a library checks it before it maps a slot, so one built for another
 * layout (a worker started before a daemon upgrade) does not delegate rather than write at
 * wrong offsets. Changed with every layout change: "psP" and the layout's number. */
#define SHARED_PAGE_MAGIC 0x70735003u

/* One delegated connection, written by the library after every response it completes
 * on it, read by the daemon only when the session has ended or for the idle limit.
 * seq is odd while the library updates the slot (a seqlock); conn_id 0: slot free.
 * written/consumed count the bytes the library sent to and read from the socket since
 * the daemon handed the connection over; with the kernel's counters taken at handoff
 * they tell an idle connection from one with a request read or a response begun. */
struct shared_slot {
	uint64_t seq;
	uint64_t conn_id;
	uint64_t written;
	uint64_t consumed;
	uint64_t responses; /* completed on this connection since the handoff */
	uint64_t last_ms;   /* CLOCK_MONOTONIC ms of the last response's end */
	uint64_t buffered;  /* bytes the library holds past that response (a pipelined request):
	                     * not idle, even when the kernel's counters match */
	/* the response being finished, written just before its last send (0: none): if the
	 * kernel's written counter equals end_written, that response went out whole even
	 * though the fields above still describe the one before (the library was stopped in
	 * between); end_consumed and end_buffered then stand for consumed and buffered.
	 * SHARED_END_BODY_UNREAD in end_buffered: that response went out before the
	 * request's body was all read (the library drains it afterwards), so, however much
	 * of the body was consumed, the daemon cannot tell where a next request would begin
	 * and ends the connection. (A flag bit, not a field: the slot's layout stays that of
	 * libraries started before a daemon upgrade.) */
	uint64_t end_written;
	uint64_t end_consumed;
	uint64_t end_buffered;
	/* TLS connections: each direction's next record sequence number and KeyUpdates so far
	 * ([TLS_RECORD_READ], [TLS_RECORD_WRITE]), at the record above and at the end_* one.
	 * With the record state of the last handoff the daemon derives the keys from them
	 * (tls_record_state_advance): no key is ever in the page (DESIGN §11). */
	uint64_t tls_seq[2], tls_key_updates[2];
	uint64_t end_tls_seq[2], end_tls_key_updates[2];
};
#define SHARED_END_BODY_UNREAD (1ull << 63)

/* A queue's counters, written by the library only (atomic adds), read by the daemon for
 * status and metrics at any time, and folded into the queue when the session ends. */
#define SHARED_CLASSES 5 /* status classes 1xx..5xx */
/* Request durations in the worker (from the library having the request to its response's
 * last send), counted per bucket (not cumulative): at most 1, 5, 10, 50, 100, 500, 1000,
 * 5000 ms, and more. */
#define SHARED_BUCKETS 9
static inline unsigned shared_bucket(uint64_t us)
{
	static const uint32_t le_ms[SHARED_BUCKETS - 1] = {1, 5, 10, 50, 100, 500, 1000, 5000};
	unsigned i = 0;
	while (i < SHARED_BUCKETS - 1 && us > (uint64_t)le_ms[i] * 1000u)
		i++;
	return i;
}
struct shared_counter {
	uint32_t queue_id; /* 0: unused */
	uint32_t reserved;
	uint64_t served;                  /* requests the library served without the daemon */
	uint64_t delivered;               /* responses completed to requests the daemon delivered (counted
	                                   * here when they end, so status does not wait for RETURN or END) */
	uint64_t classes[SHARED_CLASSES]; /* every response completed, by status class */
	uint64_t duration_us;             /* their durations' sum */
	uint64_t buckets[SHARED_BUCKETS]; /* and their count by duration */
};

struct shared_page {
	uint32_t magic;
	uint32_t size;
	uint64_t routes_generation; /* daemon: the newest snapshot; a library holding an older one
	                             * must not route by it (it returns the connection) */
	/* library: nonzero once it counts the responses to delivered requests in `delivered`;
	 * the daemon then does not count them at RETURN or END */
	uint64_t counts_delivered;
	uint64_t reserved[5];
	struct shared_counter counters[SHARED_QUEUES];
	struct shared_slot slots[SHARED_SLOTS];
};

/* Route snapshot: a header, the queues, then the prefixes, each record padded to 8. */
#define SNAPSHOT_MAGIC 0x70735253u /* "psRS" */
struct snapshot_header {
	uint32_t magic;
	uint32_t size;
	uint64_t generation;
	uint32_t nqueues, nprefixes;
	struct http_limits http;
	struct canon_limits canon;
};
struct snapshot_queue {
	uint32_t id;
	uint32_t reserved;
	uint64_t max_body;
};
struct snapshot_prefix {
	uint32_t queue_id;
	uint8_t https, cls;
	uint16_t port;
	struct ps_addr ip;
	uint16_t host_len, path_len; /* followed by host then path bytes, then padding to 8 */
	uint32_t reserved;
};

struct route_table;
struct url_prefix;

/* Daemon: writes the snapshot of t (owners are queue ids, from owner_id) to a new
 * sealed memfd; returns the fd, or -1. */
struct snapshot_queue_src {
	uint32_t id;
	uint64_t max_body;
};
int snapshot_write(const struct route_table *t, uint32_t (*owner_id)(void *owner),
                   const struct snapshot_queue_src *queues, uint32_t nqueues, uint64_t generation,
                   const struct http_limits *http, const struct canon_limits *canon);

/* Library: checks fd is sealed, maps it, checks every length, and builds a route table
 * whose owners are (void *)(uintptr_t)queue_id. 0, or -1 (then nothing is returned). */
struct snapshot {
	uint64_t generation;
	struct route_table *routes;
	struct http_limits http;
	struct canon_limits canon;
	struct snapshot_queue *queues; /* malloc'd copy */
	uint32_t nqueues;
};
int snapshot_read(int fd, size_t size, struct snapshot *out);
void snapshot_clear(struct snapshot *s);
/* max_body of a queue in the snapshot (0 unlimited, or if unknown) */
uint64_t snapshot_max_body(const struct snapshot *s, uint32_t queue_id);

#endif
