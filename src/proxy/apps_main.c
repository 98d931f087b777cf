/* apps_main.c: portshare-apps, the root supervisor that keeps app definitions in a
 * root-only directory, serves each app's URLs with an in-process proxy, has their
 * commands run (apps_proc.c: on demand, restarted, stopped when idle) and takes
 * `portsharectl app` commands on its own socket (docs/ADAPTERS.md). The daemon never
 * runs application code; this process does. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
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
#include "apps_native.h"
#include "apps_proc.h"
#include "apps_wire.h"
#include "json_write.h"
#include "portshare.h"
#include "proxy.h"

#define APPS_RETRY_MS 5000 /* registering an app's URLs again after a failure */

static struct app *apps;
static const char *apps_dir = APPS_DEFAULT_DIR;
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

/* A {socket} app's addresses: DIR/app.sock (then app-1.sock, app-2.sock... for its other
 * processes) in a new directory only the app's user may enter (root, the proxy, connects
 * anyway), under $TMPDIR or /tmp, as portshare-run. */
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
	for (int i = 0; i < a->nprocs; i++) {
		if (i == 0)
			snprintf(a->sock[i], sizeof(a->sock[i]), "%s/app.sock", a->sock_dir);
		else
			snprintf(a->sock[i], sizeof(a->sock[i]), "%s/app-%d.sock", a->sock_dir, i);
	}
	snprintf(spec, sizeof(spec), "unix:%s", a->sock[0]);
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
	for (int i = 0; i < APPS_PROCS_MAX; i++) {
		if (a->sock[i][0])
			unlink(a->sock[i]);
		apps_proc_target_unlink(a->next_targets[i]);
		apps_proc_target_unlink(a->old_targets[i]);
	}
	rmdir(a->sock_dir);
}

/* Registers a's queue and URLs and starts its proxy. A queue of the same name left by
 * an earlier run of ours (persistent: it outlives us) is deleted first: the definition
 * says which URLs it has now. */
static int apps_register(struct app *a)
{
	if (a->use_socket && !a->sock_dir[0] && apps_socket_make(a) < 0)
		return -1;
	apps_queue_delete(a->queue, true);
	if (a->native) /* it joins its queue itself: a controller waits for demand, no proxy */
		return apps_native_register(a);
	apps_proc_hooks(a);
	if (apps_proc_targets(a) < 0 || proxy_start(&a->cfg) < 0)
		return -1;
	a->registered = true;
	return 0;
}

/* `app stop` is kept across a restart of the supervisor (and a reboot) as IIS Manager
 * keeps a stopped application pool stopped (its autoStart false): a marker file beside
 * the definition, ".NAME.stopped" (no app name starts with a dot, so the loader skips
 * it; a definition's temporary file is ".NAME.tmp": the two never meet). Rapid-fail's
 * `failed` is not kept: a new supervisor gives the app another chance, as WAS does
 * after its restart. */
static void apps_stopped_path(const struct app *a, char *path, size_t len)
{
	snprintf(path, len, "%s/.%s.stopped", apps_dir, a->name);
}

static bool apps_stopped_kept(const struct app *a)
{
	char path[PATH_MAX];
	apps_stopped_path(a, path, sizeof(path));
	return access(path, F_OK) == 0;
}

/* Marks a stopped (or not) for the next supervisor; says so in out when it cannot. */
static void apps_stopped_keep(const struct app *a, bool stopped, FILE *out)
{
	char path[PATH_MAX];
	apps_stopped_path(a, path, sizeof(path));
	if ((access(path, F_OK) == 0) == stopped)
		return;
	int fd = stopped ? open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	if (stopped ? fd < 0 : unlink(path) < 0 && errno != ENOENT) {
		fprintf(out, "(not kept across a restart of the supervisor: %s %s: %s)\n",
		        stopped ? "cannot write" : "cannot remove", path, strerror(errno));
		return;
	}
	if (fd >= 0)
		close(fd);
	/* the directory entry itself must reach the disk: kept across a power cut too */
	int dfd = open(apps_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

/* Adds a to the list, idle or (app stop kept) stopped; registered or not (then
 * apps_retry tries again). */
static void apps_insert(struct app *a, bool stopped)
{
	pthread_mutex_lock(&apps_proc_mu);
	a->state = stopped ? APP_STOPPED : APP_IDLE;
	a->since = a->last_use = apps_now();
	a->next = apps;
	apps = a;
	pthread_mutex_unlock(&apps_proc_mu);
}

/* Every APPS_RETRY_MS: the apps loaded while the daemon was unreachable or refused
 * their URLs are registered again (the supervisor may start before the daemon). */
static void apps_retry(void)
{
	for (struct app *a = apps; a; a = a->next)
		if (!a->registered && !a->deleted && !a->native_thread && apps_register(a) == 0)
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
		bool stopped = apps_stopped_kept(a);
		if (stopped) /* before a native app's controller thread looks at it */
			a->state = APP_STOPPED;
		if (apps_register(a) < 0)
			fprintf(stderr,
			        "portshare-apps: %s: its URLs could not be registered: trying again "
			        "every %d s\n",
			        a->name, APPS_RETRY_MS / 1000);
		apps_insert(a, stopped);
		fprintf(stderr, "portshare-apps: %s: loaded%s\n", a->name,
		        stopped ? ", stopped (by app stop): its URLs answer 503 until app start" : "");
	}
	closedir(d);
}

/* ---------------------------------------------------------------- the command socket */

/* What `app show` prints of one app (text, or a JSON object); under apps_proc_mu. */
static void apps_show_one(FILE *out, bool json, const struct app *a, int64_t now)
{
	const char *state = !a->registered ? "unregistered"
	                    : a->cmd       ? apps_proc_state_names[a->state]
	                                   : "proxy";
	/* an HTTP app's addresses, one a process: "127.0.0.1:4001, 127.0.0.1:4002" */
	char backends[PROXY_TARGETS_MAX * (sizeof(a->cfg.backend.name) + 2)];
	size_t off = 0;
	backends[0] = '\0';
	for (int i = 0; i < a->cfg.ntargets && off < sizeof(backends); i++)
		off += (size_t)snprintf(backends + off, sizeof(backends) - off, "%s%s", i ? ", " : "",
		                        a->cfg.targets[i]->addr.name);
	const char *backend = a->native ? "libportshare" : backends[0] ? backends : a->cfg.backend.name;
	/* the sets of processes: serving, a restart's new one, the old one it replaces */
	const pid_t *sets[] = {a->pid, a->next_pid, a->old_pid};
	char pids[3][APPS_PIDS_TEXT];
	for (size_t i = 0; i < 3; i++)
		apps_proc_pids(sets[i], pids[i], sizeof(pids[i]));
	char log[PATH_MAX];
	if (apps_proc_log_dir)
		snprintf(log, sizeof(log), "%s/%s.log", apps_proc_log_dir, a->name);
	else
		snprintf(log, sizeof(log), "(the supervisor's own output)");
	if (!json) {
		fprintf(out, "%s  queue %s  backend %s  %s", a->name, a->queue, backend, state);
		for (size_t i = 0; i < 3; i++)
			if (pids[i][0])
				fprintf(out, "%s %s",
				        i == 0   ? " pid"
				        : i == 1 ? ", new pid"
				                 : ", old pid",
				        pids[i]);
		fputc('\n', out);
		for (size_t i = 0; i < a->cfg.nurls; i++)
			fprintf(out, "  url %s\n", a->cfg.urls[i]);
		if (!a->cmd)
			return;
		fprintf(out, "  command");
		for (size_t i = 0; a->cmd[i]; i++)
			fprintf(out, " %s", a->cmd[i]);
		fprintf(out, "\n  user %s  %s", a->user ? a->user : "(root)",
		        a->always_running ? "always running" : "on demand");
		if (a->native || a->nprocs > 1)
			fprintf(out, "  %d process%s%s", a->nprocs, a->nprocs > 1 ? "es" : "",
			        a->native ? " on the queue" : "");
		fputc('\n', out);
		if (!a->always_running)
			fprintf(out, "  idle timeout %d s\n", a->idle_timeout);
		fprintf(out,
		        "  crashes %d in the last %d s (rapid-fail protection: ", apps_proc_crashes(a, now),
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
	/* pid, new_pid, old_pid: the first of each set (0: none); pids: all, serving first */
	pid_t first[3] = {0, 0, 0};
	for (size_t i = 0; i < 3; i++)
		for (int k = APPS_PROCS_MAX - 1; k >= 0; k--)
			first[i] = sets[i][k] > 0 ? sets[i][k] : first[i];
	fprintf(out, ",\"pid\":%d,\"pids\":[", (int)first[0]);
	for (size_t i = 0, n = 0; i < 3; i++)
		for (int k = 0; k < APPS_PROCS_MAX; k++)
			if (sets[i][k] > 0)
				fprintf(out, "%s%d", n++ ? "," : "", (int)sets[i][k]);
	fprintf(out, "],\"new_pid\":%d,\"old_pid\":%d,\"processes\":%d", (int)first[1], (int)first[2],
	        a->nprocs);
	fprintf(out, ",\"always_running\":%s,\"idle_timeout\":%d", a->always_running ? "true" : "false",
	        a->idle_timeout);
	fprintf(out,
	        ",\"rapid_fail_count\":%d,\"rapid_fail_interval\":%d,\"crashes\":%d,\"last_exit_status\":",
	        a->rapid_fail_count, a->rapid_fail_interval, apps_proc_crashes(a, now));
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

/* Whether every drained proxy's threads have ended. */
static bool apps_drained(void)
{
	for (struct app *a = apps; a; a = a->next)
		if (!a->native && a->registered && a->cfg.state && proxy_threads(&a->cfg) > 0)
			return false;
	return true;
}

/* Carries out one request; its answer goes to out. 0 done, -1 refused. */
static int apps_command(char *msg, size_t len, uid_t peer, FILE *out)
{
	const char *verb = msg;
	size_t vlen = strlen(verb) + 1;
	char *rest = msg + vlen;
	size_t rlen = len - vlen;
	if (!strcmp(verb, "show")) {
		pthread_mutex_lock(&apps_proc_mu);
		apps_show(out, rlen > 0 && !strcmp(rest, "--json"));
		pthread_mutex_unlock(&apps_proc_mu);
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
		pthread_mutex_lock(&apps_proc_mu);
		int rc = !strcmp(verb, "stop")    ? apps_proc_stop(a, out)
		         : !strcmp(verb, "start") ? apps_proc_start(a, out)
		                                  : apps_proc_restart(a, out);
		/* kept as the state it left: a restart of a stopped app is a start */
		bool stopped = a->state == APP_STOPPED ||
		               (a->state == APP_STOPPING && a->stop_to == APP_STOPPED);
		pthread_cond_broadcast(&apps_proc_cv);
		pthread_mutex_unlock(&apps_proc_mu);
		if (rc == 0)
			apps_stopped_keep(a, stopped, out);
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
		apps_stopped_keep(a, false, out); /* a marker left by a crash between two writes */
		apps_insert(a, false);
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
		pthread_mutex_lock(&apps_proc_mu);
		a->deleted = true;
		apps_proc_term(a);
		if (apps_proc_count(a->pid) && a->state != APP_STOPPING) {
			a->state = APP_STOPPING;
			a->since = apps_now();
		}
		pthread_cond_broadcast(&apps_proc_cv);
		pthread_mutex_unlock(&apps_proc_mu);
		if (a->native) /* while the queue exists: the daemon finds the grant's owner in it */
			apps_native_unregister(a);
		apps_queue_delete(a->queue, false);
		apps_socket_remove(a);
		apps_stopped_keep(a, false, out);
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

/* Whether dir and every directory above it are root's (or ours) and closed to others'
 * writes (above it, sticky ones such as /tmp may be open): else someone else could swap
 * an app's log file, or the directory, for a link between our open and the chown that
 * gives the file to the app's user. */
static bool apps_dir_safe(const char *dir)
{
	char path[PATH_MAX];
	if (!realpath(dir, path))
		return false;
	for (bool leaf = true;; leaf = false) {
		struct stat st;
		if (stat(path, &st) < 0 || (st.st_uid != 0 && st.st_uid != geteuid()) ||
		    ((st.st_mode & 022) && (leaf || !(st.st_mode & S_ISVTX))))
			return false;
		if (!strcmp(path, "/"))
			return true;
		char *slash = strrchr(path, '/');
		if (slash == path)
			slash[1] = '\0'; /* "/var" -> "/" */
		else
			*slash = '\0';
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
			apps_proc_log_dir = argv[++i];
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
	const char *unsafe = apps_mkdirs(apps_proc_log_dir) < 0 ? strerror(errno)
	                     : !apps_dir_safe(apps_proc_log_dir)
	                         ? "it, or a directory above it, is not root's or others may write it"
	                         : NULL;
	if (unsafe) {
		fprintf(stderr, "portshare-apps: cannot use %s for the apps' output: %s (it goes to ours)\n",
		        apps_proc_log_dir, unsafe);
		apps_proc_log_dir = NULL;
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

	/* a stop: the HTTP apps' proxies drain first (drain_until), so the requests in flight
	 * finish while their apps still run; then every app gets SIGTERM (quit_at) */
	int64_t quit_at = 0, drain_until = 0, retry_at = apps_now() + APPS_RETRY_MS;
	for (;;) {
		if (!quit_at && !drain_until && apps_now() >= retry_at) {
			apps_retry();
			retry_at = apps_now() + APPS_RETRY_MS;
		}
		/* while stopping no command is taken: the socket is not watched (a waiting
		 * client would wake every poll at once) */
		struct pollfd p = {.fd = quit_at || drain_until ? -1 : lfd, .events = POLLIN};
		if (poll(&p, 1, APPS_TICK_MS) > 0 && p.revents)
			apps_serve_one(lfd);
		struct timespec zero = {0, 0};
		int sig;
		bool stop_now = false;
		while ((sig = sigtimedwait(&set, NULL, &zero)) > 0) {
			if ((sig == SIGTERM || sig == SIGINT) && !quit_at) {
				/* a second SIGINT (^C twice): no more waiting; a repeated SIGTERM
				 * changes nothing */
				stop_now = drain_until != 0 && sig == SIGINT;
				if (!drain_until) {
					fprintf(stderr, "portshare-apps: stopping: the proxies drain, then the "
					                "apps stop (their queues stay)\n");
					drain_until = apps_now() + PROXY_DRAIN_MS;
					for (struct app *a = apps; a; a = a->next)
						if (!a->native && a->registered && a->cfg.state)
							proxy_drain(&a->cfg);
				}
			}
		}
		if (drain_until && !quit_at && (stop_now || apps_now() > drain_until || apps_drained())) {
			quit_at = apps_now() + APPS_STOP_MS;
			pthread_mutex_lock(&apps_proc_mu);
			for (struct app *a = apps; a; a = a->next) {
				a->deleted = true; /* nothing starts again */
				apps_proc_term(a);
			}
			pthread_mutex_unlock(&apps_proc_mu);
		}
		pthread_mutex_lock(&apps_proc_mu);
		int ws;
		pid_t pid;
		while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
			int status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
			for (struct app *a = apps; a && !apps_proc_reaped(a, pid, status, apps_now());
			     a = a->next)
				;
		}
		int64_t now = apps_now();
		bool left = false;
		for (struct app *a = apps; a; a = a->next) {
			apps_proc_tick(a, now);
			left |= apps_proc_count(a->pid) || apps_proc_count(a->next_pid) ||
			        apps_proc_count(a->old_pid);
			if (quit_at && now > quit_at)
				apps_proc_signal(a, SIGKILL);
		}
		pthread_mutex_unlock(&apps_proc_mu);
		if (quit_at && (!left || now > quit_at + 1000)) {
			for (struct app *a = apps; a; a = a->next)
				apps_socket_remove(a);
			unlink(apps_socket);
			fflush(NULL);
			_exit(0);
		}
	}
}
