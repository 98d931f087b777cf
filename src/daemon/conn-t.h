/* conn-t.h: a client connection and its states (functions in conn.h). */
#ifndef PS_DAEMON_CONN_T_H
#define PS_DAEMON_CONN_T_H

#include <stdbool.h>
#include <stdint.h>
#include "http_head.h"
#include "loop.h"
#include "protocol.h"
#include "threads-t.h"

enum conn_state {
	CONN_HANDSHAKE, /* TLS: the handshake is under way (tls.c) */
	CONN_READING,   /* the daemon reads the next request head */
	CONN_WRITING,   /* the daemon writes its own answer */
	CONN_QUEUED,    /* a request waits in a queue; input not watched */
	CONN_DELIVERED, /* a worker owns the connection; registered with events = 0 */
	CONN_LINGER,    /* FIN sent; draining input briefly before close (lingering close) */
	CONN_MOVING,    /* head accepted on another thread; on its way to the main thread */
};

/* A client connection. The daemon keeps its own fd (io.fd) for the connection's
 * whole life, whichever process is using it, so it can always close it, time it out
 * and account for it (DESIGN §2.7). Only conn_free() closes it. */
struct conn {
	uint64_t id;
	struct loop_io io;
	struct loop_timer timer;
	uint16_t port;
	struct ps_addr local, remote;
	enum conn_state state;
	char *buf; /* bytes read, not handed off; NULL when none (idle connections hold no buffer) */
	uint32_t len, cap;
	struct http_scan scan;
	bool eof;        /* the client's FIN was seen */
	bool closing;    /* answer, then close */
	bool in_process; /* conn_process is on the stack */
	bool kick;       /* bytes wait in buf: parse them from the timer */
	char *out;       /* the daemon's own answer, being written */
	uint32_t out_len, out_off;
	struct request *req; /* queued or delivered */
	uint32_t *cached_by; /* ids of sessions holding a copy of the fd */
	uint32_t ncached, capcached;
	uint64_t requests;
	struct http_head *moved_head; /* CONN_MOVING: the accepted head, for thread 0 */
	struct thread_msg move;
	/* every byte sent to and read from the socket, by the daemon and (reported in
	 * RETURN) by workers: the kernel's written/consumed counters, without asking it */
	uint64_t sent, received;
	struct list link;     /* dm->conns */
	struct conn_tls *tls; /* a TLS connection's handshake, records and state (tls.c); else NULL */
};

#endif
