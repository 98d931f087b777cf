/* apps_def.c: an app definition of portshare-apps: the words of `portsharectl app add`
 * checked and turned into an app (its proxy's options, its command, its user), and
 * written to the apps directory atomically. No running state. */
#include "apps.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"

void apps_free(struct app *a)
{
	free(a->home);
	free(a->cmd);
	free(a->words);
	free(a);
}

static bool apps_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > APPS_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static bool apps_number(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Parses a definition (words[0] is the name; the words are kept by the app) into a new
 * app: NULL with *why (a static or err's text) when it is wrong. */
struct app *apps_parse(char *words, size_t len, const char *daemon_socket, char *err, size_t errlen)
{
	char *w[APPS_WORDS_MAX];
	int n = 0;
	for (size_t off = 0; off < len; off += strlen(words + off) + 1) {
		if (n == APPS_WORDS_MAX) {
			snprintf(err, errlen, "too many words (%d at most)", APPS_WORDS_MAX);
			return NULL;
		}
		w[n++] = words + off;
	}
	if (n == 0 || !apps_name_ok(w[0])) {
		snprintf(err, errlen, "an app name is 1-%d letters, digits, '-', '_' or '.'", APPS_NAME_MAX);
		return NULL;
	}
	struct app *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->words = words;
	a->words_len = len;
	snprintf(a->name, sizeof(a->name), "%s", w[0]);
	snprintf(a->queue, sizeof(a->queue), "app-%s", a->name);
	proxy_config_init(&a->cfg, "portshare-apps");
	a->cfg.queue = a->queue;
	a->cfg.socket = daemon_socket;
	a->cfg.persistent = true;
	a->idle_timeout = APPS_IDLE_DEFAULT;
	a->rapid_fail_count = APPS_RAPID_FAIL_COUNT;
	a->rapid_fail_interval = APPS_RAPID_FAIL_INTERVAL;
	a->last_status = -1;
	/* port_env: --port-env; http_given: an option of the proxy in front of an HTTP app */
	bool allow_root = false, idle_given = false, port_env = false, http_given = false;
	int workers = 0; /* --workers: 0 not given */
	int i = 1;
	for (; i < n; i++) {
		const char *why = NULL;
		long v;
		if (!strcmp(w[i], "--")) {
			i++;
			break;
		} else if (!strcmp(w[i], "--always-running")) {
			a->always_running = true;
		} else if (!strcmp(w[i], "--allow-root")) {
			allow_root = true;
		} else if (!strcmp(w[i], "--port-env")) {
			port_env = true;
		} else if (!strcmp(w[i], "--rapid-fail-count") || !strcmp(w[i], "--rapid-fail-interval")) {
			const char *opt = w[i];
			bool count = !strcmp(opt, "--rapid-fail-count");
			if (i + 1 >= n ||
			    !apps_number(w[++i], count ? 0 : 1, count ? APPS_RAPID_FAIL_MAX : 86400, &v)) {
				snprintf(err, errlen, "%s takes %s", opt,
				         count ? "a number of crashes, 0-100 (0: never fail)"
				               : "seconds, 1-86400");
				goto fail;
			}
			*(count ? &a->rapid_fail_count : &a->rapid_fail_interval) = (int)v;
			idle_given = true; /* for a command only, as --idle-timeout */
		} else if (!strcmp(w[i], "--user") || !strcmp(w[i], "--workers") ||
		           !strcmp(w[i], "--idle-timeout")) {
			if (i + 1 >= n) {
				snprintf(err, errlen, "%s needs a value", w[i]);
				goto fail;
			}
			if (w[i][2] == 'u') {
				a->user = w[++i];
			} else if (w[i][2] == 'w') {
				/* its meaning depends on the kind of app, known once the command is read */
				if (!apps_number(w[++i], 1, PROXY_THREADS_MAX, &v)) {
					snprintf(err, errlen, "--workers takes 1-%d (1-%d with a command)",
					         PROXY_THREADS_MAX, APPS_PROCS_MAX);
					goto fail;
				}
				workers = (int)v;
			} else {
				if (!apps_number(w[++i], 1, 86400, &v)) {
					snprintf(err, errlen, "--idle-timeout takes seconds, 1-86400");
					goto fail;
				}
				a->idle_timeout = (int)v;
				idle_given = true;
			}
		} else if (!strcmp(w[i], "--url") || !strcmp(w[i], "--backend") ||
		           !strcmp(w[i], "--strip-prefix") || !strcmp(w[i], "--backend-timeout")) {
			http_given |= !strcmp(w[i], "--strip-prefix") || !strcmp(w[i], "--backend-timeout");
			int rc = proxy_option(&a->cfg, n, w, &i, &why);
			if (rc < 0) {
				snprintf(err, errlen, "%s: %s", w[i], why);
				goto fail;
			}
		} else {
			snprintf(err, errlen, "unknown option '%s'", w[i]);
			goto fail;
		}
	}
	if (a->cfg.nurls == 0) {
		snprintf(err, errlen, "at least one --url PREFIX is needed");
		goto fail;
	}
	a->nprocs = 1;
	bool has_cmd = i < n;
	if (has_cmd == (a->cfg.backend_spec != NULL)) {
		snprintf(err, errlen, "give either --backend URL or a command after --, not both");
		goto fail;
	}
	if (!has_cmd) {
		if (a->user || a->always_running || idle_given || allow_root || port_env) {
			snprintf(err, errlen,
			         "--user, --idle-timeout, --rapid-fail-*, --always-running, --port-env "
			         "and --allow-root are for a command");
			goto fail;
		}
		if (workers)
			a->cfg.threads = workers; /* no process: the requests forwarded at once */
		return a;
	}
	/* a command's --workers: its processes (a web garden) */
	if (workers > APPS_PROCS_MAX) {
		snprintf(err, errlen, "--workers of an app with a command takes 1-%d (processes)",
		         APPS_PROCS_MAX);
		goto fail;
	}
	a->nprocs = workers ? workers : 1;
	a->cmd = calloc((size_t)(n - i + 1), sizeof(char *));
	if (!a->cmd) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int k = i; k < n; k++)
		a->cmd[k - i] = w[k];
	if (a->user) {
		struct passwd *pw = getpwnam(a->user);
		if (!pw) {
			snprintf(err, errlen, "no such user '%s' (see getent passwd)", a->user);
			goto fail;
		}
		a->uid = pw->pw_uid;
		a->gid = pw->pw_gid;
		a->ngroups = APPS_GROUPS_MAX;
		if (getgrouplist(pw->pw_name, pw->pw_gid, a->groups, &a->ngroups) < 0) {
			snprintf(err, errlen, "user '%s' is in more than %d groups", a->user,
			         APPS_GROUPS_MAX);
			goto fail;
		}
		/* the passwd entry is overwritten by the next lookup: keep the home directory */
		if (!(a->home = strdup(pw->pw_dir))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	} else {
		a->uid = getuid();
		a->gid = getgid();
		a->ngroups = -1; /* keep ours */
	}
	if (a->uid == 0 && !allow_root) {
		snprintf(err, errlen, "the app would run as root: give --user USER (or --allow-root)");
		goto fail;
	}
	bool port_arg = false;
	for (size_t k = 0; a->cmd[k]; k++) {
		a->use_socket |= strstr(a->cmd[k], "{socket}") != NULL;
		/* "$PORT" in an argument is a shell's command line that reads it (sh -c '... $PORT') */
		port_arg |=
		    strstr(a->cmd[k], "{port}") || strstr(a->cmd[k], "$PORT") || strstr(a->cmd[k], "${PORT}");
	}
	/* neither a port nor a socket to listen on: a libportshare app, which joins its queue
	 * itself (docs/ADAPTERS.md, "Which kind an app is") */
	a->native = !a->use_socket && !port_arg && !port_env;
	if (a->native) {
		if (http_given) {
			snprintf(err, errlen,
			         "--strip-prefix and --backend-timeout are for an HTTP app ({port}, "
			         "{socket} or --port-env); this command is a libportshare app");
			goto fail;
		}
		return a;
	}
	/* each process's port until an `app restart` moves the app to others (apps_proc.c); a
	 * {socket} app gets its addresses when it is registered (apps_main.c) */
	for (int k = 0; k < a->nprocs; k++) {
		if (apps_free_port(a->port, k) < 0) {
			snprintf(err, errlen, "no free loopback port: %s", strerror(errno));
			goto fail;
		}
	}
	char spec[32];
	const char *why;
	snprintf(spec, sizeof(spec), "http://127.0.0.1:%s", a->port[0]);
	if (!backend_addr_parse(spec, &a->cfg.backend, &why)) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	return a;
fail:
	a->words = NULL;
	free(a->home);
	free(a->cmd);
	free(a);
	return NULL;
}

int apps_free_port(char (*ports)[12], int i)
{
	int port = launch_free_port();
	for (int k = 0; k < i && port >= 0; k++)
		if (atoi(ports[k]) == port) { /* the same free port twice: another */
			port = launch_free_port();
			k = -1;
		}
	if (port >= 0)
		snprintf(ports[i], sizeof(ports[i]), "%d", port);
	return port;
}

/* Writes DIR/NAME atomically (temp file, fsync, rename, fsync of the directory), 0600. */
int apps_store(const struct app *a, const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, a->name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, a->name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto fail;
	if (write(fd, a->words, a->words_len) != (ssize_t)a->words_len || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		goto fail;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot write %.200s: %s", path, strerror(errno));
	return -1;
}
