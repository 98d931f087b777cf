/* session.c: control sessions (libportshare and portsharectl on the control socket):
 * reading and answering their messages, passing connection fds, and cleaning up
 * after a session that ends or dies (DESIGN §2a). */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accesslog.h"
#include "answer.h"
#include "conn.h"
#include "daemon-t.h"
#include "acl.h"
#include "admin.h"
#include "delegate.h"
#include "demand.h"
#include "handoff.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "portshare.h"
#include "queue.h"
#include "session-t.h"
#include "status.h"
#include "takeover.h"
#include "tls.h"
#include "tcp.h"
#include "threads-t.h"
#include "transport.h"

/* A session that never reads is cut off when this much memory waits for it (messages and
 * their bookkeeping; docs/PROTOCOL.md). No count of messages: a worker holding many
 * connections may be sent a CONN_CLOSED for each of them at once. */
#define SESSION_OUT_MAX (16u << 20)
#define SESSION_READ_BATCH 64 /* messages handled per wake-up, for fairness */
/* Queues are looked up by walking lists: a session creating queues without end would
 * make every lookup slower for everyone. Far more than any application needs. */
#define SESSION_QUEUES_MAX 1024 /* queues one session may hold (created or opened) */
#define DAEMON_QUEUES_MAX 65536 /* queues in the whole daemon */

static void session_on_io(struct loop_io *io, uint32_t events);
static void session_close(struct session *s, const char *why);

static void user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, len, "%s", pw.pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

static void session_accept_resume(struct loop_timer *t)
{
	if (dm->ctl.fd >= 0)
		loop_io_mod(dm->loop, &dm->ctl, EPOLLIN);
}

/* Who the peer is: its uid, primary gid (SO_PEERCRED) and supplementary groups
 * (SO_PEERGROUPS; SO_PEERCRED gives only the primary one). */
static void session_ident(struct session *s, int fd, gid_t primary)
{
	struct ident *id = &s->ident;
	memset(id, 0, sizeof(*id));
	id->uid = s->uid;
	snprintf(id->user, sizeof(id->user), "%s", s->user);
	id->gids[id->ngids++] = primary;
	gid_t groups[ACL_GROUPS_MAX - 1];
	socklen_t len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return; /* more than we have room for (ERANGE): the primary group only */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		id->gids[id->ngids++] = groups[i];
}

void session_accept(void)
{
	for (int i = 0; i < 16; i++) {
		int fd = accept4(dm->ctl.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			/* level-triggered: pause instead of spinning until fds free up; say so
			 * once a second at most */
			static uint64_t reported_ms;
			uint64_t now = loop_now_ms();
			if (!reported_ms || now - reported_ms >= 1000) {
				log_warning("out of file descriptors: new sessions wait (%d ms at a time)",
				            100);
				reported_ms = now;
			}
			dm->ctl_pause.fn = session_accept_resume;
			loop_io_mod(dm->loop, &dm->ctl, 0);
			loop_timer_set(dm->loop, &dm->ctl_pause, 100);
			return;
		}
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct session *s = calloc(1, sizeof(*s));
		if (!s || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
			free(s);
			close(fd);
			continue;
		}
		s->id = ++dm->next_session_id;
		s->io.fd = fd;
		s->io.fn = session_on_io;
		s->pid = cred.pid;
		s->uid = cred.uid;
		s->gid = cred.gid;
		user_name(cred.uid, s->user, sizeof(s->user));
		session_ident(s, fd, cred.gid);
		s->admin = acl_is_admin(&s->ident);
		list_init(&s->attached);
		list_init(&s->requests);
		list_add_tail(&dm->sessions, &s->link);
		if (loop_io_add(dm->loop, &s->io, EPOLLIN) < 0)
			session_close(s, "epoll");
	}
}

static struct session *session_find(uint32_t id)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->sessions)
	{
		struct session *s = container_of(p, struct session, link);
		if (s->id == id)
			return s;
	}
	return NULL;
}

static int session_queue_out(struct session *s, const void *buf, size_t len, int fd)
{
	if (s->out_bytes + sizeof(struct outmsg) + len > SESSION_OUT_MAX) {
		session_kill_later(s, "does not read its messages");
		return -1;
	}
	struct outmsg *o = malloc(sizeof(*o) + len);
	/* keep our own copy: the connection may close before this message leaves */
	int copy = o && fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (!o || (fd >= 0 && copy < 0)) {
		/* a message may not be dropped (a lost DELIVER strands the worker's receive,
		 * a lost REPLY its call): the session ends, the library starts a new one */
		char why[96];
		snprintf(why, sizeof(why), "cannot queue a message for it: %s", strerror(errno));
		free(o);
		session_kill_later(s, why);
		return -1;
	}
	o->fd = copy;
	o->next = NULL;
	o->len = (uint32_t)len;
	memcpy(o->data, buf, len);
	if (s->out_tail)
		s->out_tail->next = o;
	else
		s->out_head = o;
	s->out_tail = o;
	s->out_bytes += sizeof(*o) + len;
	loop_io_mod(dm->loop, &s->io, EPOLLIN | EPOLLOUT);
	return 0;
}

/* The process closed its end (EPIPE): nothing more can be sent, but what it sent
 * before closing (its last RETURNs and ENDs) is still to be read, then its EOF ends the
 * session as a process that is gone, not as one that may still write (DESIGN §2a). */
static void session_drop_output(struct session *s)
{
	while (s->out_head) {
		struct outmsg *o = s->out_head;
		s->out_head = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	s->out_tail = NULL;
	s->out_bytes = 0;
}

static void session_hung_up(struct session *s)
{
	s->hung_up = true;
	session_drop_output(s);
	loop_io_mod(dm->loop, &s->io, EPOLLIN);
}

/* A failed send: the peer gone, or a session that must end. */
static void session_send_failed(struct session *s)
{
	if (errno == EPIPE || errno == ECONNRESET)
		session_hung_up(s);
	else
		session_kill_later(s, "send failed");
}

static int session_send(struct session *s, const struct ps_msg *m, int fd)
{
	if (s->dead || s->hung_up)
		return -1;
	ssize_t len = protocol_encode(m, dm->msg, sizeof(dm->msg));
	if (len < 0)
		return -1;
	if (!s->out_head) {
		ssize_t n = transport_send(s->io.fd, dm->msg, (size_t)len, fd, MSG_DONTWAIT);
		if (n == len)
			return 0;
		if (n >= 0 || (errno != EAGAIN && errno != ENOBUFS)) {
			if (n >= 0)
				errno = EMSGSIZE; /* a short send of a SEQPACKET message */
			session_send_failed(s);
			return -1;
		}
	}
	/* a full socket is no reason to drop a message: queue it and wait for EPOLLOUT */
	return session_queue_out(s, dm->msg, (size_t)len, fd);
}

static void session_flush(struct session *s)
{
	while (s->out_head) {
		struct outmsg *o = s->out_head;
		ssize_t n = transport_send(s->io.fd, o->data, o->len, o->fd, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == ENOBUFS))
			return;
		if (n != (ssize_t)o->len) {
			if (n >= 0)
				errno = EMSGSIZE;
			session_send_failed(s);
			return;
		}
		s->out_head = o->next;
		if (!s->out_head)
			s->out_tail = NULL;
		s->out_bytes -= sizeof(*o) + o->len;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	loop_io_mod(dm->loop, &s->io, EPOLLIN);
}

int session_send_fd(struct session *s, const struct ps_msg *m, int fd)
{
	return session_send(s, m, fd);
}

void session_reply(struct session *s, uint32_t seq, int status, uint32_t id, const char *text)
{
	struct ps_msg m = {.hdr = {.type = PS_MSG_REPLY, .seq = seq}};
	m.u.reply.status = status;
	m.u.reply.id = id;
	m.text = text ? text : "";
	m.text_len = strlen(m.text);
	if (m.text_len > PS_TEXT_MAX)
		m.text_len = PS_TEXT_MAX;
	session_send(s, &m, -1);
}

void session_send_limits(struct session *s)
{
	const struct limits *l = &dm->cfg.limits;
	struct ps_msg m = {.hdr = {.type = PS_MSG_LIMITS}};
	/* a zero in the config means as short as can be, not "off" */
	m.u.limits.entity_body_ms = l->entity_body_ms ? l->entity_body_ms : 1;
	m.u.limits.drain_entity_body_ms = l->drain_entity_body_ms ? l->drain_entity_body_ms : 1;
	m.u.limits.min_send_rate = l->min_send_rate ? l->min_send_rate : 1;
	session_send(s, &m, -1);
}

void session_send_limits_all(void)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->sessions)
	{
		struct session *s = container_of(p, struct session, link);
		if (s->hello && !s->dead && !s->takeover)
			session_send_limits(s);
	}
}

void session_send_conn_closed(uint32_t session_id, uint64_t conn_id)
{
	struct session *s = session_find(session_id);
	if (!s)
		return;
	struct ps_msg m = {.hdr = {.type = PS_MSG_CONN_CLOSED}};
	m.u.conn.conn_id = conn_id;
	session_send(s, &m, -1);
}

void session_send_demand(struct session *s, uint32_t seq, uint32_t queue_id, int status)
{
	struct ps_msg m = {.hdr = {.type = PS_MSG_DEMAND, .seq = seq}};
	m.u.demand.queue_id = queue_id;
	m.u.demand.status = status;
	session_send(s, &m, -1);
}

static struct request *session_request(struct session *s, uint64_t conn_id, uint64_t req_id)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &s->requests)
	{
		struct request *r = container_of(p, struct request, link);
		if (r->conn->id == conn_id && r->id == req_id)
			return r;
	}
	return NULL;
}

/* Sends text as STATUS_DATA pieces answering seq (flag MORE on all but the last). */
static void session_send_text(struct session *s, uint32_t seq, const char *text, size_t len)
{
	size_t piece = PS_MSG_MAX - 256, off = 0;
	do {
		size_t n = len - off < piece ? len - off : piece;
		struct ps_msg m = {.hdr = {.type = PS_MSG_STATUS_DATA, .seq = seq}};
		m.hdr.flags = off + n < len ? PS_STATUS_MORE : 0;
		m.text = text ? text + off : "";
		m.text_len = text ? n : 0;
		if (session_send(s, &m, -1) < 0)
			break;
		off += n;
	} while (off < len);
}

static void session_status(struct session *s, const struct ps_msg *req)
{
	size_t len = 0;
	char *text = req->hdr.flags & PS_STATUS_METRICS
	                 ? metrics_render(&len)
	                 : status_render(req->hdr.flags & PS_STATUS_JSON, &len);
	session_send_text(s, req->hdr.seq, text, text ? len : 0);
	free(text);
}

/* A portsharectl command: its output, then REPLY with its status. */
static void session_command(struct session *s, const struct ps_msg *req)
{
	char *out = NULL, err[PS_TEXT_MAX];
	size_t len = 0;
	err[0] = '\0';
	int rc = admin_command(s, req, &out, &len, err, sizeof(err));
	if (rc == 0 && len)
		session_send_text(s, req->hdr.seq, out, len);
	free(out);
	session_reply(s, req->hdr.seq, rc, 0, rc ? err : NULL);
}

static bool list_longer_than(const struct list *l, size_t n)
{
	const struct list *p = l->next;
	for (size_t i = 0; i < n; i++, p = p->next)
		if (p == l)
			return false;
	return p != l;
}

/* QUEUE_CREATE/QUEUE_OPEN within the limits: 0, or PS_ELIMIT with err set. */
static int session_queue_limit(const struct session *s, bool create, char *err, size_t errlen)
{
	if (list_longer_than(&s->attached, SESSION_QUEUES_MAX - 1)) {
		snprintf(err, errlen, "this session holds %d queues, the most one session may",
		         SESSION_QUEUES_MAX);
		return PS_ELIMIT;
	}
	if (create && list_longer_than(&dm->queues, DAEMON_QUEUES_MAX - 1)) {
		snprintf(err, errlen, "portshared holds %d queues, the most it allows", DAEMON_QUEUES_MAX);
		return PS_ELIMIT;
	}
	return 0;
}

/* A worker's session gets its page when it first holds a queue (portsharectl's never do):
 * delegation's slots, and the counters and access-log ring that serve libraries that do
 * not delegate too. No HELLO flag asks for it: a daemon refuses flags it does not know, so
 * a new library would not reach an older daemon. A library that does not know the page
 * closes the fd, or (another layout) leaves it unused; the daemon then counts for it as
 * before. */
static void session_page(struct session *s)
{
	if (s->page_offered)
		return;
	s->page_offered = true;
	if (delegate_session_start(s) < 0)
		log_info("session %u (pid %d): no shared page (%s); requests go through the daemon", s->id,
		         (int)s->pid, strerror(errno));
	accesslog_session_start(s);
}

static void session_handle(struct session *s, const struct ps_msg *m)
{
	char err[PS_TEXT_MAX];
	struct queue *q = NULL;
	struct attach *a;
	struct request *r;
	int rc;
	err[0] = 0;
	if (!s->hello && m->hdr.type != PS_MSG_HELLO) {
		session_kill_later(s, "no HELLO first");
		return;
	}
	if (s->takeover) {
		takeover_handle(s, m);
		return;
	}
	switch (m->hdr.type) {
	case PS_MSG_HELLO:
		if (s->hello) {
			/* one session, one HELLO: a second would map a second shared page */
			session_kill_later(s, "second HELLO");
			return;
		}
		if (m->u.hello.version != PS_PROTO_VERSION) {
			snprintf(err, sizeof(err),
			         "protocol version %u is not supported (this portshared speaks %u)",
			         m->u.hello.version, PS_PROTO_VERSION);
			session_reply(s, m->hdr.seq, PS_EVERSION, 0, err);
			/* nothing else it says can be understood: the reply is its last message */
			session_kill_later(s, err);
			return;
		}
		snprintf(s->program, sizeof(s->program), "%s", m->u.hello.program);
		for (char *p = s->program; *p; p++) /* it goes into logs and status lines */
			if (*p < 0x21 || *p > 0x7e)
				*p = '?';
		if (m->hdr.flags & PS_HELLO_TAKEOVER) {
			takeover_hello(s, m);
			return;
		}
		s->hello = true;
		s->tls = m->hdr.flags & PS_HELLO_TLS;
		session_reply(s, m->hdr.seq, 0, s->id, PS_FEATURES);
		session_send_limits(s);
		s->delegating = m->hdr.flags & PS_HELLO_DELEGATE;
		/* accepted just before a new daemon took the control socket over */
		if (this_thread->handing_over)
			takeover_send_reattach(s);
		return;
	case PS_MSG_QUEUE_CREATE:
		rc = session_queue_limit(s, true, err, sizeof(err));
		if (rc == 0)
			rc = queue_create(s, &m->u.create, &q, err, sizeof(err));
		if (rc == 0)
			session_page(s);
		session_reply(s, m->hdr.seq, rc, rc ? 0 : q->id, err);
		return;
	case PS_MSG_QUEUE_OPEN:
		/* opening a queue it already holds adds nothing */
		q = queue_find(m->u.queue.name);
		rc = q && queue_attach_find(s, q->id) ? 0 : session_queue_limit(s, false, err, sizeof(err));
		if (rc == 0)
			rc = queue_open(s, m->u.queue.name, &q, err, sizeof(err));
		if (rc == 0)
			session_page(s);
		session_reply(s, m->hdr.seq, rc, rc ? 0 : q->id, err);
		return;
	case PS_MSG_QUEUE_DELETE:
	case PS_MSG_QUEUE_DRAIN:
	case PS_MSG_URL_ADD:
	case PS_MSG_URL_DEL: {
		uint32_t qid = m->hdr.type == PS_MSG_URL_ADD || m->hdr.type == PS_MSG_URL_DEL
		                   ? m->u.url.queue_id
		                   : m->u.queue.queue_id;
		a = queue_attach_find(s, qid);
		if (!a) {
			session_reply(s, m->hdr.seq, PS_ENOTFOUND, 0, "this session has no such queue");
			return;
		}
		if (m->hdr.type == PS_MSG_URL_ADD) {
			rc = queue_url_add(a->q, &s->ident, m->text, m->text_len, false, err, sizeof(err));
			if (rc) { /* status shows the last refusal: a library's replay has no one to tell */
				snprintf(a->q->url_refused, sizeof(a->q->url_refused), "%s", err);
				log_info("queue %s: URL refused for pid %d (user %s): %s", a->q->name,
				         (int)s->pid, s->user, err);
			}
		} else if (m->hdr.type == PS_MSG_URL_DEL)
			rc = queue_url_del(a->q, m->text, m->text_len, err, sizeof(err));
		else if (m->hdr.type == PS_MSG_QUEUE_DRAIN) {
			queue_drain(a);
			rc = 0;
		} else if (!s->admin) {
			snprintf(err, sizeof(err), "deleting a queue is for admins");
			rc = PS_EDENIED;
		} else {
			accesslog_flush_all(); /* lines written before the queue's name goes */
			rc = queue_delete(a->q);
		}
		session_reply(s, m->hdr.seq, rc, qid, err);
		return;
	}
	case PS_MSG_DEMAND_WAIT:
		a = queue_attach_find(s, m->u.demand.queue_id);
		if (!a) {
			session_reply(s, m->hdr.seq, PS_ENOTFOUND, 0, "this session has no such queue");
			return;
		}
		demand_wait(a, m->hdr.seq);
		session_reply(s, m->hdr.seq, 0, a->q->id, NULL);
		demand_check(a->q); /* a demand already there is answered at once */
		return;
	case PS_MSG_RECEIVE:
		a = queue_attach_find(s, m->u.receive.queue_id);
		if (a) /* else stale: the queue was deleted meanwhile */
			queue_receive(a, m->u.receive.count);
		return;
	case PS_MSG_NOFD:
		r = session_request(s, m->u.conn.conn_id, m->u.conn.req_id);
		if (!r)
			return;
		/* the process is at its fd limit: back-pressure, the request goes back,
		 * unless the worker did touch the connection (then it cannot be re-sent) */
		handoff_cache_del(r->conn, s->id);
		list_del(&r->link);
		r->owner = NULL;
		uint64_t written, consumed;
		tcp_counters(r->conn->io.fd, &written, &consumed);
		if (written != r->written0 || consumed != r->consumed0) {
			log_error_answer(r->conn, 0, "BadNoFd: the worker used the connection");
			conn_abort(r->conn);
			return;
		}
		log_warning("session %u (pid %d) is out of file descriptors; request queued again", s->id,
		            (int)s->pid);
		queue_requeue(r, true);
		return;
	case PS_MSG_RETURN:
	case PS_MSG_RETURN_TLS: {
		/* one path for both: RETURN_TLS is a RETURN with the TLS part */
		bool tls = m->hdr.type == PS_MSG_RETURN_TLS;
		struct ps_return ret = m->u.ret;
		if (tls)
			ret = (struct ps_return){m->u.ret_tls.conn_id, m->u.ret_tls.req_id,
			                         m->u.ret_tls.written, m->u.ret_tls.consumed,
			                         m->u.ret_tls.flags,   m->u.ret_tls.tail_len};
		metrics_return();
		r = session_request(s, ret.conn_id, ret.req_id);
		if (!r)
			return; /* the daemon ended that connection meanwhile (timeout, shutdown) */
		delegate_count_served(r, s);
		/* the records went on in the worker: without its state the daemon cannot go on */
		if (!r->conn->tls != !tls || (tls && tls_conn_returned(r->conn, &m->tls, m->tls_raw) < 0)) {
			log_error_answer(r->conn, 0,
			                 "BadReturn: a TLS connection's record state missing or not usable");
			conn_abort(r->conn);
			return;
		}
		conn_returned(r->conn, m->tail, ret.tail_len, ret.flags & PS_RETURN_EOF, ret.written,
		              ret.consumed);
		return;
	}
	case PS_MSG_END:
		r = session_request(s, m->u.end.conn_id, m->u.end.req_id);
		if (!r)
			return;
		delegate_count_served(r, s);
		handoff_cache_del(r->conn, s->id); /* the library drops its copy with END */
		conn_ended(r->conn, m->u.end.flags);
		return;
	case PS_MSG_STATUS:
		session_status(s, m);
		return;
	case PS_MSG_LOG_DRAIN:
		accesslog_drain(s, false);
		return;
	case PS_MSG_COMMAND:
		session_command(s, m);
		return;
	default:
		session_kill_later(s, "unexpected message type");
		return;
	}
}

static void session_read(struct session *s)
{
	for (int i = 0; i < SESSION_READ_BATCH && !s->dead; i++) {
		struct ps_msg m;
		int fd;
		bool fd_lost;
		const char *why;
		/* no client ever sends us an fd: one that came is closed and ends the session */
		enum transport_result r =
		    transport_recv(s->io.fd, dm->msg, MSG_DONTWAIT, false, &m, &fd, &fd_lost, &why);
		if (r == TRANSPORT_NONE)
			return;
		if (r == TRANSPORT_ERROR && errno == ECONNRESET && !s->hung_up) {
			/* the process closed its end with our messages unread: the kernel says so
			 * once, before the messages it sent us first (its last RETURNs), which are
			 * still to be read; EOF follows them */
			session_hung_up(s);
			continue;
		}
		if (r == TRANSPORT_CLOSED || r == TRANSPORT_ERROR) {
			char text[96];
			snprintf(text, sizeof(text), "receive failed: %s", strerror(errno));
			session_close(s, r == TRANSPORT_CLOSED ? "closed" : text);
			return;
		}
		if (r == TRANSPORT_BAD) {
			s->killed = true;
			session_close(s, why);
			return;
		}
		session_handle(s, &m);
		/* a LOG_DRAIN comes alone, while the worker serves delegated requests: the read
		 * that would find nothing more is left out (the socket is level-triggered: any
		 * message behind it wakes the loop again), one syscall fewer per drain */
		if (m.hdr.type == PS_MSG_LOG_DRAIN)
			return;
	}
}

static void session_on_io(struct loop_io *io, uint32_t events)
{
	struct session *s = container_of(io, struct session, io);
	if (s->dead)
		return;
	if (events & EPOLLOUT)
		session_flush(s);
	if (!s->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		session_read(s);
}

/* What happens to a request its worker never finished (DESIGN §2a). alive: the daemon
 * ended the session itself (protocol error, not reading), so the process may still
 * write to the connection: nothing else may, and the connection is aborted. */
static void session_orphan(struct session *s, struct request *r, bool alive)
{
	struct conn *c = r->conn;
	struct delegate_tls_pos pos;
	enum delegate_state st = delegate_judge(s, r, &pos);
	/* a TLS connection goes on from the records' position the library recorded */
	if (c->tls && pos.valid && st != DELEGATE_WRITING && !alive &&
	    tls_conn_resume_at(c, pos.seq, pos.key_updates) < 0) {
		log_error_answer(
		    c, 0, "WorkerDied: TLS record position recorded is not usable, connection aborted");
		list_del(&r->link);
		r->owner = NULL;
		conn_abort(c);
		return;
	}
	list_del(&r->link);
	r->owner = NULL;
	if ((st == DELEGATE_WRITING && tcp_fin_sent(c->io.fd)) || (st == DELEGATE_ANSWERED && !alive)) {
		/* the response was complete: the library sent the FIN after it and, as
		 * allowed after Connection: close, no END; or it died draining the request's
		 * body, so the client has its answer and the connection ends with our FIN */
		delegate_count_served(r, s);
		if (st == DELEGATE_ANSWERED)
			log_error_answer(
			    c, 0,
			    "WorkerDied: response complete, request body not all read, connection closed");
		conn_linger(c);
	} else if (alive || st == DELEGATE_WRITING) {
		log_error_answer(c, 0,
		                 alive ? "SessionEnded: its process may still write, connection aborted"
		                       : "WorkerDied: response half written, connection aborted");
		conn_abort(c);
	} else if (st == DELEGATE_IDLE && c->tls && !pos.valid) {
		log_error_answer(
		    c, 0, "WorkerDied: no TLS record position recorded for an idle connection, aborted");
		conn_abort(c);
	} else if (st == DELEGATE_IDLE) {
		/* a delegated connection between requests: nothing is lost, the daemon reads
		 * it again, the client never notices */
		/* the library's bytes are known only to the kernel now: take its counters */
		tcp_counters(c->io.fd, &c->sent, &c->received);
		conn_returned(c, NULL, 0, false, 0, 0);
	} else if (st == DELEGATE_UNTOUCHED && http_method_idempotent(r->method) && r->queue &&
	           r->queue->nattached > 1 && (!c->tls || tls_conn_resume(c) == 0)) {
		queue_requeue(r, false); /* nothing seen by anyone: another worker may serve it */
	} else {
		answer_request(c, 503, "WorkerDied", true);
	}
}

static void session_close(struct session *s, const char *why)
{
	if (s->io.fd < 0)
		return;
	s->dead = true;
	/* a session that broke the rules before its HELLO is named by pid alone */
	if (why[0] && strcmp(why, "closed"))
		log_info("session %u (pid %d, %s): %s; session ended", s->id, (int)s->pid,
		         s->hello ? s->program : "no HELLO yet", why);
	if (s->takeover)
		takeover_session_closed(s);
	struct list *p, *t;
	/* 1. no more deliveries to it */
	list_for_each_safe(p, t, &s->attached)
	{
		struct attach *a = container_of(p, struct attach, slink);
		a->draining = true;
		queue_drain(a);
	}
	/* 2. it holds no fd any more */
	list_for_each_safe(p, t, &dm->conns)
	{
		handoff_cache_del(container_of(p, struct conn, link), s->id);
	}
	/* 3. its access-log records, judged with its connections; then the requests it held:
	 * another worker, 503, or abort */
	accesslog_drain(s, true);
	bool alive = s->killed; /* the daemon ended it; its process did not die */
	list_for_each_safe(p, t, &s->requests)
	{
		session_orphan(s, container_of(p, struct request, link), alive);
	}
	/* 4. its counters go to the queues, its page goes; then the queues it held (the
	 * last one out removes a non-persistent queue) */
	delegate_session_end(s);
	accesslog_session_end(s);
	list_for_each_safe(p, t, &s->attached)
	{
		queue_detach(container_of(p, struct attach, slink));
	}
	session_drop_output(s);
	loop_io_del(dm->loop, &s->io);
	close(s->io.fd);
	s->io.fd = -1;
	list_del(&s->link);
	loop_defer(dm->loop, free, s);
}

static void session_close_deferred(void *p)
{
	struct session *s = p;
	session_close(s, ""); /* the reason was logged when it was marked */
}

void session_kill_later(struct session *s, const char *why)
{
	if (s->dead)
		return;
	s->dead = true;
	s->killed = true;
	log_info("session %u (pid %d): %s", s->id, (int)s->pid, why);
	/* no delivery may pick it before the deferred close runs */
	struct list *p, *t;
	list_for_each_safe(p, t, &s->attached)
	{
		queue_drain(container_of(p, struct attach, slink));
	}
	loop_defer(dm->loop, session_close_deferred, s);
}

void session_close_all(void)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->sessions)
	{
		session_close(container_of(p, struct session, link), "daemon stopping");
	}
}
