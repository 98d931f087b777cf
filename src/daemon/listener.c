/* listener.c: listening sockets, bound lazily: a port is bound on every listen address
 * (or the wildcards) while some prefix needs it and closed when none does (DESIGN §7).
 * When another program holds a port, says which. */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "conn.h"
#include "daemon-t.h"
#include "list.h"
#include "listener-t.h"
#include "log.h"
#include "port_owner.h"
#include "redirect.h"
#include "route.h"
#include "threads.h"

#define ACCEPT_BATCH 64
#define EMFILE_PAUSE_MS 100

static void endpoint_on_io(struct loop_io *io, uint32_t events);

/* Every thread's copy of a listener is registered exclusively: the kernel wakes one
 * idle thread per connection, not all of them. EPOLLEXCLUSIVE cannot be modified, so
 * a pause is a removal and a resume a new registration. */
#define LISTEN_EVENTS (EPOLLIN | EPOLLEXCLUSIVE)

static void endpoint_resume(struct loop_timer *t)
{
	struct endpoint *e = container_of(t, struct endpoint, pause);
	if (e->io.fd >= 0 && !e->io.registered)
		loop_io_add(this_thread->loop, &e->io, LISTEN_EVENTS);
}

/* Refusals are logged once a second at most, with their count: a daemon at its limit
 * under a flood of new connections must not also flood its log. */
#define EMFILE_REPORT_MS 1000
static _Thread_local uint64_t emfile_reported_ms; /* this thread's last report, 0: none yet */
static _Thread_local uint32_t emfile_refused;     /* refused since then */

static void endpoint_report_out_of_fds(void)
{
	uint64_t now = loop_now_ms();
	if (emfile_reported_ms && now - emfile_reported_ms < EMFILE_REPORT_MS)
		return;
	struct rlimit rl = {0, 0};
	getrlimit(RLIMIT_NOFILE, &rl);
	log_warning("out of file descriptors (RLIMIT_NOFILE %llu): %u new connection%s refused with 503%s; "
	            "accepting pauses %d ms at a time",
	            (unsigned long long)rl.rlim_cur, emfile_refused, emfile_refused == 1 ? "" : "s",
	            emfile_reported_ms ? " since the last report" : "", EMFILE_PAUSE_MS);
	emfile_reported_ms = now;
	emfile_refused = 0;
}

/* Out of fds: accept with the reserve fd and refuse at once, so the client is not left
 * hanging in the backlog, then stop accepting briefly so the loop does not spin. */
static void endpoint_out_of_fds(struct endpoint *e)
{
	struct thread *th = this_thread;
	if (th->reserve_fd < 0) /* another thread took the fd freed last time: try again */
		th->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (th->reserve_fd >= 0) {
		close(th->reserve_fd);
		int fd = accept4(e->io.fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
			                           "Connection: close\r\nRetry-After: 1\r\n\r\n";
			/* read the request first (with TCP_DEFER_ACCEPT it is there): closing with
			 * unread bytes would send a reset, which may destroy the 503 in flight */
			char sink[16384];
			(void)recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
			send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
			emfile_refused++;
		}
		th->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	endpoint_report_out_of_fds();
	loop_io_del(th->loop, &e->io);
	loop_timer_set(th->loop, &e->pause, EMFILE_PAUSE_MS);
}

/* Accepts up to max connections waiting on e; false once the backlog is empty (or the
 * daemon is out of fds, which pauses accepting). */
static bool endpoint_accept(struct endpoint *e, int max)
{
	for (int i = 0; i < max; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(e->io.fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_accept(e, fd, &peer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE)
			endpoint_out_of_fds(e);
		return false;
	}
	return true;
}

static void endpoint_on_io(struct loop_io *io, uint32_t events)
{
	endpoint_accept(container_of(io, struct endpoint, io), ACCEPT_BATCH);
}

static void describe_owner(const struct ps_addr *a, char *err, size_t errlen)
{
	char where[PS_ADDR_TEXT_MAX];
	struct port_owner o;
	addr_format(a, where, sizeof(where));
	if (port_owner_find(a, &o) < 0)
		snprintf(err, errlen, "%s is in use by another program", where);
	else if (o.pid > 0)
		snprintf(err, errlen, "%s is in use by another program: %s (pid %d, uid %u)", where,
		         o.program, (int)o.pid, o.uid);
	else
		snprintf(err, errlen,
		         "%s is in use by another program of uid %u (portsharectl who %u, as root, names it)",
		         where, o.uid, a->port);
}

static struct endpoint *endpoint_find(const struct ps_addr *a)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->endpoints)
	{
		struct endpoint *e = container_of(p, struct endpoint, link);
		if (e->addr.family == a->family && e->addr.port == a->port &&
		    !memcmp(e->addr.addr, a->addr, 16))
			return e;
	}
	return NULL;
}

static void endpoint_init(struct endpoint *e, const struct ps_addr *a, int fd)
{
	e->addr = *a;
	e->io.fd = fd;
	e->io.fn = endpoint_on_io;
	e->pause.fn = endpoint_resume;
	e->unlisten.type = THREAD_MSG_UNLISTEN;
	e->unlisten.p = e;
}

/* Closes thread 0's listener (registered or not) and tells each front thread to close
 * its copy; the port is free once the last copy is closed, microseconds later. */
static void endpoint_free(struct endpoint *e)
{
	for (unsigned i = 1; i < THREADS_MAX; i++)
		if (e->copies[i])
			threads_post(&dm->threads[i], &e->copies[i]->unlisten);
	loop_timer_cancel(dm->loop, &e->pause);
	loop_io_del(dm->loop, &e->io);
	close(e->io.fd);
	e->io.fd = -1;
	loop_defer(dm->loop, free, e);
}

static int endpoint_add(const struct ps_addr *a, int fd, char *err, size_t errlen);

static int endpoint_open(const struct ps_addr *a, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = addr_to_sockaddr(a, &ss);
	char where[PS_ADDR_TEXT_MAX];
	int one = 1;
	addr_format(a, where, sizeof(where));
	int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* [::]:80 must never also take 0.0.0.0:80 past the listen list (DESIGN §7) */
	if (a->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* accept only once the request's first bytes are there, and read them at once:
	 * one wake-up per new connection instead of two */
	setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
	/* inherited by accepted sockets: a pipelined second response must not wait for the
	 * client's delayed ACK (Nagle); writers coalesce with MSG_MORE instead */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;
		close(fd);
		if (e == EADDRINUSE)
			describe_owner(a, err, errlen);
		else if (e == EACCES)
			snprintf(err, errlen,
			         "cannot listen on %s: ports below 1024 need CAP_NET_BIND_SERVICE", where);
		else
			snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(e));
		errno = e;
		return -1;
	}
	return endpoint_add(a, fd, err, errlen);
}

/* Makes fd, a listening socket, accept on every thread. Takes fd (closed on failure). */
static int endpoint_add(const struct ps_addr *a, int fd, char *err, size_t errlen)
{
	char where[PS_ADDR_TEXT_MAX];
	addr_format(a, where, sizeof(where));
	struct endpoint *e = calloc(1, sizeof(*e));
	if (!e) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	endpoint_init(e, a, fd);
	/* the front threads' copies first: an idle front thread is woken before thread 0 */
	for (unsigned i = 1; i < dm->nthreads; i++) {
		struct endpoint *copy = calloc(1, sizeof(*copy));
		int cfd = copy ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
		if (cfd >= 0)
			endpoint_init(copy, a, cfd);
		if (cfd < 0 || loop_io_add(dm->threads[i].loop, &copy->io, LISTEN_EVENTS) < 0) {
			snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(errno));
			if (cfd >= 0)
				close(cfd);
			free(copy);
			endpoint_free(e);
			return -1;
		}
		e->copies[i] = copy;
	}
	if (loop_io_add(dm->loop, &e->io, LISTEN_EVENTS) < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		endpoint_free(e);
		return -1;
	}
	list_add_tail(&dm->endpoints, &e->link);
	log_info("listening on %s", where);
	return 0;
}

static void endpoint_close(struct endpoint *e)
{
	char where[PS_ADDR_TEXT_MAX];
	addr_format(&e->addr, where, sizeof(where));
	if (this_thread->handing_over)
		log_info("closed our copy of the listener on %s (the new portshared keeps it)", where);
	else
		log_info("stopped listening on %s", where);
	list_del(&e->link);
	endpoint_free(e);
}

/* Stops listening on e so that another address of its port can be bound at once (a
 * specific address and the wildcard exclude each other). What waits in its backlog is
 * accepted first, since closing a listener resets those connections; shutdown() then takes
 * the socket out of the listening state, which frees the address for bind() although the
 * front threads close their copies a moment later. A connection that completes in between
 * is reset: the window is the few microseconds from the last accept to the shutdown. */
#define RETIRE_ACCEPT_MAX 4096
static void endpoint_retire(struct endpoint *e)
{
	for (int i = 0; i < RETIRE_ACCEPT_MAX / ACCEPT_BATCH && endpoint_accept(e, ACCEPT_BATCH); i++)
		;
	shutdown(e->io.fd, SHUT_RDWR);
	endpoint_close(e);
}

void listener_warn_ignored(void)
{
	if (dm->settings.listen_managed && dm->cfg.nlisten)
		log_warning(
		    "the listen lines of %s are ignored: the listen list is managed with portsharectl "
		    "iplisten and kept in %s (portsharectl iplisten show)",
		    dm->cfg.path, dm->state_dir);
}

const char *listener_listen_source(void)
{
	if (dm->settings.listen_managed)
		return "state";
	return dm->cfg.nlisten ? "config" : "default";
}

/* The listen list in force: the state directory's once an admin changed it with
 * portsharectl, else the config file's (docs/CONFIG.md). */
static unsigned listen_list(const struct ps_addr **list)
{
	if (dm->settings.listen_managed) {
		*list = dm->settings.listen;
		return dm->settings.nlisten;
	}
	*list = dm->cfg.listen;
	return dm->cfg.nlisten;
}

/* An exclusion that rules a out: the same endpoint, or one a wildcard and the other of
 * its family (a wildcard cannot be bound while one of its addresses is kept free, and an
 * excluded wildcard keeps every address of its family free). */
static const struct ps_addr *excluded_by(const struct ps_addr *a)
{
	for (unsigned i = 0; i < dm->settings.nexclusions; i++) {
		const struct ps_addr *e = &dm->settings.exclusions[i];
		if (e->port != a->port || e->family != a->family)
			continue;
		if (addr_is_wildcard(e) || addr_is_wildcard(a) || !memcmp(e->addr, a->addr, 16))
			return e;
	}
	return NULL;
}

unsigned listener_plan(uint16_t port, struct listener_plan *out)
{
	const struct ps_addr *list;
	unsigned n = listen_list(&list);
	if (!n) {
		static const struct ps_addr wildcards[2] = {{.family = AF_INET}, {.family = AF_INET6}};
		list = wildcards;
		n = 2;
	}
	for (unsigned i = 0; i < n; i++) {
		out[i].addr = list[i];
		out[i].addr.port = port;
		out[i].excluded_by = excluded_by(&out[i].addr);
	}
	return n;
}

const char *listener_why_unbound(const struct listener_plan *plan, bool needed, char *buf, size_t len)
{
	char a[PS_ADDR_TEXT_MAX];
	if (plan->excluded_by)
		snprintf(buf, len, "excluded by %s (portsharectl exclude show)",
		         addr_format(plan->excluded_by, a, sizeof(a)));
	else if (!needed)
		snprintf(buf, len, "no prefix needs it");
	else if (!listener_is_bound(&plan->addr))
		snprintf(buf, len, "could not be bound (in use by another program? portsharectl who %u)",
		         plan->addr.port);
	else
		buf[0] = '\0';
	return buf;
}

unsigned listener_wanted(uint16_t port, struct ps_addr *out)
{
	struct listener_plan plan[LISTENER_PLAN_MAX];
	unsigned n = listener_plan(port, plan), k = 0;
	for (unsigned i = 0; i < n; i++)
		if (!plan[i].excluded_by)
			out[k++] = plan[i].addr;
	return k;
}

static bool port_bound(uint16_t port)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->endpoints)
	{
		if (container_of(p, struct endpoint, link)->addr.port == port)
			return true;
	}
	return false;
}

static void port_close(uint16_t port)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->endpoints)
	{
		struct endpoint *e = container_of(p, struct endpoint, link);
		if (e->addr.port == port)
			endpoint_close(e);
	}
}

/* Closes what is no longer wanted for port, then opens what is wanted and missing (in
 * that order: a wildcard and a specific address of one port cannot both be bound). With
 * strict, the first failure undoes the port's new listeners and is returned. */
static int port_sync(uint16_t port, bool strict, char *err, size_t errlen)
{
	int failed = 0;
	struct ps_addr want[LISTENER_PLAN_MAX];
	unsigned n = listener_wanted(port, want);
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->endpoints)
	{
		struct endpoint *e = container_of(p, struct endpoint, link);
		bool wanted = false;
		for (unsigned i = 0; i < n && !wanted; i++)
			wanted = e->addr.family == want[i].family && !memcmp(e->addr.addr, want[i].addr, 16);
		if (e->addr.port == port && !wanted)
			endpoint_retire(e);
	}
	for (unsigned i = 0; i < n; i++) {
		if (endpoint_find(&want[i]))
			continue;
		if (endpoint_open(&want[i], err, errlen) == 0)
			continue;
		/* a machine without IPv6: the v6 wildcard is skipped, not an error */
		if (addr_is_wildcard(&want[i]) && want[i].family == AF_INET6 &&
		    (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
			continue;
		if (strict) {
			port_close(port); /* strict runs only on an unbound port: undo it all */
			return -1;
		}
		log_warning("%s", err);
		failed++;
	}
	return failed;
}

int listener_need(uint16_t port, char *err, size_t errlen)
{
	if (port_bound(port))
		return 0;
	struct ps_addr want[LISTENER_PLAN_MAX];
	if (!listener_wanted(port, want)) {
		struct listener_plan plan[LISTENER_PLAN_MAX];
		unsigned n = listener_plan(port, plan);
		size_t off = (size_t)snprintf(err, errlen, "port %u cannot be bound: excluded by", port);
		for (unsigned i = 0; i < n && off < errlen; i++) {
			char a[PS_ADDR_TEXT_MAX];
			off += (size_t)snprintf(err + off, errlen - off, "%s %s", i ? "," : "",
			                        addr_format(plan[i].excluded_by, a, sizeof(a)));
		}
		if (off < errlen)
			snprintf(err + off, errlen - off, " (portsharectl exclude show)");
		return -2;
	}
	if (dm->stopping) {
		snprintf(err, errlen, "portshared is shutting down");
		return -1;
	}
	if (this_thread->handing_over) {
		snprintf(err, errlen, "portshared is handing over to a new portshared; connect again");
		return -1;
	}
	return port_sync(port, true, err, errlen);
}

static _Atomic uint8_t port_tls[65536 / 8];

void listener_set_tls(uint16_t port, bool tls)
{
	uint8_t bit = (uint8_t)(1u << (port % 8));
	if (tls)
		atomic_fetch_or_explicit(&port_tls[port / 8], bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&port_tls[port / 8], (uint8_t)~bit, memory_order_relaxed);
}

bool listener_port_tls(uint16_t port)
{
	return atomic_load_explicit(&port_tls[port / 8], memory_order_relaxed) & (1u << (port % 8));
}

void listener_release(uint16_t port)
{
	if (!route_port_count(dm->routes, port) && !redirect_on_port(port))
		port_close(port);
}

static void collect_port(const struct url_prefix *p, void *owner, void *arg)
{
	uint8_t *ports = arg;
	ports[p->port / 8] |= (uint8_t)(1u << (p->port % 8));
}

void listener_port_map(uint8_t ports[65536 / 8])
{
	memset(ports, 0, 65536 / 8);
	route_foreach(dm->routes, collect_port, ports);
	for (uint32_t p = 1; p < 65536; p++) /* an admin's redirect listens without an app */
		if (redirect_on_port((uint16_t)p))
			ports[p / 8] |= (uint8_t)(1u << (p % 8));
}

unsigned listener_resync(char *report, size_t len)
{
	static uint8_t ports[65536 / 8];
	char err[512];
	unsigned failed = 0;
	size_t off = 0;
	if (report && len)
		report[0] = '\0';
	listener_port_map(ports);
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->endpoints)
	{
		struct endpoint *e = container_of(p, struct endpoint, link);
		if (!(ports[e->addr.port / 8] & (1u << (e->addr.port % 8))))
			endpoint_close(e);
	}
	for (uint32_t port = 1; port < 65536; port++) {
		if (!(ports[port / 8] & (1u << (port % 8))) ||
		    !port_sync((uint16_t)port, false, err, sizeof(err)))
			continue;
		failed++;
		if (report && off < len)
			off += (size_t)snprintf(report + off, len - off, "%s%s", off ? "; " : "", err);
	}
	return failed;
}

int listener_adopt(const struct ps_addr *a, int fd, char *err, size_t errlen)
{
	if (endpoint_find(a)) {
		close(fd); /* the same address twice: one listener is enough */
		return 0;
	}
	/* the old daemon set it up as endpoint_open does (non-blocking, V6ONLY, deferred
	 * accept, no Nagle): those are properties of the socket, shared with our copy */
	return endpoint_add(a, fd, err, errlen);
}

void listener_close_all(void)
{
	while (!list_empty(&dm->endpoints))
		endpoint_close(container_of(dm->endpoints.next, struct endpoint, link));
}

bool listener_is_bound(const struct ps_addr *a)
{
	return endpoint_find(a) != NULL;
}
