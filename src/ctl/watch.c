/* watch.c: portsharectl status --watch, a live view of each queue's requests/s, errors/s
 * and depth, from two successive snapshots of the daemon's counters (status --json for the
 * queues, their depth, workers and the requests the daemon refused for them; the metrics
 * for the responses by status class). Nothing is counted for it: it only reads. */
#include "watch.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "protocol.h"

#define WATCH_DAEMON "(daemon)" /* the metrics' queue label of the daemon's own answers */
#define WATCH_INTERVAL_MIN 0.1
#define WATCH_INTERVAL_MAX 3600.0

/* One queue's counters in a snapshot. Live queues come from status (depth, workers,
 * refused); responses by class from the metrics, which also keep gone queues' counts
 * under their names (so a queue made again does not count its old requests as new). */
struct watch_queue {
	char name[PS_QUEUE_NAME_MAX + 1];
	bool live;
	uint32_t depth, workers;
	uint64_t refused;       /* the daemon's 503s for it (QueueFull, AppOffline, ...) */
	uint64_t responses, r5; /* its workers' responses, and those with a 5xx status */
};

struct watch_snapshot {
	int pid;
	double at; /* CLOCK_MONOTONIC seconds */
	struct watch_queue *q;
	size_t n, cap;
	uint64_t daemon_answers, daemon_errors; /* every answer of the daemon's own; those >= 400 */
};

static volatile sig_atomic_t watch_stop;

static void watch_on_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

static double watch_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void watch_snapshot_free(struct watch_snapshot *s)
{
	free(s->q);
	memset(s, 0, sizeof(*s));
}

/* The entry of queue name in s, added (zeroed) when missing; NULL on no memory. */
static struct watch_queue *watch_queue_at(struct watch_snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->q[i].name, name))
			return &s->q[i];
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct watch_queue *q = realloc(s->q, cap * sizeof(*q));
		if (!q)
			return NULL;
		s->q = q;
		s->cap = cap;
	}
	struct watch_queue *q = &s->q[s->n++];
	memset(q, 0, sizeof(*q));
	snprintf(q->name, sizeof(q->name), "%s", name);
	return q;
}

static const struct watch_queue *watch_queue_find(const struct watch_snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->q[i].name, name))
			return &s->q[i];
	return NULL;
}

/* The live queues from status --json. 0 or -1 (reported). */
static int watch_read_status(struct watch_snapshot *s, const char *text)
{
	char err[128];
	struct json *j = json_parse(text, err, sizeof(err));
	if (!j) {
		fprintf(stderr, "portsharectl: status --watch: the daemon's status is not JSON: %s\n", err);
		return -1;
	}
	s->pid = (int)json_int(json_get(j, "pid"), 0);
	const struct json *queues = json_get(j, "queues");
	int rc = 0;
	for (size_t i = 0; i < json_count(queues) && rc == 0; i++) {
		const struct json *jq = json_at(queues, i);
		struct watch_queue *q = watch_queue_at(s, json_string(json_get(jq, "name"), "?"));
		if (!q) {
			rc = -1;
			break;
		}
		q->live = true;
		q->depth = (uint32_t)json_int(json_get(jq, "depth"), 0);
		q->workers = (uint32_t)json_count(json_get(jq, "workers"));
		q->refused = (uint64_t)json_int(json_get(jq, "refused"), 0);
	}
	json_free(j);
	return rc;
}

/* A label's value: after `key="` up to the closing quote, into out. The end, or NULL. */
static const char *watch_label(const char *p, const char *key, char *out, size_t len)
{
	size_t k = strlen(key);
	if (strncmp(p, key, k) != 0 || p[k] != '=' || p[k + 1] != '"')
		return NULL;
	p += k + 2;
	const char *end = strchr(p, '"');
	if (!end || (size_t)(end - p) >= len)
		return NULL;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return end + 1;
}

/* portshare_requests_total{queue="Q",code="C"} N lines of the metrics. 0 or -1. */
static int watch_read_metrics(struct watch_snapshot *s, const char *text)
{
	static const char family[] = "portshare_requests_total{";
	for (const char *line = text; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, family, sizeof(family) - 1) != 0)
			continue;
		char queue[PS_QUEUE_NAME_MAX + 16], code[16];
		const char *p = watch_label(line + sizeof(family) - 1, "queue", queue, sizeof(queue));
		p = p && *p == ',' ? watch_label(p + 1, "code", code, sizeof(code)) : NULL;
		if (!p || strncmp(p, "} ", 2) != 0)
			continue; /* a line of another shape: not ours to read */
		uint64_t n = strtoull(p + 2, NULL, 10);
		bool error = code[0] == '5' || (code[0] == '4' && !strcmp(queue, WATCH_DAEMON));
		if (!strcmp(queue, WATCH_DAEMON)) {
			s->daemon_answers += n;
			s->daemon_errors += error ? n : 0;
			continue;
		}
		struct watch_queue *q = watch_queue_at(s, queue);
		if (!q)
			return -1;
		q->responses += n;
		q->r5 += error ? n : 0;
	}
	return 0;
}

static int watch_take(struct ctl *c, struct watch_snapshot *s)
{
	char *status = NULL, *metrics = NULL;
	memset(s, 0, sizeof(*s));
	int rc = ctl_status(c, true, &status) < 0 || ctl_metrics(c, &metrics) < 0 ? -1 : 0;
	s->at = watch_now();
	if (rc == 0)
		rc = watch_read_status(s, status);
	if (rc == 0 && watch_read_metrics(s, metrics) < 0) {
		fprintf(stderr, "portsharectl: status --watch: out of memory\n");
		rc = -1;
	}
	free(status);
	free(metrics);
	if (rc < 0)
		watch_snapshot_free(s);
	return rc;
}

/* b - a per second, never below 0 (a counter a takeover did not carry). */
static double watch_rate(uint64_t a, uint64_t b, double secs)
{
	return b > a ? (double)(b - a) / secs : 0.0;
}

static uint64_t watch_minus(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static void watch_print(const struct watch_snapshot *a, const struct watch_snapshot *b, bool tty)
{
	double secs = b->at - a->at;
	if (secs <= 0)
		secs = 1e-3;
	char when[16];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&now, &tm));
	if (tty)
		fputs("\033[H\033[2J", stdout); /* home, clear: the view redrawn in place */
	printf("portshared pid %d, %s, over the last %.1f s:\n", b->pid, when, secs);
	printf("  %-32s %9s %9s %7s %8s\n", "QUEUE", "REQ/S", "ERR/S", "DEPTH", "WORKERS");
	uint64_t refused_a = 0, refused_b = 0;
	size_t shown = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct watch_queue *q = &b->q[i];
		if (!q->live)
			continue;
		/* a queue new since a: what the metrics kept under its name, no refusals yet */
		const struct watch_queue *p = watch_queue_find(a, q->name);
		struct watch_queue zero = {.live = false};
		if (!p)
			p = &zero;
		uint64_t p_refused = p->live ? p->refused : 0;
		refused_a += p_refused;
		refused_b += q->refused;
		printf("  %-32s %9.1f %9.1f %7u %8u\n", q->name,
		       watch_rate(p->responses + p_refused, q->responses + q->refused, secs),
		       watch_rate(p->r5 + p_refused, q->r5 + q->refused, secs), q->depth, q->workers);
		shown++;
	}
	if (!shown)
		printf("  (no queue)\n");
	/* the daemon's own answers no queue counts (400, 404, 408, a worker that died...):
	 * its refusals for queues are in their rows already */
	printf("  %-32s %9.1f %9.1f %7s %8s\n", WATCH_DAEMON,
	       watch_rate(watch_minus(a->daemon_answers, refused_a),
	                  watch_minus(b->daemon_answers, refused_b), secs),
	       watch_rate(watch_minus(a->daemon_errors, refused_a), watch_minus(b->daemon_errors, refused_b),
	                  secs),
	       "-", "-");
	if (!tty)
		putchar('\n');
	fflush(stdout);
}

/* Sleeps secs unless a signal ends the view. */
static void watch_sleep(double secs)
{
	struct timespec ts = {.tv_sec = (time_t)secs, .tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9)};
	while (!watch_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int watch_run(struct ctl *c, double interval, long count)
{
	if (interval < WATCH_INTERVAL_MIN || interval > WATCH_INTERVAL_MAX) {
		fprintf(stderr, "portsharectl: status --watch: the interval is %.1f to %.0f seconds\n",
		        WATCH_INTERVAL_MIN, WATCH_INTERVAL_MAX);
		return 2;
	}
	/* nanosleep returns EINTR whatever SA_RESTART says (signal(7)): the view ends at once */
	signal(SIGINT, watch_on_signal);
	signal(SIGTERM, watch_on_signal);
	bool tty = isatty(STDOUT_FILENO);
	struct watch_snapshot prev, next;
	if (ctl_open(c) < 0 || watch_take(c, &prev) < 0)
		return 1;
	int rc = 0;
	for (long shown = 0; !watch_stop && (count <= 0 || shown < count); shown++) {
		watch_sleep(interval);
		if (watch_stop)
			break;
		if (watch_take(c, &next) < 0) {
			rc = 1;
			break;
		}
		watch_print(&prev, &next, tty);
		watch_snapshot_free(&prev);
		prev = next;
	}
	watch_snapshot_free(&prev);
	return rc;
}
