/* apps_main.c: portshare-apps, the root supervisor that keeps app definitions in a
 * root-only directory, serves each app's URLs with an in-process proxy, starts its
 * command on the first request (or at once with --always-running), restarts it when
 * it dies, stops it when idle, and takes `portsharectl app` commands on its own socket
 * (docs/ADAPTERS.md). The daemon never runs application code; this process does. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apps.h"
#include "apps_wire.h"
#include "json_write.h"
#include "launch.h"
#include "portshare.h"
#include "proxy.h"

#define APPS_READY_MS 60000 /* for a started command to accept a connection */
#define APPS_STOP_MS 5000   /* SIGTERM, then SIGKILL */
#define APPS_BACKOFF_MAX_MS 30000
#define APPS_TICK_MS 50
#define APPS_RETRY_MS 5000  /* registering an app's URLs again after a failure */
#define APPS_DRAIN_MS 90000 /* a restart's old process: its requests' time to finish (IIS's 90 s) */
#define APPS_DEFAULT_LOG_DIR "/var/log/portshare/apps"

extern char **environ;

static const char *const app_state_names[] = {"idle",    "starting", "running", "stopping",
                                              "backoff", "stopped",  "failed"};

static pthread_mutex_t apps_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t apps_cv = PTHREAD_COND_INITIALIZER;
static struct app *apps;
static const char *apps_dir = APPS_DEFAULT_DIR;
static const char *apps_log_dir = APPS_DEFAULT_LOG_DIR;
static const char *apps_daemon_socket;

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	        "usage: portshare-apps [--socket PATH] [--apps-dir DIR] [--apps-socket PATH]\n"
	        "                      [--log-dir DIR]\n"
	        "  Runs as root: serves the apps defined in DIR (one file per app, written by\n"
	        "  `portsharectl app add`), starting their commands on demand.\n"
	        "  --socket PATH       the daemon's control socket ($PORTSHARE_SOCKET, else %s)\n"
	        "  --apps-dir DIR      the app definitions (default %s, made 0700)\n"
	        "  --apps-socket PATH  where portsharectl's app commands come (default %s, 0600)\n"
	        "  --log-dir DIR       each app's stdout and stderr go to DIR/NAME.log, owned by\n"
	        "                      the app's user (default %s, made 0755)\n"
	        "  --help              this text\n",
	        PS_DEFAULT_SOCKET, APPS_DEFAULT_DIR, APPS_DEFAULT_SOCKET, APPS_DEFAULT_LOG_DIR);
	exit(status);
}

static int64_t apps_now(void)
{
	return backend_now_ms();
}

/* ---------------------------------------------------------------- the app's process */

/* The app's log file, DIR/NAME.log: appended, owned by the app's user (who may read
 * what the app wrote), 0640. -1 when it cannot be opened: the app's output then goes to
 * ours (journald's, under systemd), and our log says why. */
static int apps_log_open(const struct app *a)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.log", apps_log_dir, a->name);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0 || fchown(fd, a->uid, a->gid) < 0 || fchmod(fd, 0640) < 0) {
		fprintf(stderr, "portshare-apps: %s: cannot use %s for its output: %s\n", a->name, path,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Starts a's command with {port}/$PORT = port and {socket} = sock (under apps_mu): its
 * pid, or -1 after saying why. The child only makes system calls between fork and exec:
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
	char **envp = calloc(nenv + 5, sizeof(char *));
	char port_env[24], home_env[PATH_MAX + 8], user_env[64], logname_env[72];
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
		    (a->user &&
		     (!strncmp(e, "HOME=", 5) || !strncmp(e, "USER=", 5) || !strncmp(e, "LOGNAME=", 8))))
			continue;
		envp[k++] = environ[i];
	}
	snprintf(port_env, sizeof(port_env), "PORT=%s", port);
	envp[k++] = port_env;
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
	        a->use_socket ? "socket" : "port", a->use_socket ? sock : port);
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

/* Starts a's command on its current address (under apps_mu). */
static void apps_spawn(struct app *a)
{
	pid_t pid = apps_exec(a, a->port, a->sock);
	a->pid = pid > 0 ? pid : 0;
	a->state = pid > 0 ? APP_STARTING : APP_BACKOFF;
	a->since = apps_now();
}

/* SIGTERM (or SIGKILL) to the process groups of a's processes: the one serving, the new
 * one of a restart and the old one it replaces. */
static void apps_signal(const struct app *a, int sig)
{
	pid_t pids[] = {a->pid, a->next_pid, a->old_pid};
	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++)
		if (pids[i] > 0)
			kill(-pids[i], sig);
}

/* Stops a's process (under apps_mu): SIGTERM to its group, SIGKILL after APPS_STOP_MS;
 * then the app is in state `to` (APP_IDLE: the next request starts it; APP_STOPPED). */
static void apps_stop(struct app *a, enum app_state to)
{
	a->stop_to = to;
	if (a->pid <= 0 || a->state == APP_STOPPING)
		return;
	kill(-a->pid, SIGTERM);
	a->state = APP_STOPPING;
	a->since = apps_now();
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
	pthread_mutex_lock(&apps_mu);
	a->active++;
	a->last_use = apps_now();
	int64_t deadline = apps_now() + APPS_READY_MS;
	const char *refused = not_started;
	while (!a->deleted && apps_now() < deadline) {
		if (a->state == APP_RUNNING || a->state == APP_STOPPED || a->state == APP_FAILED) {
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
		pthread_cond_timedwait(&apps_cv, &apps_mu, &ts);
	}
	if (refused) {
		a->active--;
		if (refused == not_started)
			fprintf(stderr, "portshare-apps: %s: the app is not accepting connections: 503\n",
			        a->name);
	}
	pthread_mutex_unlock(&apps_mu);
	return refused;
}

static void apps_after_request(void *arg)
{
	struct app *a = arg;
	if (!a->cmd)
		return;
	pthread_mutex_lock(&apps_mu);
	a->active--;
	a->last_use = apps_now();
	pthread_mutex_unlock(&apps_mu);
}

static void apps_deleted(void *arg)
{
	struct app *a = arg;
	fprintf(stderr, "portshare-apps: %s: queue %s was deleted\n", a->name, a->queue);
}

/* How long a dead app waits before it is started again: 2, 4, ... 30 s. */
static int64_t apps_backoff_ms(int failures)
{
	int64_t wait = (int64_t)1000 << (failures > 5 ? 5 : failures);
	return wait > APPS_BACKOFF_MAX_MS ? APPS_BACKOFF_MAX_MS : wait;
}

/* Crashes within the app's rapid-fail interval before now. */
static int apps_crashes_recent(const struct app *a, int64_t now)
{
	int n = 0;
	for (int i = 0; i < APPS_RAPID_FAIL_MAX; i++)
		n += a->crash_at[i] && now - a->crash_at[i] < (int64_t)a->rapid_fail_interval * 1000;
	return n;
}

/* Removes a unix socket target's file (its process is gone or never bound it). */
static void apps_target_unlink(const struct backend_target *t)
{
	if (t && t->addr.sa.ss_family == AF_UNIX)
		unlink(((const struct sockaddr_un *)&t->addr.sa)->sun_path);
}

/* A restart's new process takes the requests that come next; the one it replaces (if it
 * still runs) drains: apps_tick_old stops it once no request uses its target. */
static void apps_switch(struct app *a, int64_t now)
{
	a->old_target = proxy_target_swap(&a->cfg, a->next_target);
	a->old_pid = a->pid;
	a->old_since = now;
	a->old_term_at = 0;
	a->pid = a->next_pid;
	memcpy(a->port, a->next_port, sizeof(a->port));
	memcpy(a->sock, a->next_sock, sizeof(a->sock));
	a->next_pid = 0;
	a->next_target = NULL;
}

/* A restart's new process: switched to once it accepts, abandoned after APPS_READY_MS. */
static void apps_tick_next(struct app *a, int64_t now)
{
	struct backend_addr addr = a->next_target->addr;
	pid_t pid = a->next_pid;
	pthread_mutex_unlock(&apps_mu);
	bool up = launch_accepts(&addr);
	pthread_mutex_lock(&apps_mu);
	if (a->next_pid != pid || a->state != APP_RUNNING)
		return;
	if (up) {
		fprintf(stderr,
		        "portshare-apps: %s: the new pid %d accepts on %s: requests go to it; the old pid "
		        "%d stops once its requests are done\n",
		        a->name, (int)pid, addr.name, (int)a->pid);
		apps_switch(a, now);
		a->since = a->last_use = now;
	} else if (now - a->next_since > APPS_READY_MS) {
		fprintf(stderr,
		        "portshare-apps: %s: error: the new pid %d did not accept a connection on %s "
		        "within %d s: stopping it; pid %d serves on\n",
		        a->name, (int)pid, addr.name, APPS_READY_MS / 1000, (int)a->pid);
		kill(-pid, SIGKILL);
		a->next_since = now; /* reaped soon; no second kill every tick */
	}
}

/* The process a restart replaced: SIGTERM once no request uses its target (or after
 * APPS_DRAIN_MS, IIS's shutdownTimeLimit), SIGKILL APPS_STOP_MS later; its target is
 * freed once it is gone and unused. */
static void apps_tick_old(struct app *a, int64_t now)
{
	int users = atomic_load(&a->old_target->users);
	if (a->old_pid > 0 && !a->old_term_at && (users == 0 || now - a->old_since > APPS_DRAIN_MS)) {
		fprintf(stderr, "portshare-apps: %s: %s: stopping the old pid %d\n", a->name,
		        users ? "drain time is over" : "no request uses it any more", (int)a->old_pid);
		kill(-a->old_pid, SIGTERM);
		a->old_term_at = now;
	} else if (a->old_pid > 0 && a->old_term_at && now - a->old_term_at > APPS_STOP_MS) {
		kill(-a->old_pid, SIGKILL);
	}
	if (a->old_pid <= 0 && users == 0) {
		apps_target_unlink(a->old_target);
		free(a->old_target);
		a->old_target = NULL;
	}
}

/* Every APPS_TICK_MS: whether the app's state needs a change. Under apps_mu. */
static void apps_tick_one(struct app *a, int64_t now)
{
	if (a->state == APP_STOPPING && a->pid > 0 && now - a->since > APPS_STOP_MS)
		kill(-a->pid, SIGKILL);
	if (a->old_target)
		apps_tick_old(a, now);
	if (!a->cmd || a->deleted || !a->registered)
		return;
	if (a->next_pid > 0)
		apps_tick_next(a, now);
	switch (a->state) {
	case APP_STARTING: {
		struct backend_addr addr = a->cfg.target->addr;
		pid_t pid = a->pid;
		pthread_mutex_unlock(&apps_mu);
		bool up = launch_accepts(&addr);
		pthread_mutex_lock(&apps_mu);
		if (a->state != APP_STARTING || a->pid != pid)
			break;
		if (up) {
			a->state = APP_RUNNING;
			a->since = now;
			a->last_use = now;
			pthread_cond_broadcast(&apps_cv);
		} else if (now - a->since > APPS_READY_MS) {
			fprintf(stderr,
			        "portshare-apps: %s: no connection accepted on %s within %d s: "
			        "stopping it\n",
			        a->name, addr.name, APPS_READY_MS / 1000);
			apps_stop(a, APP_IDLE);
		}
		break;
	}
	case APP_RUNNING:
		if (!a->always_running && a->active == 0 && !a->next_pid &&
		    now - a->last_use >= (int64_t)a->idle_timeout * 1000) {
			fprintf(stderr, "portshare-apps: %s: idle for %d s: stopping pid %d\n", a->name,
			        a->idle_timeout, (int)a->pid);
			apps_stop(a, APP_IDLE);
		}
		break;
	case APP_BACKOFF:
		if (now - a->since >= apps_backoff_ms(a->failures))
			apps_spawn(a);
		break;
	case APP_IDLE:
		if (a->always_running)
			apps_spawn(a);
		break;
	case APP_STOPPING:
	case APP_STOPPED:
	case APP_FAILED:
		break;
	}
}

/* The serving process died while it was meant to run: a crash unless it exited 0. It is
 * started again after a backoff, or the app fails (rapid-fail protection), or a restart's
 * new process, already starting, takes over. */
static void apps_died(struct app *a, pid_t pid, int status, int64_t now)
{
	if (status != 0) {
		a->crash_at[a->crash_next] = now;
		a->crash_next = (a->crash_next + 1) % APPS_RAPID_FAIL_MAX;
	}
	/* a run of a minute or more counts as healthy: the backoff starts over */
	if (a->state == APP_RUNNING && now - a->since > 60000)
		a->failures = 0;
	a->failures++;
	int recent = apps_crashes_recent(a, now);
	if (a->next_pid > 0) {
		fprintf(stderr, "portshare-apps: %s: pid %d died (status %d): the new pid %d takes over\n",
		        a->name, (int)pid, status, (int)a->next_pid);
		int64_t since = a->next_since;
		apps_switch(a, now);
		a->state = APP_STARTING;
		a->since = since;
	} else if (status != 0 && a->rapid_fail_count > 0 && recent >= a->rapid_fail_count) {
		fprintf(stderr,
		        "portshare-apps: %s: error: pid %d died (status %d), %d crashes within %d s: "
		        "rapid-fail protection stops the app; its URLs answer 503 until `portsharectl "
		        "app start %s`\n",
		        a->name, (int)pid, status, recent, a->rapid_fail_interval, a->name);
		a->state = APP_FAILED;
	} else {
		fprintf(stderr,
		        "portshare-apps: %s: pid %d died (status %d): starting it again in "
		        "%d s\n",
		        a->name, (int)pid, status, (int)(apps_backoff_ms(a->failures) / 1000));
		a->state = APP_BACKOFF;
	}
}

/* A child ended: the one serving (stopped by us, or died), a restart's new one before the
 * switch, or the old one a restart replaced. */
static void apps_reaped(pid_t pid, int ws)
{
	int64_t now = apps_now();
	int status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	for (struct app *a = apps; a; a = a->next) {
		if (pid == a->old_pid) {
			fprintf(stderr, "portshare-apps: %s: the old pid %d stopped (status %d)\n", a->name,
			        (int)pid, status);
			a->old_pid = 0;
			return;
		}
		if (pid == a->next_pid) {
			fprintf(stderr,
			        "portshare-apps: %s: error: the new pid %d ended (status %d) before it "
			        "accepted a connection: the restart is abandoned\n",
			        a->name, (int)pid, status);
			a->last_status = status;
			a->next_pid = 0;
			apps_target_unlink(a->next_target);
			free(a->next_target);
			a->next_target = NULL;
			return;
		}
		if (a->pid != pid)
			continue;
		a->pid = 0;
		a->last_status = status;
		if (a->state == APP_STOPPING || a->deleted) {
			fprintf(stderr, "portshare-apps: %s: pid %d stopped (status %d)\n", a->name, (int)pid,
			        status);
			a->state = a->deleted ? APP_IDLE : a->stop_to;
			a->failures = 0;
		} else {
			apps_died(a, pid, status, now);
		}
		a->since = a->state == APP_STARTING ? a->since : now;
		pthread_cond_broadcast(&apps_cv);
		return;
	}
}

/* ---------------------------------------------------------------- the apps' list */

/* Deletes the app's persistent queue (its URLs go with it; its proxy threads end). */
static int apps_queue_delete(const char *queue, bool quiet)
{
	ps_client *c = NULL;
	ps_queue *q = NULL;
	int rc = ps_connect(apps_daemon_socket, &c);
	if (rc == 0)
		rc = ps_queue_open(c, queue, &q);
	if (rc == 0)
		rc = ps_queue_delete(q);
	if (rc < 0 && !(quiet && rc == PS_ENOTFOUND))
		fprintf(stderr, "portshare-apps: cannot delete queue %s: %s\n", queue, ps_strerror(rc));
	if (c)
		ps_close(c);
	return rc;
}

/* A {socket} app's address: DIR/app.sock in a new directory only the app's user may
 * enter (root, the proxy, connects anyway), under $TMPDIR or /tmp, as portshare-run. */
static int apps_socket_make(struct app *a)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(a->sock_dir, sizeof(a->sock_dir), "%s/portshare-apps.XXXXXX",
	         tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	const char *why = NULL;
	char spec[128];
	bool made = mkdtemp(a->sock_dir) != NULL;
	if (!made || chown(a->sock_dir, a->uid, a->gid) < 0) {
		fprintf(stderr, "portshare-apps: %s: cannot make a directory for its socket: %s\n", a->name,
		        strerror(errno));
		if (made)
			rmdir(a->sock_dir);
		a->sock_dir[0] = '\0';
		return -1;
	}
	snprintf(a->sock, sizeof(a->sock), "%s/app.sock", a->sock_dir);
	snprintf(spec, sizeof(spec), "unix:%s", a->sock);
	if (!backend_addr_parse(spec, &a->cfg.backend, &why)) {
		fprintf(stderr, "portshare-apps: %s: %s\n", a->name, why);
		return -1;
	}
	return 0;
}

/* Removes a {socket} app's socket and directory (it is deleted, or we exit). */
static void apps_socket_remove(struct app *a)
{
	if (!a->sock_dir[0])
		return;
	unlink(a->sock);
	apps_target_unlink(a->next_target);
	apps_target_unlink(a->old_target);
	rmdir(a->sock_dir);
}

/* Registers a's queue and URLs and starts its proxy. A queue of the same name left by
 * an earlier run of ours (persistent: it outlives us) is deleted first: the definition
 * says which URLs it has now. */
static int apps_register(struct app *a)
{
	if (a->use_socket && !a->sock_dir[0] && apps_socket_make(a) < 0)
		return -1;
	a->cfg.before_request = apps_before_request;
	a->cfg.after_request = apps_after_request;
	a->cfg.deleted = apps_deleted;
	a->cfg.hook_arg = a;
	apps_queue_delete(a->queue, true);
	if (proxy_start(&a->cfg) < 0)
		return -1;
	a->registered = true;
	return 0;
}

/* Adds a to the list; registered or not (then apps_retry tries again). */
static void apps_insert(struct app *a)
{
	pthread_mutex_lock(&apps_mu);
	a->state = APP_IDLE;
	a->since = a->last_use = apps_now();
	a->next = apps;
	apps = a;
	pthread_mutex_unlock(&apps_mu);
}

/* Every APPS_RETRY_MS: the apps loaded while the daemon was unreachable or refused
 * their URLs are registered again (the supervisor may start before the daemon). */
static void apps_retry(void)
{
	for (struct app *a = apps; a; a = a->next)
		if (!a->registered && !a->deleted && apps_register(a) == 0)
			fprintf(stderr, "portshare-apps: %s: registered\n", a->name);
}

static struct app *apps_find(const char *name)
{
	for (struct app *a = apps; a; a = a->next)
		if (!a->deleted && !strcmp(a->name, name))
			return a;
	return NULL;
}

static void apps_load(void)
{
	DIR *d = opendir(apps_dir);
	if (!d) {
		fprintf(stderr, "portshare-apps: cannot read %s: %s\n", apps_dir, strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[PATH_MAX], err[256];
		snprintf(path, sizeof(path), "%s/%s", apps_dir, e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		char *buf = malloc(APPS_MSG_MAX);
		size_t len = buf ? fread(buf, 1, APPS_MSG_MAX, f) : 0;
		fclose(f);
		if (!buf || len == 0 || len == APPS_MSG_MAX || buf[len - 1] != '\0') {
			fprintf(stderr, "portshare-apps: %s: not a definition: skipped\n", path);
			free(buf);
			continue;
		}
		struct app *a = apps_parse(buf, len, apps_daemon_socket, err, sizeof(err));
		if (!a || strcmp(a->name, e->d_name)) {
			fprintf(stderr, "portshare-apps: %s: %s: skipped\n", path,
			        a ? "the name inside is not the file's" : err);
			if (a)
				apps_free(a);
			else
				free(buf);
			continue;
		}
		if (apps_register(a) < 0)
			fprintf(stderr,
			        "portshare-apps: %s: its URLs could not be registered: trying again "
			        "every %d s\n",
			        a->name, APPS_RETRY_MS / 1000);
		apps_insert(a);
		fprintf(stderr, "portshare-apps: %s: loaded\n", a->name);
	}
	closedir(d);
}

/* ---------------------------------------------------------------- the command socket */

/* What `app show` prints of one app (text, or a JSON object); under apps_mu. */
static void apps_show_one(FILE *out, bool json, const struct app *a, int64_t now)
{
	const char *state = !a->registered ? "unregistered" : a->cmd ? app_state_names[a->state] : "proxy";
	const char *backend = a->cfg.target ? a->cfg.target->addr.name : a->cfg.backend.name;
	pid_t pids[] = {a->pid, a->next_pid, a->old_pid};
	char log[PATH_MAX];
	snprintf(log, sizeof(log), "%s/%s.log", apps_log_dir, a->name);
	if (!json) {
		fprintf(out, "%s  queue %s  backend %s  %s", a->name, a->queue, backend, state);
		for (size_t i = 0; i < 3; i++)
			if (pids[i] > 0)
				fprintf(out, "%s %d",
				        i == 0   ? " pid"
				        : i == 1 ? ", new pid"
				                 : ", old pid",
				        (int)pids[i]);
		fputc('\n', out);
		for (size_t i = 0; i < a->cfg.nurls; i++)
			fprintf(out, "  url %s\n", a->cfg.urls[i]);
		if (!a->cmd)
			return;
		fprintf(out, "  command");
		for (size_t i = 0; a->cmd[i]; i++)
			fprintf(out, " %s", a->cmd[i]);
		fprintf(out, "\n  user %s  %s\n", a->user ? a->user : "(root)",
		        a->always_running ? "always running" : "on demand");
		if (!a->always_running)
			fprintf(out, "  idle timeout %d s\n", a->idle_timeout);
		fprintf(out,
		        "  crashes %d in the last %d s (rapid-fail protection: ", apps_crashes_recent(a, now),
		        a->rapid_fail_interval);
		if (a->rapid_fail_count)
			fprintf(out, "failed at %d)", a->rapid_fail_count);
		else
			fputs("off)", out);
		if (a->last_status >= 0)
			fprintf(out, ", last exit status %d", a->last_status);
		fprintf(out, "\n  log %s\n", log);
		return;
	}
	fputs("{\"name\":", out);
	json_write_string(out, a->name);
	fputs(",\"queue\":", out);
	json_write_string(out, a->queue);
	fputs(",\"urls\":[", out);
	for (size_t i = 0; i < a->cfg.nurls; i++) {
		if (i)
			fputc(',', out);
		json_write_string(out, a->cfg.urls[i]);
	}
	fputs("],\"backend\":", out);
	json_write_string(out, backend);
	fputs(",\"state\":", out);
	json_write_string(out, state);
	fprintf(out, ",\"pid\":%d,\"pids\":[", (int)a->pid);
	for (size_t i = 0, n = 0; i < 3; i++)
		if (pids[i] > 0)
			fprintf(out, "%s%d", n++ ? "," : "", (int)pids[i]);
	fprintf(out, "],\"new_pid\":%d,\"old_pid\":%d,\"always_running\":%s,\"idle_timeout\":%d",
	        (int)a->next_pid, (int)a->old_pid, a->always_running ? "true" : "false", a->idle_timeout);
	fprintf(out,
	        ",\"rapid_fail_count\":%d,\"rapid_fail_interval\":%d,\"crashes\":%d,\"last_exit_status\":",
	        a->rapid_fail_count, a->rapid_fail_interval, apps_crashes_recent(a, now));
	if (a->last_status >= 0)
		fprintf(out, "%d", a->last_status);
	else
		fputs("null", out);
	fputs(",\"log\":", out);
	if (a->cmd)
		json_write_string(out, log);
	else
		fputs("null", out);
	fputs(",\"user\":", out);
	json_write_string(out, a->user ? a->user : "");
	fputs(",\"command\":[", out);
	for (size_t i = 0; a->cmd && a->cmd[i]; i++) {
		if (i)
			fputc(',', out);
		json_write_string(out, a->cmd[i]);
	}
	fputs("]}", out);
}

static void apps_show(FILE *out, bool json)
{
	int64_t now = apps_now();
	bool first = true;
	if (json)
		fputs("{\"apps\":[", out);
	for (struct app *a = apps; a; a = a->next) {
		if (a->deleted)
			continue;
		if (json && !first)
			fputc(',', out);
		apps_show_one(out, json, a, now);
		first = false;
	}
	if (json)
		fputs("]}\n", out);
	else if (first)
		fputs("no apps\n", out);
}

/* app stop: the process stopped (SIGTERM, SIGKILL after APPS_STOP_MS), a restart in
 * progress abandoned; its URLs answer 503 until app start. Under apps_mu. */
static int apps_halt(struct app *a, FILE *out)
{
	if (a->state == APP_STOPPED) {
		fprintf(out, "app %s is stopped already\n", a->name);
		return 0;
	}
	if (a->next_pid > 0)
		kill(-a->next_pid, SIGTERM);
	if (a->old_pid > 0 && !a->old_term_at) {
		kill(-a->old_pid, SIGTERM);
		a->old_term_at = apps_now();
	}
	if (a->pid > 0) {
		apps_stop(a, APP_STOPPED);
		fprintf(out, "app %s: stopping pid %d; its URLs answer 503 until app start %s\n", a->name,
		        (int)a->pid, a->name);
	} else {
		a->state = APP_STOPPED;
		a->since = apps_now();
		fprintf(out, "app %s stopped; its URLs answer 503 until app start %s\n", a->name, a->name);
	}
	return 0;
}

/* app start: a stopped or failed app (rapid-fail protection) serves again, from the next
 * request (at once when always running). Under apps_mu. */
static int apps_resume(struct app *a, FILE *out)
{
	const char *when = a->always_running ? "it starts now" : "the next request starts it";
	if (a->state == APP_STOPPING && a->stop_to == APP_STOPPED) {
		a->stop_to = APP_IDLE;
		fprintf(out, "app %s started: %s once its old process is gone\n", a->name, when);
		return 0;
	}
	if (a->state != APP_STOPPED && a->state != APP_FAILED) {
		fprintf(out, "app %s is %s already\n", a->name, app_state_names[a->state]);
		return 0;
	}
	a->state = APP_IDLE;
	a->since = a->last_use = apps_now();
	a->failures = 0;
	memset(a->crash_at, 0, sizeof(a->crash_at));
	fprintf(out, "app %s started: %s\n", a->name, when);
	return 0;
}

/* app restart, overlapped as IIS recycles an app pool: a new process on a new port (or
 * socket) while the old one serves on; the proxy switches to it once it accepts, and the
 * old one is stopped once the requests it has are done (apps_tick_next, apps_tick_old).
 * Under apps_mu. */
static int apps_recycle(struct app *a, FILE *out)
{
	if (a->state == APP_STOPPED || a->state == APP_FAILED)
		return apps_resume(a, out);
	if (a->state == APP_IDLE) {
		fprintf(out, "app %s is not running: the next request starts it\n", a->name);
		return 0;
	}
	if (a->state != APP_RUNNING || a->next_pid > 0 || a->old_target) {
		fprintf(out, "app %s is %s: try again once it is running\n", a->name,
		        a->next_pid > 0 || a->old_target ? "restarting already" : app_state_names[a->state]);
		return -1;
	}
	char port[sizeof(a->port)], sock[sizeof(a->sock)] = "", spec[sizeof(sock) + 8];
	const char *why = "out of memory";
	int p = launch_free_port();
	snprintf(port, sizeof(port), "%d", p);
	if (a->use_socket) {
		snprintf(sock, sizeof(sock), "%s/app.%u.sock", a->sock_dir, a->gen + 1);
		snprintf(spec, sizeof(spec), "unix:%s", sock);
	} else {
		snprintf(spec, sizeof(spec), "http://127.0.0.1:%s", port);
	}
	struct backend_addr addr;
	struct backend_target *t = NULL;
	if (p < 0 || !backend_addr_parse(spec, &addr, &why) || !(t = backend_target_new(&addr, a->gen + 1))) {
		fprintf(out, "app %s: cannot restart: %s\n", a->name, p < 0 ? strerror(errno) : why);
		return -1;
	}
	pid_t pid = apps_exec(a, port, sock);
	if (pid < 0) {
		free(t);
		fprintf(out, "app %s: cannot start its command: %s\n", a->name, strerror(errno));
		return -1;
	}
	a->gen++;
	a->next_pid = pid;
	a->next_target = t;
	a->next_since = apps_now();
	memcpy(a->next_port, port, sizeof(port));
	memcpy(a->next_sock, sock, sizeof(sock));
	fprintf(out,
	        "app %s: restarting: new pid %d on %s; pid %d serves until it accepts, then stops once "
	        "its requests are done\n",
	        a->name, (int)pid, addr.name, (int)a->pid);
	return 0;
}

/* Carries out one request; its answer goes to out. 0 done, -1 refused. */
static int apps_command(char *msg, size_t len, uid_t peer, FILE *out)
{
	const char *verb = msg;
	size_t vlen = strlen(verb) + 1;
	char *rest = msg + vlen;
	size_t rlen = len - vlen;
	if (!strcmp(verb, "show")) {
		pthread_mutex_lock(&apps_mu);
		apps_show(out, rlen > 0 && !strcmp(rest, "--json"));
		pthread_mutex_unlock(&apps_mu);
		return 0;
	}
	if (peer != 0 && peer != geteuid()) {
		fprintf(out, "only root may add, delete, stop, start or restart apps\n");
		return -1;
	}
	if (!strcmp(verb, "stop") || !strcmp(verb, "start") || !strcmp(verb, "restart")) {
		struct app *a = rlen ? apps_find(rest) : NULL;
		if (!a || !a->cmd) {
			fprintf(out,
			        a ? "app %s has no command (a --backend proxy queue): nothing to %s\n"
			          : "no app %s%s\n",
			        rlen ? rest : "", a ? verb : "");
			return -1;
		}
		pthread_mutex_lock(&apps_mu);
		int rc = verb[2] == 'o'   ? apps_halt(a, out)
		         : verb[2] == 'a' ? apps_resume(a, out)
		                          : apps_recycle(a, out);
		pthread_cond_broadcast(&apps_cv);
		pthread_mutex_unlock(&apps_mu);
		return rc;
	}
	if (!strcmp(verb, "add")) {
		char err[512];
		char *words = malloc(rlen);
		if (!words || rlen == 0) {
			free(words);
			fprintf(out, "app add needs a name\n");
			return -1;
		}
		memcpy(words, rest, rlen);
		struct app *a = apps_parse(words, rlen, apps_daemon_socket, err, sizeof(err));
		if (!a) {
			free(words);
			fprintf(out, "%s\n", err);
			return -1;
		}
		if (apps_find(a->name)) {
			fprintf(out, "app %s exists (app delete %s first)\n", a->name, a->name);
			apps_free(a);
			return -1;
		}
		if (apps_store(a, apps_dir, err, sizeof(err)) < 0) {
			fprintf(out, "%s\n", err);
			apps_free(a);
			return -1;
		}
		if (apps_register(a) < 0) {
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", apps_dir, a->name);
			unlink(path);
			fprintf(
			    out,
			    "the daemon refused the app's queue or URLs (the supervisor's log says why)\n");
			apps_queue_delete(a->queue, false);
			/* the proxy's threads may hold a->cfg: it is not freed */
			return -1;
		}
		apps_insert(a);
		fprintf(out, "app %s added: queue %s\n", a->name, a->queue);
		return 0;
	}
	if (!strcmp(verb, "delete")) {
		struct app *a = rlen ? apps_find(rest) : NULL;
		if (!a) {
			fprintf(out, "no app %s\n", rlen ? rest : "");
			return -1;
		}
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", apps_dir, a->name);
		if (unlink(path) < 0 && errno != ENOENT) {
			fprintf(out, "cannot remove %s: %s\n", path, strerror(errno));
			return -1;
		}
		pthread_mutex_lock(&apps_mu);
		a->deleted = true;
		apps_signal(a, SIGTERM);
		if (a->pid > 0) {
			a->state = APP_STOPPING;
			a->since = apps_now();
		}
		pthread_cond_broadcast(&apps_cv);
		pthread_mutex_unlock(&apps_mu);
		apps_queue_delete(a->queue, false);
		apps_socket_remove(a);
		fprintf(out, "app %s deleted\n", a->name);
		return 0;
	}
	fprintf(out, "unknown request '%s'\n", verb);
	return -1;
}

static void apps_serve_one(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	static char msg[APPS_MSG_MAX];
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = recv(fd, msg, sizeof(msg), 0);
	if (n <= 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || msg[n - 1] != '\0') {
		close(fd);
		return;
	}
	char *text = NULL;
	size_t tlen = 0;
	FILE *out = open_memstream(&text, &tlen);
	if (!out) {
		close(fd);
		return;
	}
	fputc('0', out);
	int rc = apps_command(msg, (size_t)n, cred.uid, out);
	fclose(out);
	if (rc < 0)
		text[0] = '1';
	if (tlen > APPS_MSG_MAX)
		tlen = APPS_MSG_MAX;
	if (send(fd, text, tlen, MSG_NOSIGNAL) < 0)
		fprintf(stderr, "portshare-apps: cannot answer a command: %s\n", strerror(errno));
	free(text);
	close(fd);
}

static int apps_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "portshare-apps: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	/* its directory, when missing (systemd's RuntimeDirectory makes it otherwise) */
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			fprintf(stderr, "portshare-apps: cannot make %s: %s\n", dir, strerror(errno));
			return -1;
		}
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
		fprintf(stderr, "portshare-apps: cannot listen on %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* DIR and its missing parents, 0755 (the apps' users must reach their log files). */
static int apps_mkdirs(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = strchr(path + 1, '/');; p = strchr(p + 1, '/')) {
		if (p)
			*p = '\0';
		if (mkdir(path, 0755) == 0)
			chmod(path, 0755); /* not what our umask (the unit's 0077) left */
		else if (errno != EEXIST)
			return -1;
		if (!p)
			return 0;
		*p = '/';
	}
}

int main(int argc, char **argv)
{
	const char *apps_socket = APPS_DEFAULT_SOCKET;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			usage(0);
		if (i + 1 < argc && !strcmp(argv[i], "--socket"))
			apps_daemon_socket = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--apps-dir"))
			apps_dir = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--apps-socket"))
			apps_socket = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--log-dir"))
			apps_log_dir = argv[++i];
		else {
			fprintf(stderr, "portshare-apps: unknown argument %s\n", argv[i]);
			usage(2);
		}
	}
	if (mkdir(apps_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "portshare-apps: cannot make %s: %s\n", apps_dir, strerror(errno));
		return 1;
	}
	struct stat st;
	if (stat(apps_dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		fprintf(stderr,
		        "portshare-apps: %s must be a directory of ours that nobody else may "
		        "read or write (chmod 700)\n",
		        apps_dir);
		return 1;
	}
	if (apps_mkdirs(apps_log_dir) < 0)
		fprintf(stderr, "portshare-apps: cannot make %s: %s (the apps' output goes to ours)\n",
		        apps_log_dir, strerror(errno));
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int lfd = apps_listen(apps_socket);
	if (lfd < 0)
		return 1;
	apps_load();
	printf("portshare-apps: ready apps-socket=%s\n", apps_socket);
	fflush(stdout);

	int64_t quit_at = 0, retry_at = apps_now() + APPS_RETRY_MS;
	for (;;) {
		if (!quit_at && apps_now() >= retry_at) {
			apps_retry();
			retry_at = apps_now() + APPS_RETRY_MS;
		}
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		if (poll(&p, 1, APPS_TICK_MS) > 0 && !quit_at)
			apps_serve_one(lfd);
		struct timespec zero = {0, 0};
		int sig;
		while ((sig = sigtimedwait(&set, NULL, &zero)) > 0) {
			if ((sig == SIGTERM || sig == SIGINT) && !quit_at) {
				fprintf(stderr, "portshare-apps: stopping the apps (their queues stay)\n");
				quit_at = apps_now() + APPS_STOP_MS;
				pthread_mutex_lock(&apps_mu);
				for (struct app *a = apps; a; a = a->next) {
					a->deleted = true; /* nothing starts again */
					apps_signal(a, SIGTERM);
				}
				pthread_mutex_unlock(&apps_mu);
			}
		}
		pthread_mutex_lock(&apps_mu);
		int ws;
		pid_t pid;
		while ((pid = waitpid(-1, &ws, WNOHANG)) > 0)
			apps_reaped(pid, ws);
		int64_t now = apps_now();
		bool left = false;
		for (struct app *a = apps; a; a = a->next) {
			apps_tick_one(a, now);
			left |= a->pid > 0 || a->next_pid > 0 || a->old_pid > 0;
			if (quit_at && now > quit_at)
				apps_signal(a, SIGKILL);
		}
		pthread_mutex_unlock(&apps_mu);
		if (quit_at && (!left || now > quit_at + 1000)) {
			for (struct app *a = apps; a; a = a->next)
				apps_socket_remove(a);
			unlink(apps_socket);
			fflush(NULL);
			_exit(0);
		}
	}
}
