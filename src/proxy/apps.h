/* apps.h: an app of portshare-apps: its definition (the words of `portsharectl app add`,
 * kept as written) parsed and stored, and its running state, which apps_proc.c owns. */
#ifndef PS_PROXY_APPS_H
#define PS_PROXY_APPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy.h"

#define APPS_NAME_MAX 48
#define APPS_WORDS_MAX 256
#define APPS_GROUPS_MAX 256
#define APPS_IDLE_DEFAULT 1200 /* seconds, IIS's idle timeout */
/* rapid-fail protection, as IIS's: this many crashes within this many seconds and the app
 * is failed (503) until `app start` */
#define APPS_RAPID_FAIL_COUNT 5
#define APPS_RAPID_FAIL_INTERVAL 300
#define APPS_RAPID_FAIL_MAX 100
/* --workers: an app's processes (IIS's web garden), at most: a libportshare app's on its
 * queue, an HTTP app's each on a port or socket of its own behind its proxy */
#define APPS_PROCS_MAX PROXY_TARGETS_MAX

/* APP_IDLE: not running, started by the next request; APP_STOPPED: stopped by `app stop`;
 * APP_FAILED: stopped by rapid-fail protection. The last two answer 503 until `app start`. */
enum app_state { APP_IDLE, APP_STARTING, APP_RUNNING, APP_STOPPING, APP_BACKOFF, APP_STOPPED, APP_FAILED };

struct app {
	struct app *next;
	char name[APPS_NAME_MAX + 1];
	char queue[APPS_NAME_MAX + 8];
	char *words; /* the definition as stored: NUL-ended words, NAME first */
	size_t words_len;
	char **cmd; /* NULL: a proxy queue in front of --backend */
	/* a libportshare app: no {port}, {socket}, $PORT or --port-env; it joins its queue
	 * itself ($PORTSHARE_QUEUE) and apps_native.c waits for demand instead of a proxy */
	bool native;
	int nprocs; /* processes of the command: --workers (1 by default) */
	char *user;
	uid_t uid;
	gid_t gid;
	gid_t groups[APPS_GROUPS_MAX];
	int ngroups;
	char *home;
	bool always_running;
	int idle_timeout;        /* seconds */
	int rapid_fail_count;    /* 0: no rapid-fail protection */
	int rapid_fail_interval; /* seconds */
	/* an HTTP app's addresses, one a slot (process): its target is cfg.targets[slot] */
	char port[APPS_PROCS_MAX][12];
	bool use_socket;   /* {socket} in the command: a unix socket in a private directory */
	char sock_dir[64]; /* made (owned by the app's user) when the app is registered */
	char sock[APPS_PROCS_MAX][96];
	struct proxy_config cfg;
	/* running state: apps_proc.c changes it (apps_main.c too, for the list), under apps_proc_mu */
	enum app_state state;
	enum app_state stop_to; /* what APP_STOPPING becomes: APP_IDLE or APP_STOPPED */
	/* the serving processes, one a slot (the first nprocs are used; 0: none, a slot whose
	 * process died waits out its backoff from died_at while the others serve on) */
	pid_t pid[APPS_PROCS_MAX];
	int64_t died_at[APPS_PROCS_MAX];
	int64_t since; /* when the state began */
	int64_t last_use;
	int active;
	int failures;                          /* deaths in a row, for the backoff */
	int64_t crash_at[APPS_RAPID_FAIL_MAX]; /* the last crashes (a ring; 0: none) */
	int crash_next;                        /* where the next one goes in crash_at */
	int last_status;                       /* of the last exit: 128+N for signal N; -1 none */
	unsigned gen;                          /* of the latest target made (one a process) */
	/* an overlapped restart: the new processes start on new addresses while pid serve on */
	pid_t next_pid[APPS_PROCS_MAX];
	struct backend_target *next_targets[APPS_PROCS_MAX]; /* an HTTP app's, one a slot */
	char next_port[APPS_PROCS_MAX][12], next_sock[APPS_PROCS_MAX][96];
	int64_t next_since;
	/* after the switch: the old processes, stopped once no request uses their targets */
	pid_t old_pid[APPS_PROCS_MAX];
	struct backend_target *old_targets[APPS_PROCS_MAX];
	int nold;
	int64_t old_since, old_term_at; /* when it was switched away from, when it got SIGTERM */
	bool deleted;
	bool registered; /* its queue and URLs are in the daemon, its proxy (or controller) runs */
	/* a libportshare app (apps_native.c): a request waits that no process serves (its
	 * controller thread saw the demand); a slot's process, a restart's new one, has joined
	 * the queue */
	bool demand;
	bool joined[APPS_PROCS_MAX];
	bool next_joined[APPS_PROCS_MAX];
	bool native_thread; /* its controller thread runs */
};

/* Parses a definition (words[0] is the name, NUL-ended words) into a new app that keeps
 * the words: NULL with err filled when the definition is wrong (the words stay the
 * caller's then). The app's proxy talks to daemon_socket. */
struct app *apps_parse(char *words, size_t len, const char *daemon_socket, char *err, size_t errlen);
/* A free loopback port for slot i of a set of ports, unlike those of slots 0 to i - 1 (the
 * kernel may give one twice), written to ports[i]: the port, or -1 with errno. */
int apps_free_port(char (*ports)[12], int i);
/* Writes DIR/NAME atomically (temp file, fsync, rename, fsync of the directory), 0600:
 * 0, or -1 with err filled. */
int apps_store(const struct app *a, const char *dir, char *err, size_t errlen);
/* Frees an app and its words (only one whose proxy never started). */
void apps_free(struct app *a);

#endif
