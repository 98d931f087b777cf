/* proxy.h: portshare-proxy as a library for its two programs (portshare-proxy and
 * portshare-run): the options, and the worker threads that receive requests from a
 * queue and forward them to one backend (docs/ADAPTERS.md). */
#ifndef PS_PROXY_PROXY_H
#define PS_PROXY_PROXY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

#define PROXY_URLS_MAX 32
#define PROXY_THREADS_DEFAULT 64 /* at most: requests in progress at once */
#define PROXY_THREADS_MAX 1024
#define PROXY_BACKEND_TIMEOUT_DEFAULT 60 /* seconds, as nginx's proxy_read_timeout */
#define PROXY_TARGETS_MAX 16             /* processes of one app behind a proxy */

struct proxy_config {
	const char *prog;   /* "portshare-proxy": the prefix of every message */
	const char *socket; /* --socket, else $PORTSHARE_SOCKET, else the default */
	const char *queue;  /* --queue (portshare-run: run-PID when not given) */
	const char *urls[PROXY_URLS_MAX];
	size_t nurls;
	const char *backend_spec; /* --backend as given */
	struct backend_addr backend;
	bool strip_prefix;
	int backend_timeout_ms;
	int threads;     /* at most */
	bool persistent; /* the queue outlives the sessions (admin only) */
	/* For portshare-apps, which runs many proxies in one process (all may be NULL):
	 * before_request is called before each request is forwarded (NULL: forward it; else
	 * the request is answered 503 with that text as its body); after_request once a
	 * forwarded request is answered; deleted when the queue was deleted (without it the
	 * process exits). */
	const char *(*before_request)(void *arg);
	void (*after_request)(void *arg);
	void (*deleted)(void *arg);
	void *hook_arg;
	struct proxy_state *state; /* the threads' counters, made by proxy_start */
	/* where requests go now: one target a process of the app (portshare-apps' --workers
	 * of an HTTP app; else one, made from backend by proxy_start), each request to the one
	 * not down with the fewest requests in progress; replaced by proxy_target_swap; read
	 * under target_mu, since the threads read it while the supervisor replaces it */
	struct backend_target *targets[PROXY_TARGETS_MAX];
	int ntargets;
	unsigned turn; /* where the next choice starts among equals */
	pthread_mutex_t target_mu;
};

void proxy_config_init(struct proxy_config *cfg, const char *prog);
/* Takes one option at argv[*i] (advancing *i past its value): 1 when it was one of the
 * proxy's (--socket --queue --url --backend --strip-prefix --backend-timeout --threads),
 * 0 when it is not, -1 when its value is missing or wrong (*why says which). */
int proxy_option(struct proxy_config *cfg, int argc, char **argv, int *i, const char **why);

/* Connects, creates the queue (or joins it when it exists), adds the URLs, prints
 * "PROG: ready queue=NAME" and starts the threads. On failure prints why and returns -1.
 * Call with SIGTERM/SIGINT/SIGHUP/SIGCHLD blocked: the threads inherit the mask and
 * the caller waits for signals. */
int proxy_start(struct proxy_config *cfg);

/* A clean stop: each thread drains its session (ps_queue_drain: no new deliveries,
 * kept connections go back to the daemon with what was read on them), finishes the
 * requests it has and ends; proxy_threads counts the threads not ended yet. */
void proxy_drain(struct proxy_config *cfg);
int proxy_threads(const struct proxy_config *cfg);
/* How long a stop waits for the drained threads (a stream may never end): portshare-proxy,
 * portshare-run and portshare-apps alike. */
#define PROXY_DRAIN_MS 10000

/* The target the next request goes to, held (users + 1) until proxy_target_release: of
 * those not down the one with the fewest users (the next in turn among equals); when all
 * are down, the next in turn. */
struct backend_target *proxy_target_hold(struct proxy_config *cfg);
void proxy_target_release(struct backend_target *t);
/* t's process refused a connection (gone or going; the supervisor has not seen it yet):
 * with other targets, t is down until the supervisor's probe finds it accepting again,
 * and another is chosen as proxy_target_hold does and held; NULL when t is the only one
 * or every one is down. errno is kept. */
struct backend_target *proxy_target_instead(struct proxy_config *cfg, struct backend_target *t);
/* Makes ts[0, n) the targets of the requests that come next; the ones before go to
 * old[] (PROXY_TARGETS_MAX of room) and their count is returned: their users finish with
 * them (the caller frees each once its users are 0). */
int proxy_target_swap(struct proxy_config *cfg, struct backend_target *const *ts, int n,
                      struct backend_target **old);

#endif
