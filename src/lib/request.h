/* request.h: one delivered request and its response state (libportshare internal),
 * shared by request.c (the request and its body) and response.c (the answer). */
#ifndef PS_LIB_REQUEST_H
#define PS_LIB_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client.h"
#include "conns.h"
#include "http_head.h"
#include "portshare.h"

/* Internal to libportshare: not exported from the shared library. */
#pragma GCC visibility push(hidden)

/* What the library reads and discards of an unread body before it keeps a connection
 * alive (HTTP.sys's DrainEntityBody); past either limit it closes instead. */
#define REQUEST_DRAIN_MAX (1024 * 1024)
#define REQUEST_DRAIN_MS 5000
/* Largest read from the client socket. It bounds what can be read past the end of a
 * request, which must fit in one RETURN message. */
#define REQUEST_READ_MAX 16384

enum response_state {
	RESPONSE_NONE,      /* nothing sent */
	RESPONSE_BEGUN,     /* final response begun (head perhaps still buffered) */
	RESPONSE_SWITCHING, /* 101 sent; ps_request_upgrade may take the connection */
	RESPONSE_DONE,      /* finished: connection returned, ended or aborted */
	RESPONSE_UPGRADED,  /* the application took the connection */
};

enum response_framing {
	FRAMING_NONE,    /* no body: HEAD, 204, 304 */
	FRAMING_LENGTH,  /* Content-Length */
	FRAMING_CHUNKED, /* Transfer-Encoding: chunked */
	FRAMING_CLOSE,   /* the end of the body is the end of the connection (HTTP/1.0) */
};

enum accesslog_state {
	ACCESSLOG_NONE,  /* no record yet */
	ACCESSLOG_BEGUN, /* its BEGIN record is in the ring; its END is owed */
	ACCESSLOG_DONE,  /* logged (or not to be) */
};

struct ps_request {
	ps_client *c; /* NULL once ps_close() ended the session under it */
	ps_queue *q;
	struct ps_request *queue_next;  /* in q's deliveries until ps_receive returns it */
	struct ps_request *prev, *next; /* c->requests */
	bool handed_out;                /* ps_receive returned it: the application frees it */

	struct held_conn *conn; /* our reference to the cached fd; NULL once released */
	int fd;
	uint32_t gen;                           /* session generation that delivered it */
	uint64_t conn_id, req_id;               /* the daemon's: RETURN and END name the connection by them */
	uint64_t id;                            /* what ps_request_id says: req_id, or one of the library's */
	struct ps_addr addr_local, addr_remote; /* as the DELIVER gave them */

	/* delegation (delegate.c) */
	bool delegable;       /* the DELIVER lets this session keep the connection afterwards */
	bool tls;             /* the client's connection is TLS (ps_request_scheme) */
	uint16_t tls_version; /* TLS_RECORD_TLS12 or TLS_RECORD_TLS13 */
	char tls_server_name[PS_SERVER_NAME_MAX + 1]; /* SNI */
	uint16_t status;      /* of the response begun (0: none yet): counted by class */
	bool counted;         /* delegate_served counted its response */
	uint64_t start_us;    /* CLOCK_MONOTONIC when the library got it: its duration */
	uint64_t duration_us; /* to its response's end, once known (request_duration_us) */
	bool duration_known;
	bool delegated;     /* read by the library itself: the daemon never saw this request */
	bool pre_slot_held; /* delegate_pre_end took pre_slot for this response (a delivered one) */
	uint16_t pre_slot;
	struct delegation *delegation; /* the delegated connection it came from; NULL once dropped */

	/* the head as delivered, and what was parsed from it */
	char *head;
	size_t head_len;
	char *strings; /* one block for everything below */
	const char *method, *target, *path, *query, *host;
	ps_header *fields;
	struct sockaddr_storage local, peer;
	socklen_t local_len, peer_len;

	/* the body; `in` holds raw bytes from the daemon's tail, then from the socket */
	struct http_body *body;
	uint64_t max_body;
	bool has_body;          /* chunked or Content-Length > 0 */
	bool body_done;         /* the request's last byte has been consumed */
	bool body_seen;         /* some body byte has arrived (100-continue would be late) */
	int64_t body_wait_from; /* EntityBody: the body's clock (start, or the last bytes) */
	bool body_failed;       /* malformed, too large, or the client went away mid-body */
	bool eof;               /* the client's FIN was read */
	bool read_once;         /* ps_request_read was called (100-continue is due only then) */
	bool continue_sent;
	uint64_t body_read; /* de-chunked body bytes produced so far */
	bool read_sock;     /* something was read from the socket (it may hold more) */
	char *in;
	size_t in_pos, in_len, in_cap;

	/* the response */
	enum response_state state;
	enum response_framing framing;
	bool head_only; /* HEAD request: headers as for GET, no body */
	bool close;     /* the connection ends after this response */
	bool wire;      /* response bytes have been sent (a 100 is no longer allowed) */
	bool head_open; /* `out` holds a head not yet ended (Connection decided at sending) */
	bool shut;      /* shutdown(SHUT_WR) done */
	bool aborted;
	uint64_t remaining; /* FRAMING_LENGTH: bytes still owed */
	uint64_t body_sent; /* body bytes given to the socket (the access log's %b) */
	enum accesslog_state log_state;
	uint64_t log_serial, log_start_written; /* accesslog.c */
	char *out;                              /* response bytes built and not sent yet */
	size_t out_len, out_cap;
	/* last: a new request clears everything before the head's unused fields (a few
	 * KiB of them), which are never read */
	struct http_head h;
};

/* request.c */
/* Reads body bytes into buf until the deadline: count, 0 at its end, or a code. */
ssize_t request_body(ps_request *r, void *buf, size_t len, int64_t deadline);
/* Reads and discards the rest of the body within the drain limits: 0 when it is all
 * consumed, else a code (the connection must then close). */
int request_drain(ps_request *r);
/* Whether the response should close the connection for reasons of the request. */
bool request_must_close(const ps_request *r);
/* From the library having r to its response's end (now, the first time it is asked): the
 * counters in the page and the access log take the same figure. */
uint64_t request_duration_us(ps_request *r);
/* Takes r out of its client's list of live requests. */
void request_unlink(ps_request *r);
/* Unlinks and frees r; a connection still held is released without a word to the
 * daemon (callers decide what to tell it first: see response.c). */
void request_destroy(ps_request *r);
/* Makes a request from a delegated connection's head, as a DELIVER would (m is built
 * like one; parsed: the head as http_head_parse found it, reused when it starts at
 * the request line). NULL on no memory or a head that does not parse again. */
ps_request *request_delegated(ps_client *c, ps_queue *q, const struct ps_msg *m, struct held_conn *cn,
                              const struct http_head *parsed);

/* response.c */
/* Answers a request the application never saw (a head the library could not parse),
 * then frees it. */
void response_refuse(ps_request *r, int status);
/* A short plain-text answer the library gives on the application's behalf, then the
 * connection closes; r stays the application's. */
void response_error(ps_request *r, int status);
/* Resets the connection (a response that cannot be completed) and gives it up. */
void response_abort(ps_request *r);

#pragma GCC visibility pop

#endif
