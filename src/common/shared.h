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
#define SHARED_PAGE_MAGIC 0x70735004u

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
	uint64_t bytes;                   /* response bytes (head and body, before TLS) sent */
};

/* The access log's ring (DESIGN §9): the library appends one record per request it
 * answers; the daemon drains it off the request path (when the library says it is half
 * full, once a second, and before it judges a dead worker's connections) and writes the
 * lines itself, so no application holds the log's fd. One writer (the session's thread:
 * a ps_client is single-threaded) and one reader; head and tail count bytes for ever
 * and are taken modulo the size. */
#define SHARED_LOG_SIZE (1u << 20)
/* A record's strings are cut to these (the daemon formats and escapes them) */
#define SHARED_LOG_REQUEST_MAX 2048
#define SHARED_LOG_FIELD_MAX 512
struct shared_log {
	uint64_t head;    /* library: bytes committed (release after the record's bytes) */
	uint64_t tail;    /* daemon: bytes drained */
	uint32_t on;      /* daemon: 1 while an access log is configured: write records */
	uint32_t nudged;  /* library: 1 once it asked for a drain (LOG_DRAIN); the daemon clears it */
	uint64_t dropped; /* library: records it gave up on (the ring stayed full) */
	/* library: the serial of the record whose response's last send is under way (0:
	 * none; at most one, the session's thread is in that send). The daemon drains no
	 * further than it while the session lives: were the worker killed in that send, its
	 * verdict on the connection decides the record. */
	uint64_t sending;
	uint64_t reserved[3];
	unsigned char data[SHARED_LOG_SIZE];
};

/* One record, 8-byte aligned, followed by the request line, Referer and User-Agent
 * (raw bytes, lengths below) and padding to 8. A record that would cross the ring's end
 * is preceded by a pad record filling the rest.
 *
 * A response sent in one go is one WHOLE record, committed just before its last send,
 * together with the slot's end record (§6). A response sent in several sends is a BEGIN
 * record before its first send and an END record (same serial, no strings) before its
 * last. When a worker dies the daemon judges a record whose end it has not seen, or
 * whose end_written the kernel has not reached, by the connection's counters: the
 * response went whole (logged), in part (logged as aborted, with the bytes that went) or
 * not at all (dropped: the daemon's own 503 or the next worker logs the request). So
 * every request is logged exactly once, also across SIGKILL. */
enum shared_log_kind {
	SHARED_LOG_PAD = 0,
	SHARED_LOG_WHOLE = 1,
	SHARED_LOG_BEGIN = 2,
	SHARED_LOG_END = 3,
};
#define SHARED_LOG_ABORTED 0x1u /* the response was cut short (the connection reset) */
#define SHARED_LOG_UPGRADE 0x2u /* a 101: the connection went on as the application's */
struct shared_log_record {
	uint32_t size; /* this record's bytes, strings and padding included */
	uint8_t kind;  /* enum shared_log_kind */
	uint8_t flags; /* SHARED_LOG_* */
	uint16_t status;
	uint32_t queue_id;
	uint16_t request_len, referer_len, agent_len, reserved;
	uint32_t reserved2;
	uint64_t serial;        /* the session's count of responses: pairs BEGIN and END */
	uint64_t conn_id;       /* the daemon's */
	uint64_t start_written; /* the connection's written counter before the response (§6) */
	uint64_t end_written;   /* and after its last byte; 0: not known (not judged) */
	uint64_t body_bytes;    /* response body bytes (combined's %b) */
	uint64_t time_us;       /* CLOCK_REALTIME when the response ended */
	uint64_t duration_us;   /* from the library having the request to then */
	struct ps_addr remote;
};
#define SHARED_LOG_RECORD_MAX                                                                                \
	((sizeof(struct shared_log_record) + SHARED_LOG_REQUEST_MAX + 2 * SHARED_LOG_FIELD_MAX + 7) & ~7u)

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
	struct shared_log log;
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
