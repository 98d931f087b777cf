/* client.c: the session with portshared: connect and HELLO, messages and their fd
 * rules, replies matched by seq, and a new session (queues re-made) after the daemon
 * restarts. */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "deadline.h"
#include "delegate.h"
#include "request.h"
#include "conn_io.h"
#include "sock.h"
#include "transport.h"

/* epoll data of the session socket, the timer and the kick; delegated connections
 * carry their struct delegation pointer, never one of these. */
enum { EPOLL_SESSION = 1, EPOLL_TIMER = 2, EPOLL_KICK = 3 };
/* Events taken per wait: delegated connections share the set with the session. */
#define CLIENT_EVENTS 64
/* Room for more fds than a message may carry, so that extra fds are seen (and closed)
 * rather than mistaken for an fd limit. */
/* Messages handled per wake-up, so one call does not spin on a busy session. */
#define CLIENT_READ_BATCH 64

int client_send_return(ps_client *c, const struct held_conn *cn, uint64_t conn_id, uint64_t req_id, bool eof,
                       const char *tail, size_t tail_len)
{
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	if (conn_io_is_tls(cn)) {
		/* the records go on in the daemon: their state, the ciphertext not opened, and
		 * the plaintext opened and not read, after the tail (which was opened first) */
		const uint8_t *plain;
		size_t plain_len;
		conn_io_tls_return((struct held_conn *)cn, &m, &plain, &plain_len);
		char joined[PS_RETURN_TAIL_MAX];
		if (tail_len + plain_len > sizeof(joined))
			return PS_ELIMIT;
		memcpy(joined, tail, tail_len);
		memcpy(joined + tail_len, plain, plain_len);
		m.hdr.type = PS_MSG_RETURN_TLS;
		m.u.ret_tls.conn_id = conn_id;
		m.u.ret_tls.req_id = req_id;
		m.u.ret_tls.flags = eof ? PS_RETURN_EOF : 0;
		m.u.ret_tls.tail_len = (uint32_t)(tail_len + plain_len);
		m.u.ret_tls.written = cn->written;
		m.u.ret_tls.consumed = cn->consumed;
		m.tail = joined;
		int rc = client_send(c, &m);
		explicit_bzero(&m.tls, sizeof(m.tls));
		return rc;
	}
	m.hdr.type = PS_MSG_RETURN;
	m.u.ret.conn_id = conn_id;
	m.u.ret.req_id = req_id;
	m.u.ret.flags = eof ? PS_RETURN_EOF : 0;
	m.u.ret.tail_len = (uint32_t)tail_len;
	m.u.ret.written = cn->written;
	m.u.ret.consumed = cn->consumed;
	m.tail = tail;
	return client_send(c, &m);
}

/* A message that names one connection: NOFD and REQUEUE, or END with its flags. */
static int client_send_conn(ps_client *c, uint16_t type, uint64_t conn_id, uint64_t req_id, uint32_t flags)
{
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = type;
	if (type == PS_MSG_END)
		m.u.end = (struct ps_end){.conn_id = conn_id, .req_id = req_id, .flags = flags};
	else
		m.u.conn = (struct ps_conn_ref){.conn_id = conn_id, .req_id = req_id};
	return client_send(c, &m);
}

int client_send_untaken(ps_client *c, uint16_t type, uint64_t conn_id, uint64_t req_id)
{
	return client_send_conn(c, type, conn_id, req_id, 0);
}

int client_send_end(ps_client *c, uint64_t conn_id, uint64_t req_id, uint32_t flags)
{
	return client_send_conn(c, PS_MSG_END, conn_id, req_id, flags);
}

void client_message(ps_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
}

/* Receives one message from session socket s. Returns 1 with *m decoded (*fd the
 * attached fd or -1; *fd_lost when a DELIVER's or SHM's fd was dropped by the kernel
 * because this process is at its fd limit), 0 when nothing is waiting,
 * PS_EDISCONNECTED when the session ended, PS_EPROTO when the message breaks the rules
 * (its fds are closed). */
static int client_recv(ps_client *c, int s, struct ps_msg *m, int *fd, bool *fd_lost)
{
	const char *why;
	switch (transport_recv(s, c->rbuf, MSG_DONTWAIT, true, m, fd, fd_lost, &why)) {
	case TRANSPORT_MSG:
		return 1;
	case TRANSPORT_NONE:
		return 0;
	case TRANSPORT_BAD:
		return PS_EPROTO;
	default:
		return PS_EDISCONNECTED;
	}
}

void client_schedule(ps_client *c)
{
	int64_t due = -1;
	if (!client_connected(c))
		due = c->retry_at;
	else
		for (ps_queue *q = c->queues; q; q = q->next)
			if (!q->deleted && !queue_attached(q))
				due = deadline_min(due, q->retry_at);
	/* idle_check moves only when the timer has looked at the idle list, not with
	 * every request, so a busy connection costs no timerfd_settime */
	due = deadline_min(due, c->idle_check);
	if (due == c->timer_due)
		return; /* ps_receive ticks on every wait: no syscall when nothing changed */
	c->timer_due = due;
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (due >= 0) {
		if (due < 1)
			due = 1; /* an absolute time of 0 would disarm the timer */
		its.it_value.tv_sec = due / 1000;
		its.it_value.tv_nsec = (due % 1000) * 1000000;
	}
	timerfd_settime(c->timer, TFD_TIMER_ABSTIME, &its, NULL);
}

/* The session is over (daemon gone, or it broke the protocol): forget the socket and
 * plan the first reconnect attempt. */
static void client_lost(ps_client *c)
{
	if (!client_connected(c))
		return;
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->sock, NULL);
	close(c->sock);
	c->sock = -1;
	c->reattach = false; /* whatever it was asked, this session is over */
	c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	c->retry_at = deadline_now() + c->backoff_ms;
	for (ps_queue *q = c->queues; q; q = q->next)
		q->outstanding = 0;
	delegate_session_lost(c);
	client_schedule(c);
}

static void client_handle(ps_client *c, const struct ps_msg *m, int fd, bool fd_lost)
{
	switch (m->hdr.type) {
	case PS_MSG_REPLY:
		if (m->hdr.seq != c->wait_seq || c->replied)
			break; /* the answer to a call that gave up waiting */
		c->replied = true;
		c->reply_status = m->u.reply.status;
		c->reply_id = m->u.reply.id;
		if (c->reply_status < 0 && m->text_len > 0)
			client_message(c, "%.*s", (int)m->text_len, m->text);
		break;
	case PS_MSG_DELIVER:
		request_deliver(c, m, fd, fd_lost);
		break;
	case PS_MSG_DEMAND:
		demand_received(c, m);
		break;
	case PS_MSG_CONN_CLOSED: {
		struct held_conn *cn = conns_find(&c->conns, m->u.conn.conn_id);
		if (cn && cn->delegation)
			delegate_conn_closed(cn->delegation); /* out of the epoll set before the fd closes */
		if (cn)
			conns_del(&c->conns, cn);
		break;
	}
	case PS_MSG_SHM:
		delegate_shm(c, m, fd);
		break;
	case PS_MSG_LIMITS:
		c->limits = m->u.limits;
		sock_set_min_send_rate(m->u.limits.min_send_rate);
		break;
	case PS_MSG_REATTACH:
		/* the work is done by client_tick, outside the message loop */
		c->reattach = true;
		break;
	default: /* a message only a client sends: the daemon is confused, start again */
		client_lost(c);
	}
}

void client_read(ps_client *c)
{
	for (int i = 0; i < CLIENT_READ_BATCH && client_connected(c); i++) {
		struct ps_msg m;
		int fd;
		bool fd_lost;
		int rc = client_recv(c, c->sock, &m, &fd, &fd_lost);
		if (rc == 0)
			return;
		if (rc < 0) {
			client_lost(c);
			return;
		}
		client_handle(c, &m, fd, fd_lost);
	}
}

int client_send(ps_client *c, struct ps_msg *m)
{
	if (!client_connected(c))
		return PS_EDISCONNECTED;
	m->hdr.seq = ++c->seq;
	ssize_t len = protocol_encode(m, c->wbuf, PS_MSG_MAX);
	if (len < 0)
		return PS_EPROTO;
	/* The session socket is blocking for sends: the daemon always reads its sessions,
	 * and a message must never be dropped for a full socket. */
	for (;;) {
		ssize_t n = transport_send(c->sock, c->wbuf, (size_t)len, -1, 0);
		if (n == len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		client_lost(c);
		return PS_EDISCONNECTED;
	}
}

void client_kick(ps_client *c)
{
	if (c->kicked || c->kick < 0)
		return;
	uint64_t one = 1;
	if (write(c->kick, &one, sizeof(one)) == sizeof(one))
		c->kicked = true;
}

int client_wait(ps_client *c, int64_t deadline)
{
	/* No event of an earlier wait can name a dropped connection any more. */
	delegate_reap(c);
	struct epoll_event ev[CLIENT_EVENTS];
	int n = epoll_wait(c->epfd, ev, CLIENT_EVENTS, deadline_left(deadline));
	if (n < 0)
		return PS_ESYSTEM;
	if (n == 0)
		return PS_ETIMEDOUT;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == EPOLL_TIMER) {
			uint64_t expirations;
			if (read(c->timer, &expirations, sizeof(expirations)) == sizeof(expirations))
				c->timer_due = -1; /* it fired: a one-shot timer is disarmed now */
			delegate_expire(c);
			client_schedule(c);
		} else if (ev[i].data.u64 == EPOLL_SESSION) {
			client_read(c);
		} else if (ev[i].data.u64 == EPOLL_KICK) {
			/* announced: whoever waits now returns, and ps_receive re-kicks on its way
			 * out while another queue still holds requests */
			uint64_t count;
			if (read(c->kick, &count, sizeof(count)) == sizeof(count) || errno == EAGAIN)
				c->kicked = false;
		} else {
			/* a connection dropped earlier in this batch is only marked dead */
			delegate_event(ev[i].data.ptr, ev[i].events);
		}
	}
	return 0;
}

int client_call(ps_client *c, struct ps_msg *m, uint32_t *id, int64_t deadline)
{
	int rc = client_send(c, m);
	if (rc < 0)
		return rc;
	c->wait_seq = m->hdr.seq;
	c->replied = false;
	while (!c->replied) {
		if (!client_connected(c))
			return PS_EDISCONNECTED;
		rc = client_wait(c, deadline);
		if (rc == PS_ETIMEDOUT || (rc == PS_ESYSTEM && errno != EINTR)) {
			c->wait_seq = 0;
			return rc;
		}
	}
	c->wait_seq = 0;
	if (id)
		*id = c->reply_id;
	return c->reply_status;
}

/* Connects a new session and says HELLO on it; on success it becomes the client's
 * session (a new generation). Returns 0 or a code (errno kept for PS_EDISCONNECTED). */
static int client_session_open(ps_client *c)
{
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return PS_ESYSTEM;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1); /* length checked in ps_connect */
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(s);
		errno = e;
		return PS_EDISCONNECTED;
	}

	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_HELLO;
	m.hdr.flags = (c->delegation ? PS_HELLO_DELEGATE : 0) | PS_HELLO_TLS;
	m.hdr.seq = ++c->seq;
	m.u.hello.version = PS_PROTO_VERSION;
	m.u.hello.pid = (uint32_t)getpid();
	snprintf(m.u.hello.program, sizeof(m.u.hello.program), "%s", program_invocation_short_name);
	uint32_t seq = m.hdr.seq;
	ssize_t len = protocol_encode(&m, c->wbuf, PS_MSG_MAX);
	int rc = PS_EPROTO;
	if (len < 0)
		goto fail;
	rc = PS_EDISCONNECTED;
	if (transport_send(s, c->wbuf, (size_t)len, -1, 0) != len)
		goto fail;

	/* The daemon answers HELLO before anything else. */
	int64_t deadline = deadline_after(CLIENT_CALL_MS);
	for (;;) {
		int fd;
		bool fd_lost;
		rc = client_recv(c, s, &m, &fd, &fd_lost);
		if (rc == 0) {
			rc = sock_wait(s, POLLIN, deadline);
			if (rc < 0)
				goto fail;
			continue;
		}
		if (rc < 0)
			goto fail;
		if (fd >= 0)
			close(fd);
		rc = PS_EPROTO;
		if (m.hdr.type != PS_MSG_REPLY || m.hdr.seq != seq)
			goto fail;
		break;
	}
	rc = m.u.reply.status;
	if (rc < 0) {
		if (m.text_len > 0)
			client_message(c, "%.*s", (int)m.text_len, m.text);
		goto fail;
	}

	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EPOLL_SESSION};
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) < 0) {
		rc = PS_ESYSTEM;
		goto fail;
	}
	c->sock = s;
	c->gen++;
	c->session_id = m.u.reply.id;
	c->daemon_demand = protocol_has_feature(m.text, m.text_len, PS_FEATURE_DEMAND);
	c->daemon_yield = protocol_has_feature(m.text, m.text_len, PS_FEATURE_YIELD);
	c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	/* Cached fds belong to the old daemon's conn ids; requests still using one keep
	 * their reference and close it when they end. */
	conns_clear(&c->conns);
	int64_t now = deadline_now();
	for (ps_queue *q = c->queues; q; q = q->next) {
		q->outstanding = 0;
		q->retry_at = now;
		q->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	}
	return 0;
fail:
	close(s);
	return rc;
}

/* Whether this session still holds anything of its daemon's: a connection delegated
 * to it, or a request whose response is not finished (queued, or the application's). */
static bool client_holds(const ps_client *c)
{
	if (c->delegations)
		return true;
	for (const ps_request *r = c->requests; r; r = r->next)
		if (r->conn && r->gen == c->gen)
			return true;
	return false;
}

/* After REATTACH (DESIGN §10): the daemon is being replaced. Idle delegated
 * connections go back at once, a busy one after its response (delegate_keep); requests
 * already delivered, or read from a delegated connection, are finished first. Then
 * the session ends, and the reconnect reaches the new daemon, which holds our queues'
 * requests until we re-create them. */
static void client_reattach(ps_client *c)
{
	if (!c->reattach || !client_connected(c))
		return;
	delegate_return_idle(c, false);
	client_read(c); /* what the daemon sent last (CONN_CLOSED) is not left unread */
	if (!client_connected(c) || client_holds(c))
		return;
	c->reattach = false;
	client_lost(c);
	c->retry_at = deadline_now(); /* no backoff: the new daemon is there already */
}

void client_tick(ps_client *c)
{
	client_reattach(c);
	if (!client_connected(c) && deadline_now() >= c->retry_at) {
		if (client_session_open(c) < 0) {
			c->backoff_ms = c->backoff_ms * 2 > CLIENT_BACKOFF_MAX_MS ? CLIENT_BACKOFF_MAX_MS
			                                                          : c->backoff_ms * 2;
			c->retry_at = deadline_now() + c->backoff_ms;
		}
	}
	for (ps_queue *q = c->queues; q && client_connected(c); q = q->next)
		if (!q->deleted && !queue_attached(q) && deadline_now() >= q->retry_at)
			queue_attach(q, true, deadline_after(CLIENT_CALL_MS));
	delegate_expire(c);
	client_schedule(c);
}

int client_ready(ps_client *c, ps_queue *q, int64_t deadline)
{
	for (;;) {
		client_tick(c);
		if (client_connected(c) && (!q || queue_attached(q)))
			return 0;
		if (deadline_passed(deadline)) {
			if (!client_connected(c) || !q->attach_error)
				return PS_EDISCONNECTED;
			return q->attach_error;
		}
		int rc = client_wait(c, deadline);
		if (rc == PS_ESYSTEM && errno != EINTR)
			return rc;
	}
}

/* Debian's soft default of 1024 fds is far too few for a worker caching keep-alive
 * connections (DESIGN §2a). */
static void client_raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* A client that goes away must not kill the worker writing to it; an application that
 * chose its own SIGPIPE handling keeps it. */
static void client_ignore_sigpipe(void)
{
	struct sigaction old;
	if (sigaction(SIGPIPE, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
}

int ps_connect(const char *socket_path, ps_client **out)
{
	if (!out)
		return PS_EINVAL;
	*out = NULL;
	const char *path = socket_path;
	if (!path || !*path)
		path = getenv(PS_SOCKET_ENV);
	if (!path || !*path)
		path = PS_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return PS_EINVAL;
	client_ignore_sigpipe();
	client_raise_fd_limit();

	ps_client *c = calloc(1, sizeof(*c));
	if (!c)
		return PS_ENOMEM;
	c->sock = -1;
	c->timer = -1;
	c->kick = -1;
	c->limits = (struct ps_limits){PS_ENTITY_BODY_MS, PS_DRAIN_ENTITY_BODY_MS, PS_MIN_SEND_RATE, 0};
	c->timer_due = -1;
	c->idle_check = -1;
	c->delegation = delegate_enabled();
	const char *prefetch = getenv(PS_PREFETCH_ENV);
	c->prefetch = !(prefetch && strcmp(prefetch, "0") == 0);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->path = strdup(path);
	c->rbuf = malloc(PS_MSG_MAX);
	c->wbuf = malloc(PS_MSG_MAX);
	int rc = PS_ENOMEM;
	if (!c->path || !c->rbuf || !c->wbuf)
		goto fail;
	rc = PS_ESYSTEM;
	if (c->epfd < 0)
		goto fail;
	c->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EPOLL_TIMER};
	if (c->timer < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->timer, &ev) < 0)
		goto fail;
	c->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EPOLL_KICK};
	if (c->kick < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->kick, &ev) < 0)
		goto fail;
	rc = client_session_open(c);
	if (rc < 0)
		goto fail;
	*out = c;
	return 0;
fail:;
	int e = errno;
	ps_close(c);
	errno = e;
	return rc;
}

void ps_close(ps_client *c)
{
	if (!c)
		return;
	/* A window of receives (ps_queue_set_receive_window) may have brought several
	 * requests nobody took: they go back as a yield gives them (a session that just ends
	 * leaves the daemon to answer those it cannot requeue 503 WorkerDied). */
	for (ps_queue *q = c->queues; q; q = q->next) {
		if (q->window > 1 && client_connected(c)) {
			ps_client_yield(c);
			break;
		}
	}
	/* A clean handover first: what this session read itself and nobody answers yet
	 * goes back to the daemon with its bytes. */
	delegate_return_idle(c, true);
	while (c->requests)
		response_orphan(c->requests);
	delegate_free_all(c);
	while (c->queues) {
		ps_queue *q = c->queues;
		c->queues = q->next;
		queue_free(q);
	}
	conns_free(&c->conns);
	if (c->sock >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->sock, NULL);
		close(c->sock);
	}
	if (c->timer >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->timer, NULL);
		close(c->timer);
	}
	if (c->kick >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->kick, NULL);
		close(c->kick);
	}
	if (c->epfd >= 0)
		close(c->epfd);
	free(c->rbuf);
	free(c->wbuf);
	free(c->path);
	free(c);
}

const char *ps_client_message(const ps_client *c)
{
	return c ? c->message : "";
}
