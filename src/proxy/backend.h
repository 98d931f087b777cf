/* backend.h: the proxy's side of a backend: its address (http://127.0.0.1:PORT or
 * unix:/path), non-blocking connections with deadlines, and a small keep-alive pool
 * owned by one thread (no locks). No HTTP here. */
#ifndef PS_PROXY_BACKEND_H
#define PS_PROXY_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define BACKEND_BUF 65536  /* read-ahead per connection: a whole response head must fit */
#define BACKEND_POOL_MAX 32 /* idle keep-alive connections kept per thread: a batch's */

struct backend_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char name[128]; /* "127.0.0.1:8080" or "unix:/run/app.sock": for messages */
};

/* Where requests go, as one generation of it: portshare-apps gives an app a new set of
 * targets, one a process, when it restarts the app on new ports or sockets
 * (proxy_target_swap). users counts the requests forwarding to it now; the supervisor
 * stops the old processes once it is 0 on each of theirs. */
struct backend_target {
	struct backend_addr addr;
	unsigned gen;   /* unique to it: pooled connections are matched by it */
	unsigned floor; /* the first gen of its set: pooled connections to an earlier one are closed */
	atomic_int users;
	atomic_bool down; /* its process does not accept now (starting, died): not chosen */
};

/* When the request in progress turns long: a wait that reaches `at` calls fn(arg, true)
 * once (at is then 0) and goes on waiting; backend_alarm_check, between the chunks of a
 * transfer, calls fn(arg, false). The proxy gives back what its session holds then
 * (ps_client_yield), and starts another thread only for a request that waits. */
struct backend_alarm {
	int64_t at; /* backend_now_ms() time; 0: none */
	void (*fn)(void *arg, bool waiting);
	void *arg;
};

/* One connection to the backend. buf[off, len) holds bytes read and not parsed yet. */
struct backend_conn {
	int fd;
	unsigned gen; /* the target's generation it was opened to: another one's is never reused */
	bool reused;  /* taken from the pool: a failure before any answer may be a stale one */
	struct backend_alarm *alarm; /* its pool's, which every wait on it watches */
	size_t off, len;
	char buf[BACKEND_BUF];
};

struct backend_pool {
	struct backend_conn *idle[BACKEND_POOL_MAX];
	int n;
	struct backend_alarm alarm; /* of the thread's request in progress */
};

/* Parses "http://IPV4:PORT", "http://[IPV6]:PORT" or "unix:/PATH". False with why set. */
bool backend_addr_parse(const char *spec, struct backend_addr *out, const char **why);

int64_t backend_now_ms(void);

/* A new target for addr (copied), no users yet, not down, the first of its set (floor =
 * gen); NULL when out of memory. Freed with free(). */
struct backend_target *backend_target_new(const struct backend_addr *addr, unsigned gen);

/* An idle pooled connection to t that is still clean (nothing arrived on it since its last
 * response: a backend must not slip a second response in), else a new one connected
 * before deadline_ms; pooled connections to an earlier set of targets are closed, those to
 * t's companions in its set kept. NULL with errno set (ETIMEDOUT for the deadline). */
struct backend_conn *backend_get(struct backend_pool *p, const struct backend_target *t, int64_t deadline_ms);
/* backend_get for n requests at once (a batch): the pooled ones checked with one poll.
 * Returns how many of out[0, n) it filled; fewer when a connect failed (errno). */
int backend_get_n(struct backend_pool *p, const struct backend_target *t, int64_t deadline_ms,
                  struct backend_conn **out, int n);
/* Back to the pool for the next request (closed when the pool is full). */
void backend_put(struct backend_pool *p, struct backend_conn *bc);
/* Closes and frees; the connection is never reused. */
void backend_drop(struct backend_conn *bc);
/* Frees, leaving the fd open: it now belongs to the caller (an upgraded connection). */
int backend_take_fd(struct backend_conn *bc);

/* Waits until fd has `events` (POLLIN/POLLOUT) or deadline_ms passes: 1, 0 (timeout),
 * -1 (errno). Rings alarm (may be NULL) on the way when its time comes. */
int backend_wait(int fd, short events, int64_t deadline_ms, struct backend_alarm *alarm);
/* Rings alarm now: at is cleared, fn(arg, waiting) called. */
void backend_alarm_ring(struct backend_alarm *alarm, bool waiting);
/* Rings alarm now if its time has come (between the waits of a transfer that never
 * waits: a long download or upload keeps the thread as long as a slow backend does). */
void backend_alarm_check(struct backend_alarm *alarm);
/* Sends all of iov before deadline_ms. 0, or -1 with errno (ETIMEDOUT; EAGAIN when
 * stop_on_input and the backend started answering while we waited to send). */
int backend_send(struct backend_conn *bc, struct iovec *iov, int iovcnt, int64_t deadline_ms,
                 bool stop_on_input);
/* Reads more into bc->buf (compacting it first). >0 bytes, 0 at EOF, -1 with errno
 * (ETIMEDOUT at the deadline, ENOBUFS when the buffer is full). */
ssize_t backend_fill(struct backend_conn *bc, int64_t deadline_ms);
/* backend_fill without the wait: -1 with EAGAIN when nothing has come. */
ssize_t backend_fill_now(struct backend_conn *bc);

#endif
