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
 *
 * Delegation: when the daemon allows it, the library keeps a keep-alive connection
 * after a response and reads the client's next requests itself, routing them with a
 * copy of the daemon's route table; a request for one of this client's queues is
 * served without the daemon (ps_receive returns it like any other), anything else
 * goes back to the daemon with every byte read. The application sees no difference,
 * except that ps_receive() then also does that reading. A connection idle for 1 s is
 * handed back to the daemon. Set the environment variable PORTSHARE_DELEGATION=0
 * (read by ps_connect) to turn it off: every connection then goes back to the daemon
 * after each response.
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
/* The queue a started worker joins: set by whoever starts it on demand (a controller
 * after ps_queue_wait_demand, portshare-apps); read by the examples, not the library. */
#define PS_QUEUE_ENV "PORTSHARE_QUEUE"
#define PS_DELEGATION_ENV "PORTSHARE_DELEGATION" /* "0": no delegation (see above) */
/* "0": ps_receive posts the next receive only when it is called again, instead of as
 * soon as it returns a request. The posted receive makes the next handoff faster, but
 * the daemon may give it a request while this worker is still busy with the last one
 * (receives are served oldest first): a worker whose requests may last long sets it,
 * and adds workers as they get busy, or calls ps_client_yield when a request turns
 * long. Read by ps_connect. */
#define PS_PREFETCH_ENV "PORTSHARE_PREFETCH"

enum ps_error {
	PS_OK = 0,
	PS_EINVAL = -1,        /* bad argument, prefix or name */
	PS_EEXIST = -2,        /* queue name or prefix already taken */
	PS_ENOTFOUND = -3,     /* no such queue or prefix */
	PS_EDENIED = -4,       /* not allowed (admin only, not your queue) */
	PS_EPORTINUSE = -5,    /* the endpoint is held by another program */
	PS_EDISCONNECTED = -6, /* no session with the daemon right now */
	PS_ETIMEDOUT = -7,
	PS_EPROTO = -8, /* the daemon and library disagree on the protocol */
	PS_ENOMEM = -9,
	PS_ESYSTEM = -10,  /* a system call failed; errno tells which */
	PS_ESTATE = -11,   /* not allowed now (second final response, ...) */
	PS_ECLOSED = -12,  /* the client connection is closed or reset */
	PS_EBODY = -13,    /* malformed or too large request body */
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
 * once no other session holds them. Requests returned by ps_receive and not yet freed
 * are aborted; ps_request_free() must still be called on them (it then only frees
 * memory). Requests delivered but never returned are left to the daemon, and
 * connections kept by delegation go back to it, with whatever was read on them. */
void ps_close(ps_client *c);
/* The detail of the last failed queue operation on this client, or "": the daemon's
 * text for a refusal ("already registered by queue q (pid 12, user root)"), or the
 * library's for an argument it refused itself. */
const char *ps_client_message(const ps_client *c);
const char *ps_strerror(int code);

/* Creates queue `name` (1-63 bytes of [A-Za-z0-9._-]); opts may be NULL.
 * Queue operations have no timeout argument: if the daemon is away they wait up to
 * 10 s for it to come back (PS_EDISCONNECTED after that). Queues live until ps_close(). */
int ps_queue_create(ps_client *c, const char *name, const ps_queue_opts *opts, ps_queue **out);
/* Joins an existing queue as another worker: its requests are shared among all
 * workers with a receive outstanding, oldest-waiting receive first. */
int ps_queue_open(ps_client *c, const char *name, ps_queue **out);
const char *ps_queue_name(const ps_queue *q);
/* prefix: "http://HOST:PORT/PATH/" with HOST one of +, a host name, an IP literal, * */
int ps_queue_add_url(ps_queue *q, const char *prefix);
int ps_queue_remove_url(ps_queue *q, const char *prefix);
/* Stops new deliveries to this process (for a clean exit during a redeploy).
 * ps_receive() then returns the requests already delivered, then PS_ESTATE.
 * Idle connections kept by delegation go back to the daemon at once, the others
 * after their current response. */
int ps_queue_drain(ps_queue *q);
/* Deletes a persistent queue (admin only) and its URLs. */
int ps_queue_delete(ps_queue *q);
/* Demand start (HTTP.sys's HttpWaitForDemandStart), for a controller: a process manager
 * that holds q open (created it, or opened it as its owner, an admin or by a grant)
 * without receiving from it, and starts workers when they are needed. Waits until a
 * request waits in q while q has no worker (no process attached to q has called
 * ps_receive on it, or every one that did has drained or gone), then returns 0: start a
 * worker; the request stays queued (RequestQueue and the queue's length apply as usual)
 * and goes to the first worker that receives. A demand already there when the call
 * starts returns at once. While the controller holds q open its requests are held, not
 * answered 503 AppOffline. Each request is announced once: a call made again right after
 * starting a worker waits for a new request (or for the worker to die holding some),
 * not for the worker to attach. The wait stays registered with the daemon after a call
 * times out, and a demand that comes while no call waits is returned by the next call
 * at once (as an HTTP.sys registration that completes while nobody looks).
 * Returns 0, PS_ETIMEDOUT (PS_EAGAIN with timeout 0, after a round trip to the daemon;
 * ps_queue_fd becomes readable when the demand comes, then call again), PS_ENOTFOUND
 * once q is deleted, PS_EVERSION when the daemon is older than demand start,
 * PS_ESYSTEM with errno EINTR when a signal interrupted the wait. A daemon restart or
 * upgrade during the wait is followed (the wait is made again in the new session). */
int ps_queue_wait_demand(ps_queue *q, int timeout_ms);
/* Keeps up to n receives posted on q (1 to PS_RECEIVE_WINDOW_MAX; 1 by default), topped
 * up when half of them have been consumed: the daemon then hands over up to n requests
 * while this worker is busy, and they arrive together (one wake-up, one RECEIVE per n/2
 * requests instead of one of each per request). The price is fairness: receives are
 * served oldest first, so requests go to this worker while another of the queue's
 * workers may be idle. For a worker that serves what it holds together or quickly (a
 * proxy forwarding requests in batches) and calls ps_client_yield when a request turns
 * long, which withdraws the posted receives and gives back what it holds. Takes effect
 * at the next receive posted; with PORTSHARE_PREFETCH=0 the window is one. ps_close
 * gives back what the window brought and nobody took (as ps_client_yield does); a
 * worker on its way out drains first (ps_queue_drain). Returns 0, or PS_EINVAL (the
 * window stays as it was). */
#define PS_RECEIVE_WINDOW_MAX 64
int ps_queue_set_receive_window(ps_queue *q, unsigned n);
/* A descriptor that becomes readable when ps_receive() may have something: one per
 * client, shared by its queues, and the same for the client's whole life (an epoll
 * descriptor watching the session socket, the timer and the connections kept by
 * delegation, so it survives a daemon restart). Use: call ps_receive(q, &r, 0) once
 * on each queue first (that posts its receive), poll this descriptor, and when it is
 * readable call ps_receive(q, &r, 0) on each queue until PS_EAGAIN (one wake-up may
 * bring requests for several queues). The descriptor also becomes readable when an
 * idle delegated connection is due to go back to the daemon, or when a request was
 * queued while no ps_receive was running (read during another queue's ps_receive, or
 * pipelined behind a request being answered): handle such a wake-up the same way. */
int ps_queue_fd(const ps_queue *q);

/* Waits for the next request of q. Returns 0 and *out, PS_EAGAIN (timeout 0) or
 * PS_ETIMEDOUT, PS_ESTATE once the queue is drained and empty, PS_ENOTFOUND once it is
 * deleted, or PS_ESYSTEM with errno EINTR when a signal handler interrupted the wait
 * (so a loop can look at its flags). While the daemon is away it reconnects, with
 * backoff, within the timeout. A receive that timed out stays posted. After a
 * reconnect, a URL the daemon refuses to register again (its reservation was deleted
 * meanwhile, say) is reported once: ps_receive returns that refusal (PS_EDENIED,
 * PS_EEXIST...; ps_client_message says which URL and why) and the queue goes on
 * serving its other URLs. */
int ps_receive(ps_queue *q, ps_request **out, int timeout_ms);
/* Call it when the request in hand is about to block this thread for long (a stream, a
 * long poll, a slow backend): what the client holds but is not serving goes back to
 * the daemon, which gives it to other workers of its queues. That is every posted
 * receive (withdrawn; the next ps_receive posts one again), every request delivered or
 * read but not yet returned by ps_receive, and every connection kept by delegation that
 * is between requests. Requests already returned by ps_receive stay this thread's.
 * Costs one round trip to the daemon when a receive is posted, nothing otherwise. A
 * daemon older than this call keeps the receive and what it delivered: only kept
 * connections and the requests read from them go back then.
 * Returns 0, or an error of the round trip (what could go back still did). */
int ps_client_yield(ps_client *c);
/* Gives r, returned by ps_receive but not touched (no body read, nothing answered), back
 * to the daemon, which delivers it to another receive of its queue as if this worker had
 * never had it: for a worker that took more requests than it can serve soon (a proxy
 * that sent several to its backend at once and must now wait on one for long). Call
 * ps_client_yield first, or the daemon may give it to this session's posted receive
 * again. Returns 0 (r is freed: do not use it again), PS_ESTATE when it must stay here
 * (touched, its session ended, or a daemon without the message: answer it), PS_EINVAL
 * when r was not returned by ps_receive. */
int ps_request_give_back(ps_request *r);

/* The request. Strings are NUL-terminated and live until ps_request_free(). */
const char *ps_request_method(const ps_request *r);
const char *ps_request_target(const ps_request *r); /* raw, as the client sent it */
const char *ps_request_path(const ps_request *r);   /* canonical path, routing used it */
const char *ps_request_query(const ps_request *r);  /* after '?', "" if none */
const char *ps_request_host(const ps_request *r);   /* lower case, no port */
int ps_request_version(const ps_request *r);        /* 10 or 11 */
/* "https" when the client's connection is TLS (the daemon did the handshake), else "http" */
const char *ps_request_scheme(const ps_request *r);
/* TLS connections: the server name the client asked for (SNI, lower case; "" when it sent
 * none) and the protocol version ("TLSv1.3" or "TLSv1.2"); NULL on a plain connection. */
const char *ps_request_tls_server_name(const ps_request *r);
const char *ps_request_tls_version(const ps_request *r);
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
/* The daemon's request id (unique while that daemon runs), or for a request the
 * library read itself from a delegated connection an id of its own: top bit set,
 * unique within the process. */
uint64_t ps_request_id(const ps_request *r);

/* Reads up to len bytes (len > 0) of the body, de-chunked. Returns the count, 0 at the
 * end of the body, or a negative code: PS_EBODY (malformed or over the queue's
 * max_body), PS_ECLOSED (the client went away), PS_EAGAIN/PS_ETIMEDOUT. Sends
 * "100 Continue" first when the client asked for it (HTTP/1.1, no byte of the final
 * response sent yet, no body byte arrived yet). After ps_request_upgrade() it returns
 * the bytes the client sent past the request (the new protocol's first bytes), then 0. */
ssize_t ps_request_read(ps_request *r, void *buf, size_t len, int timeout_ms);
/* 1 once the whole body has been read (the next ps_request_read returns 0), or when
 * the request has none; 0 otherwise. A read returns all the body bytes already
 * received (up to len) without waiting for more, so after a small body's first read
 * this is usually 1 and its bytes can go to ps_respond_last(). */
int ps_request_body_complete(const ps_request *r);

/* A whole response. Date and framing headers (Content-Length, Connection) are added;
 * HEAD gets the Content-Length and no body; 204/304 get no body. The application may
 * not give Content-Length or Transfer-Encoding (PS_EINVAL); its "Connection: close"
 * closes the connection after this response. A 1xx is an interim response sent at
 * once (nothing to HTTP/1.0 clients): 101 only to an upgrade request, then
 * ps_request_upgrade(); 100 is refused (the library sends it, see ps_request_read).
 * A second final response is PS_ESTATE. When the body was not read the library
 * drains it (up to 1 MiB and 5 s) to keep the connection, else closes it. */
int ps_respond(ps_request *r, int status, const ps_header *h, size_t nh, const void *body, size_t len);
/* A streamed response: content_length >= 0 sends exactly that many bytes; -1 uses
 * chunked framing on HTTP/1.1 and close-delimited on HTTP/1.0. The head is held back
 * and leaves with the first body bytes (or at ps_respond_end), in one segment. */
int ps_respond_begin(ps_request *r, int status, const ps_header *h, size_t nh, int64_t content_length);
/* More than a Content-Length allows is PS_EINVAL. A write that fails, or makes no
 * progress for 120 s, aborts the connection. HEAD/204/304: discarded. */
int ps_respond_write(ps_request *r, const void *buf, size_t len);
/* Sends len bytes of file fd from offset with sendfile(2) (chunk-framed when chunked). */
int ps_respond_sendfile(ps_request *r, int fd, off_t offset, size_t len);
/* Ends the response; fewer bytes than its Content-Length aborts the connection
 * (PS_ESTATE). The connection then goes back to the daemon or is closed. */
int ps_respond_end(ps_request *r);
/* ps_respond_write() of the response's last len bytes and ps_respond_end() in one
 * send: with the held-back head and the chunked terminator, a small streamed response
 * leaves whole, so a worker that dies around it has written either none of it or all
 * of it (never a cut response the daemon must abort). */
int ps_respond_last(ps_request *r, const void *buf, size_t len);
/* After a 101 response: takes the connection for good. *fd is the process's own
 * descriptor (O_NONBLOCK, as the daemon made it: once taken, its flags are the
 * application's to change); the daemon forgets the connection. The request must
 * still be freed. */
int ps_request_upgrade(ps_request *r, int *fd);
/* After a 101 response, on a plain or a TLS connection alike (ps_request_upgrade refuses a
 * TLS one, PS_EINVAL: its bytes are records the library seals and opens): takes the
 * connection for good as a byte stream of the new protocol, which starts with any bytes
 * the client sent past the request. The daemon forgets the connection; the request must
 * still be freed. */
typedef struct ps_stream ps_stream;
int ps_request_upgrade_stream(ps_request *r, ps_stream **out);
/* Up to len bytes: the count, 0 at the client's end, PS_EAGAIN (timeout_ms 0, nothing
 * there), PS_ETIMEDOUT, PS_ECLOSED (reset, or a bad TLS record). timeout_ms -1: waits. */
ssize_t ps_stream_read(ps_stream *s, void *buf, size_t len, int timeout_ms);
/* Writes all len bytes (waiting as a response's writes do): 0, PS_ECLOSED, PS_ETIMEDOUT. */
int ps_stream_write(ps_stream *s, const void *buf, size_t len);
/* The descriptor to poll for input, and whether bytes are already waiting in the library
 * (a TLS record opened past what was read): poll only when ps_stream_pending is 0. */
int ps_stream_fd(const ps_stream *s);
int ps_stream_pending(const ps_stream *s);
/* The end of what this side sends (TLS: close_notify, then the FIN); reading goes on. 0 or
 * PS_ECLOSED. */
int ps_stream_shutdown(ps_stream *s);
/* Ends the stream (TLS: close_notify, then the FIN, unless ps_stream_shutdown sent them)
 * and frees it. */
void ps_stream_close(ps_stream *s);
/* Frees the request. A response not begun is answered 500; one begun and not ended
 * aborts the connection. */
void ps_request_free(ps_request *r);

#ifdef __cplusplus
}
#endif
#endif
