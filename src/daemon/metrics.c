/* metrics.c: the daemon's counters in the Prometheus text format (exposition format
 * 0.0.4; DESIGN §9). Requests by queue and status class come from the queues (what the
 * daemon counted and what ended sessions' pages left there) and from the live sessions'
 * pages (delegate_counts): rendering reads them, nothing is added to the request path.
 * Labels come only from bounded sets: queue names, status classes, the daemon's reasons
 * (the HTTP.sys names, cut at the first ':' or space). */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn-t.h"
#include "daemon-t.h"
#include "delegate.h"
#include "list.h"
#include "log.h"
#include "session-t.h"
#include "threads.h"

#define REASONS_MAX 64               /* distinct reasons kept; more are counted as "Other" */
#define REASON_LEN 40                /* a reason name's bytes kept */
#define RETIRED_MAX 256              /* queues gone whose counts are kept */
#define CLASS_UNKNOWN SHARED_CLASSES /* a response whose status class is not known */
/* a queue's counts: by class, unknown class, the durations' sum (µs), the buckets, the body
 * bytes sent, the requests served (status's count) */
#define Q_SUM (SHARED_CLASSES + 1)
#define Q_BUCKET (SHARED_CLASSES + 2)
#define Q_BYTES (Q_BUCKET + SHARED_BUCKETS)
#define Q_SERVED (Q_BYTES + 1)
#define Q_COUNTS (Q_SERVED + 1)
/* what a carry file of a daemon from before Q_BYTES has per queue */
#define Q_COUNTS_BEFORE_BYTES Q_BYTES

static _Atomic uint64_t handoffs, returns, tls_ok, tls_failed;
static uint64_t accepted_carried; /* accepted by the daemons this one took over from */

static pthread_mutex_t answers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[REASON_LEN];
	uint64_t n;
} reasons[REASONS_MAX];
static unsigned nreasons;
static uint64_t answer_classes[SHARED_CLASSES + 1];

/* queues gone (main thread only) */
static struct retired {
	char name[PS_QUEUE_NAME_MAX + 1];
	uint64_t classes[Q_COUNTS];
} retired[RETIRED_MAX];
static unsigned nretired;

void metrics_answer(int status, const char *reason)
{
	char name[REASON_LEN];
	size_t n = 0;
	if (reason) {
		n = strcspn(reason, ": ");
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, reason, n);
	}
	name[n] = '\0';
	pthread_mutex_lock(&answers_lock);
	answer_classes[status >= 100 && status < 600 ? status / 100 - 1 : CLASS_UNKNOWN]++;
	if (n) {
		unsigned i;
		for (i = 0; i < nreasons && strcmp(reasons[i].name, name); i++)
			;
		if (i == nreasons && nreasons < REASONS_MAX) {
			/* the last entry is kept for everything past the table's size */
			snprintf(reasons[i].name, sizeof(reasons[i].name), "%s",
			         nreasons + 1 == REASONS_MAX ? "Other" : name);
			nreasons++;
		} else if (i == nreasons) {
			i = REASONS_MAX - 1;
		}
		reasons[i].n++;
	}
	pthread_mutex_unlock(&answers_lock);
}

void metrics_handoff(void)
{
	atomic_fetch_add_explicit(&handoffs, 1, memory_order_relaxed);
}

void metrics_return(void)
{
	atomic_fetch_add_explicit(&returns, 1, memory_order_relaxed);
}

void metrics_tls_handshake(int ok)
{
	atomic_fetch_add_explicit(ok ? &tls_ok : &tls_failed, 1, memory_order_relaxed);
}

static struct retired *retired_find(const char *name)
{
	for (unsigned i = 0; i < nretired; i++)
		if (!strcmp(retired[i].name, name))
			return &retired[i];
	return NULL;
}

/* q's requests by class, [CLASS_UNKNOWN] those of libraries that count none */
static void queue_classes(const struct queue *q, uint64_t out[Q_COUNTS])
{
	struct delegate_counts dc;
	delegate_counts(q, &dc);
	for (int k = 0; k < SHARED_CLASSES; k++)
		out[k] = q->classes[k] + dc.classes[k];
	out[CLASS_UNKNOWN] = q->unclassed;
	out[Q_SUM] = q->duration_us + dc.duration_us;
	for (int k = 0; k < SHARED_BUCKETS; k++)
		out[Q_BUCKET + k] = q->buckets[k] + dc.buckets[k];
	out[Q_BYTES] = q->bytes + dc.bytes;
	out[Q_SERVED] = q->served + dc.served + dc.delivered;
}

uint64_t metrics_served_before(const char *queue)
{
	const struct retired *r = retired_find(queue);
	return r ? r->classes[Q_SERVED] : 0;
}

void metrics_queue_gone(const struct queue *q)
{
	uint64_t c[Q_COUNTS];
	queue_classes(q, c);
	struct retired *r = retired_find(q->name);
	if (!r && nretired < RETIRED_MAX) {
		r = &retired[nretired++];
		snprintf(r->name, sizeof(r->name), "%s", q->name);
	}
	if (!r)
		return; /* beyond the table: that queue's series go */
	for (int k = 0; k < Q_COUNTS; k++)
		r->classes[k] += c[k];
}

/* a label value: backslash, double quote and newline escaped */
static void label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *const class_names[SHARED_CLASSES + 1] = {"1xx", "2xx", "3xx", "4xx", "5xx", "unknown"};

static void requests_line(FILE *f, const char *queue, const uint64_t c[Q_COUNTS])
{
	for (int k = 0; k <= SHARED_CLASSES; k++) {
		if (k == CLASS_UNKNOWN && !c[k])
			continue; /* only when a library without the page served some */
		fputs("portshare_requests_total{queue=", f);
		label(f, queue);
		fprintf(f, ",code=\"%s\"} %llu\n", class_names[k], (unsigned long long)c[k]);
	}
}

static const char *const bucket_le[SHARED_BUCKETS] = {"0.001", "0.005", "0.01", "0.05", "0.1",
                                                      "0.5",   "1",     "5",    "+Inf"};

static void duration_lines(FILE *f, const char *queue, const uint64_t c[Q_COUNTS])
{
	uint64_t cum = 0;
	for (int k = 0; k < SHARED_BUCKETS; k++) {
		cum += c[Q_BUCKET + k];
		fputs("portshare_request_duration_seconds_bucket{queue=", f);
		label(f, queue);
		fprintf(f, ",le=\"%s\"} %llu\n", bucket_le[k], (unsigned long long)cum);
	}
	fputs("portshare_request_duration_seconds_sum{queue=", f);
	label(f, queue);
	fprintf(f, "} %llu.%06llu\n", (unsigned long long)(c[Q_SUM] / 1000000u),
	        (unsigned long long)(c[Q_SUM] % 1000000u));
	fputs("portshare_request_duration_seconds_count{queue=", f);
	label(f, queue);
	fprintf(f, "} %llu\n", (unsigned long long)cum);
}

/* every queue's counts, live ones (with what they had before, under their name) and gone
 * ones, to fn */
static void each_queue(FILE *f, void (*fn)(FILE *f, const char *queue, const uint64_t c[Q_COUNTS]))
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->queues)
	{
		const struct queue *q = container_of(p, struct queue, link);
		uint64_t c[Q_COUNTS];
		queue_classes(q, c);
		const struct retired *r = retired_find(q->name);
		for (int k = 0; r && k < Q_COUNTS; k++)
			c[k] += r->classes[k];
		fn(f, q->name, c);
	}
	for (unsigned i = 0; i < nretired; i++) {
		bool live = false;
		list_for_each_safe(p, t, &dm->queues)
		{
			live = live || !strcmp(container_of(p, struct queue, link)->name, retired[i].name);
		}
		if (!live)
			fn(f, retired[i].name, retired[i].classes);
	}
}

static void render_requests(FILE *f)
{
	family(f, "portshare_requests_total", "counter",
	       "Requests answered, by queue and status class (queue \"(daemon)\": the daemon's own "
	       "answers; code \"unknown\": served by a library that does not count by class).");
	each_queue(f, requests_line);
	uint64_t c[Q_COUNTS] = {0};
	pthread_mutex_lock(&answers_lock);
	memcpy(c, answer_classes, sizeof(answer_classes));
	pthread_mutex_unlock(&answers_lock);
	requests_line(f, "(daemon)", c);
}

static void render_answers(FILE *f)
{
	family(f, "portshare_daemon_answers_total", "counter",
	       "The daemon's own answers, by their HTTP.sys reason name.");
	pthread_mutex_lock(&answers_lock);
	for (unsigned i = 0; i < nreasons; i++)
		fprintf(f, "portshare_daemon_answers_total{reason=\"%s\"} %llu\n", reasons[i].name,
		        (unsigned long long)reasons[i].n);
	pthread_mutex_unlock(&answers_lock);
}

static void bytes_line(FILE *f, const char *queue, const uint64_t c[Q_COUNTS])
{
	fputs("portshare_response_body_bytes_total{queue=", f);
	label(f, queue);
	fprintf(f, "} %llu\n", (unsigned long long)c[Q_BYTES]);
}

static void render_queues(FILE *f)
{
	struct list *p, *t;
	family(f, "portshare_queue_depth", "gauge", "Requests waiting in the queue for a worker.");
	list_for_each_safe(p, t, &dm->queues)
	{
		const struct queue *q = container_of(p, struct queue, link);
		fputs("portshare_queue_depth{queue=", f);
		label(f, q->name);
		fprintf(f, "} %u\n", q->depth);
	}
	family(f, "portshare_queue_workers", "gauge", "Worker sessions attached to the queue.");
	list_for_each_safe(p, t, &dm->queues)
	{
		const struct queue *q = container_of(p, struct queue, link);
		fputs("portshare_queue_workers{queue=", f);
		label(f, q->name);
		fprintf(f, "} %u\n", q->nattached);
	}
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "gauge", help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static uint64_t rss_bytes(void)
{
	unsigned long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	uint64_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not the directory's own fd */
}

char *metrics_render(size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	uint32_t in_workers = 0, delegated = 0, tls = 0;
	uint64_t accepted = 0;
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->conns)
	{
		const struct conn *c = container_of(p, struct conn, link);
		in_workers += c->state == CONN_DELIVERED;
		delegated += c->state == CONN_DELIVERED && c->req && c->req->delegated;
		tls += c->tls != NULL;
	}
	accepted = accepted_carried;
	for (unsigned i = 0; i < dm->nthreads; i++)
		accepted += atomic_load_explicit(&dm->threads[i].accepted, memory_order_relaxed);
	render_requests(f);
	family(f, "portshare_request_duration_seconds", "histogram",
	       "Requests' time in the worker, from the library having the request to its response's "
	       "last send, by queue (libraries that count in the session page only).");
	each_queue(f, duration_lines);
	family(f, "portshare_response_body_bytes_total", "counter",
	       "Response body bytes sent, by queue (libraries that count in the session page only).");
	each_queue(f, bytes_line);
	render_answers(f);
	render_queues(f);
	gauge(f, "portshare_connections_open", "Client connections the daemon holds.", threads_conns());
	gauge(f, "portshare_connections_workers",
	      "Client connections held by workers (delivered or delegated).", in_workers);
	gauge(f, "portshare_connections_delegated",
	      "Of those, connections their worker may keep and read the next requests of itself "
	      "(delegation).",
	      delegated);
	gauge(f, "portshare_connections_tls", "TLS client connections (of the main thread).", tls);
	counter(f, "portshare_connections_accepted_total", "Client connections accepted.", accepted);
	counter(f, "portshare_handoffs_total", "Connections handed to workers (DELIVER).",
	        atomic_load_explicit(&handoffs, memory_order_relaxed));
	counter(f, "portshare_returns_total", "Connections workers gave back (RETURN).",
	        atomic_load_explicit(&returns, memory_order_relaxed));
	family(f, "portshare_tls_handshakes_total", "counter", "TLS handshakes, by result.");
	fprintf(f, "portshare_tls_handshakes_total{result=\"completed\"} %llu\n",
	        (unsigned long long)atomic_load_explicit(&tls_ok, memory_order_relaxed));
	fprintf(f, "portshare_tls_handshakes_total{result=\"failed\"} %llu\n",
	        (unsigned long long)atomic_load_explicit(&tls_failed, memory_order_relaxed));
	gauge(f, "process_resident_memory_bytes", "The daemon's resident memory.", rss_bytes());
	gauge(f, "process_open_fds", "The daemon's open file descriptors.", open_fds());
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

#define CARRY_FILE "metrics-carry"

static void carry_line(FILE *f, const char *queue, const uint64_t c[Q_COUNTS])
{
	fprintf(f, "queue %s", queue);
	for (int k = 0; k < Q_COUNTS; k++)
		fprintf(f, " %llu", (unsigned long long)c[k]);
	fputc('\n', f);
}

static void carry_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/" CARRY_FILE, dm->state_dir);
}

void metrics_carry_write(void)
{
	char path[4096], tmp[4200];
	carry_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		log_warning("upgrade: cannot write %s: %s; the new daemon's counters start from 0", tmp,
		            strerror(errno));
		return;
	}
	uint64_t accepted = accepted_carried;
	for (unsigned i = 0; i < dm->nthreads; i++)
		accepted += atomic_load_explicit(&dm->threads[i].accepted, memory_order_relaxed);
	fprintf(f, "portshare-metrics 1 %d\n", (int)getpid());
	fprintf(f, "counters %llu %llu %llu %llu %llu\n", (unsigned long long)accepted,
	        (unsigned long long)atomic_load(&handoffs), (unsigned long long)atomic_load(&returns),
	        (unsigned long long)atomic_load(&tls_ok), (unsigned long long)atomic_load(&tls_failed));
	/* every queue's requests: live ones (with their live pages), then those gone */
	each_queue(f, carry_line);
	pthread_mutex_lock(&answers_lock);
	fputs("daemon", f);
	for (int k = 0; k <= SHARED_CLASSES; k++)
		fprintf(f, " %llu", (unsigned long long)answer_classes[k]);
	fputc('\n', f);
	for (unsigned i = 0; i < nreasons; i++)
		fprintf(f, "reason %s %llu\n", reasons[i].name, (unsigned long long)reasons[i].n);
	pthread_mutex_unlock(&answers_lock);
	fputs("end\n", f);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		log_warning("upgrade: cannot write %s: %s; the new daemon's counters start from 0", path,
		            strerror(errno));
}

static void carry_queue(const char *name, const uint64_t c[Q_COUNTS])
{
	struct retired *r = retired_find(name);
	if (!r && nretired < RETIRED_MAX) {
		r = &retired[nretired++];
		snprintf(r->name, sizeof(r->name), "%s", name);
	}
	for (int k = 0; r && k < Q_COUNTS; k++)
		r->classes[k] += c[k];
}

/* n numbers after the first word of line into v; whether there were exactly n */
static bool carry_numbers(const char *line, uint64_t *v, int n)
{
	const char *p = strchr(line, ' ');
	for (int k = 0; k < n; k++) {
		char *end;
		if (!p || *p != ' ')
			return false;
		errno = 0;
		v[k] = strtoull(p + 1, &end, 10);
		if (errno || end == p + 1)
			return false;
		p = end;
	}
	return p && *p == '\n';
}

void metrics_carry_read(pid_t old_pid)
{
	char path[4096], line[256], name[PS_QUEUE_NAME_MAX + 1];
	carry_path(path, sizeof(path));
	FILE *f = fopen(path, "re");
	if (!f)
		return; /* an old daemon from before metrics: they start from 0 */
	int pid = 0, version = 0;
	bool ended = false;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "portshare-metrics %d %d", &version, &pid) != 2 ||
	    version != 1 || pid != (int)old_pid) {
		fclose(f);
		return; /* another daemon's, from an earlier upgrade */
	}
	/* read whole before anything is added: a torn file adds nothing */
	struct carried {
		char name[PS_QUEUE_NAME_MAX + 1];
		uint64_t c[Q_COUNTS];
		bool daemon;
	} *rows = calloc(RETIRED_MAX + 1, sizeof(*rows));
	unsigned nrows = 0;
	unsigned long long cnt[5] = {0};
	struct {
		char name[REASON_LEN];
		unsigned long long n;
	} rs[REASONS_MAX];
	unsigned nrs = 0;
	while (rows && fgets(line, sizeof(line), f)) {
		if (!strcmp(line, "end\n")) {
			ended = true;
			break;
		}
		if (sscanf(line, "counters %llu %llu %llu %llu %llu", &cnt[0], &cnt[1], &cnt[2], &cnt[3],
		           &cnt[4]) == 5)
			continue;
		bool daemon = !strncmp(line, "daemon ", 7);
		if (nrows <= RETIRED_MAX && daemon &&
		    carry_numbers(line, rows[nrows].c, SHARED_CLASSES + 1)) {
			rows[nrows++].daemon = true;
			continue;
		}
		/* "queue NAME n...": the numbers after the name */
		if (nrows <= RETIRED_MAX && sscanf(line, "queue %63s", name) == 1 &&
		    (carry_numbers(line + 6, rows[nrows].c, Q_COUNTS) ||
		     carry_numbers(line + 6, rows[nrows].c, Q_COUNTS_BEFORE_BYTES))) {
			snprintf(rows[nrows].name, sizeof(rows[nrows].name), "%s", name);
			nrows++;
			continue;
		}
		if (nrs < REASONS_MAX && sscanf(line, "reason %39s %llu", rs[nrs].name, &rs[nrs].n) == 2)
			nrs++;
	}
	fclose(f);
	if (ended) {
		accepted_carried += cnt[0];
		atomic_fetch_add(&handoffs, cnt[1]);
		atomic_fetch_add(&returns, cnt[2]);
		atomic_fetch_add(&tls_ok, cnt[3]);
		atomic_fetch_add(&tls_failed, cnt[4]);
		pthread_mutex_lock(&answers_lock);
		for (unsigned i = 0; i < nrows; i++)
			for (int k = 0; rows[i].daemon && k <= SHARED_CLASSES; k++)
				answer_classes[k] += rows[i].c[k];
		for (unsigned j = 0; j < nrs; j++) {
			unsigned i;
			for (i = 0; i < nreasons && strcmp(reasons[i].name, rs[j].name); i++)
				;
			if (i == nreasons && nreasons < REASONS_MAX)
				memcpy(reasons[nreasons++].name, rs[j].name,
				       REASON_LEN); /* %39s: with its NUL */
			if (i < REASONS_MAX)
				reasons[i].n += rs[j].n;
		}
		pthread_mutex_unlock(&answers_lock);
		for (unsigned i = 0; i < nrows; i++)
			if (!rows[i].daemon)
				carry_queue(rows[i].name, rows[i].c);
		log_info("upgrade: the old portshared's counters carried over (%u queues)",
		         nrows ? nrows - 1 : 0);
	} else {
		log_warning("upgrade: %s is incomplete; the counters start from 0", path);
	}
	free(rows);
	unlink(path);
}
