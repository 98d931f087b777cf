/* apps_proc.c: the processes of portshare-apps' apps: a command started on the first
 * request (the proxy's hooks hold the request until it accepts), stopped when idle,
 * started again after a crash with a backoff or failed by rapid-fail protection, stopped,
 * started and restarted (overlapped, as IIS recycles) by command; its stdout and stderr
 * go to a log file of its own (docs/ADAPTERS.md). */
#include "apps_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "apps_native.h"
#include "launch.h"
#include "portshare.h"

#define APPS_READY_MS 60000 /* for a started command to accept a connection */
#define APPS_BACKOFF_MAX_MS 30000
#define APPS_DRAIN_MS 90000 /* a restart's old process: its requests' time to finish (IIS's 90 s) */

extern char **environ;

const char *const apps_proc_state_names[] = {"idle",    "starting", "running", "stopping",
                                             "backoff", "stopped",  "failed"};
pthread_mutex_t apps_proc_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t apps_proc_cv = PTHREAD_COND_INITIALIZER;
const char *apps_proc_log_dir = APPS_DEFAULT_LOG_DIR;

/* The app's log file, DIR/NAME.log: appended, owned by the app's user (who may read
 * what the app wrote), 0640. -1 when it cannot be opened: the app's output then goes to
 * ours (journald's, under systemd), and our log says why. */
static int apps_log_open(const struct app *a)
{
	if (!apps_proc_log_dir)
		return -1;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.log", apps_proc_log_dir, a->name);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0640);
	struct stat st;
	/* we chown what we opened: never a link to another file, nor a FIFO */
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)) {
		close(fd);
		fd = -1;
		errno = EPERM;
	}
	if (fd < 0 || fchown(fd, a->uid, a->gid) < 0 || fchmod(fd, 0640) < 0) {
		fprintf(stderr, "portshare-apps: %s: cannot use %s for its output: %s\n", a->name, path,
		        errno == EPERM ? "not a plain file of its own" : strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Starts a's command with {port}/$PORT = port and {socket} = sock, or, a libportshare
 * app, with $PORTSHARE_SOCKET and $PORTSHARE_QUEUE (under apps_proc_mu): its pid, or -1
 * after saying why. The child only makes system calls between fork and exec:
 * this process has threads. */
static pid_t apps_exec(struct app *a, const char *port, const char *sock)
{
	size_t ncmd = 0;
	while (a->cmd[ncmd])
		ncmd++;
	char **argv = calloc(ncmd + 1, sizeof(char *));
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **envp = calloc(nenv + 6, sizeof(char *));
	char port_env[24], home_env[PATH_MAX + 8], user_env[64], logname_env[72];
	char socket_env[PATH_MAX + 24], queue_env[sizeof(a->queue) + 24];
	pid_t pid = -1;
	int log_fd = -1;
	if (!argv || !envp)
		goto out;
	for (size_t i = 0; i < ncmd; i++)
		if (!(argv[i] = launch_substitute(a->cmd[i], port, sock)))
			goto out;
	size_t k = 0;
	for (size_t i = 0; i < nenv; i++) {
		const char *e = environ[i];
		if (!strncmp(e, "PORT=", 5) || !strncmp(e, PS_SOCKET_ENV "=", strlen(PS_SOCKET_ENV) + 1) ||
		    !strncmp(e, PS_QUEUE_ENV "=", strlen(PS_QUEUE_ENV) + 1) ||
		    (a->user &&
		     (!strncmp(e, "HOME=", 5) || !strncmp(e, "USER=", 5) || !strncmp(e, "LOGNAME=", 8))))
			continue;
		envp[k++] = environ[i];
	}
	if (a->native) {
		snprintf(socket_env, sizeof(socket_env), PS_SOCKET_ENV "=%s", apps_native_socket(a));
		snprintf(queue_env, sizeof(queue_env), PS_QUEUE_ENV "=%s", a->queue);
		envp[k++] = socket_env;
		envp[k++] = queue_env;
	} else {
		snprintf(port_env, sizeof(port_env), "PORT=%s", port);
		envp[k++] = port_env;
	}
	if (a->user) {
		snprintf(home_env, sizeof(home_env), "HOME=%s", a->home);
		snprintf(user_env, sizeof(user_env), "USER=%s", a->user);
		snprintf(logname_env, sizeof(logname_env), "LOGNAME=%s", a->user);
		envp[k++] = home_env;
		envp[k++] = user_env;
		envp[k++] = logname_env;
	}
	if (a->use_socket)
		unlink(sock); /* left by an earlier run: the app must bind anew */
	log_fd = apps_log_open(a);
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
		if (log_fd >= 0 && (dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0))
			_exit(126);
		if (a->user && (setgroups((size_t)a->ngroups, a->groups) < 0 || setgid(a->gid) < 0 ||
		                setuid(a->uid) < 0 || (chdir(a->home) < 0 && chdir("/") < 0))) {
			static const char msg[] = "portshare-apps: cannot become the app's user\n";
			if (write(2, msg, sizeof(msg) - 1) < 0)
				_exit(126);
			_exit(126);
		}
		execvpe(argv[0], argv, envp);
		const char *parts[] = {"portshare-apps: cannot run ", argv[0], ": ", strerror(errno), "\n"};
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			if (write(2, parts[i], strlen(parts[i])) < 0)
				break;
		_exit(127);
	}
	setpgid(pid, pid); /* both sides, so that a kill of the group never misses */
	fprintf(stderr, "portshare-apps: %s: started %s (pid %d, %s %s)\n", a->name, argv[0], (int)pid,
	        a->native       ? "queue"
	        : a->use_socket ? "socket"
	                        : "port",
	        a->native       ? a->queue
	        : a->use_socket ? sock
	                        : port);
out:
	if (pid < 0)
		fprintf(stderr, "portshare-apps: %s: cannot start: %s\n", a->name, strerror(errno));
	if (log_fd >= 0)
		close(log_fd);
	if (argv)
		for (size_t i = 0; i < ncmd; i++)
			free(argv[i]);
	free(argv);
	free(envp);
	return pid;
}

/* How long a dead app waits before it is started again: 2, 4, ... 30 s. */
static int64_t apps_backoff_ms(int failures)
{
	int64_t wait = (int64_t)1000 << (failures > 5 ? 5 : failures);
	return wait > APPS_BACKOFF_MAX_MS ? APPS_BACKOFF_MAX_MS : wait;
}

/* The live processes among pids (the APPS_PROCS_MAX slots of a set). */
int apps_proc_count(const pid_t *pids)
{
	int n = 0;
	for (int i = 0; i < APPS_PROCS_MAX; i++)
		n += pids[i] > 0;
	return n;
}

/* pid's slot in pids, or -1. */
static int apps_slot(const pid_t *pids, pid_t pid)
{
	for (int i = 0; i < APPS_PROCS_MAX; i++)
		if (pids[i] > 0 && pids[i] == pid)
			return i;
	return -1;
}

/* sig to the process group of each process of a set. */
static void apps_kill(const pid_t *pids, int sig)
{
	for (int i = 0; i < APPS_PROCS_MAX; i++)
		if (pids[i] > 0)
			kill(-pids[i], sig);
}

/* The live pids of a set as "1, 2, 3" in buf (for our log and app show). */
const char *apps_proc_pids(const pid_t *pids, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int i = 0; i < APPS_PROCS_MAX && off < len; i++)
		if (pids[i] > 0)
			off += (size_t)snprintf(buf + off, len - off, "%s%d", off ? ", " : "", (int)pids[i]);
	return buf;
}

/* Starts a's command in slot i on its current address (under apps_proc_mu). */
static void apps_spawn_slot(struct app *a, int i)
{
	pid_t pid = apps_exec(a, a->port[i], a->sock[i]);
	a->pid[i] = pid > 0 ? pid : 0;
	a->joined[i] = false;
	a->died_at[i] = backend_now_ms(); /* a failed start waits a backoff as a death does */
}

/* Starts a's command in each of its slots (a libportshare app's N at once, in parallel:
 * each joins the queue on its own) (under apps_proc_mu). */
static void apps_spawn(struct app *a)
{
	for (int i = 0; i < a->nprocs; i++)
		if (a->pid[i] <= 0)
			apps_spawn_slot(a, i);
	a->state = apps_proc_count(a->pid) ? APP_STARTING : APP_BACKOFF;
	a->since = backend_now_ms();
	a->demand = false;
}

/* The slots whose process died while others serve on: started again once their backoff
 * is over (not during a restart: its new set replaces them all). */
static void apps_respawn(struct app *a, int64_t now)
{
	if (apps_proc_count(a->next_pid))
		return;
	for (int i = 0; i < a->nprocs; i++)
		if (a->pid[i] <= 0 && now - a->died_at[i] >= apps_backoff_ms(a->failures)) {
			apps_spawn_slot(a, i);
			fprintf(stderr, "portshare-apps: %s: started again in slot %d\n", a->name, i);
		}
}

/* A libportshare app's controller saw a request wait with no process to take it: the app
 * starts now when idle, or once it may (apps_proc_tick: after a stop or the backoff). */
void apps_proc_demand(struct app *a)
{
	pthread_mutex_lock(&apps_proc_mu);
	a->demand = true;
	a->last_use = backend_now_ms();
	if (a->state == APP_IDLE && !a->deleted)
		apps_spawn(a);
	pthread_mutex_unlock(&apps_proc_mu);
}

/* SIGTERM (or SIGKILL) to the process groups of a's processes: the one serving, the new
 * one of a restart and the old one it replaces. */
void apps_proc_signal(const struct app *a, int sig)
{
	apps_kill(a->pid, sig);
	apps_kill(a->next_pid, sig);
	apps_kill(a->old_pid, sig);
}

void apps_proc_term(struct app *a)
{
	/* a set that has its SIGTERM already is draining: a second one would cut that short
	 * (examples/serve.h exits at once on a second SIGINT only, but an app may on any) */
	if (a->state != APP_STOPPING)
		apps_kill(a->pid, SIGTERM);
	apps_kill(a->next_pid, SIGTERM);
	if (!a->old_term_at && apps_proc_count(a->old_pid)) {
		apps_kill(a->old_pid, SIGTERM);
		a->old_term_at = backend_now_ms();
	}
}

/* Stops a's processes (under apps_proc_mu): SIGTERM to their groups, SIGKILL after
 * APPS_STOP_MS; then the app is in state `to` (APP_IDLE: the next request starts it;
 * APP_STOPPED; APP_FAILED). */
static void apps_stop(struct app *a, enum app_state to)
{
	a->stop_to = to;
	if (!apps_proc_count(a->pid) || a->state == APP_STOPPING)
		return;
	apps_kill(a->pid, SIGTERM);
	a->state = APP_STOPPING;
	a->since = backend_now_ms();
}

/* Whether an HTTP app's requests have somewhere to go: one of its processes accepts (a
 * running app whose every process died or is starting again waits as a starting one). */
static bool apps_serving(const struct app *a)
{
	if (a->native)
		return true;
	for (int i = 0; i < a->cfg.ntargets; i++)
		if (!atomic_load(&a->cfg.targets[i]->down))
			return true;
	return false;
}

/* The proxy's hook before each request: the app is started when it is not running and
 * the request waits until it accepts connections (activation). A stopped or failed app's
 * requests are answered 503 at once (IIS answers so while an app pool is stopped). */
static const char *apps_before_request(void *arg)
{
	static const char not_started[] = "503 Service Unavailable: the app could not be started\n";
	static const char stopped[] = "503 Service Unavailable: the app is stopped\n";
	static const char failed[] = "503 Service Unavailable: the app is stopped after repeated failures\n";
	struct app *a = arg;
	if (!a->cmd)
		return NULL;
	pthread_mutex_lock(&apps_proc_mu);
	a->active++;
	a->last_use = backend_now_ms();
	int64_t deadline = backend_now_ms() + APPS_READY_MS;
	const char *refused = not_started;
	while (!a->deleted && backend_now_ms() < deadline) {
		if ((a->state == APP_RUNNING && apps_serving(a)) || a->state == APP_STOPPED ||
		    a->state == APP_FAILED) {
			refused = a->state == APP_RUNNING ? NULL : a->state == APP_STOPPED ? stopped : failed;
			break;
		}
		if (a->state == APP_IDLE)
			apps_spawn(a);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += APPS_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&apps_proc_cv, &apps_proc_mu, &ts);
	}
	if (refused) {
		a->active--;
		if (refused == not_started)
			fprintf(stderr, "portshare-apps: %s: the app is not accepting connections: 503\n",
			        a->name);
	}
	pthread_mutex_unlock(&apps_proc_mu);
	return refused;
}

static void apps_after_request(void *arg)
{
	struct app *a = arg;
	if (!a->cmd)
		return;
	pthread_mutex_lock(&apps_proc_mu);
	a->active--;
	a->last_use = backend_now_ms();
	pthread_mutex_unlock(&apps_proc_mu);
}

static void apps_deleted(void *arg)
{
	struct app *a = arg;
	fprintf(stderr, "portshare-apps: %s: queue %s was deleted\n", a->name, a->queue);
}

/* Crashes within the app's rapid-fail interval before now. */
int apps_proc_crashes(const struct app *a, int64_t now)
{
	int n = 0;
	for (int i = 0; i < APPS_RAPID_FAIL_MAX; i++)
		n += a->crash_at[i] && now - a->crash_at[i] < (int64_t)a->rapid_fail_interval * 1000;
	return n;
}

/* Removes a unix socket target's file (its process is gone or never bound it). */
void apps_proc_target_unlink(const struct backend_target *t)
{
	if (t && t->addr.sa.ss_family == AF_UNIX)
		unlink(((const struct sockaddr_un *)&t->addr.sa)->sun_path);
}

/* A restart's new processes take the requests that come next; the ones they replace (if
 * they still run) drain: apps_tick_old stops them once no request uses their targets. */
static void apps_switch(struct app *a, int64_t now)
{
	/* a libportshare app has no target: both sets take requests from the queue */
	if (!a->native) {
		a->nold = proxy_target_swap(&a->cfg, a->next_targets, a->nprocs, a->old_targets);
		memset(a->next_targets, 0, sizeof(a->next_targets));
	}
	memcpy(a->old_pid, a->pid, sizeof(a->old_pid));
	a->old_since = now;
	a->old_term_at = 0;
	memcpy(a->pid, a->next_pid, sizeof(a->pid));
	memcpy(a->joined, a->next_joined, sizeof(a->joined));
	memcpy(a->port, a->next_port, sizeof(a->port));
	memcpy(a->sock, a->next_sock, sizeof(a->sock));
	memset(a->next_pid, 0, sizeof(a->next_pid));
	memset(a->next_joined, 0, sizeof(a->next_joined));
}

/* Whether every live process of a set has joined the queue (and one at least). */
static bool apps_joined(const pid_t *pids, const bool *joined)
{
	int n = 0;
	for (int i = 0; i < APPS_PROCS_MAX; i++) {
		if (pids[i] > 0 && !joined[i])
			return false;
		n += pids[i] > 0;
	}
	return n > 0;
}

/* Whether t's address accepts a connection now (a copy in *addr): apps_proc_mu is let go
 * meanwhile, so the caller checks again that its process is still the one it probed. */
static bool apps_accepts(const struct backend_target *t, struct backend_addr *addr)
{
	*addr = t->addr;
	pthread_mutex_unlock(&apps_proc_mu);
	bool up = launch_accepts(addr);
	pthread_mutex_lock(&apps_proc_mu);
	return up;
}

/* An HTTP app's set of processes (pids) and their targets, one a slot: each target that
 * is down while its process runs (started, started again) is probed, and takes requests
 * once it accepts. Returns how many of the set's processes accept (all: *all). The
 * probes let go of apps_proc_mu: a target replaced meanwhile (its gen is unique) is left
 * alone. The first failed probe's address goes to *addr. */
static int apps_probe(struct app *a, const pid_t *pids, struct backend_target *const *ts, bool *all,
                      struct backend_addr *addr)
{
	int up = 0, live = 0;
	for (int i = 0; i < a->nprocs; i++) {
		struct backend_target *t = ts[i];
		if (!t || pids[i] <= 0)
			continue;
		live++;
		if (atomic_load(&t->down)) {
			unsigned gen = t->gen;
			struct backend_addr probed;
			bool ok = apps_accepts(t, &probed);
			t = ts[i];
			if (!t || t->gen != gen || pids[i] <= 0)
				continue; /* replaced or gone meanwhile */
			if (ok) {
				atomic_store(&t->down, false);
				pthread_cond_broadcast(&apps_proc_cv); /* requests waiting for one */
			} else if (addr && !addr->name[0])
				*addr = probed;
		}
		up += !atomic_load(&t->down);
	}
	*all = live > 0 && up == live;
	return up;
}

/* A target for a process of a's at port or sock (a {socket} app), of generation gen in
 * the set whose first is floor: down until the process accepts. NULL with *why. */
static struct backend_target *apps_target(const struct app *a, const char *port, const char *sock,
                                          unsigned gen, unsigned floor, const char **why)
{
	char spec[sizeof(a->sock[0]) + 8];
	struct backend_addr addr;
	struct backend_target *t = NULL;
	if (a->use_socket)
		snprintf(spec, sizeof(spec), "unix:%s", sock);
	else
		snprintf(spec, sizeof(spec), "http://127.0.0.1:%s", port);
	*why = "out of memory";
	if (!backend_addr_parse(spec, &addr, why) || !(t = backend_target_new(&addr, gen)))
		return NULL;
	t->floor = floor;
	atomic_store(&t->down, true);
	return t;
}

int apps_proc_targets(struct app *a)
{
	if (!a->cmd || a->native || a->cfg.ntargets)
		return 0; /* a --backend queue: proxy_start makes its one target */
	for (int i = 0; i < a->nprocs; i++) {
		const char *why;
		if (!(a->cfg.targets[i] = apps_target(a, a->port[i], a->sock[i], (unsigned)i, 0, &why))) {
			fprintf(stderr, "portshare-apps: %s: %s\n", a->name, why);
			for (int k = 0; k < i; k++)
				free(a->cfg.targets[k]);
			return -1;
		}
	}
	a->cfg.ntargets = a->nprocs;
	a->gen = (unsigned)a->nprocs - 1;
	return 0;
}

/* A restart's new processes: switched to once they accept (a libportshare app's: once
 * every one has joined the queue), abandoned after APPS_READY_MS. */
static void apps_tick_next(struct app *a, int64_t now)
{
	struct backend_addr addr = {.name = ""};
	pid_t pid = a->next_pid[0];
	bool up = a->native;
	if (a->native)
		up = apps_joined(a->next_pid, a->next_joined);
	else
		apps_probe(a, a->next_pid, a->next_targets, &up, &addr);
	const char *where = a->native            ? a->queue
	                    : addr.name[0]       ? addr.name
	                    : a->next_targets[0] ? a->next_targets[0]->addr.name
	                                         : "";
	if (a->next_pid[0] != pid || a->state != APP_RUNNING)
		return;
	char next[APPS_PIDS_TEXT], cur[APPS_PIDS_TEXT];
	apps_proc_pids(a->next_pid, next, sizeof(next));
	apps_proc_pids(a->pid, cur, sizeof(cur));
	if (up) {
		fprintf(stderr,
		        "portshare-apps: %s: the new pid %s %s %s: requests go to it; the old pid "
		        "%s stops once its requests are done\n",
		        a->name, next, a->native ? "joined" : "accepts on", where, cur);
		apps_switch(a, now);
		a->since = a->last_use = now;
	} else if (now - a->next_since > APPS_READY_MS) {
		fprintf(stderr,
		        "portshare-apps: %s: error: the new pid %s did not %s %s within %d s: stopping it; "
		        "pid %s serves on\n",
		        a->name, next, a->native ? "join" : "accept a connection on", where,
		        APPS_READY_MS / 1000, cur);
		apps_kill(a->next_pid, SIGKILL);
		a->next_since = now; /* reaped soon; no second kill every tick */
	}
}

/* The process a restart replaced: SIGTERM once no request uses its target (or after
 * APPS_DRAIN_MS, IIS's shutdownTimeLimit), SIGKILL APPS_STOP_MS later; its target is
 * freed once it is gone and unused. A libportshare app's old process has no target: it
 * gets SIGTERM at once, and its library finishes the requests it has. */
static void apps_tick_old(struct app *a, int64_t now)
{
	int users = 0;
	for (int i = 0; i < a->nold; i++)
		users += atomic_load(&a->old_targets[i]->users);
	bool old = apps_proc_count(a->old_pid) > 0;
	if (old && !a->old_term_at && (users == 0 || now - a->old_since > APPS_DRAIN_MS)) {
		char pids[APPS_PIDS_TEXT];
		fprintf(stderr, "portshare-apps: %s: %s: stopping the old pid %s\n", a->name,
		        users ? "drain time is over" : "no request uses it any more",
		        apps_proc_pids(a->old_pid, pids, sizeof(pids)));
		apps_kill(a->old_pid, SIGTERM);
		a->old_term_at = now;
	} else if (old && a->old_term_at && now - a->old_term_at > APPS_STOP_MS) {
		apps_kill(a->old_pid, SIGKILL);
	}
	if (!old && users == 0 && a->nold) {
		for (int i = 0; i < a->nold; i++) {
			apps_proc_target_unlink(a->old_targets[i]);
			free(a->old_targets[i]);
			a->old_targets[i] = NULL;
		}
		a->nold = 0;
	}
}

/* Every APPS_TICK_MS: whether the app's state needs a change. Under apps_proc_mu. */
void apps_proc_tick(struct app *a, int64_t now)
{
	if (a->state == APP_STOPPING && now - a->since > APPS_STOP_MS)
		apps_kill(a->pid, SIGKILL);
	if (a->nold || apps_proc_count(a->old_pid))
		apps_tick_old(a, now);
	if (!a->cmd || a->deleted || !a->registered)
		return;
	if (apps_proc_count(a->next_pid))
		apps_tick_next(a, now);
	switch (a->state) {
	case APP_STARTING: {
		struct backend_addr addr = {.name = ""};
		pid_t pid = a->pid[0];
		/* a libportshare app is running once its processes have joined its queue (the
		 * controller sees them in the daemon's status, apps_native.c); an HTTP app once one
		 * of its processes accepts (the others take requests as they do) */
		bool all, up = a->native ? apps_joined(a->pid, a->joined)
		                         : apps_probe(a, a->pid, a->cfg.targets, &all, &addr) > 0;
		if (a->state != APP_STARTING || a->pid[0] != pid)
			break;
		if (up) {
			a->state = APP_RUNNING;
			a->since = now;
			a->last_use = now;
			pthread_cond_broadcast(&apps_proc_cv);
		} else if (now - a->since > APPS_READY_MS) {
			fprintf(stderr, "portshare-apps: %s: %s %s within %d s: stopping it\n", a->name,
			        a->native ? "it did not join queue" : "no connection accepted on",
			        a->native ? a->queue : addr.name, APPS_READY_MS / 1000);
			apps_stop(a, APP_IDLE);
		} else {
			apps_respawn(a, now);
		}
		break;
	}
	case APP_RUNNING:
		/* an upgraded connection (WebSocket) is a request that lasts: while one is open
		 * the app is not idle, and its idle time counts from the last one's end */
		for (int i = 0; !a->native && i < a->cfg.ntargets; i++)
			if (atomic_load(&a->cfg.targets[i]->users) > 0)
				a->last_use = now;
		if (!a->always_running && a->active == 0 && !apps_proc_count(a->next_pid) &&
		    now - a->last_use >= (int64_t)a->idle_timeout * 1000) {
			char pids[APPS_PIDS_TEXT];
			fprintf(stderr, "portshare-apps: %s: idle for %d s: stopping pid %s\n", a->name,
			        a->idle_timeout, apps_proc_pids(a->pid, pids, sizeof(pids)));
			apps_stop(a, APP_IDLE);
		} else {
			apps_respawn(a, now);
			bool all;
			if (!a->native) /* processes started again take requests once they accept */
				apps_probe(a, a->pid, a->cfg.targets, &all, NULL);
		}
		break;
	case APP_BACKOFF:
		if (now - a->since >= apps_backoff_ms(a->failures))
			apps_spawn(a);
		break;
	case APP_IDLE:
		if (a->always_running || a->demand)
			apps_spawn(a);
		break;
	case APP_STOPPING:
	case APP_STOPPED:
	case APP_FAILED:
		break;
	}
}

/* A serving process (slot) died while it was meant to run: a crash unless it exited 0,
 * counted for rapid-fail protection whichever of the app's processes it was. The slot is
 * started again after a backoff while the others serve on, or the whole app is once none
 * is left; or the app fails (rapid-fail protection: the others are stopped); or a
 * restart's new processes, already starting, take over. */
static void apps_died(struct app *a, int slot, pid_t pid, int status, int64_t now)
{
	a->died_at[slot] = now; /* its backoff, should it be started again alone */
	if (status != 0) {
		a->crash_at[a->crash_next] = now;
		a->crash_next = (a->crash_next + 1) % APPS_RAPID_FAIL_MAX;
	}
	/* a run of a minute or more counts as healthy: the backoff starts over */
	if (a->state == APP_RUNNING && now - a->since > 60000)
		a->failures = 0;
	a->failures++;
	int recent = apps_proc_crashes(a, now);
	bool others = apps_proc_count(a->pid) > 0;
	char next[APPS_PIDS_TEXT];
	apps_proc_pids(a->next_pid, next, sizeof(next));
	if (next[0]) {
		fprintf(stderr, "portshare-apps: %s: pid %d died (status %d): the new pid %s %s\n", a->name,
		        (int)pid, status, next, others ? "will replace it" : "takes over");
		if (!others) {
			int64_t since = a->next_since;
			apps_switch(a, now);
			a->state = APP_STARTING;
			a->since = since;
		}
	} else if (status != 0 && a->rapid_fail_count > 0 && recent >= a->rapid_fail_count) {
		fprintf(stderr,
		        "portshare-apps: %s: error: pid %d died (status %d), %d crashes within %d s: "
		        "rapid-fail protection stops the app; its URLs answer 503 until `portsharectl "
		        "app start %s`\n",
		        a->name, (int)pid, status, recent, a->rapid_fail_interval, a->name);
		a->state = others ? a->state : APP_FAILED;
		apps_stop(a, APP_FAILED);
	} else if (others) {
		fprintf(stderr,
		        "portshare-apps: %s: pid %d died (status %d): starting it again in %d s; the "
		        "others serve on\n",
		        a->name, (int)pid, status, (int)(apps_backoff_ms(a->failures) / 1000));
	} else {
		fprintf(stderr,
		        "portshare-apps: %s: pid %d died (status %d): starting it again in "
		        "%d s\n",
		        a->name, (int)pid, status, (int)(apps_backoff_ms(a->failures) / 1000));
		a->state = APP_BACKOFF;
	}
}

/* A restart's new targets, dropped (its processes are gone or never started). */
static void apps_next_free(struct app *a)
{
	for (int i = 0; i < APPS_PROCS_MAX; i++) {
		apps_proc_target_unlink(a->next_targets[i]);
		free(a->next_targets[i]);
		a->next_targets[i] = NULL;
	}
}

/* A child ended: one serving (stopped by us, or died), one of a restart's new set before
 * the switch, or one of the old set a restart replaced. */
bool apps_proc_reaped(struct app *a, pid_t pid, int status, int64_t now)
{
	int i = apps_slot(a->old_pid, pid);
	if (i >= 0) {
		fprintf(stderr, "portshare-apps: %s: the old pid %d stopped (status %d)\n", a->name, (int)pid,
		        status);
		a->old_pid[i] = 0;
		return true;
	}
	if (apps_slot(a->next_pid, pid) >= 0) {
		fprintf(stderr,
		        "portshare-apps: %s: error: the new pid %d ended (status %d) before it "
		        "%s: the restart is abandoned\n",
		        a->name, (int)pid, status, a->native ? "joined the queue" : "accepted a connection");
		a->last_status = status;
		apps_kill(a->next_pid, SIGKILL); /* the rest of the new set, if any */
		memset(a->next_pid, 0, sizeof(a->next_pid));
		apps_next_free(a);
		return true;
	}
	if ((i = apps_slot(a->pid, pid)) < 0)
		return false;
	a->pid[i] = 0;
	a->joined[i] = false;
	if (!a->native && i < a->cfg.ntargets) /* no request goes to it until it accepts again */
		atomic_store(&a->cfg.targets[i]->down, true);
	a->last_status = status;
	enum app_state was = a->state;
	if (a->state == APP_STOPPING || a->deleted) {
		fprintf(stderr, "portshare-apps: %s: pid %d stopped (status %d)\n", a->name, (int)pid,
		        status);
		if (!apps_proc_count(a->pid)) {
			a->state = a->deleted ? APP_IDLE : a->stop_to;
			a->failures = 0;
		}
	} else {
		apps_died(a, i, pid, status, now);
	}
	if (a->state != was && a->state != APP_STARTING)
		a->since = now;
	pthread_cond_broadcast(&apps_proc_cv);
	return true;
}
/* app stop: the process stopped (SIGTERM, SIGKILL after APPS_STOP_MS), a restart in
 * progress abandoned; its URLs answer 503 until app start. Under apps_proc_mu. */
int apps_proc_stop(struct app *a, FILE *out)
{
	if (a->state == APP_STOPPED) {
		fprintf(out, "app %s is stopped already\n", a->name);
		return 0;
	}
	apps_kill(a->next_pid, SIGTERM);
	if (apps_proc_count(a->old_pid) && !a->old_term_at) {
		apps_kill(a->old_pid, SIGTERM);
		a->old_term_at = backend_now_ms();
	}
	char pids[APPS_PIDS_TEXT];
	if (apps_proc_pids(a->pid, pids, sizeof(pids))[0]) {
		apps_stop(a, APP_STOPPED);
		fprintf(out, "app %s: stopping pid %s; its URLs answer 503 until app start %s\n", a->name,
		        pids, a->name);
	} else {
		a->state = APP_STOPPED;
		a->since = backend_now_ms();
		fprintf(out, "app %s stopped; its URLs answer 503 until app start %s\n", a->name, a->name);
	}
	return 0;
}

/* app start: a stopped or failed app (rapid-fail protection) serves again, from the next
 * request (at once when always running). Under apps_proc_mu. */
int apps_proc_start(struct app *a, FILE *out)
{
	const char *when = a->always_running ? "it starts now" : "the next request starts it";
	if (a->state == APP_STOPPING && a->stop_to != APP_IDLE) {
		a->stop_to = APP_IDLE; /* stopped, or failed with processes still stopping */
		a->failures = 0;
		memset(a->crash_at, 0, sizeof(a->crash_at));
		fprintf(out, "app %s started: %s once its old process is gone\n", a->name, when);
		return 0;
	}
	if (a->state != APP_STOPPED && a->state != APP_FAILED) {
		fprintf(out, "app %s is %s already\n", a->name, apps_proc_state_names[a->state]);
		return 0;
	}
	a->state = APP_IDLE;
	a->since = a->last_use = backend_now_ms();
	a->failures = 0;
	memset(a->crash_at, 0, sizeof(a->crash_at));
	fprintf(out, "app %s started: %s\n", a->name, when);
	return 0;
}

/* A restart's new address for slot i (target gen a->gen + 1 + i, its set's first
 * a->gen + 1): a new loopback port, or a new socket in the app's directory; NULL after
 * saying why in out. Down until its process accepts. */
static struct backend_target *apps_next_target(struct app *a, int i, FILE *out)
{
	unsigned gen = a->gen + 1 + (unsigned)i;
	int p = apps_free_port(a->next_port, i);
	a->next_sock[i][0] = '\0';
	if (a->use_socket)
		snprintf(a->next_sock[i], sizeof(a->next_sock[i]), "%s/app.%u.sock", a->sock_dir, gen);
	const char *why = NULL;
	struct backend_target *t =
	    p < 0 ? NULL : apps_target(a, a->next_port[i], a->next_sock[i], gen, a->gen + 1, &why);
	if (!t)
		fprintf(out, "app %s: cannot restart: %s\n", a->name, p < 0 ? strerror(errno) : why);
	return t;
}

/* app restart, overlapped as IIS recycles an app pool: a new process on a new port (or
 * socket) while the old one serves on; the proxy switches to it once it accepts, and the
 * old one is stopped once the requests it has are done (apps_tick_next, apps_tick_old).
 * A libportshare app's new processes (all its --workers, as one set) join the same
 * queue; once every one has (apps_native.c sees them in the daemon's status) the old set
 * gets SIGTERM and its library finishes the requests it has. Under apps_proc_mu. */
int apps_proc_restart(struct app *a, FILE *out)
{
	if (a->state == APP_STOPPED || a->state == APP_FAILED)
		return apps_proc_start(a, out);
	if (a->state == APP_IDLE) {
		fprintf(out, "app %s is not running: the next request starts it\n", a->name);
		return 0;
	}
	bool restarting = apps_proc_count(a->next_pid) || a->nold || apps_proc_count(a->old_pid);
	if (a->state != APP_RUNNING || restarting) {
		fprintf(out, "app %s is %s: try again once it is running\n", a->name,
		        restarting ? "restarting already" : apps_proc_state_names[a->state]);
		return -1;
	}
	for (int i = 0; i < a->nprocs; i++) {
		if (!a->native && !(a->next_targets[i] = apps_next_target(a, i, out))) {
			apps_next_free(a);
			return -1;
		}
	}
	for (int i = 0; i < a->nprocs; i++) {
		pid_t pid = apps_exec(a, a->next_port[i], a->next_sock[i]);
		if (pid < 0) {
			fprintf(out, "app %s: cannot start its command: %s\n", a->name, strerror(errno));
			apps_kill(a->next_pid, SIGKILL);
			memset(a->next_pid, 0, sizeof(a->next_pid));
			apps_next_free(a);
			return -1;
		}
		a->next_pid[i] = pid;
		a->next_joined[i] = false;
	}
	a->gen += (unsigned)a->nprocs;
	a->next_since = backend_now_ms();
	char next[APPS_PIDS_TEXT], cur[APPS_PIDS_TEXT], where[PROXY_TARGETS_MAX * 24] = "";
	for (int i = 0, off = 0; !a->native && i < a->nprocs && off < (int)sizeof(where); i++)
		off += snprintf(where + off, sizeof(where) - (size_t)off, "%s%s", i ? ", " : "",
		                a->next_targets[i]->addr.name);
	fprintf(out,
	        "app %s: restarting: new pid %s %s %s; pid %s serves until it %s, then stops once "
	        "its requests are done\n",
	        a->name, apps_proc_pids(a->next_pid, next, sizeof(next)), a->native ? "joins queue" : "on",
	        a->native ? a->queue : where, apps_proc_pids(a->pid, cur, sizeof(cur)),
	        a->native ? "has joined" : "accepts");
	return 0;
}

void apps_proc_hooks(struct app *a)
{
	a->cfg.before_request = apps_before_request;
	a->cfg.after_request = apps_after_request;
	a->cfg.deleted = apps_deleted;
	a->cfg.hook_arg = a;
}
