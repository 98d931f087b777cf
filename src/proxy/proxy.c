/* proxy.c: the proxy's options and its worker threads. Each thread is a libportshare
 * session of its own (a ps_client belongs to one thread) with its own backend pool;
 * the first creates the queue and its URLs, the others join it (docs/ADAPTERS.md). */
#include "proxy.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "portshare.h"

#include "forward.h"

struct proxy_thread {
	struct proxy_config *cfg;
	ps_client *c;
	ps_queue *q;
	struct forward f;
	bool first;   /* made the queue: never retires (proxy_may_retire) */
	bool retired; /* ended by proxy_may_retire: counted in state->retiring until it ends */
};

void proxy_config_init(struct proxy_config *cfg, const char *prog)
{
	memset(cfg, 0, sizeof(*cfg));
	pthread_mutex_init(&cfg->target_mu, NULL);
	cfg->prog = prog;
	cfg->backend_timeout_ms = PROXY_BACKEND_TIMEOUT_DEFAULT * 1000;
	cfg->threads = PROXY_THREADS_DEFAULT;
}

static bool proxy_number(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int proxy_option(struct proxy_config *cfg, int argc, char **argv, int *i, const char **why)
{
	const char *arg = argv[*i];
	if (strcmp(arg, "--strip-prefix") == 0) {
		cfg->strip_prefix = true;
		return 1;
	}
	static const char *const with_value[] = {"--socket",          "--queue",   "--url", "--backend",
	                                         "--backend-timeout", "--threads", NULL};
	size_t k = 0;
	while (with_value[k] && strcmp(arg, with_value[k]) != 0)
		k++;
	if (!with_value[k])
		return 0;
	if (*i + 1 >= argc) {
		*why = "an option needs a value";
		return -1;
	}
	const char *v = argv[++*i];
	long n;
	switch (k) {
	case 0:
		cfg->socket = v;
		break;
	case 1:
		cfg->queue = v;
		break;
	case 2:
		if (cfg->nurls == PROXY_URLS_MAX) {
			*why = "too many --url (32 at most)";
			return -1;
		}
		cfg->urls[cfg->nurls++] = v;
		break;
	case 3:
		cfg->backend_spec = v;
		if (!backend_addr_parse(v, &cfg->backend, why))
			return -1;
		break;
	case 4:
		if (!proxy_number(v, 1, 86400, &n)) {
			*why = "--backend-timeout takes seconds, 1-86400";
			return -1;
		}
		cfg->backend_timeout_ms = (int)n * 1000;
		break;
	default:
		if (!proxy_number(v, 1, PROXY_THREADS_MAX, &n)) {
			*why = "--threads takes 1-1024";
			return -1;
		}
		cfg->threads = (int)n;
		break;
	}
	return 1;
}

static const char *proxy_socket(const struct proxy_config *cfg)
{
	const char *path = cfg->socket;
	if (!path || !*path)
		path = getenv(PS_SOCKET_ENV);
	return path && *path ? path : PS_DEFAULT_SOCKET;
}

static void proxy_complain(const struct proxy_config *cfg, ps_client *c, int rc, const char *what,
                           const char *on)
{
	int e = errno;
	fprintf(stderr, "%s: %s %s: %s", cfg->prog, what, on, ps_strerror(rc));
	if (rc == PS_ESYSTEM)
		fprintf(stderr, " (%s)", strerror(e));
	const char *detail = c ? ps_client_message(c) : "";
	if (detail && *detail)
		fprintf(stderr, ": %s", detail);
	fputc('\n', stderr);
}

static void *proxy_thread_run(void *arg);

/* How many threads: each blocks for as long as its request lasts, so a stream or a long
 * poll must not keep the queue's other requests waiting while cfg->threads allows one
 * more thread; but every thread beyond the CPUs' count costs context switches on quick
 * requests (measured: 51 threads spent 1.6x the CPU of one per request on one CPU).
 * So a thread that takes the last idle slot starts another only up to the CPUs the
 * process may run on; past that, proxy_watch adds one when every thread is busy and one
 * of them has been for PROXY_LONG_MS (a long request, not a busy moment). */
#define PROXY_LONG_MS 50
#define PROXY_WATCH_MS 20
#define PROXY_WAKE_MS 250 /* a waiting thread looks at the drain flag this often */
/* A thread beyond the CPUs' count that has had no request for this long drains its session
 * and ends: threads added for long requests do not stay to share the CPU with the others. */
#define PROXY_RETIRE_MS 5000
/* Receives each thread keeps posted (ps_queue_set_receive_window): new connections that
 * come while it is busy reach it together, one wake-up for many, and go to the backend
 * as one batch (forward_batch); a request that turns long gives them all back
 * (proxy_long). A new connection per request: 4.2 context switches per request with one
 * receive, 1.0 with 16 (docs/ADAPTERS.md). */
#define PROXY_RECEIVE_WINDOW 16
struct proxy_state {
	atomic_int idle, total, slots;
	atomic_int retiring; /* threads draining to end (proxy_may_retire), still in total */
	int cpus;
	atomic_bool stop;  /* the queue was deleted: threads end */
	atomic_bool drain; /* proxy_drain: threads drain their sessions, then end */
	/* per slot: taken by a thread, and when its current request began (0 while it waits) */
	atomic_bool used[PROXY_THREADS_MAX];
	_Atomic int64_t started[PROXY_THREADS_MAX];
};

/* A slot of started[] for a thread (slots of ended threads are taken again); -1 if none. */
static int proxy_slot_take(struct proxy_state *st)
{
	for (int i = 0; i < PROXY_THREADS_MAX; i++) {
		if (atomic_exchange(&st->used[i], true))
			continue;
		int high = atomic_load(&st->slots);
		while (high < i + 1 && !atomic_compare_exchange_weak(&st->slots, &high, i + 1))
			;
		return i;
	}
	return -1;
}

/* Whether this idle thread may end: the first never, and never below the CPUs' count. */
static bool proxy_may_retire(struct proxy_thread *t)
{
	struct proxy_state *st = t->cfg->state;
	if (t->first)
		return false;
	int floor = st->cpus > 1 ? st->cpus : 1;
	int retiring = atomic_fetch_add(&st->retiring, 1) + 1;
	if (atomic_load(&st->total) - retiring >= floor)
		return true;
	atomic_fetch_sub(&st->retiring, 1);
	return false;
}

/* Starts fn(arg) in a detached thread: 0, or an errno value. */
static int proxy_detached(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int rc = pthread_attr_init(&attr);
	if (rc != 0)
		return rc;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t tid;
	rc = pthread_create(&tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return rc;
}

/* Starts a thread that joins the queue (its session is opened in the thread). */
static int proxy_spawn(struct proxy_config *cfg)
{
	struct proxy_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->cfg = cfg;
	if (proxy_detached(proxy_thread_run, t) != 0) {
		free(t);
		return -1;
	}
	return 0;
}

static void proxy_grow(struct proxy_config *cfg)
{
	if (atomic_load(&cfg->state->drain))
		return;
	if (atomic_fetch_add(&cfg->state->total, 1) >= cfg->threads) {
		atomic_fetch_sub(&cfg->state->total, 1);
		return;
	}
	if (proxy_spawn(cfg) < 0) {
		atomic_fetch_sub(&cfg->state->total, 1);
		fprintf(stderr, "%s: error: cannot start another thread\n", cfg->prog);
	}
}

/* Adds a thread when every one is busy and one has been busy for PROXY_LONG_MS. */
static void *proxy_watch(void *arg)
{
	struct proxy_config *cfg = arg;
	struct proxy_state *st = cfg->state;
	while (!atomic_load(&st->stop)) {
		struct timespec ts = {0, PROXY_WATCH_MS * 1000000L};
		nanosleep(&ts, NULL);
		if (atomic_load(&st->idle) > 0 || atomic_load(&st->total) >= cfg->threads)
			continue;
		int64_t long_ago = backend_now_ms() - PROXY_LONG_MS;
		int n = atomic_load(&st->slots);
		for (int i = 0; i < n && i < PROXY_THREADS_MAX; i++) {
			int64_t t = atomic_load(&st->started[i]);
			if (t != 0 && t < long_ago) {
				proxy_grow(cfg);
				break;
			}
		}
	}
	return NULL;
}

/* Under target_mu: of the targets not down the one with the fewest users (the next in
 * turn among equals); when all are down, the next in turn. */
static struct backend_target *proxy_target_pick(struct proxy_config *cfg)
{
	int n = cfg->ntargets;
	if (n == 1)
		return cfg->targets[0];
	unsigned start = cfg->turn++;
	struct backend_target *best = NULL;
	int best_users = 0;
	for (int k = 0; k < n; k++) {
		struct backend_target *c = cfg->targets[(start + (unsigned)k) % (unsigned)n];
		int users = atomic_load(&c->users);
		if (!atomic_load(&c->down) && (!best || users < best_users)) {
			best = c;
			best_users = users;
		}
	}
	return best ? best : cfg->targets[start % (unsigned)n];
}

struct backend_target *proxy_target_hold(struct proxy_config *cfg)
{
	pthread_mutex_lock(&cfg->target_mu);
	struct backend_target *t = proxy_target_pick(cfg);
	atomic_fetch_add(&t->users, 1);
	pthread_mutex_unlock(&cfg->target_mu);
	return t;
}

struct backend_target *proxy_target_instead(struct proxy_config *cfg, struct backend_target *t)
{
	struct backend_target *other = NULL;
	pthread_mutex_lock(&cfg->target_mu);
	if (cfg->ntargets > 1) {
		atomic_store(&t->down, true);
		other = proxy_target_pick(cfg);
		if (other == t)
			other = NULL; /* every one is down */
		else
			atomic_fetch_add(&other->users, 1);
	}
	pthread_mutex_unlock(&cfg->target_mu);
	return other;
}

void proxy_target_release(struct backend_target *t)
{
	atomic_fetch_sub(&t->users, 1);
}

int proxy_target_swap(struct proxy_config *cfg, struct backend_target *const *ts, int n,
                      struct backend_target **old)
{
	pthread_mutex_lock(&cfg->target_mu);
	int nold = cfg->ntargets;
	memcpy(old, cfg->targets, (size_t)nold * sizeof(*old));
	memcpy(cfg->targets, ts, (size_t)n * sizeof(*ts));
	cfg->ntargets = n;
	pthread_mutex_unlock(&cfg->target_mu);
	return nold;
}

static void proxy_unavailable(ps_request *r, const char *why)
{
	ps_header h = {"Content-Type", "text/plain"};
	ps_respond(r, 503, &h, 1, why, strlen(why));
}

/* A URL the daemon refused to register again after a reconnect (ps_receive says it once):
 * said on stderr; true when rc is such a refusal. */
static bool proxy_refused_again(struct proxy_thread *t, int rc)
{
	if (rc != PS_EDENIED && rc != PS_EEXIST && rc != PS_EPORTINUSE)
		return false;
	fprintf(stderr, "%s: a URL of queue %s was refused after a reconnect: %s: %s\n", t->cfg->prog,
	        ps_queue_name(t->q), ps_strerror(rc), ps_client_message(t->c));
	return true;
}

/* Whether r may be forwarded (the supervisor's before_request); else it is answered. */
static bool proxy_admit(struct proxy_thread *t, ps_request *r)
{
	const struct proxy_config *cfg = t->cfg;
	const char *refused = cfg->before_request ? cfg->before_request(cfg->hook_arg) : NULL;
	if (!refused)
		return true;
	proxy_unavailable(r, refused);
	ps_request_free(r);
	return false;
}

/* Forwards r and, when it is a GET or HEAD, the requests already waiting behind it, as a
 * batch (forward_batch): the backend then takes them in one wake-up, as it does from an
 * event-driven proxy, instead of a switch to it and back for each (bench/README.md, p1). */
static void proxy_handle(struct proxy_thread *t, ps_request *r)
{
	const struct proxy_config *cfg = t->cfg;
	ps_request *rs[FORWARD_BATCH_MAX];
	int n = 0;
	if (!proxy_admit(t, r))
		return;
	rs[n++] = r;
	while (n < FORWARD_BATCH_MAX && forward_batchable(rs[n - 1]) && forward_batching(&t->f)) {
		ps_request *next;
		int rc = ps_receive(t->q, &next, 0);
		if (rc != 0) {
			proxy_refused_again(t, rc); /* said once; anything else shows at the next wait */
			break;
		}
		if (proxy_admit(t, next))
			rs[n++] = next;
	}
	struct backend_target *target = proxy_target_hold(t->cfg);
	if (n == 1)
		forward_request(&t->f, r, target);
	else
		forward_batch(&t->f, rs, n, target);
	proxy_target_release(target);
	for (int i = 0; i < n; i++) {
		ps_request_free(rs[i]);
		if (cfg->after_request)
			cfg->after_request(cfg->hook_arg);
	}
}

static void proxy_serve(struct proxy_thread *t)
{
	const struct proxy_config *cfg = t->cfg;
	struct proxy_state *st = cfg->state;
	int slot = proxy_slot_take(st);
	_Atomic int64_t *started = slot >= 0 ? &st->started[slot] : NULL;
	atomic_fetch_add(&st->idle, 1);
	bool draining = false;
	int64_t idle_since = backend_now_ms();
	ps_queue_set_receive_window(t->q, PROXY_RECEIVE_WINDOW);
	while (!atomic_load(&st->stop)) {
		if (!draining && atomic_load(&st->drain)) {
			draining = true;
			if (ps_queue_drain(t->q) < 0)
				break; /* no session: nothing is kept, nothing to give back */
		}
		ps_request *r;
		/* a finite wait, so that a drain asked for meanwhile is seen */
		int rc = ps_receive(t->q, &r, PROXY_WAKE_MS);
		if (rc == PS_ETIMEDOUT && !draining && backend_now_ms() - idle_since >= PROXY_RETIRE_MS &&
		    proxy_may_retire(t)) {
			t->retired = true;
			draining = true; /* as proxy_drain does, for this session only */
			if (ps_queue_drain(t->q) < 0)
				break;
			continue;
		}
		if (rc == PS_ETIMEDOUT || (rc == PS_ESYSTEM && errno == EINTR))
			continue;
		if (draining && rc == PS_ESTATE)
			break;
		if (proxy_refused_again(t, rc))
			continue;
		if (rc == PS_ENOTFOUND) {
			if (cfg->deleted) {
				if (!atomic_exchange(&st->stop, true))
					cfg->deleted(cfg->hook_arg);
				break;
			}
			fprintf(stderr, "%s: queue %s was deleted: exiting\n", t->cfg->prog,
			        ps_queue_name(t->q));
			fflush(NULL);
			_exit(1);
		}
		if (rc < 0) {
			proxy_complain(t->cfg, t->c, rc, "receiving from queue", ps_queue_name(t->q));
			sleep(1);
			continue;
		}
		if (started)
			atomic_store(started, backend_now_ms());
		if (atomic_fetch_sub(&st->idle, 1) == 1 && atomic_load(&st->total) < st->cpus)
			proxy_grow(t->cfg);
		proxy_handle(t, r);
		if (started)
			atomic_store(started, 0);
		atomic_fetch_add(&st->idle, 1);
		idle_since = backend_now_ms();
	}
	atomic_fetch_sub(&st->idle, 1);
	if (slot >= 0) {
		atomic_store(&st->started[slot], 0);
		atomic_store(&st->used[slot], false);
	}
}

/* The thread's request turned long (forward.c's alarm): what its session holds but is
 * not serving (its posted receives, the window, and what they brought; kept connections) goes to
 * other threads. When it waits for the backend (a stream, a long poll) and no thread is
 * free, one more starts at once; not when it is busy moving a large body, which on a
 * loaded CPU is long too: threads added then only compete for that CPU (the watcher's
 * 50 ms rule still applies). */
static void proxy_long(void *arg, bool waiting)
{
	struct proxy_thread *t = arg;
	/* the yield first: once this session's receives are withdrawn, what the batch gives
	 * back cannot be delivered here again */
	int rc = ps_client_yield(t->c);
	forward_give_back_rest(&t->f);
	if (rc < 0 && rc != PS_EDISCONNECTED)
		proxy_complain(t->cfg, t->c, rc, "giving back to queue", ps_queue_name(t->q));
	if (waiting && atomic_load(&t->cfg->state->idle) == 0)
		proxy_grow(t->cfg);
}

static void *proxy_thread_run(void *arg)
{
	struct proxy_thread *t = arg;
	forward_init(&t->f, t->cfg);
	t->f.pool.alarm = (struct backend_alarm){0, proxy_long, t};
	if (!t->c) {
		int rc = ps_connect(proxy_socket(t->cfg), &t->c);
		if (rc == 0)
			rc = ps_queue_open(t->c, t->cfg->queue, &t->q);
		if (rc < 0) {
			proxy_complain(t->cfg, t->c, rc, "joining queue", t->cfg->queue);
			if (t->c)
				ps_close(t->c);
			atomic_fetch_sub(&t->cfg->state->total, 1);
			free(t);
			return NULL;
		}
	}
	proxy_serve(t);
	forward_fini(&t->f);
	ps_close(t->c);
	if (t->retired)
		atomic_fetch_sub(&t->cfg->state->retiring, 1);
	atomic_fetch_sub(&t->cfg->state->total, 1); /* a drain waits for 0 (proxy_threads) */
	free(t);
	return NULL;
}

int proxy_start(struct proxy_config *cfg)
{
	const char *path = proxy_socket(cfg);
	if (!cfg->state)
		cfg->state = calloc(1, sizeof(*cfg->state));
	if (!cfg->ntargets && (cfg->targets[0] = backend_target_new(&cfg->backend, 0)) != NULL)
		cfg->ntargets = 1;
	struct proxy_thread *t = calloc(1, sizeof(*t));
	if (!t || !cfg->state || !cfg->ntargets) {
		free(t);
		return -1;
	}
	t->cfg = cfg;
	t->first = true;

	/* Delegation and prefetch stay on (the daemon off the path of keep-alive requests);
	 * a request that turns long gives back what its session holds (proxy_long), so
	 * nothing waits behind it (docs/ADAPTERS.md). */
	int rc = ps_connect(path, &t->c);
	if (rc < 0) {
		proxy_complain(cfg, NULL, rc, "connecting to portshared at", path);
		free(t);
		return -1;
	}
	ps_queue_opts opts = {.persistent = cfg->persistent};
	rc = ps_queue_create(t->c, cfg->queue, &opts, &t->q);
	if (rc == PS_EEXIST)
		rc = ps_queue_open(t->c, cfg->queue, &t->q);
	if (rc < 0) {
		proxy_complain(cfg, t->c, rc, "creating queue", cfg->queue);
		ps_close(t->c);
		free(t);
		return -1;
	}
	for (size_t i = 0; i < cfg->nurls; i++) {
		rc = ps_queue_add_url(t->q, cfg->urls[i]);
		if (rc < 0) {
			char on[600];
			snprintf(on, sizeof(on), "%s to queue %s", cfg->urls[i], cfg->queue);
			proxy_complain(cfg, t->c, rc, "adding URL", on);
			ps_close(t->c);
			free(t);
			return -1;
		}
	}
	printf("%s: ready queue=%s backend=%s\n", cfg->prog, ps_queue_name(t->q), cfg->targets[0]->addr.name);
	fflush(stdout);
	cpu_set_t cpus;
	cfg->state->cpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
	atomic_store(&cfg->state->total, 1);
	rc = proxy_detached(proxy_thread_run, t);
	if (rc == 0)
		rc = proxy_detached(proxy_watch, cfg);
	if (rc != 0) {
		fprintf(stderr, "%s: cannot start a thread: %s\n", cfg->prog, strerror(rc));
		return -1;
	}
	return 0;
}

void proxy_drain(struct proxy_config *cfg)
{
	atomic_store(&cfg->state->drain, true);
}

int proxy_threads(const struct proxy_config *cfg)
{
	return atomic_load(&cfg->state->total);
}
