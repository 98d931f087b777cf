/* accesslog.c: the access log (DESIGN §9): one line per request in the combined format,
 * then the queue, the worker's pid and the duration in µs. Libraries leave records in
 * their session pages' rings (shared.h); the daemon drains them when told a ring is half
 * full (LOG_DRAIN), once a second, and before it judges a dead worker's connections, and
 * adds its own answers. Lines collect in a batch that is sorted by time and written with
 * one write once a second or when it grows large, so the log's syscalls do not grow
 * with the request rate and lines are never torn or interleaved. */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "daemon-t.h"
#include "list.h"
#include "log_record.h"
#include "log.h"
#include "queue.h"
#include "session.h"
#include "shared.h"
#include "tcp.h"

#define ACCESSLOG_FLUSH_MS 1000
#define ACCESSLOG_BATCH_MAX (1024 * 1024) /* bytes of lines that make a write before the second is up */
/* Responses a session may have begun (BEGIN seen, END not yet) that the daemon keeps
 * for it; past this its oldest is logged as it stands (a library that never ends them). */
#define ACCESSLOG_OPEN_MAX 4096

struct accesslog_entry {
	uint64_t time_us;
	uint32_t off, len;
};

/* A response begun in several sends, waiting for its END record. */
struct accesslog_open {
	struct shared_log_record rec;
	char *strings; /* request line, referer, agent */
};

/* Per session: its begun responses (session-t.h has a pointer to it). */
struct accesslog_session {
	struct accesslog_open *open;
	size_t nopen, capopen;
	uint64_t tail;         /* drained up to here (the page's copy is the library's to read) */
	uint64_t dropped_seen; /* the library's dropped count already reported */
};

/* The head noted before an answer of the daemon's own, per thread. */
struct accesslog_noted {
	const struct conn *c;
	uint64_t arrived_us;
	uint16_t request_len, referer_len, agent_len;
	char strings[LOG_STRINGS_MAX];
	char queue[PS_QUEUE_NAME_MAX + 1];
};
static _Thread_local struct accesslog_noted noted;

static struct {
	pthread_mutex_t lock; /* the batch: own answers come from every thread */
	int fd;
	char path[4096];
	char *buf;
	size_t len, cap;
	struct accesslog_entry *entries;
	size_t nentries, capentries;
	struct loop_timer timer;
	bool json; /* AccessLogFormat json */
} al = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

uint64_t accesslog_now_us(void)
{
	return log_clock_us(CLOCK_MONOTONIC);
}

bool accesslog_on(void)
{
	return __atomic_load_n(&al.fd, __ATOMIC_RELAXED) >= 0;
}

/* Appends one formatted line to the batch. Called with al.lock held. */
static void batch_add(const struct log_line *l)
{
	if (al.fd < 0)
		return;
	if (al.cap - al.len < LOG_LINE_MAX) {
		size_t cap = al.cap ? al.cap * 2 : 64 * 1024;
		while (cap - al.len < LOG_LINE_MAX)
			cap *= 2;
		char *b = realloc(al.buf, cap);
		if (!b)
			return;
		al.buf = b;
		al.cap = cap;
	}
	if (al.nentries == al.capentries) {
		size_t cap = al.capentries ? al.capentries * 2 : 1024;
		struct accesslog_entry *e = realloc(al.entries, cap * sizeof(*e));
		if (!e)
			return;
		al.entries = e;
		al.capentries = cap;
	}
	size_t n = al.json ? log_line_format_json(al.buf + al.len, l) : log_line_format(al.buf + al.len, l);
	al.entries[al.nentries++] = (struct accesslog_entry){l->time_us, (uint32_t)al.len, (uint32_t)n};
	al.len += n;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct accesslog_entry *x = a, *y = b;
	if (x->time_us != y->time_us)
		return x->time_us < y->time_us ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off; /* stable: the order they came in */
}

/* Writes the batch in time order with one write (more only when the kernel takes part of
 * it). Called with al.lock held. */
static void batch_write(void)
{
	if (!al.nentries)
		return;
	char *sorted = al.fd >= 0 ? malloc(al.len) : NULL;
	if (sorted) {
		qsort(al.entries, al.nentries, sizeof(*al.entries), entry_cmp);
		size_t n = 0;
		for (size_t i = 0; i < al.nentries; i++) {
			memcpy(sorted + n, al.buf + al.entries[i].off, al.entries[i].len);
			n += al.entries[i].len;
		}
		size_t done = 0;
		while (done < n) {
			ssize_t w = write(al.fd, sorted + done, n - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				log_error("access log %s: write failed: %s; %zu lines lost", al.path,
				          w < 0 ? strerror(errno) : "no space", al.nentries);
				break;
			}
			done += (size_t)w;
		}
		free(sorted);
	} else if (al.fd >= 0) {
		log_error("access log %s: out of memory; %zu lines lost", al.path, al.nentries);
	}
	al.len = 0;
	al.nentries = 0;
}

/* ---- the daemon's own answers ---- */

/* The request line, Referer and User-Agent of a raw head (their values as sent, cut to
 * the record's limits), into n. */
static void note_fields(struct accesslog_noted *n, const char *head, uint32_t len)
{
	const char *p = head, *end = head + len;
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *e = nl ? nl : end;
	size_t rl = (size_t)(e - p);
	if (rl && p[rl - 1] == '\r')
		rl--;
	if (rl > SHARED_LOG_REQUEST_MAX)
		rl = SHARED_LOG_REQUEST_MAX;
	memcpy(n->strings, p, rl);
	n->request_len = (uint16_t)rl;
	const char *ref = NULL, *agent = NULL;
	size_t ref_len = 0, agent_len = 0;
	for (const char *l = nl ? nl + 1 : end; l < end;) {
		const char *le = memchr(l, '\n', (size_t)(end - l));
		le = le ? le : end;
		size_t ll = (size_t)(le - l);
		if (ll && l[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break; /* the head's end */
		const char **v = NULL;
		size_t *vl = NULL, name = 0;
		if (ll > 8 && !strncasecmp(l, "Referer:", 8)) {
			v = &ref, vl = &ref_len, name = 8;
		} else if (ll > 11 && !strncasecmp(l, "User-Agent:", 11)) {
			v = &agent, vl = &agent_len, name = 11;
		}
		if (v && !*v) {
			const char *s = l + name, *se = l + ll;
			while (s < se && (*s == ' ' || *s == '\t'))
				s++;
			while (se > s && (se[-1] == ' ' || se[-1] == '\t'))
				se--;
			*v = s;
			*vl =
			    (size_t)(se - s) > SHARED_LOG_FIELD_MAX ? SHARED_LOG_FIELD_MAX : (size_t)(se - s);
		}
		l = le + 1;
	}
	if (ref_len)
		memcpy(n->strings + rl, ref, ref_len);
	if (agent_len)
		memcpy(n->strings + rl + ref_len, agent, agent_len);
	n->referer_len = (uint16_t)ref_len;
	n->agent_len = (uint16_t)agent_len;
}

void accesslog_note(struct conn *c, const char *head, uint32_t len, uint64_t arrived_us,
                    const struct queue *q)
{
	if (!accesslog_on())
		return;
	note_fields(&noted, head, len);
	snprintf(noted.queue, sizeof(noted.queue), "%s", q ? q->name : "");
	noted.c = c;
	noted.arrived_us = arrived_us ? arrived_us : accesslog_now_us();
}

void accesslog_answer(struct conn *c, int status, uint64_t body_bytes)
{
	if (!accesslog_on())
		return;
	if (noted.c != c) /* nothing noted for it: what its buffer starts with, if anything */
		accesslog_note(c, c->buf ? c->buf : "", c->buf ? c->len : 0, 0, NULL);
	uint64_t now = accesslog_now_us();
	struct log_line l = {
	    .time_us = log_clock_us(CLOCK_REALTIME),
	    .duration_us = now > noted.arrived_us ? now - noted.arrived_us : 0,
	    .body_bytes = body_bytes,
	    .status = (unsigned)status,
	    .remote = &c->remote,
	    .strings = noted.strings,
	    .request_len = noted.request_len,
	    .referer_len = noted.referer_len,
	    .agent_len = noted.agent_len,
	    .queue = noted.queue,
	};
	noted.c = NULL;
	pthread_mutex_lock(&al.lock);
	batch_add(&l);
	pthread_mutex_unlock(&al.lock);
}

/* ---- the sessions' rings ---- */

static struct accesslog_session *session_log(struct session *s)
{
	if (!s->log)
		s->log = calloc(1, sizeof(*s->log));
	return s->log;
}

/* The request of s that holds connection conn_id, if s still holds it. */
static struct request *session_request(struct session *s, uint64_t conn_id)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &s->requests)
	{
		struct request *r = container_of(p, struct request, link);
		if (r->conn && r->conn->id == conn_id)
			return r;
	}
	return NULL;
}

/* A dead worker's record, by what the kernel sent on its connection (DESIGN §2a): true to
 * log it (perhaps as aborted, with the body bytes that went), false to drop it (nothing
 * of the response went: the daemon's own answer or the next worker logs the request). */
static bool record_judge(struct session *s, struct shared_log_record *rec)
{
	if (rec->flags & (SHARED_LOG_ABORTED | SHARED_LOG_UPGRADE))
		return true;
	struct request *r = session_request(s, rec->conn_id);
	if (!r)
		return true; /* given back or ended after the response: it went */
	uint64_t kernel, consumed;
	tcp_counters(r->conn->io.fd, &kernel, &consumed);
	uint64_t written = kernel > r->written0 ? kernel - r->written0 : 0;
	if (rec->end_written && written >= rec->end_written)
		return true;
	if (written <= rec->start_written)
		return false;
	/* cut short: the body's share of what went */
	uint64_t went = written - rec->start_written;
	if (rec->end_written > rec->start_written) {
		uint64_t all = rec->end_written - rec->start_written;
		rec->body_bytes = (uint64_t)((double)rec->body_bytes * (double)went / (double)all);
	} else if (rec->body_bytes > went) {
		rec->body_bytes = went;
	}
	rec->flags |= SHARED_LOG_ABORTED;
	return true;
}

static void record_emit(struct session *s, const struct shared_log_record *rec, const char *strings)
{
	struct attach *a = rec->queue_id ? queue_attach_find(s, rec->queue_id) : NULL;
	struct log_line l = {
	    .time_us = rec->time_us,
	    .duration_us = rec->duration_us,
	    .body_bytes = rec->body_bytes,
	    .status = rec->status,
	    .remote = &rec->remote,
	    .strings = strings,
	    .request_len = rec->request_len,
	    .referer_len = rec->referer_len,
	    .agent_len = rec->agent_len,
	    /* the daemon's names, not the library's: no app writes another's records */
	    .queue = a ? a->q->name : NULL,
	    .pid = s->pid,
	};
	batch_add(&l);
}

static void open_remove(struct accesslog_session *sl, size_t i)
{
	free(sl->open[i].strings);
	sl->open[i] = sl->open[--sl->nopen];
}

static void open_add(struct session *s, struct accesslog_session *sl, const struct shared_log_record *rec,
                     const char *strings)
{
	if (sl->nopen == ACCESSLOG_OPEN_MAX) {
		/* a library that never ends what it begins: its oldest is logged as it stands */
		record_emit(s, &sl->open[0].rec, sl->open[0].strings);
		open_remove(sl, 0);
	}
	if (sl->nopen == sl->capopen) {
		size_t cap = sl->capopen ? sl->capopen * 2 : 8;
		struct accesslog_open *o = realloc(sl->open, cap * sizeof(*o));
		if (!o)
			return;
		sl->open = o;
		sl->capopen = cap;
	}
	size_t n = (size_t)rec->request_len + rec->referer_len + rec->agent_len;
	char *copy = malloc(n ? n : 1);
	if (!copy)
		return;
	memcpy(copy, strings, n);
	sl->open[sl->nopen++] = (struct accesslog_open){*rec, copy};
}

void accesslog_drain(struct session *s, bool dead)
{
	if (!s->page || al.fd < 0)
		return;
	struct shared_log *lg = &s->page->log;
	uint64_t head = __atomic_load_n(&lg->head, __ATOMIC_ACQUIRE);
	uint64_t sending = __atomic_load_n(&lg->sending, __ATOMIC_ACQUIRE);
	struct accesslog_session *sl = session_log(s);
	if (!sl || (head == sl->tail && !dead))
		return;
	static char strings[2][LOG_STRINGS_MAX];
	pthread_mutex_lock(&al.lock);
	uint64_t tail = sl->tail;
	bool bad = head - tail > SHARED_LOG_SIZE;
	while (!bad && tail != head) {
		struct shared_log_record rec, next;
		int rc = log_record_read(lg, tail, head, &rec, strings[0]);
		if (rc < 0) {
			bad = true;
			break;
		}
		if (rc == 1) { /* a pad to the ring's end */
			tail += rec.size;
			continue;
		}
		if (rec.kind == SHARED_LOG_BEGIN) {
			open_add(s, sl, &rec, strings[0]);
			tail += rec.size;
			continue;
		}
		/* its last send under way: while the worker lives the record waits (a kill in
		 * that send is judged below, by the connection's counters) */
		if (rec.serial == sending && !dead)
			break;
		uint64_t end = tail + rec.size;
		/* an END right behind for the same serial says that send failed */
		if (end != head && log_record_read(lg, end, head, &next, strings[1]) == 0 &&
		    next.kind == SHARED_LOG_END && next.serial == rec.serial) {
			rec.flags |= next.flags;
			end += next.size;
		}
		const char *str = strings[0];
		if (rec.kind == SHARED_LOG_END) {
			size_t i = 0;
			while (i < sl->nopen && sl->open[i].rec.serial != rec.serial)
				i++;
			if (i == sl->nopen) { /* its BEGIN was dropped (the ring was full) */
				tail = end;
				continue;
			}
			struct shared_log_record whole = sl->open[i].rec;
			whole.flags |= rec.flags;
			whole.end_written = rec.end_written;
			whole.body_bytes = rec.body_bytes;
			whole.time_us = rec.time_us;
			whole.duration_us = rec.duration_us;
			memcpy(strings[1], sl->open[i].strings,
			       (size_t)whole.request_len + whole.referer_len + whole.agent_len);
			open_remove(sl, i);
			rec = whole;
			str = strings[1];
		}
		if (!dead || record_judge(s, &rec))
			record_emit(s, &rec, str);
		tail = end;
	}
	if (bad) {
		log_warning(
		    "session %u (pid %d): its access-log ring holds a malformed record; %llu bytes of "
		    "it dropped",
		    s->id, (int)s->pid, (unsigned long long)(head - tail));
		tail = head;
	}
	sl->tail = tail;
	__atomic_store_n(&lg->tail, tail, __ATOMIC_RELEASE);
	__atomic_store_n(&lg->nudged, 0, __ATOMIC_RELEASE);
	if (dead) {
		/* begun and never ended: judged like the rest (a response cut short, or none) */
		while (sl->nopen) {
			struct shared_log_record rec = sl->open[0].rec;
			if (record_judge(s, &rec))
				record_emit(s, &rec, sl->open[0].strings);
			open_remove(sl, 0);
		}
	}
	uint64_t dropped = __atomic_load_n(&lg->dropped, __ATOMIC_RELAXED);
	if (dropped != sl->dropped_seen) {
		log_warning("session %u (pid %d): %llu access-log records dropped: its ring stayed full",
		            s->id, (int)s->pid, (unsigned long long)(dropped - sl->dropped_seen));
		sl->dropped_seen = dropped;
	}
	if (al.len >= ACCESSLOG_BATCH_MAX)
		batch_write();
	pthread_mutex_unlock(&al.lock);
}

void accesslog_session_end(struct session *s)
{
	struct accesslog_session *sl = s->log;
	if (!sl)
		return;
	while (sl->nopen)
		open_remove(sl, 0);
	free(sl->open);
	free(sl);
	s->log = NULL;
}

void accesslog_session_start(struct session *s)
{
	if (s->page)
		__atomic_store_n(&s->page->log.on, accesslog_on() ? 1u : 0u, __ATOMIC_RELAXED);
}

/* ---- the file ---- */

static void sessions_tell(void)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->sessions)
	{
		accesslog_session_start(container_of(p, struct session, link));
	}
}

void accesslog_flush_all(void)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->sessions)
	{
		accesslog_drain(container_of(p, struct session, link), false);
	}
	pthread_mutex_lock(&al.lock);
	batch_write();
	pthread_mutex_unlock(&al.lock);
}

static void accesslog_tick(struct loop_timer *t)
{
	accesslog_flush_all();
	if (accesslog_on())
		loop_timer_set(dm->loop, t, ACCESSLOG_FLUSH_MS);
}

/* Opens path for appending: the fd, or -1 (logged). */
static int accesslog_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		log_error("access log %s: cannot open: %s; requests are not logged", path, strerror(errno));
	return fd;
}

/* Swaps the open file for fd (the batch so far goes to the old one first). */
static void accesslog_set_fd(int fd, const char *path)
{
	accesslog_flush_all();
	pthread_mutex_lock(&al.lock);
	if (al.fd >= 0)
		close(al.fd);
	__atomic_store_n(&al.fd, fd, __ATOMIC_RELAXED);
	snprintf(al.path, sizeof(al.path), "%s", path ? path : "");
	pthread_mutex_unlock(&al.lock);
	sessions_tell();
	al.timer.fn = accesslog_tick;
	if (fd >= 0 && !loop_timer_armed(&al.timer))
		loop_timer_set(dm->loop, &al.timer, ACCESSLOG_FLUSH_MS);
}

void accesslog_configure(const char *path, bool json)
{
	/* a format change applies from the next line (the batch so far is as it was) */
	pthread_mutex_lock(&al.lock);
	al.json = json;
	pthread_mutex_unlock(&al.lock);
	if (!path || !path[0]) {
		if (al.fd >= 0)
			accesslog_set_fd(-1, NULL);
		return;
	}
	if (al.fd >= 0 && !strcmp(path, al.path))
		return;
	int fd = accesslog_open_file(path);
	if (fd >= 0 || al.fd < 0)
		accesslog_set_fd(fd, path);
	else
		log_error("access log: keeps writing to %s", al.path);
}

void accesslog_reopen(void)
{
	if (al.fd < 0)
		return;
	char path[sizeof(al.path)];
	snprintf(path, sizeof(path), "%s", al.path);
	int fd = accesslog_open_file(path);
	if (fd < 0) {
		log_error("access log: keeps writing to the file it had open");
		return;
	}
	accesslog_set_fd(fd, path);
	log_info("access log %s reopened", path);
}

void accesslog_close(void)
{
	accesslog_flush_all();
	loop_timer_cancel(dm->loop, &al.timer);
	pthread_mutex_lock(&al.lock);
	if (al.fd >= 0)
		close(al.fd);
	al.fd = -1;
	free(al.buf);
	free(al.entries);
	al.buf = NULL;
	al.entries = NULL;
	al.len = al.cap = al.nentries = al.capentries = 0;
	pthread_mutex_unlock(&al.lock);
}
