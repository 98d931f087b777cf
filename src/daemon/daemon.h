/* daemon.h: the functions each daemon file offers the others, by file. */
#ifndef PS_DAEMON_H
#define PS_DAEMON_H

#include "types.h"

/* log.c */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The error log: one line per answer the daemon gives itself (HTTP.sys's reasons). */
void log_error_answer(const struct conn *c, int status, const char *reason);
const char *addr_format(const struct ps_addr *a, char *buf, size_t len); /* "1.2.3.4:80", "[::1]:80" */

/* conn.c */
void conn_accept(struct endpoint *e, int fd, const struct sockaddr_storage *peer);
/* Thread 0 takes over a connection a front thread accepted the head of. */
void conn_adopt(struct conn *c);
/* The daemon answers a request itself (DESIGN §5); close: then close the connection. */
void conn_answer(struct conn *c, int status, const char *reason, bool close);
/* The worker is done with the response and gives the connection back. */
/* written/consumed: what the worker sent and read since the handoff (0 when unknown). */
void conn_returned(struct conn *c, const char *tail, size_t len, bool eof, uint64_t written,
                   uint64_t consumed);
void conn_ended(struct conn *c, uint32_t end_flags);
void conn_abort(struct conn *c);
/* shutdown(SHUT_WR), then drain input briefly and close */
void conn_linger(struct conn *c);
void conn_tcp_counters(const struct conn *c, uint64_t *written, uint64_t *consumed);
/* Whether our side of the connection has sent its FIN (whichever copy did it). */
bool conn_fin_sent(const struct conn *c);
/* Bytes the kernel holds that nobody has read yet. */
uint32_t conn_unread(const struct conn *c);
bool conn_cached_by(const struct conn *c, uint32_t session_id);
void conn_cache_add(struct conn *c, uint32_t session_id);
void conn_cache_del(struct conn *c, uint32_t session_id);
void conn_close_idle(void); /* shutdown: close connections nobody is using */
/* The old daemon of an upgrade: gives c, with every byte read and not yet used, to the
 * new daemon (a front thread moves it to thread 0 first). c is gone afterwards. */
void conn_hand_over(struct conn *c);
/* The new daemon: a connection the old one handed over (fd is taken), read from here
 * on as if it had just been returned by a worker. */
void conn_adopt_handover(int fd, const struct ps_conn_handover *h, const char *bytes);
/* Closes delivered connections that are over: our side's FIN sent (the worker may drop
 * its copy without END after Connection: close) and nothing left to wait for. */
void conn_close_finished(void);
/* exit: close every connection; one a worker still writes to is aborted */
void conn_close_all(void);

/* queue.c */
struct queue *queue_find(const char *name);
struct attach *queue_attach_find(struct session *s, uint32_t queue_id);
int queue_create(struct session *s, const struct ps_queue_create *m, struct queue **out, char *err,
                 size_t errlen);
int queue_open(struct session *s, const char *name, struct queue **out, char *err, size_t errlen);
int queue_url_add(struct queue *q, bool admin, const char *text, size_t len, char *err, size_t errlen);
int queue_url_del(struct queue *q, const char *text, size_t len, char *err, size_t errlen);
int queue_delete(struct queue *q);
void queue_detach(struct attach *a);
void queue_receive(struct attach *a, uint32_t count);
/* No more deliveries to this attachment (QUEUE_DRAIN, a session ending). */
void queue_drain(struct attach *a);
/* Routes a parsed request: holds it, delivers it, or answers it. Takes req. */
void queue_push(struct queue *q, struct request *req);
/* A request comes back to the front of its queue: nofd (the worker had no fd for
 * it) or a dead worker's; each is tried a few times, then answered 503. */
void queue_requeue(struct request *req, bool nofd);
void queue_request_timeout(struct conn *c);
/* ResponseWait of a delivered request's queue (its timer fired): true if it handled the
 * timer (answered, aborted or re-armed), false if the request is no longer waited on. */
bool queue_response_wait(struct conn *c);
void request_free(struct request *r);
bool queue_busy(void); /* shutdown: anything still queued or delivered? */
/* The new daemon of an upgrade: a queue the old daemon had, with no session yet (its
 * URLs follow). NULL on no memory or a name already taken. */
struct queue *queue_adopt(const struct ps_upgrade_queue *m);
/* ReattachGrace is over: a queue nobody re-attached to is what it would be without the
 * upgrade (removed, or a persistent one answers AppOffline). */
void queue_reattach_over(void);

/* session.c */
void session_accept(void);
int session_deliver(struct session *s, struct request *req);
/* Sends a message with an fd (SHM); the fd stays the caller's. 0 or -1. */
int session_send_fd(struct session *s, const struct ps_msg *m, int fd);
void session_send_conn_closed(uint32_t session_id, uint64_t conn_id);
/* LIMITS: what the library enforces (EntityBody, DrainEntityBody, MinSendRate). */
void session_send_limits(struct session *s);
void session_send_limits_all(void); /* after a reload */
void session_close_all(void);
/* REPLY to the request with that seq; text may be NULL. */
void session_reply(struct session *s, uint32_t seq, int status, uint32_t id, const char *text);
/* Marks the session for closing after this batch: never free it under a caller. */
void session_kill_later(struct session *s, const char *why);

/* listener.c */
/* Binds what a port needs (every listen address, or the wildcards) if not bound yet.
 * 0, or -1 with err naming who holds the port. */
int listener_need(uint16_t port, char *err, size_t errlen);
/* Closes a port's listeners if no prefix needs it any more. */
void listener_release(uint16_t port);
/* The listen list changed: rebind every port in use. */
void listener_resync(void);
void listener_close_all(void);
/* The new daemon of an upgrade: listens on a socket the old one bound (fd is taken,
 * and closed on failure). 0, or -1 with err. */
int listener_adopt(const struct ps_addr *a, int fd, char *err, size_t errlen);
/* The addresses port would be bound on (out has room for CONFIG_LISTEN_MAX + 2). */
unsigned listener_wanted(uint16_t port, struct ps_addr *out);
bool listener_is_bound(const struct ps_addr *a);
/* Sets bit p of the 65536-bit map for every port some prefix needs. */
void listener_port_map(uint8_t ports[65536 / 8]);

/* delegate.c */
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
enum delegate_state delegate_judge(const struct session *s, const struct request *r);
/* Whether the library recorded a complete response on r's delegated connection. */
bool delegate_answered(const struct request *r);
/* The absolute idle limit of a delegated connection (its timer fired). */
void delegate_idle_check(struct conn *c);
/* Requests of q served by libraries without the daemon. */
uint64_t delegate_served(const struct queue *q);
void delegate_close(void);

/* threads.c */
/* Sets up thread 0 (the caller); n threads in all. 0 or -1. */
int threads_init(unsigned n);
/* Starts the front threads. 0, or -1 with errno. */
int threads_start(void);
/* Pushes m onto t's inbox and wakes t if the inbox was empty. */
void threads_post(struct thread *t, struct thread_msg *m);
/* Sends the front threads the current limits (after a reload). */
void threads_limits_changed(void);
/* Shutdown begins: front threads stop reading new requests and finish what they hold. */
void threads_stop(void);
/* Tells the front threads to close everything, waits for them, and takes over
 * connections still on their way to thread 0 (the caller closes them). */
void threads_join(void);
/* Connections the daemon holds, on every thread. */
uint32_t threads_conns(void);
/* The thread count to use when none is asked for: the CPUs we may run on, at most THREADS_MAX. */
unsigned threads_default(void);

/* threads.c, for upgrade.c: tells the front threads that a new daemon took over. */
void threads_hand_over(void);

/* upgrade.c: portshared --upgrade (DESIGN §10). The new daemon: */
/* At start-up, before the loop runs: connects to the running daemon, asks for its
 * state and adopts it (listeners, queues and URLs). Returns the control socket's
 * listening fd, or -1 with err saying why (for the person who typed --upgrade). */
int upgrade_connect(char *err, size_t errlen);
/* Once the loop and threads are ready: tells the old daemon we accept, watches the
 * link for the connections it hands over, starts ReattachGrace. */
void upgrade_start(void);
/* The old daemon: */
/* HELLO with PS_HELLO_UPGRADE: admins only. */
void upgrade_hello(struct session *s, const struct ps_msg *m);
/* Any later message on the upgrade session. */
void upgrade_dispatch(struct session *s, const struct ps_msg *m);
void upgrade_session_closed(struct session *s);
/* Sends a connection (fd and bytes) to the new daemon. 0, or -1 when there is none. */
int upgrade_send_conn(const struct conn *c, const char *bytes, size_t len);
/* REATTACH: s is to finish what it holds here and reconnect (to the new daemon). */
void upgrade_send_reattach(struct session *s);

/* status.c */
/* Appends the status text (json or human) to a malloc'd buffer; NULL on no memory. */
char *status_render(bool json, size_t *len);

#endif
