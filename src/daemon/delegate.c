/* delegate.c: the daemon's side of delegation (DESIGN §6): session pages, publishing the
 * route snapshot, the idle limit of delegated connections, and what becomes of them when
 * their session ends. */
#include "delegate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "daemon-t.h"
#include "list.h"
#include "log.h"
#include "queue.h"
#include "route.h"
#include "session.h"
#include "tcp.h"

/* Route changes come in bursts (an app adding its URLs, 10,000 prefixes): one snapshot
 * per quiet spell. Meanwhile libraries see a newer generation than they hold and hand
 * requests back to the daemon, which routes with the live table. */
#define PUBLISH_DELAY_MS 20

static uint32_t owner_queue_id(void *owner)
{
	return ((struct queue *)owner)->id;
}

static void delegate_publish(struct loop_timer *t)
{
	struct list *p, *n;
	uint32_t nq = 0, i = 0;
	list_for_each_safe(p, n, &dm->queues)
	{
		nq++;
	}
	struct snapshot_queue_src *qs = calloc(nq ? nq : 1, sizeof(*qs));
	if (!qs) {
		loop_timer_set(dm->loop, t, PUBLISH_DELAY_MS);
		return;
	}
	list_for_each_safe(p, n, &dm->queues)
	{
		struct queue *q = container_of(p, struct queue, link);
		qs[i++] = (struct snapshot_queue_src){q->id, q->max_body};
	}
	const struct limits *lim = &dm->cfg.limits;
	struct http_limits hl = {lim->max_request_bytes, lim->max_field_length};
	struct canon_limits cl = {lim->url_segment_max_length, lim->url_segment_max_count};
	int fd = snapshot_write(dm->routes, owner_queue_id, qs, nq, dm->routes_generation, &hl, &cl);
	free(qs);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		log_warning("cannot publish the route snapshot: %s; delegated requests go through the daemon",
		            strerror(errno));
		loop_timer_set(dm->loop, t, 1000);
		return;
	}
	if (dm->snapshot_fd >= 0)
		close(dm->snapshot_fd);
	dm->snapshot_fd = fd;
	dm->snapshot_generation = dm->routes_generation;
	dm->snapshot_size = (uint32_t)st.st_size;
	list_for_each_safe(p, n, &dm->sessions)
	{
		delegate_send_routes(container_of(p, struct session, link));
	}
}

void delegate_routes_changed(void)
{
	dm->routes_generation++;
	struct list *p, *n;
	/* from now on no library routes by an older snapshot */
	list_for_each_safe(p, n, &dm->sessions)
	{
		struct session *s = container_of(p, struct session, link);
		if (s->page)
			__atomic_store_n(&s->page->routes_generation, dm->routes_generation,
			                 __ATOMIC_RELEASE);
	}
	dm->publish.fn = delegate_publish;
	if (!loop_timer_armed(&dm->publish))
		loop_timer_set(dm->loop, &dm->publish, PUBLISH_DELAY_MS);
}

void delegate_send_routes(struct session *s)
{
	if (!s->page || !s->delegating || dm->snapshot_fd < 0 || s->dead)
		return;
	struct ps_msg m = {.hdr = {.type = PS_MSG_SHM}};
	m.u.shm = (struct ps_shm){
	    .generation = dm->snapshot_generation, .kind = PS_SHM_ROUTES, .size = dm->snapshot_size};
	session_send_fd(s, &m, dm->snapshot_fd);
}

int delegate_session_start(struct session *s)
{
	int fd = memfd_create("portshare-session", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t size = sizeof(struct shared_page);
	void *map = MAP_FAILED;
	if (ftruncate(fd, (off_t)size) == 0)
		map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		return -1;
	}
	s->page = map;
	s->page->magic = SHARED_PAGE_MAGIC;
	s->page->size = (uint32_t)size;
	s->page->routes_generation = dm->routes_generation;
	struct ps_msg m = {.hdr = {.type = PS_MSG_SHM}};
	m.u.shm = (struct ps_shm){.kind = PS_SHM_SESSION_PAGE, .size = (uint32_t)size};
	int rc = session_send_fd(s, &m, fd);
	close(fd);
	if (rc == 0)
		delegate_send_routes(s);
	return rc;
}

void delegate_session_end(struct session *s)
{
	if (!s->page)
		return;
	/* what the library counted stays counted after it is gone */
	delegate_lib_counts(s);
	for (size_t i = 0; i < SHARED_QUEUES; i++) {
		const struct shared_counter *ct = &s->page->counters[i];
		uint32_t id = __atomic_load_n(&ct->queue_id, __ATOMIC_ACQUIRE);
		struct attach *a = id ? queue_attach_find(s, id) : NULL;
		if (!a)
			continue;
		a->q->served += __atomic_load_n(&ct->served, __ATOMIC_RELAXED) +
		                __atomic_load_n(&ct->delivered, __ATOMIC_RELAXED);
		for (size_t k = 0; k < SHARED_CLASSES; k++)
			a->q->classes[k] += __atomic_load_n(&ct->classes[k], __ATOMIC_RELAXED);
		a->q->duration_us += __atomic_load_n(&ct->duration_us, __ATOMIC_RELAXED);
		for (size_t k = 0; k < SHARED_BUCKETS; k++)
			a->q->buckets[k] += __atomic_load_n(&ct->buckets[k], __ATOMIC_RELAXED);
		a->q->bytes += __atomic_load_n(&ct->bytes, __ATOMIC_RELAXED);
	}
	munmap(s->page, sizeof(struct shared_page));
	s->page = NULL;
}

/* The slot of a delegated connection. 1 found, 0 none, -1 caught mid-update (the
 * library died inside its seqlock: its counters cannot be trusted). */
static int delegate_slot(const struct session *s, uint64_t conn_id, struct shared_slot *out)
{
	if (!s->page)
		return 0;
	for (size_t i = 0; i < SHARED_SLOTS; i++) {
		const struct shared_slot *sl = &s->page->slots[i];
		if (__atomic_load_n(&sl->conn_id, __ATOMIC_ACQUIRE) != conn_id)
			continue;
		uint64_t seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
		memcpy(out, sl, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if ((seq & 1) || __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE) != seq ||
		    out->conn_id != conn_id)
			return -1;
		return 1;
	}
	return 0;
}

static void tls_pos(struct delegate_tls_pos *pos, const uint64_t seq[2], const uint64_t key_updates[2])
{
	if (!pos)
		return;
	pos->valid = true;
	memcpy(pos->seq, seq, sizeof(pos->seq));
	memcpy(pos->key_updates, key_updates, sizeof(pos->key_updates));
}

enum delegate_state delegate_judge(const struct session *s, const struct request *r,
                                   struct delegate_tls_pos *pos)
{
	struct shared_slot sl;
	memset(&sl, 0, sizeof(sl));
	if (pos)
		pos->valid = false;
	int found = r->delegated ? delegate_slot(s, r->conn->id, &sl) : 0;
	if (found < 0)
		return DELEGATE_WRITING;
	uint64_t written, consumed;
	tcp_counters(r->conn->io.fd, &written, &consumed);
	if (written != r->written0 + sl.written) {
		/* the response being finished went out whole, and the library was stopped
		 * before recording it: judge by what it wrote just before its last send */
		if (found == 1 && sl.end_written && written == r->written0 + sl.end_written) {
			tls_pos(pos, sl.end_tls_seq, sl.end_tls_key_updates);
			if (sl.end_buffered & SHARED_END_BODY_UNREAD)
				return DELEGATE_ANSWERED;
			return consumed != r->consumed0 + sl.end_consumed || sl.end_buffered ? DELEGATE_READ
			                                                                     : DELEGATE_IDLE;
		}
		return DELEGATE_WRITING;
	}
	if (!found || !sl.responses)
		return consumed == r->consumed0 ? DELEGATE_UNTOUCHED : DELEGATE_READ;
	tls_pos(pos, sl.tls_seq, sl.tls_key_updates);
	if (consumed != r->consumed0 + sl.consumed || sl.buffered)
		return DELEGATE_READ;
	return DELEGATE_IDLE;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool delegate_answered(const struct request *r)
{
	struct shared_slot sl;
	return r->delegated && r->owner && delegate_slot(r->owner, r->conn->id, &sl) == 1 && sl.responses;
}

void delegate_idle_check(struct conn *c)
{
	struct request *r = c->req;
	uint32_t idle = dm->cfg.limits.idle_connection_ms;
	struct shared_slot sl;
	if (!r || !r->owner || !r->delegated) {
		loop_timer_set(dm->loop, &c->timer, idle);
		return;
	}
	if (delegate_slot(r->owner, c->id, &sl) == 1 && sl.responses) {
		uint64_t quiet = now_ms() - sl.last_ms;
		/* bytes waiting unread: a request for a worker busy elsewhere, not an idle
		 * connection; it waits as it would for a slow app */
		if (quiet >= idle && !tcp_unread(c->io.fd) &&
		    delegate_judge(r->owner, r, NULL) == DELEGATE_IDLE) {
			/* the daemon never writes to a connection a worker holds: it ends it with a
			 * FIN; the client's close then wakes both sides (DESIGN §2a) */
			log_error_answer(c, 0, "Timer_IdleConnection (delegated)");
			shutdown(c->io.fd, SHUT_WR);
			return;
		}
		if (quiet < idle) {
			loop_timer_set(dm->loop, &c->timer, idle - quiet);
			return;
		}
	}
	loop_timer_set(dm->loop, &c->timer, idle);
}

bool delegate_lib_counts(struct session *s)
{
	if (s && !s->lib_counts && s->page)
		s->lib_counts = __atomic_load_n(&s->page->counts_delivered, __ATOMIC_ACQUIRE) != 0;
	return s && s->lib_counts;
}

void delegate_count_served(struct request *r, struct session *s)
{
	if (!r->queue || delegate_lib_counts(s))
		return; /* counted in the page when its response ended */
	r->queue->served++;
	r->queue->unclassed++;
}

void delegate_counts(const struct queue *q, struct delegate_counts *out)
{
	memset(out, 0, sizeof(*out));
	struct list *p, *t;
	list_for_each_safe(p, t, (struct list *)&q->attached)
	{
		const struct session *s = container_of(p, struct attach, qlink)->s;
		if (!s->page)
			continue;
		for (size_t i = 0; i < SHARED_QUEUES; i++) {
			const struct shared_counter *ct = &s->page->counters[i];
			if (__atomic_load_n(&ct->queue_id, __ATOMIC_ACQUIRE) != q->id)
				continue;
			out->served += __atomic_load_n(&ct->served, __ATOMIC_RELAXED);
			out->delivered += __atomic_load_n(&ct->delivered, __ATOMIC_RELAXED);
			for (size_t k = 0; k < SHARED_CLASSES; k++)
				out->classes[k] += __atomic_load_n(&ct->classes[k], __ATOMIC_RELAXED);
			out->duration_us += __atomic_load_n(&ct->duration_us, __ATOMIC_RELAXED);
			for (size_t k = 0; k < SHARED_BUCKETS; k++)
				out->buckets[k] += __atomic_load_n(&ct->buckets[k], __ATOMIC_RELAXED);
			out->bytes += __atomic_load_n(&ct->bytes, __ATOMIC_RELAXED);
		}
	}
}

uint64_t delegate_served(const struct queue *q)
{
	struct delegate_counts n;
	delegate_counts(q, &n);
	return n.served;
}

void delegate_close(void)
{
	loop_timer_cancel(dm->loop, &dm->publish);
	if (dm->snapshot_fd >= 0)
		close(dm->snapshot_fd);
	dm->snapshot_fd = -1;
}
