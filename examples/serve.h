/* serve.h: what the example workers share: their common options, connecting and making
 * (or joining) the queue, the "ready" line, the receive loop and a clean exit on
 * SIGTERM/SIGINT. Header-only so that each example stays one program of one file. */
#ifndef PS_EXAMPLES_SERVE_H
#define PS_EXAMPLES_SERVE_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portshare.h"

#define SERVE_URLS_MAX 32

struct serve_opts {
	const char *prog;   /* "portshare-hello": the prefix of every message */
	const char *kind;   /* "hello": default queue name kind-PID */
	const char *socket; /* --socket, else $PORTSHARE_SOCKET, else the default */
	const char *queue;  /* --queue */
	const char *urls[SERVE_URLS_MAX];
	size_t nurls;
};

/* Set by SIGTERM/SIGINT. The receive loop then drains the queue (ps_queue_drain: no new
 * deliveries, idle kept connections go back to the daemon with whatever was read on
 * them, the others after their current response), serves what was already delivered
 * and exits. Exiting straight from the handler would lose a next request the library
 * had begun to read on a kept connection: the daemon can only reset such a connection.
 * A second SIGINT (^C twice) exits at once; a repeated SIGTERM changes nothing, since a
 * supervisor and a service manager may both send one. */
static volatile sig_atomic_t serve_stop;

static void serve_on_signal(int sig)
{
	if (serve_stop && sig == SIGINT)
		_exit(0);
	serve_stop = 1;
}

/* Prints "PROG: what: reason[: the daemon's detail]" and exits 1. */
static inline void serve_fail(const struct serve_opts *o, ps_client *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
static inline void serve_fail(const struct serve_opts *o, ps_client *c, int rc, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	fprintf(stderr, "%s: ", o->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s", ps_strerror(rc));
	if (rc == PS_ESYSTEM)
		fprintf(stderr, " (%s)", strerror(e));
	const char *detail = ps_client_message(c);
	if (detail && *detail)
		fprintf(stderr, ": %s", detail);
	fputc('\n', stderr);
	exit(1);
}

/* Parses argv: the shared options, and the example's own option `extra` (NULL: none),
 * whose value goes to *extra_value. False on anything else or a missing value. */
static inline bool serve_parse(struct serve_opts *o, int argc, char **argv, const char *extra,
                               const char **extra_value)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char **slot = NULL;
		if (strcmp(arg, "--socket") == 0)
			slot = &o->socket;
		else if (strcmp(arg, "--queue") == 0)
			slot = &o->queue;
		else if (extra && strcmp(arg, extra) == 0)
			slot = extra_value;
		else if (strcmp(arg, "--url") != 0)
			return false;
		if (i + 1 >= argc)
			return false;
		const char *value = argv[++i];
		if (slot)
			*slot = value;
		else if (o->nurls < SERVE_URLS_MAX)
			o->urls[o->nurls++] = value;
		else
			return false;
	}
	return true;
}

/* Connects; with URLs creates the queue (--queue or KIND-PID) and adds them, without
 * joins the existing queue --queue as another worker. Prints the ready line. */
static inline ps_queue *serve_setup(struct serve_opts *o, ps_client **out)
{
	const char *path = o->socket;
	if (!path || !*path)
		path = getenv(PS_SOCKET_ENV);
	if (!path || !*path)
		path = PS_DEFAULT_SOCKET;
	ps_client *c;
	int rc = ps_connect(path, &c);
	if (rc < 0)
		serve_fail(o, NULL, rc, "connecting to portshared at %s", path);

	ps_queue *q;
	if (o->nurls > 0) {
		char name[64];
		if (o->queue)
			snprintf(name, sizeof(name), "%s", o->queue);
		else
			snprintf(name, sizeof(name), "%s-%d", o->kind, (int)getpid());
		rc = ps_queue_create(c, name, NULL, &q);
		if (rc < 0)
			serve_fail(o, c, rc, "creating queue %s", name);
		for (size_t i = 0; i < o->nurls; i++) {
			rc = ps_queue_add_url(q, o->urls[i]);
			if (rc < 0)
				serve_fail(o, c, rc, "adding URL %s to queue %s", o->urls[i], name);
		}
	} else {
		rc = ps_queue_open(c, o->queue, &q);
		if (rc < 0)
			serve_fail(o, c, rc, "joining queue %s", o->queue);
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = serve_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	printf("%s: ready queue=%s\n", o->prog, ps_queue_name(q));
	fflush(stdout);
	*out = c;
	return q;
}

/* Receives and serves requests until a signal ends the process: then drains and exits
 * once the requests already delivered are served. The receive wakes once a second, so a
 * signal that comes just before it blocks is seen. */
static inline void serve_forever(const struct serve_opts *o, ps_client *c, ps_queue *q,
                                 void (*handle)(ps_request *r, void *arg), void *arg)
{
	bool draining = false;
	for (;;) {
		if (serve_stop && !draining) {
			draining = true;
			int rc = ps_queue_drain(q);
			if (rc < 0 && rc != PS_EDISCONNECTED)
				fprintf(stderr, "%s: draining queue %s: %s\n", o->prog, ps_queue_name(q), ps_strerror(rc));
			if (rc < 0)
				break;
		}
		ps_request *r;
		int rc = ps_receive(q, &r, 1000);
		if (rc == PS_ETIMEDOUT || (rc == PS_ESYSTEM && errno == EINTR))
			continue;
		if (draining && rc == PS_ESTATE)
			break;
		if (rc == PS_EDENIED || rc == PS_EEXIST || rc == PS_EPORTINUSE) {
			/* a URL refused when re-registered after a daemon restart: say so, serve on */
			fprintf(stderr, "%s: a URL of queue %s was refused after a reconnect: %s: %s\n", o->prog,
			        ps_queue_name(q), ps_strerror(rc), ps_client_message(c));
			continue;
		}
		if (rc < 0)
			serve_fail(o, c, rc, "receiving from queue %s", ps_queue_name(q));
		handle(r, arg);
		ps_request_free(r);
	}
	ps_close(c);
	exit(0);
}

#endif
