/* proxy.c: the proxy's options and its worker threads. Each thread is a libportshare
 * session of its own (a ps_client belongs to one thread) with its own backend pool;
 * the first creates the queue and its URLs, the others join it (docs/ADAPTERS.md). */
#include "proxy.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portshare.h"

#include "forward.h"

struct proxy_thread {
	struct proxy_config *cfg;
	ps_client *c;
	ps_queue *q;
	bool creator;  /* holds the queue and its URLs: never retires */
	bool retiring; /* drained: serves what it was given, then ends */
	struct forward f;
};

void proxy_config_init(struct proxy_config *cfg, const char *prog)
{
	memset(cfg, 0, sizeof(*cfg));
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
	static const char *const with_value[] = {"--socket", "--queue", "--url", "--backend", "--backend-timeout",
	                                         "--threads", NULL};
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
			*why = "--threads takes 1-256";
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

static void proxy_complain(const struct proxy_config *cfg, ps_client *c, int rc, const char *what, const char *on)
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

/* Starts a thread that joins the queue (its session is opened in the thread). */
static int proxy_spawn(struct proxy_config *cfg)
{
	struct proxy_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->cfg = cfg;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t tid;
	int rc = pthread_create(&tid, &attr, proxy_thread_run, t);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(t);
		return -1;
	}
	return 0;
}

/* A request that turned long (a stream, a long poll) would keep this session's other
 * keep-alive connections waiting behind it, since only this thread reads them: the
 * session is drained (its idle connections go back to the daemon at once) and a new
 * thread takes its place; this one ends after the request. The creator's session has
 * no delegated connections (proxy_start), so it stays. */
static void proxy_on_long(struct forward *f)
{
	struct proxy_thread *t = f->arg;
	if (t->creator || t->retiring)
		return;
	if (ps_queue_drain(t->q) < 0)
		return;
	t->retiring = true;
	if (proxy_spawn(t->cfg) < 0)
		fprintf(stderr, "%s: error: cannot start a thread to replace a busy one\n", t->cfg->prog);
}

static void proxy_serve(struct proxy_thread *t)
{
	for (;;) {
		ps_request *r;
		int rc = ps_receive(t->q, &r, -1);
		if (rc == PS_ESYSTEM && errno == EINTR)
			continue;
		if (rc == PS_ESTATE && t->retiring)
			return;
		if (rc == PS_EDENIED || rc == PS_EEXIST || rc == PS_EPORTINUSE) {
			fprintf(stderr, "%s: a URL of queue %s was refused after a reconnect: %s: %s\n", t->cfg->prog,
			        ps_queue_name(t->q), ps_strerror(rc), ps_client_message(t->c));
			continue;
		}
		if (rc == PS_ENOTFOUND) {
			fprintf(stderr, "%s: queue %s was deleted: exiting\n", t->cfg->prog, ps_queue_name(t->q));
			fflush(NULL);
			_exit(1);
		}
		if (rc < 0) {
			proxy_complain(t->cfg, t->c, rc, "receiving from queue", ps_queue_name(t->q));
			sleep(1);
			continue;
		}
		forward_request(&t->f, r);
		ps_request_free(r);
	}
}

static void *proxy_thread_run(void *arg)
{
	struct proxy_thread *t = arg;
	forward_init(&t->f, t->cfg);
	t->f.on_long = proxy_on_long;
	t->f.arg = t;
	if (!t->c) {
		int rc = ps_connect(proxy_socket(t->cfg), &t->c);
		if (rc == 0)
			rc = ps_queue_open(t->c, t->cfg->queue, &t->q);
		if (rc < 0) {
			proxy_complain(t->cfg, t->c, rc, "joining queue", t->cfg->queue);
			if (t->c)
				ps_close(t->c);
			free(t);
			return NULL;
		}
	}
	proxy_serve(t);
	forward_fini(&t->f);
	ps_close(t->c);
	free(t);
	return NULL;
}

int proxy_start(struct proxy_config *cfg)
{
	const char *path = proxy_socket(cfg);
	struct proxy_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->cfg = cfg;
	t->creator = true;

	/* The creator's session serves without delegation: it never retires (proxy_on_long),
	 * so it must hold no connection a long request could keep waiting. The library reads
	 * the switch in ps_connect, before any other thread exists. */
	const char *saved = getenv(PS_DELEGATION_ENV);
	char *copy = saved ? strdup(saved) : NULL;
	if (cfg->threads > 1)
		setenv(PS_DELEGATION_ENV, "0", 1);
	int rc = ps_connect(path, &t->c);
	if (copy)
		setenv(PS_DELEGATION_ENV, copy, 1);
	else
		unsetenv(PS_DELEGATION_ENV);
	free(copy);
	if (rc < 0) {
		proxy_complain(cfg, NULL, rc, "connecting to portshared at", path);
		free(t);
		return -1;
	}
	rc = ps_queue_create(t->c, cfg->queue, NULL, &t->q);
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
	printf("%s: ready queue=%s backend=%s threads=%d\n", cfg->prog, ps_queue_name(t->q), cfg->backend.name,
	       cfg->threads);
	fflush(stdout);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t tid;
	rc = pthread_create(&tid, &attr, proxy_thread_run, t);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		fprintf(stderr, "%s: cannot start a thread: %s\n", cfg->prog, strerror(rc));
		return -1;
	}
	for (int i = 1; i < cfg->threads; i++)
		if (proxy_spawn(cfg) < 0) {
			fprintf(stderr, "%s: cannot start thread %d\n", cfg->prog, i + 1);
			return -1;
		}
	return 0;
}
