/* takeover.c: portshared --upgrade, the takeover (DESIGN §10): a new daemon takes the running one's
 * listening sockets, control socket and queues over a session on the control socket;
 * the old one hands over every connection it was reading, finishes the rest and exits.
 *
 * The new daemon ("new"), at start-up: HELLO with PS_HELLO_TAKEOVER, then TAKEOVER. The
 * old one answers TAKEOVER_SOCKET for each listener and for the control socket (fd
 * attached), TAKEOVER_QUEUE and its TAKEOVER_URLs for each queue, then TAKEOVER_READY.
 * New adopts them, starts its loop and answers TAKEOVER_READY: from then on it accepts
 * on the same sockets (the control socket's path is never unbound, so no connect fails
 * at any moment). Its queues hold their requests for ReattachGrace while their workers
 * move over.
 *
 * The old daemon ("old"), on TAKEOVER_READY: closes its copies of the listeners and of
 * the control socket (the sockets stay open through new's copies, and so do their
 * backlogs), tells every session to re-attach (REATTACH) and delivers to them no more.
 * It parses no head from then on: a connection that would be read (idle, a head begun,
 * a request queued and not delivered, one a worker returns) goes to new with the bytes
 * read from it (CONN_HANDOVER), never closed. What it writes itself, it finishes. It
 * exits once it holds nothing, or when ShutdownGrace is over; the link closing then
 * tells new that the upgrade is complete. */
#include "takeover.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "acl.h"
#include "admin.h"
#include "conn.h"
#include "daemon-t.h"
#include "list.h"
#include "listener-t.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "portshare.h"
#include "queue.h"
#include "session.h"
#include "store.h"
#include "tcp.h"
#include "threads.h"
#include "tls.h"
#include "transport.h"

#define UPGRADE_WAIT_MS 10000 /* the old daemon's answers at start-up */
#define HANDOVER_CHECK_MS 50  /* the old daemon looks whether it holds anything still */
#define LINK_READ_BATCH 64    /* messages read from the link per wake-up */

/* The link's own receive buffer: what a handed-over connection triggers (routing,
 * deliveries) uses dm->msg. */
static char link_buf[PS_MSG_MAX];

/* ---- both ends ---- */

static int link_send(int link, struct ps_msg *m)
{
	ssize_t len = protocol_encode(m, dm->msg, sizeof(dm->msg));
	if (len < 0)
		return -1;
	return transport_send(link, dm->msg, (size_t)len, -1, 0) == len ? 0 : -1;
}

/* ---- the new daemon ---- */

/* The old daemon's queue ids, for the TAKEOVER_URLs that name them. */
struct intake {
	struct {
		uint32_t old_id;
		struct queue *q;
	} * queues;
	size_t nqueues, cap;
	int ctl;
	int lock;      /* the state directory's lock, or -1 */
	bool settings; /* read (once the lock came) */
	unsigned nlisteners;
};

static struct queue *intake_queue(const struct intake *in, uint32_t old_id)
{
	for (size_t i = 0; i < in->nqueues; i++)
		if (in->queues[i].old_id == old_id)
			return in->queues[i].q;
	return NULL;
}

/* Waits for the next message on the link at start-up. 1, or -1 with err. */
static int intake_recv(int link, struct ps_msg *m, int *fd, char *err, size_t errlen)
{
	uint64_t deadline = loop_now_ms() + UPGRADE_WAIT_MS;
	for (;;) {
		bool fd_lost;
		const char *why;
		enum transport_result r =
		    transport_recv(link, link_buf, MSG_DONTWAIT, true, m, fd, &fd_lost, &why);
		if (r == TRANSPORT_MSG && fd_lost) {
			snprintf(err, errlen, "out of file descriptors while taking the sockets over");
			return -1;
		}
		if (r == TRANSPORT_MSG)
			return 1;
		if (r == TRANSPORT_BAD) {
			snprintf(err, errlen, "the running portshared sent a malformed message (%s)", why);
			return -1;
		}
		if (r != TRANSPORT_NONE) {
			snprintf(err, errlen, "the running portshared ended the upgrade session%s%s",
			         r == TRANSPORT_CLOSED ? "" : ": ",
			         r == TRANSPORT_CLOSED ? "" : strerror(errno));
			return -1;
		}
		uint64_t now = loop_now_ms();
		if (now >= deadline) {
			snprintf(err, errlen, "the running portshared did not answer within %d s",
			         UPGRADE_WAIT_MS / 1000);
			return -1;
		}
		struct pollfd p = {.fd = link, .events = POLLIN};
		poll(&p, 1, (int)(deadline - now));
	}
}

/* One message of the old daemon's state: adopted at once. 1 when it was the last
 * (TAKEOVER_READY), 0 for more, -1 with err. */
static int intake_take(struct intake *in, const struct ps_msg *m, int fd, char *err, size_t errlen)
{
	char why[PS_TEXT_MAX];
	switch (m->hdr.type) {
	case PS_MSG_REPLY: /* TAKEOVER is answered only to refuse it */
		snprintf(err, errlen, "the running portshared refused the upgrade: %.*s", (int)m->text_len,
		         m->text);
		return -1;
	case PS_MSG_TAKEOVER_SOCKET:
		if (m->u.usock.kind == PS_TAKEOVER_SOCKET_LOCK) {
			/* one daemon per state directory: ours must be the one it locked */
			if (!store_lock_is(fd, dm->state_dir)) {
				close(fd);
				snprintf(err, errlen,
				         "--state-dir %s is not the running portshared's state directory; "
				         "give the "
				         "same --state-dir as it has",
				         dm->state_dir);
				return -1;
			}
			if (in->lock >= 0)
				close(in->lock);
			in->lock = fd;
			/* the old daemon changes no setting from now on: they are ours to read */
			if (admin_settings_load(why, sizeof(why)) < 0) {
				snprintf(err, errlen, "cannot read the settings: %s", why);
				return -1;
			}
			in->settings = true;
			return 0;
		}
		if (m->u.usock.kind == PS_TAKEOVER_SOCKET_CONTROL) {
			if (in->ctl >= 0)
				close(in->ctl);
			in->ctl = fd;
			return 0;
		}
		if (listener_adopt(&m->u.usock.addr, fd, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "cannot take a listener over: %s", why);
			return -1;
		}
		in->nlisteners++;
		return 0;
	case PS_MSG_TAKEOVER_QUEUE: {
		if (in->nqueues == in->cap) {
			size_t cap = in->cap ? in->cap * 2 : 16;
			void *n = realloc(in->queues, cap * sizeof(*in->queues));
			if (!n) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			in->queues = n;
			in->cap = cap;
		}
		struct queue *q = queue_adopt(&m->u.uqueue);
		if (!q) {
			snprintf(err, errlen, "cannot take queue %s over (out of memory, or sent twice)",
			         m->u.uqueue.name);
			return -1;
		}
		in->queues[in->nqueues].old_id = m->u.uqueue.queue_id;
		in->queues[in->nqueues++].q = q;
		return 0;
	}
	case PS_MSG_TAKEOVER_URL: {
		struct queue *q = intake_queue(in, m->u.url.queue_id);
		if (!q) {
			snprintf(err, errlen,
			         "the running portshared sent a URL for a queue it did not send");
			return -1;
		}
		/* checked again, with the reservations of the state directory: a URL its owner may
		 * not register, or the listen list cannot serve, is logged, not fatal */
		struct ident owner;
		acl_ident_of_user(q->uid, q->creator_user, &owner);
		if (queue_url_add(q, &owner, m->text, m->text_len, true, why, sizeof(why)) < 0)
			log_info("upgrade: %.*s of queue %s not taken over: %s", (int)m->text_len, m->text,
			         q->name, why);
		return 0;
	}
	case PS_MSG_TAKEOVER_READY:
		dm->takeover_old_pid = (pid_t)m->u.takeover.pid;
		return 1;
	default: /* nothing else is sent to an upgrade session */
		snprintf(err, errlen, "the running portshared sent an unexpected %s",
		         protocol_type_name(m->hdr.type));
		return -1;
	}
}

int takeover_connect(char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(dm->socket_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", dm->socket_path,
		         sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, dm->socket_path);
	int link = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (link < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(link, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(link);
		if (e == ENOENT || e == ECONNREFUSED)
			snprintf(err, errlen, "no portshared is running on %s; start it without --upgrade",
			         dm->socket_path);
		else
			snprintf(err, errlen, "cannot connect to the running portshared on %s: %s",
			         dm->socket_path, strerror(e));
		return -1;
	}
	struct ps_msg m = {.hdr = {.type = PS_MSG_HELLO, .flags = PS_HELLO_TAKEOVER, .seq = 1}};
	m.u.hello.version = PS_PROTO_VERSION;
	m.u.hello.pid = (uint32_t)getpid();
	snprintf(m.u.hello.program, sizeof(m.u.hello.program), "portshared");
	struct intake in = {.ctl = -1, .lock = -1};
	int fd = -1, rc = -1;
	if (link_send(link, &m) < 0) {
		snprintf(err, errlen, "cannot talk to the running portshared: %s", strerror(errno));
		goto out;
	}
	if (intake_recv(link, &m, &fd, err, errlen) < 0)
		goto out;
	if (m.hdr.type != PS_MSG_REPLY || m.u.reply.status < 0) {
		snprintf(err, errlen, "the running portshared refused the upgrade: %.*s", (int)m.text_len,
		         m.hdr.type == PS_MSG_REPLY ? m.text : "it did not answer HELLO");
		goto out;
	}
	m = (struct ps_msg){.hdr = {.type = PS_MSG_TAKEOVER, .seq = 2}};
	m.u.takeover.pid = (uint32_t)getpid();
	if (link_send(link, &m) < 0) {
		snprintf(err, errlen, "cannot talk to the running portshared: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		if (intake_recv(link, &m, &fd, err, errlen) < 0)
			goto out;
		rc = intake_take(&in, &m, fd, err, errlen);
		if (rc < 0)
			goto out;
		if (rc == 1)
			break;
	}
	rc = -1;
	if (in.ctl < 0) {
		snprintf(err, errlen, "the running portshared did not send its control socket");
		goto out;
	}
	/* the lock's open file is shared with the old daemon: it stays ours when it exits; an
	 * old daemon that locked nothing leaves the directory free to lock now */
	dm->state_lock = in.lock >= 0 ? in.lock : store_lock(dm->state_dir, err, errlen);
	in.lock = -1;
	if (dm->state_lock < 0 || (!in.settings && admin_settings_load(err, errlen) < 0))
		goto out;
	log_info("upgrade: took over %u listener%s, %zu queue%s and the control socket from pid %d",
	         in.nlisteners, in.nlisteners == 1 ? "" : "s", in.nqueues, in.nqueues == 1 ? "" : "s",
	         (int)dm->takeover_old_pid);
	dm->takeover_from.fd = link;
	rc = in.ctl;
	in.ctl = -1;
out:
	free(in.queues);
	if (in.ctl >= 0)
		close(in.ctl);
	if (in.lock >= 0)
		close(in.lock);
	if (rc < 0)
		close(link);
	return rc;
}

static void takeover_grace_over(struct loop_timer *t)
{
	queue_reattach_over();
}

static void takeover_link_closed(const char *why)
{
	if (why)
		log_error("upgrade: the link to the old portshared (pid %d) failed: %s",
		          (int)dm->takeover_old_pid, why);
	else
		log_info("upgrade complete: the old portshared (pid %d) has finished and exited",
		         (int)dm->takeover_old_pid);
	metrics_carry_read(dm->takeover_old_pid);
	loop_io_del(dm->loop, &dm->takeover_from);
	close(dm->takeover_from.fd);
	dm->takeover_from.fd = -1;
}

/* The new daemon: connections the old one hands over. */
/* The new daemon: a connection the old one handed over (fd is taken), read from here on
 * as if it had just been returned by a worker. */
static void takeover_adopt_conn(int fd, const struct ps_conn_handover *h, const char *bytes,
                                const struct ps_msg *tls)
{
	struct conn *c = conn_from_handover(fd, &h->local, &h->remote);
	if (!c)
		return;
	if (tls && tls_conn_adopt(c, &tls->tls, tls->tls_raw) < 0) {
		log_warning("upgrade: a TLS connection's record state from the old portshared is not usable; "
		            "connection closed");
		conn_free(c);
		return;
	}
	/* what anyone read from or wrote to it so far, so DESIGN §2a's checks hold here */
	tcp_counters(c->io.fd, &c->sent, &c->received);
	conn_returned(c, bytes, h->bytes_len, h->flags & PS_HANDOVER_EOF, 0, 0);
}

static void takeover_on_link(struct loop_io *io, uint32_t events)
{
	for (int i = 0; i < LINK_READ_BATCH && dm->takeover_from.fd >= 0; i++) {
		struct ps_msg m;
		int fd;
		bool fd_lost;
		const char *why;
		enum transport_result r =
		    transport_recv(io->fd, link_buf, MSG_DONTWAIT, true, &m, &fd, &fd_lost, &why);
		if (r == TRANSPORT_NONE)
			return;
		if (r == TRANSPORT_CLOSED || r == TRANSPORT_ERROR) {
			takeover_link_closed(r == TRANSPORT_CLOSED ? NULL : strerror(errno));
			return;
		}
		if (r == TRANSPORT_BAD ||
		    (m.hdr.type != PS_MSG_CONN_HANDOVER && m.hdr.type != PS_MSG_CONN_HANDOVER_TLS)) {
			if (fd >= 0)
				close(fd);
			log_warning("upgrade: the old portshared sent %s; ignored",
			            r == TRANSPORT_BAD ? why : "an unexpected message");
			continue;
		}
		if (fd_lost) {
			/* its copy is closed already: the client sees the connection end */
			log_warning("upgrade: a connection from the old portshared was lost: out of file "
			            "descriptors");
			continue;
		}
		if (m.hdr.type == PS_MSG_CONN_HANDOVER_TLS) {
			struct ps_conn_handover h = {
			    .conn_id = m.u.handover_tls.conn_id,
			    .local = m.u.handover_tls.local,
			    .remote = m.u.handover_tls.remote,
			    .flags = m.u.handover_tls.flags,
			    .bytes_len = m.u.handover_tls.bytes_len,
			};
			takeover_adopt_conn(fd, &h, m.tail, &m);
		} else {
			takeover_adopt_conn(fd, &m.u.handover, m.tail, NULL);
		}
	}
}

void takeover_start(void)
{
	listener_resync(NULL, 0); /* our config's listen list decides, as at a normal start */
	struct ps_msg m = {.hdr = {.type = PS_MSG_TAKEOVER_READY}};
	m.u.takeover.pid = (uint32_t)getpid();
	dm->takeover_from.fn = takeover_on_link;
	if (link_send(dm->takeover_from.fd, &m) < 0 ||
	    loop_io_add(dm->loop, &dm->takeover_from, EPOLLIN) < 0) {
		/* the old daemon keeps accepting too: nothing is lost, it just does not leave */
		log_error("upgrade: cannot tell the old portshared (pid %d) to hand over: %s",
		          (int)dm->takeover_old_pid, strerror(errno));
		close(dm->takeover_from.fd);
		dm->takeover_from.fd = -1;
	}
	dm->takeover_timer.fn = takeover_grace_over;
	loop_timer_set(dm->loop, &dm->takeover_timer, dm->cfg.limits.reattach_grace_ms);
}

/* ---- the old daemon ---- */

void takeover_hello(struct session *s, const struct ps_msg *m)
{
	char err[PS_TEXT_MAX];
	if (!s->admin) {
		snprintf(err, sizeof(err),
		         "only root or portshared's own user (uid %u) or a member of its AdminGroup may "
		         "upgrade it, not uid %u",
		         (unsigned)geteuid(), (unsigned)s->uid);
		log_warning("upgrade refused: pid %d (uid %u) is not an admin", (int)s->pid,
		            (unsigned)s->uid);
		session_reply(s, m->hdr.seq, PS_EDENIED, 0, err);
		return;
	}
	s->hello = true;
	s->takeover = true;
	session_reply(s, m->hdr.seq, 0, s->id, NULL);
}

static void takeover_send_socket(struct session *s, uint32_t kind, const struct ps_addr *a, int fd)
{
	struct ps_msg m = {.hdr = {.type = PS_MSG_TAKEOVER_SOCKET}};
	m.u.usock.kind = kind;
	if (a)
		m.u.usock.addr = *a;
	session_send_fd(s, &m, fd);
}

static void takeover_send_queue(struct session *s, const struct queue *q)
{
	struct ps_msg m = {.hdr = {.type = PS_MSG_TAKEOVER_QUEUE}};
	struct ps_takeover_queue *u = &m.u.uqueue;
	u->queue_id = q->id;
	u->opt_flags = q->persistent ? PS_QUEUE_PERSISTENT : 0;
	u->max_length = q->max_length;
	u->response_wait_ms = q->response_wait_ms;
	u->max_body = q->max_body;
	u->uid = (uint32_t)q->uid;
	u->creator_pid = (uint32_t)q->creator_pid;
	u->sessions = q->nattached;
	snprintf(u->name, sizeof(u->name), "%s", q->name);
	snprintf(u->creator_user, sizeof(u->creator_user), "%s", q->creator_user);
	session_send_fd(s, &m, -1);
	char text[PS_PREFIX_MAX + 64];
	for (size_t i = 0; i < q->nurls && !s->dead; i++) {
		m = (struct ps_msg){.hdr = {.type = PS_MSG_TAKEOVER_URL}};
		m.u.url.queue_id = q->id;
		url_prefix_format(&q->urls[i], text, sizeof(text));
		m.text = text;
		m.text_len = strlen(text);
		session_send_fd(s, &m, -1);
	}
}

/* TAKEOVER: everything a new daemon needs to serve what we serve. */
static void takeover_send_state(struct session *s, const struct ps_msg *req)
{
	char why[PS_TEXT_MAX] = "";
	if (dm->stopping)
		snprintf(why, sizeof(why), "portshared is shutting down");
	else if (dm->takeover_to)
		snprintf(why, sizeof(why), "another upgrade is in progress (pid %d)",
		         (int)dm->takeover_to->pid);
	else if (dm->takeover_from.fd >= 0)
		snprintf(
		    why, sizeof(why),
		    "portshared is still taking over from pid %d; try again once it logs that the upgrade is "
		    "complete",
		    (int)dm->takeover_old_pid);
	if (why[0]) {
		log_warning("upgrade by pid %d refused: %s", (int)s->pid, why);
		session_reply(s, req->hdr.seq, PS_ESTATE, 0, why);
		return;
	}
	dm->takeover_to = s;
	unsigned nl = 0, nq = 0;
	if (dm->state_lock >= 0)
		takeover_send_socket(s, PS_TAKEOVER_SOCKET_LOCK, NULL, dm->state_lock);
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->endpoints)
	{
		struct endpoint *e = container_of(p, struct endpoint, link);
		takeover_send_socket(s, PS_TAKEOVER_SOCKET_TCP, &e->addr, e->io.fd);
		nl++;
	}
	takeover_send_socket(s, PS_TAKEOVER_SOCKET_CONTROL, NULL, dm->ctl.fd);
	list_for_each_safe(p, t, &dm->queues)
	{
		takeover_send_queue(s, container_of(p, struct queue, link));
		nq++;
	}
	struct ps_msg m = {.hdr = {.type = PS_MSG_TAKEOVER_READY}};
	m.u.takeover.pid = (uint32_t)getpid();
	session_send_fd(s, &m, -1);
	if (!s->dead)
		log_info("upgrade: sent %u listener%s, %u queue%s and the control socket to the new "
		         "portshared (pid %d)",
		         nl, nl == 1 ? "" : "s", nq, nq == 1 ? "" : "s", (int)s->pid);
}

void takeover_send_reattach(struct session *s)
{
	/* no more deliveries here: what is queued goes to the new daemon */
	struct list *p, *t;
	list_for_each_safe(p, t, &s->attached)
	{
		queue_drain(container_of(p, struct attach, slink));
	}
	struct ps_msg m = {.hdr = {.type = PS_MSG_REATTACH}};
	m.u.takeover.pid = dm->takeover_to ? (uint32_t)dm->takeover_to->pid : 0;
	session_send_fd(s, &m, -1);
}

/* Whether we hold anything still; exits when not, or when ShutdownGrace is over. */
static void takeover_check(struct loop_timer *t)
{
	conn_close_finished();
	uint32_t held = threads_conns();
	bool flushed = !dm->takeover_to || !dm->takeover_to->out_head;
	if (!held && flushed) {
		log_info("upgrade: every connection handed over or finished; exiting");
		dm->takeover_to = NULL; /* the link closes at exit: that is the new daemon's signal */
		loop_stop(dm->loop);
		return;
	}
	if (loop_now_ms() >= dm->handover_deadline_ms) {
		log_info("upgrade: ShutdownGrace is over with %u connection%s still held; %s aborted", held,
		         held == 1 ? "" : "s", held == 1 ? "it is" : "they are");
		loop_stop(dm->loop);
		return;
	}
	loop_timer_set(dm->loop, t, HANDOVER_CHECK_MS);
}

/* TAKEOVER_READY from the new daemon: it accepts; we stop and hand over. */
static void takeover_hand_over(struct session *s)
{
	log_info("upgrade: the new portshared (pid %d) accepts now; handing over connections (ShutdownGrace "
	         "%u ms)",
	         (int)s->pid, dm->cfg.limits.shutdown_grace_ms);
	dm->threads[0].handing_over = true;
	/* our copies only: the sockets, their backlogs and the control socket's path stay
	 * open in the new daemon */
	listener_close_all();
	loop_timer_cancel(dm->loop, &dm->ctl_pause);
	loop_io_del(dm->loop, &dm->ctl);
	close(dm->ctl.fd);
	dm->ctl.fd = -1;
	threads_hand_over();
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->sessions)
	{
		struct session *o = container_of(p, struct session, link);
		if (o->hello && !o->takeover && !o->dead)
			takeover_send_reattach(o);
	}
	list_for_each_safe(p, t, &dm->conns)
	{
		struct conn *c = container_of(p, struct conn, link);
		if (c->state == CONN_READING || c->state == CONN_QUEUED)
			takeover_hand_over_conn(c);
	}
	dm->handover_deadline_ms = loop_now_ms() + dm->cfg.limits.shutdown_grace_ms;
	dm->takeover_timer.fn = takeover_check;
	loop_timer_set(dm->loop, &dm->takeover_timer, HANDOVER_CHECK_MS);
}

void takeover_handle(struct session *s, const struct ps_msg *m)
{
	switch (m->hdr.type) {
	case PS_MSG_TAKEOVER:
		if (dm->takeover_to == s) {
			session_kill_later(s, "TAKEOVER sent twice");
			return;
		}
		takeover_send_state(s, m);
		return;
	case PS_MSG_TAKEOVER_READY:
		if (dm->takeover_to != s || dm->threads[0].handing_over) {
			session_kill_later(s, "TAKEOVER_READY out of turn");
			return;
		}
		takeover_hand_over(s);
		return;
	default:
		session_kill_later(s, "unexpected message on the upgrade session");
		return;
	}
}

void takeover_session_closed(struct session *s)
{
	if (s != dm->takeover_to)
		return;
	dm->takeover_to = NULL;
	if (!dm->threads[0].handing_over)
		log_info(
		    "upgrade: the new portshared (pid %d) went away before taking over; this one carries on",
		    (int)s->pid);
	else
		log_info(
		    "upgrade: the new portshared (pid %d) went away while taking over connections; the ones "
		    "left are closed",
		    (int)s->pid);
}

/* Sends a connection (fd and bytes) to the new daemon. 0, or -1 when there is none. */
static int takeover_send_conn(struct conn *c, const char *bytes, size_t len)
{
	struct session *s = dm->takeover_to;
	if (!s || s->dead || len > PS_HANDOVER_BYTES_MAX)
		return -1;
	struct ps_msg m = {.hdr = {.type = PS_MSG_CONN_HANDOVER}};
	if (c->tls) {
		/* the records go on in the new daemon, from the state they are in here */
		if (!tls_conn_live(c) && tls_conn_resume(c) < 0)
			return -1;
		m.hdr.type = PS_MSG_CONN_HANDOVER_TLS;
		m.u.handover_tls.conn_id = c->id;
		m.u.handover_tls.local = c->local;
		m.u.handover_tls.remote = c->remote;
		m.u.handover_tls.flags = c->eof ? PS_HANDOVER_EOF : 0;
		m.u.handover_tls.bytes_len = (uint32_t)len;
		m.tail = bytes;
		tls_conn_deliver(c, &m);
		int rc = session_send_fd(s, &m, c->io.fd);
		explicit_bzero(&m.tls, sizeof(m.tls));
		return rc;
	}
	m.u.handover.conn_id = c->id;
	m.u.handover.local = c->local;
	m.u.handover.remote = c->remote;
	m.u.handover.flags = c->eof ? PS_HANDOVER_EOF : 0;
	m.u.handover.bytes_len = (uint32_t)len;
	m.tail = bytes;
	return session_send_fd(s, &m, c->io.fd);
}

void takeover_hand_over_conn(struct conn *c)
{
	if (this_thread->index) {
		conn_move_to_main(c, NULL);
		return;
	}
	loop_timer_cancel(this_thread->loop, &c->timer);
	const char *bytes = c->buf;
	size_t len = c->len;
	if (c->req) { /* a request not delivered yet: it is read again, whole, over there */
		bytes = c->req->data;
		len = (size_t)c->req->head_len + c->req->tail_len;
	}
	if (c->eof && !len) {
		conn_free(c); /* the client is gone and nothing is left to answer */
		return;
	}
	if (takeover_send_conn(c, bytes, len) < 0) {
		conn_linger(c); /* no new daemon to take it: end it cleanly */
		return;
	}
	/* our copy goes; the connection lives on in the new daemon */
	conn_free(c);
}
