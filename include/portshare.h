/* portshare.h: the public API of libportshare, the application side of portshare.
 *
 * An application connects to the portshared daemon (a session), creates or opens
 * named request queues, registers URL prefixes on them, and receives requests. The
 * client connection itself is handed to the process: the body is read from, and the
 * response written to, the client socket directly, never through the daemon.
 *
 * Error convention, everywhere: functions return 0 (or a byte count) on success and a
 * negative PS_E* code on failure; ps_strerror() names the code, and
 * ps_client_message() gives the daemon's detail for the last refusal ("already
 * registered by queue q (pid 12, user www)").
 *
 * Threads: a ps_client and everything made from it belong to one thread at a time.
 * Blocking and non-blocking use: every call that waits takes a timeout in
 * milliseconds (-1 forever, 0 never waits and returns PS_EAGAIN instead).
 *
 * Signals: ps_connect() sets SIGPIPE to SIG_IGN if it is at SIG_DFL, because a client
 * that goes away must not kill the worker that writes to it.
 */
#ifndef PORTSHARE_H
#define PORTSHARE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PS_DEFAULT_SOCKET "/run/portshare/control.sock"
#define PS_SOCKET_ENV "PORTSHARE_SOCKET"

enum ps_error {
	PS_OK = 0,
	PS_EINVAL = -1,        /* bad argument, prefix or name */
	PS_EEXIST = -2,        /* queue name or prefix already taken */
	PS_ENOTFOUND = -3,     /* no such queue or prefix */
	PS_EDENIED = -4,       /* not allowed (admin only, not your queue) */
	PS_EPORTINUSE = -5,    /* the endpoint is held by another program */
	PS_EDISCONNECTED = -6, /* no session with the daemon right now */
	PS_ETIMEDOUT = -7,
	PS_EPROTO = -8,   /* the daemon and library disagree on the protocol */
	PS_ENOMEM = -9,
	PS_ESYSTEM = -10, /* a system call failed; errno tells which */
	PS_ESTATE = -11,  /* not allowed now (second final response, ...) */
	PS_ECLOSED = -12, /* the client connection is closed or reset */
	PS_EBODY = -13,   /* malformed or too large request body */
	PS_EVERSION = -14, /* protocol version not supported by the daemon */
	PS_ELIMIT = -15,   /* a daemon limit was reached */
	PS_EAGAIN = -16,   /* nothing ready and timeout 0 */
};

typedef struct ps_client ps_client;
typedef struct ps_queue ps_queue;
typedef struct ps_request ps_request;

typedef struct ps_header {
	const char *name;
	const char *value;
} ps_header;

typedef struct ps_queue_opts {
	int persistent;            /* outlives its sessions (admin only); 0: no */
	uint32_t max_length;       /* requests held at most; 0: default 1000 */
	uint64_t max_body;         /* request body limit in bytes; 0: unlimited */
	uint32_t response_wait_ms; /* delivery to first response byte; 0: off */
} ps_queue_opts;

/* Connects to the daemon. socket_path NULL: $PORTSHARE_SOCKET, then PS_DEFAULT_SOCKET.
 * Raises the RLIMIT_NOFILE soft limit to the hard limit. The session reconnects by
 * itself when the daemon restarts, re-creating its queues and registrations. */
int ps_connect(const char *socket_path, ps_client **out);
/* Ends the session: the daemon removes non-persistent queues this session created
 * once no other session holds them. Requests not yet freed are aborted. */
void ps_close(ps_client *c);
/* The daemon's text for the last refusal on this client, or "" */
const char *ps_client_message(const ps_client *c);
const char *ps_strerror(int code);

/* Creates queue `name` (1-63 bytes of [A-Za-z0-9._-]); opts may be NULL. */
int ps_queue_create(ps_client *c, const char *name, const ps_queue_opts *opts, ps_queue **out);
/* Joins an existing queue as another worker: its requests are shared among all
 * workers with a receive outstanding, oldest-waiting receive first. */
int ps_queue_open(ps_client *c, const char *name, ps_queue **out);
const char *ps_queue_name(const ps_queue *q);
/* prefix: "http://HOST:PORT/PATH/" with HOST one of +, a host name, an IP literal, * */
int ps_queue_add_url(ps_queue *q, const char *prefix);
int ps_queue_remove_url(ps_queue *q, const char *prefix);
/* Stops new deliveries to this process (for a clean exit during a redeploy). */
int ps_queue_drain(ps_queue *q);
/* Deletes a persistent queue (admin only) and its URLs. */
int ps_queue_delete(ps_queue *q);
/* A descriptor that becomes readable when ps_receive() may have something: one per
 * client, shared by its queues; after it polls readable, call ps_receive(q, &r, 0) on
 * each queue. */
int ps_queue_fd(const ps_queue *q);

/* Waits for the next request of q. */
int ps_receive(ps_queue *q, ps_request **out, int timeout_ms);

/* The request. Strings are NUL-terminated and live until ps_request_free(). */
const char *ps_request_method(const ps_request *r);
const char *ps_request_target(const ps_request *r); /* raw, as the client sent it */
const char *ps_request_path(const ps_request *r);   /* canonical path, routing used it */
const char *ps_request_query(const ps_request *r);  /* after '?', "" if none */
const char *ps_request_host(const ps_request *r);   /* lower case, no port */
int ps_request_version(const ps_request *r);        /* 10 or 11 */
/* First header of that name (case-insensitive), or NULL */
const char *ps_request_header(const ps_request *r, const char *name);
size_t ps_request_header_count(const ps_request *r);
/* i-th header in arrival order; 0, or PS_EINVAL past the end */
int ps_request_header_at(const ps_request *r, size_t i, ps_header *out);
/* Content-Length, or -1 for chunked or none (then ps_request_has_body tells) */
int64_t ps_request_content_length(const ps_request *r);
int ps_request_has_body(const ps_request *r);
const struct sockaddr *ps_request_peer(const ps_request *r, socklen_t *len);
const struct sockaddr *ps_request_local(const ps_request *r, socklen_t *len);
uint64_t ps_request_id(const ps_request *r);

/* Reads up to len bytes of the body, de-chunked. Returns the count, 0 at the end of
 * the body, or a negative code. Sends "100 Continue" first when the client asked for
 * it (HTTP/1.1, no final response begun). timeout_ms as everywhere. */
ssize_t ps_request_read(ps_request *r, void *buf, size_t len, int timeout_ms);

/* A whole response. Date and framing headers (Content-Length, Connection) are added;
 * HEAD gets the Content-Length and no body; 1xx/204/304 get no body. */
int ps_respond(ps_request *r, int status, const ps_header *h, size_t nh, const void *body, size_t len);
/* A streamed response: content_length >= 0 sends exactly that many bytes; -1 uses
 * chunked framing on HTTP/1.1 and close-delimited on HTTP/1.0. */
int ps_respond_begin(ps_request *r, int status, const ps_header *h, size_t nh, int64_t content_length);
int ps_respond_write(ps_request *r, const void *buf, size_t len);
/* Sends len bytes of file fd from offset with sendfile(2) (chunk-framed when chunked). */
int ps_respond_sendfile(ps_request *r, int fd, off_t offset, size_t len);
int ps_respond_end(ps_request *r);
/* After a 101 response: takes the connection for good. *fd is the process's own
 * descriptor; the daemon forgets the connection. The request must still be freed. */
int ps_request_upgrade(ps_request *r, int *fd);
/* Frees the request. A response not begun is answered 500; one begun and not ended
 * aborts the connection. */
void ps_request_free(ps_request *r);

#ifdef __cplusplus
}
#endif
#endif
