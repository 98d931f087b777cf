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
#define APPS_RETRY_MS 5000 /* registering an app's URLs again after a failure */

extern char **environ;

static const char *const app_state_names[] = {"stopped", "starting", "running", "stopping", "backoff"};

static pthread_mutex_t apps_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t apps_cv = PTHREAD_COND_INITIALIZER;
static struct app *apps;
static const char *apps_dir = APPS_DEFAULT_DIR;
static const char *apps_daemon_socket;

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	        "usage: portshare-apps [--socket PATH] [--apps-dir DIR] [--apps-socket PATH]\n"
	        "  Runs as root: serves the apps defined in DIR (one file per app, written by\n"
	        "  `portsharectl app add`), starting their commands on demand.\n"
	        "  --socket PATH       the daemon's control socket ($PORTSHARE_SOCKET, else %s)\n"
	        "  --apps-dir DIR      the app definitions (default %s, made 0700)\n"
	        "  --apps-socket PATH  where portsharectl's app commands come (default %s, 0600)\n"
	        "  --help              this text\n",
	        PS_DEFAULT_SOCKET, APPS_DEFAULT_DIR, APPS_DEFAULT_SOCKET);
	exit(status);
}

static int64_t apps_now(void)
{
	return backend_now_ms();
}

/* ---------------------------------------------------------------- the app's process */

/* Starts a's command (under apps_mu). The child only makes system calls between fork
 * and exec: this process has threads. */
static void apps_spawn(struct app *a)
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
	if (!argv || !envp)
		goto fail;
	for (size_t i = 0; i < ncmd; i++)
		if (!(argv[i] = launch_substitute(a->cmd[i], a->port, a->sock)))
			goto fail;
	size_t k = 0;
	for (size_t i = 0; i < nenv; i++) {
		const char *e = environ[i];
		if (!strncmp(e, "PORT=", 5) || !strncmp(e, PS_SOCKET_ENV "=", strlen(PS_SOCKET_ENV) + 1) ||
		    (a->user &&
		     (!strncmp(e, "HOME=", 5) || !strncmp(e, "USER=", 5) || !strncmp(e, "LOGNAME=", 8))))
			continue;
		envp[k++] = environ[i];
	}
	snprintf(port_env, sizeof(port_env), "PORT=%s", a->port);
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
		unlink(a->sock); /* left by the app's last run: it must bind anew */
	pid_t pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
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
	a->pid = pid;
	a->state = APP_STARTING;
	a->since = apps_now();
	fprintf(stderr, "portshare-apps: %s: started %s (pid %d, port %s)\n", a->name, argv[0], (int)pid,
	        a->port);
	for (size_t i = 0; i < ncmd; i++)
		free(argv[i]);
	free(argv);
	free(envp);
	return;
fail:
	fprintf(stderr, "portshare-apps: %s: cannot start: %s\n", a->name, strerror(errno));
	if (argv)
		for (size_t i = 0; i < ncmd; i++)
			free(argv[i]);
	free(argv);
	free(envp);
	a->state = APP_BACKOFF;
	a->since = apps_now();
}

/* Stops a's process (under apps_mu): SIGTERM to its group, SIGKILL after APPS_STOP_MS. */
static void apps_stop(struct app *a)
{
	if (a->pid <= 0 || a->state == APP_STOPPING)
		return;
	kill(-a->pid, SIGTERM);
	a->state = APP_STOPPING;
	a->since = apps_now();
}

/* The proxy's hook before each request: the app is started when it is not running and
 * the request waits until it accepts connections (activation). */
static bool apps_before_request(void *arg)
{
	struct app *a = arg;
	if (!a->cmd)
		return true;
	pthread_mutex_lock(&apps_mu);
	a->active++;
	a->last_use = apps_now();
	int64_t deadline = apps_now() + APPS_READY_MS;
	bool ok = false;
	while (!a->deleted && apps_now() < deadline) {
		if (a->state == APP_RUNNING) {
			ok = true;
			break;
		}
		if (a->state == APP_STOPPED)
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
	if (!ok) {
		a->active--;
		fprintf(stderr, "portshare-apps: %s: the app is not accepting connections: 503\n", a->name);
	}
	pthread_mutex_unlock(&apps_mu);
	return ok;
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

/* Every APPS_TICK_MS: whether the app's state needs a change. Under apps_mu. */
static void apps_tick_one(struct app *a, int64_t now)
{
	if (a->state == APP_STOPPING && a->pid > 0 && now - a->since > APPS_STOP_MS)
		kill(-a->pid, SIGKILL);
	if (!a->cmd || a->deleted || !a->registered)
		return;
	switch (a->state) {
	case APP_STARTING: {
		struct backend_addr addr = a->cfg.backend;
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
			        "portshare-apps: %s: no connection accepted on port %s within %d s: "
			        "stopping it\n",
			        a->name, a->port, APPS_READY_MS / 1000);
			apps_stop(a);
		}
		break;
	}
	case APP_RUNNING:
		if (!a->always_running && a->active == 0 &&
		    now - a->last_use >= (int64_t)a->idle_timeout * 1000) {
			fprintf(stderr, "portshare-apps: %s: idle for %d s: stopping pid %d\n", a->name,
			        a->idle_timeout, (int)a->pid);
			apps_stop(a);
		}
		break;
	case APP_STOPPING:
		break;
	case APP_BACKOFF:
		if (now - a->since >= apps_backoff_ms(a->failures))
			apps_spawn(a);
		break;
	case APP_STOPPED:
		if (a->always_running)
			apps_spawn(a);
		break;
	}
}

/* A child ended: stopped by us, or died (then it is started again after a backoff). */
static void apps_reaped(pid_t pid, int ws)
{
	int64_t now = apps_now();
	for (struct app *a = apps; a; a = a->next) {
		if (a->pid != pid)
			continue;
		a->pid = 0;
		int status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
		if (a->state == APP_STOPPING || a->deleted) {
			fprintf(stderr, "portshare-apps: %s: pid %d stopped (status %d)\n", a->name, (int)pid,
			        status);
			a->state = APP_STOPPED;
			a->failures = 0;
		} else {
			/* a run of a minute or more counts as healthy: the backoff starts over */
			if (a->state == APP_RUNNING && now - a->since > 60000)
				a->failures = 0;
			a->failures++;
			fprintf(stderr,
			        "portshare-apps: %s: pid %d died (status %d): starting it again in "
			        "%d s\n",
			        a->name, (int)pid, status, (int)(apps_backoff_ms(a->failures) / 1000));
			a->state = APP_BACKOFF;
		}
		a->since = now;
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
	a->state = APP_STOPPED;
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

static void apps_show(FILE *out, bool json)
{
	if (json)
		fputs("{\"apps\":[", out);
	bool first = true;
	for (struct app *a = apps; a; a = a->next) {
		if (a->deleted)
			continue;
		const char *state = !a->registered ? "unregistered"
		                    : a->cmd       ? app_state_names[a->state]
		                                   : "proxy";
		if (json) {
			fputs(first ? "{\"name\":" : ",{\"name\":", out);
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
			json_write_string(out, a->cfg.backend.name);
			fputs(",\"state\":", out);
			json_write_string(out, state);
			fprintf(out, ",\"pid\":%d,\"always_running\":%s,\"idle_timeout\":%d,\"user\":",
			        (int)a->pid, a->always_running ? "true" : "false", a->idle_timeout);
			json_write_string(out, a->user ? a->user : "");
			fputs(",\"command\":[", out);
			for (size_t i = 0; a->cmd && a->cmd[i]; i++) {
				if (i)
					fputc(',', out);
				json_write_string(out, a->cmd[i]);
			}
			fputs("]}", out);
		} else {
			fprintf(out, "%s  queue %s  backend %s  %s", a->name, a->queue, a->cfg.backend.name,
			        state);
			if (a->pid > 0)
				fprintf(out, " pid %d", (int)a->pid);
			fputc('\n', out);
			for (size_t i = 0; i < a->cfg.nurls; i++)
				fprintf(out, "  url %s\n", a->cfg.urls[i]);
			if (a->cmd) {
				fprintf(out, "  command");
				for (size_t i = 0; a->cmd[i]; i++)
					fprintf(out, " %s", a->cmd[i]);
				fprintf(out, "\n  user %s  %s\n", a->user ? a->user : "(root)",
				        a->always_running ? "always running" : "on demand");
				if (!a->always_running)
					fprintf(out, "  idle timeout %d s\n", a->idle_timeout);
			}
		}
		first = false;
	}
	if (json)
		fputs("]}\n", out);
	else if (first)
		fputs("no apps\n", out);
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
		fprintf(out, "only root may add or delete apps\n");
		return -1;
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
		if (a->pid > 0) {
			kill(-a->pid, SIGTERM);
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
					if (a->pid > 0)
						kill(-a->pid, SIGTERM);
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
			left |= a->pid > 0;
			if (quit_at && a->pid > 0 && now > quit_at)
				kill(-a->pid, SIGKILL);
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
