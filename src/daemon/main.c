/* main.c: portshared's start-up (arguments, config, state directory, control socket),
 * signals (SIGTERM: finish and exit; SIGHUP: reload; SIGUSR1: reopen the access log), and the orderly
 * shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "accesslog.h"
#include "admin.h"
#include "certs.h"
#include "conn.h"
#include "daemon-t.h"
#include "delegate.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "portshare.h"
#include "queue.h"
#include "route.h"
#include "metrics.h"
#include "metrics_http.h"
#include "sandbox.h"
#include "session.h"
#include "store.h"
#include "takeover.h"
#include "threads.h"
#include "tls.h"

#define DEFAULT_STATE_DIR "/var/lib/portshare"
#define STOP_POLL_MS 50

struct daemon *dm;

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: portshared [--socket PATH] [--state-dir DIR] [--config FILE] [--threads N] [--user "
	    "NAME]\n"
	    "                  [--no-seccomp] [--upgrade [--detach]]\n"
	    "       portshared --check-sandbox [--user NAME]\n"
	    "  --socket PATH     control socket (default " PS_DEFAULT_SOCKET ")\n"
	    "  --state-dir DIR   persistent state (default " DEFAULT_STATE_DIR ")\n"
	    "  --config FILE     listen addresses, AdminGroup and limits, one per line (portshare.conf(5))\n"
	    "  --threads N       event-loop threads, 1 to 4 (default: the CPUs it may run on, at most 4)\n"
	    "  --user NAME       the user to run as once set up (default " SANDBOX_DEFAULT_USER " if that\n"
	    "                    user exists, else the user it was started as); switching needs root.\n"
	    "                    The daemon keeps only CAP_NET_BIND_SERVICE and runs under a seccomp\n"
	    "                    allow list (not in sanitizer builds); it gives NAME the socket and\n"
	    "                    the state directory, and NAME must be able to read the config file\n"
	    "  --upgrade         take over from the portshared running on the socket: its listeners,\n"
	    "                    queues and connections, without refusing a connection; it then exits\n"
	    "  --detach          return once the daemon is ready (after --upgrade: once the takeover is\n"
	    "                    done), leaving it running in the background; exit 0 when it is, 1\n"
	    "                    when it could not start or take over (for systemd's ExecReload=)\n"
	    "  --no-seccomp      drop user and capabilities but load no seccomp filter (for valgrind;\n"
	    "                    debugging only)\n"
	    "  --check-sandbox   apply that drop and filter without starting the daemon, print the\n"
	    "                    ids and capabilities it ends with, try a forbidden call (execve);\n"
	    "                    exit 0 if it was refused\n"
	    "  -h, --help        this text\n"
	    "Runs in the foreground and logs to stderr. SIGTERM or SIGINT: finish in-flight requests\n"
	    "and exit 0; SIGHUP: reload the config file and the certificate bindings; SIGUSR1: reopen\n"
	    "the access log. Exit status: 0 after a stop, 1 when it cannot start, 2 on a usage error.\n");
}

static int mkdir_parents(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int state_dir_check(const char *dir)
{
	char probe[PATH_MAX];
	if (mkdir_parents(dir, 0755) < 0) {
		log_error("state directory %s: cannot create it: %s (choose one with --state-dir)", dir,
		          strerror(errno));
		return -1;
	}
	snprintf(probe, sizeof(probe), "%s/.portshared-probe", dir);
	int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("state directory %s is not writable: %s (choose one with --state-dir)", dir,
		          strerror(errno));
		return -1;
	}
	close(fd);
	unlink(probe);
	return 0;
}

static int control_socket_open(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("socket path %s is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, path);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir_parents(dir, 0755);
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("socket path %s exists and is not a socket; remove it or choose "
			          "another with --socket",
			          path);
			close(fd);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			struct ucred cred;
			socklen_t cl = sizeof(cred);
			getsockopt(probe, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
			log_error("socket path %s is busy: another portshared (pid %d) is running on it",
			          path, (int)cred.pid);
			close(probe);
			close(fd);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path); /* stale: left by a daemon that did not exit cleanly */
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		log_error("socket path %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	/* anyone may connect; what a caller may do is decided by its SO_PEERCRED */
	chmod(path, 0666);
	return fd;
}

/* After a handover the new daemon is the service's main process and speaks for it: a
 * STOPPING=1 from us would make systemd stop the unit (and kill the new daemon), a
 * RELOADING=1 (systemctl kill -s HUP reaches every process of the unit) would confuse it. */
static void notify_systemd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void notify_systemd(const char *fmt, ...)
{
	if (dm->threads[0].handing_over)
		return;
	char state[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	const char *ns = getenv("NOTIFY_SOCKET");
	if (!ns || (ns[0] != '/' && ns[0] != '@'))
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(ns);
	if (n >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, ns, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}

static void stop_check(struct loop_timer *t)
{
	if (!queue_busy() || loop_now_ms() >= dm->stop_deadline_ms) {
		loop_stop(dm->loop);
		return;
	}
	loop_timer_set(dm->loop, t, STOP_POLL_MS);
}

static void begin_stop(void)
{
	if (dm->stopping)
		return;
	dm->stopping = true;
	/* a real stop only: nothing is sent after a handover */
	notify_systemd("STOPPING=1\nSTATUS=stopping: in-flight requests have %u ms to finish",
	               dm->cfg.limits.shutdown_grace_ms);
	log_info("stopping: no new connections; in-flight requests have %u ms to finish",
	         dm->cfg.limits.shutdown_grace_ms);
	listener_close_all();
	threads_stop();
	if (dm->ctl.fd >= 0) { /* else a new daemon has the control socket (takeover.c) */
		loop_timer_cancel(dm->loop, &dm->ctl_pause);
		loop_io_del(dm->loop, &dm->ctl);
		close(dm->ctl.fd);
		dm->ctl.fd = -1;
		unlink(dm->socket_path);
	}
	conn_close_idle();
	dm->stop_deadline_ms = loop_now_ms() + dm->cfg.limits.shutdown_grace_ms;
	dm->stop_timer.fn = stop_check;
	stop_check(&dm->stop_timer);
}

static void reload(void)
{
	struct config next = {.path = dm->cfg.path};
	char err[1024];
	notify_systemd("RELOADING=1");
	/* the state directory's copies of the certificates, read again: new handshakes use them */
	if (certs_reload(err, sizeof(err)) < 0)
		log_error("certificate bindings not reloaded, the loaded ones stay: %s", err);
	if (config_load(&next, err, sizeof(err)) < 0) {
		/* one line: the reason's first 200 bytes */
		notify_systemd("READY=1\nSTATUS=accepting; reload refused, the running settings stay: %.200s",
		               err);
		log_error("reload refused, the running settings stay: %s", err);
		return;
	}
	dm->cfg = next;
	log_level_set((enum log_level)dm->cfg.log_level);
	accesslog_configure(dm->cfg.access_log, dm->cfg.access_log_json);
	threads_limits_changed();
	session_send_limits_all();
	if (!dm->stopping) {
		listener_resync(NULL, 0);
		delegate_routes_changed(); /* the snapshot carries the limits too */
	}
	log_info("reloaded %s", dm->cfg.path ? dm->cfg.path : "(defaults)");
	notify_systemd("READY=1\nSTATUS=accepting; reloaded %.300s",
	               dm->cfg.path ? dm->cfg.path : "(defaults)");
	listener_warn_ignored();
}

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct signalfd_siginfo si;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload();
		else if (si.ssi_signo == SIGUSR1)
			accesslog_reopen();
		else
			begin_stop();
	}
}

static void on_control(struct loop_io *io, uint32_t events)
{
	session_accept();
}

/* --detach: the command returns once the daemon is ready, and its exit status says whether
 * it got there. The fork comes first, before any thread, the sandbox or the takeover
 * session (whose peer is then this process, the one that stays); the parent waits on a
 * pipe for one byte. Its write end closes when the daemon exits, so a start that fails
 * ends the wait with the daemon's own exit status. */
static int detach_pipe = -1;

static int detach(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("--detach: pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("--detach: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		detach_pipe = p[1];
		/* out of the caller's session: a terminal's hangup or ^C is not for us */
		setsid();
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			close(null);
		}
		return 0;
	}
	close(p[1]);
	char c;
	ssize_t n;
	while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (n == 1)
		exit(0); /* ready: it runs on without us */
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	exit(WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
}

/* The daemon is ready (and has told systemd): the waiting command may return. */
static void detach_done(void)
{
	if (detach_pipe < 0)
		return;
	ssize_t w = write(detach_pipe, "r", 1);
	(void)w;
	close(detach_pipe);
	detach_pipe = -1;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", required_argument, 0, 's'},
	                                     {"state-dir", required_argument, 0, 'd'},
	                                     {"config", required_argument, 0, 'c'},
	                                     {"threads", required_argument, 0, 't'},
	                                     {"user", required_argument, 0, 'u'},
	                                     {"check-sandbox", no_argument, 0, 'k'},
	                                     {"upgrade", no_argument, 0, 'U'},
	                                     {"no-seccomp", no_argument, 0, 'S'},
	                                     {"detach", no_argument, 0, 'D'},
	                                     {"help", no_argument, 0, 'h'},
	                                     {0, 0, 0, 0}};
	static struct daemon d;
	dm = &d;
	dm->socket_path = PS_DEFAULT_SOCKET;
	dm->state_dir = DEFAULT_STATE_DIR;
	unsigned nthreads = threads_default();
	const char *user_name = NULL;
	bool check_sandbox = false;
	bool upgrade = false;
	bool detached = false;
	int o;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			dm->socket_path = optarg;
			break;
		case 'd':
			dm->state_dir = optarg;
			break;
		case 'c':
			dm->cfg.path = optarg;
			break;
		case 't': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n < 1 || n > THREADS_MAX) {
				fprintf(stderr,
				        "portshared: --threads takes a number from 1 to %d, not '%s'\n",
				        THREADS_MAX, optarg);
				return 2;
			}
			nthreads = (unsigned)n;
			break;
		}
		case 'u':
			user_name = optarg;
			break;
		case 'k':
			check_sandbox = true;
			break;
		case 'U':
			upgrade = true;
			break;
		case 'S':
			sandbox_skip_filter();
			break;
		case 'D':
			detached = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	char err[1024];
	/* names are resolved now, while every file and service is still at hand */
	struct sandbox_user user;
	if (sandbox_user_resolve(user_name, &user, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (check_sandbox)
		return sandbox_check(&user);
	if (detached && detach() < 0)
		return 1;
	if (config_load(&dm->cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	log_level_set((enum log_level)dm->cfg.log_level);
	if (state_dir_check(dm->state_dir) < 0)
		return 1;
	if (tls_global_init(err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	/* one daemon per state directory: locked before the settings are read, so no other
	 * daemon is writing them; --upgrade takes the running one's lock over, and reads
	 * them once it has it (takeover.c) */
	dm->state_lock = -1;
	if (!upgrade) {
		if ((dm->state_lock = store_lock(dm->state_dir, err, sizeof(err))) < 0) {
			log_error("%s", err);
			return 1;
		}
		if (admin_settings_load(err, sizeof(err)) < 0)
			return 1;
	}
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	list_init(&dm->endpoints);
	list_init(&dm->sessions);
	list_init(&dm->queues);
	list_init(&dm->conns);
	dm->loop = loop_new();
	dm->routes = route_new();
	dm->snapshot_fd = -1;
	dm->takeover_from.fd = -1;
	if (!dm->loop || !dm->routes || threads_init(nthreads) < 0) {
		log_error("out of memory at start-up");
		return 1;
	}
	/* with --upgrade the control socket (and its path) belong to the running daemon
	 * until we tell it we accept: a failure here must not unlink it */
	int ctl = upgrade ? takeover_connect(err, sizeof(err)) : control_socket_open(dm->socket_path);
	if (ctl < 0) {
		if (upgrade)
			log_error("%s", err);
		return 1;
	}
	dm->ctl = (struct loop_io){.fd = ctl, .fn = on_control};
	dm->sig = (struct loop_io){.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC), .fn = on_signal};
	if (dm->sig.fd < 0 || loop_io_add(dm->loop, &dm->ctl, EPOLLIN) < 0 ||
	    loop_io_add(dm->loop, &dm->sig, EPOLLIN) < 0) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		if (!upgrade)
			unlink(dm->socket_path);
		return 1;
	}
	/* opened before privileges go, as the error log is; reopened (SIGUSR1) as the daemon's
	 * user, in a directory it can write (docs/LOGGING.md) */
	tzset();
	accesslog_configure(dm->cfg.access_log, dm->cfg.access_log_json);
	/* everything that needs root is done; listeners are bound later, by the kept capability */
	const char *owned[] = {dm->state_dir, dm->socket_path, NULL};
	if (sandbox_apply(&user, owned, err, sizeof(err)) < 0) {
		log_error("%s", err);
		if (!upgrade)
			unlink(dm->socket_path);
		return 1;
	}
	if (threads_start() < 0) {
		log_error("cannot start the event-loop threads: %s", strerror(errno));
		if (!upgrade)
			unlink(dm->socket_path);
		threads_join();
		return 1;
	}
	if (upgrade) {
		/* the main process from now on: told before the old one may exit, so that systemd
		 * never sees the service without one (docs/SYSTEMD.md) */
		notify_systemd("MAINPID=%d", (int)getpid());
		takeover_start();
	} else {
		/* no app yet, but an admin's redirect listens on its port from the start */
		char report[1024];
		if (listener_resync(report, sizeof(report)))
			log_warning("%s", report);
	}
	metrics_http_start();
	log_info("ready (socket %s, state %s, pid %d, %u thread%s)", dm->socket_path, dm->state_dir,
	         (int)getpid(), dm->nthreads, dm->nthreads == 1 ? "" : "s");
	/* after an upgrade this process is the service's main one (NotifyAccess=all) */
	if (upgrade)
		notify_systemd("READY=1\nMAINPID=%d\nSTATUS=accepting; took over from pid %d", (int)getpid(),
		               (int)dm->takeover_old_pid);
	else
		notify_systemd("READY=1\nSTATUS=accepting (socket %.200s)", dm->socket_path);
	detach_done();
	int rc = loop_run(dm->loop);
	metrics_http_stop();
	if (dm->threads[0].handing_over)
		metrics_carry_write(); /* before the link closes at exit: the new daemon reads it then */
	listener_close_all();
	threads_join();
	accesslog_flush_all(); /* the live sessions' records, before their connections go */
	conn_close_all();
	session_close_all();
	accesslog_close();
	delegate_close();
	route_free(dm->routes);
	certs_shutdown();
	tls_global_deinit();
	loop_free(dm->loop);
	if (dm->ctl.fd >= 0) {
		close(dm->ctl.fd);
		unlink(dm->socket_path);
	}
	if (dm->takeover_from.fd >= 0)
		close(dm->takeover_from.fd);
	log_info("stopped");
	return rc < 0 ? 1 : 0;
}
