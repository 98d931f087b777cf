/* accesslog.c: access-log records into the session page's ring (DESIGN §9). A record
 * holds what only the library knows (status, bytes, duration, the request line and two
 * headers as they came); the daemon adds the queue's name and the worker's pid from its
 * own knowledge, formats, escapes and writes the line. The ring has one writer, the
 * session's thread, so a record is written in place and published by one store. */
#include "accesslog.h"

#include <string.h>
#include <time.h>

#include "client.h"
#include "conns.h"
#include "log_record.h"
#include "request.h"
#include "shared.h"

/* How long a record waits for room in a full ring (the daemon drains it when told it
 * is half full, so this happens only when the daemon is stalled) before it is dropped
 * and counted in the page's `dropped`. */
#define ACCESSLOG_WAIT_MS 100

static struct shared_log *accesslog_ring(const ps_request *r)
{
	ps_client *c = r->c;
	if (!c || !c->page || r->gen != c->gen || !r->conn)
		return NULL;
	struct shared_log *lg = &c->page->log;
	return __atomic_load_n(&lg->on, __ATOMIC_RELAXED) ? lg : NULL;
}

/* Tells the daemon once that the ring is half full (it clears `nudged` as it drains). */
static void accesslog_nudge(ps_client *c, struct shared_log *lg)
{
	if (__atomic_exchange_n(&lg->nudged, 1, __ATOMIC_ACQ_REL))
		return;
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_LOG_DRAIN;
	client_send(c, &m);
}

/* Room for a record of `size` bytes at the head (a pad record first when it would cross
 * the ring's end); NULL when the ring stayed full. *head is where the record goes. */
static struct shared_log_record *accesslog_room(ps_client *c, struct shared_log *lg, size_t size,
                                                uint64_t *head)
{
	uint64_t h = __atomic_load_n(&lg->head, __ATOMIC_RELAXED);
	size_t off = (size_t)(h % SHARED_LOG_SIZE), to_end = SHARED_LOG_SIZE - off;
	size_t need = size + (to_end < size ? to_end : 0);
	struct timespec pause = {0, 200000};
	for (int waited = 0;; waited++) {
		uint64_t tail = __atomic_load_n(&lg->tail, __ATOMIC_ACQUIRE);
		if (SHARED_LOG_SIZE - (h - tail) >= need)
			break;
		if (waited * 200 >= ACCESSLOG_WAIT_MS * 1000 || !client_connected(c)) {
			__atomic_fetch_add(&lg->dropped, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		accesslog_nudge(c, lg);
		nanosleep(&pause, NULL);
	}
	if (to_end < size) {
		struct shared_log_record *pad = (struct shared_log_record *)&lg->data[off];
		pad->size = (uint32_t)to_end;
		pad->kind = SHARED_LOG_PAD;
		h += to_end;
		off = 0;
	}
	*head = h;
	return (struct shared_log_record *)&lg->data[off];
}

static void accesslog_publish(ps_client *c, struct shared_log *lg, uint64_t head)
{
	/* `sending` (if set) before head: the daemon that sees the record sees it held */
	__atomic_store_n(&lg->head, head, __ATOMIC_RELEASE);
	if (head - __atomic_load_n(&lg->tail, __ATOMIC_ACQUIRE) >= SHARED_LOG_SIZE / 2)
		accesslog_nudge(c, lg);
}

/* The request line as it came (leading empty lines skipped, CR LF not included). */
static size_t accesslog_request_line(const ps_request *r, const char **line)
{
	const char *p = r->head, *end = r->head + r->head_len;
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *e = nl ? nl : end;
	if (e > p && e[-1] == '\r')
		e--;
	*line = p;
	return (size_t)(e - p);
}

static size_t accesslog_cut(const char *s, size_t max)
{
	return s ? strnlen(s, max) : 0;
}

/* Writes one record of `kind`; strings only in WHOLE and BEGIN. */
static void accesslog_write(ps_request *r, struct shared_log *lg, enum shared_log_kind kind, unsigned flags,
                            uint64_t end_written)
{
	ps_client *c = r->c;
	const char *line = NULL, *referer = NULL, *agent = NULL;
	size_t line_len = 0, referer_len = 0, agent_len = 0;
	if (kind != SHARED_LOG_END) {
		line_len = accesslog_request_line(r, &line);
		if (line_len > SHARED_LOG_REQUEST_MAX)
			line_len = SHARED_LOG_REQUEST_MAX;
		referer = ps_request_header(r, "Referer");
		agent = ps_request_header(r, "User-Agent");
		referer_len = accesslog_cut(referer, SHARED_LOG_FIELD_MAX);
		agent_len = accesslog_cut(agent, SHARED_LOG_FIELD_MAX);
	}
	size_t size =
	    (sizeof(struct shared_log_record) + line_len + referer_len + agent_len + 7) & ~(size_t)7;
	uint64_t head;
	struct shared_log_record *rec = accesslog_room(c, lg, size, &head);
	if (!rec)
		return;
	/* a BEGIN's duration is the time to the response's first send (an END replaces it);
	 * the others take the response's end, as the page's counters do */
	uint64_t duration;
	if (kind == SHARED_LOG_BEGIN) {
		uint64_t now = log_clock_us(CLOCK_MONOTONIC);
		duration = now > r->start_us ? now - r->start_us : 0;
	} else {
		duration = request_duration_us(r);
	}
	*rec = (struct shared_log_record){
	    .size = (uint32_t)size,
	    .kind = (uint8_t)kind,
	    .flags = (uint8_t)flags,
	    .status = r->status,
	    .queue_id = r->q ? r->q->id : 0,
	    .request_len = (uint16_t)line_len,
	    .referer_len = (uint16_t)referer_len,
	    .agent_len = (uint16_t)agent_len,
	    .serial = r->log_serial,
	    .conn_id = r->conn_id,
	    .start_written = r->log_start_written,
	    .end_written = end_written,
	    .body_bytes = r->body_sent,
	    .time_us = log_clock_us(CLOCK_REALTIME),
	    .duration_us = duration,
	    .remote = r->addr_remote,
	};
	char *p = (char *)(rec + 1);
	if (line_len)
		memcpy(p, line, line_len);
	if (referer_len)
		memcpy(p + line_len, referer, referer_len);
	if (agent_len)
		memcpy(p + line_len + referer_len, agent, agent_len);
	accesslog_publish(c, lg, head + size);
}

/* A new serial and the connection's counter before the response's first byte. */
static void accesslog_start(ps_request *r)
{
	r->log_serial = ++r->c->log_serials;
	r->log_start_written = r->conn->written;
}

void accesslog_send(ps_request *r)
{
	struct shared_log *lg = accesslog_ring(r);
	if (!lg || r->log_state != ACCESSLOG_NONE)
		return;
	accesslog_start(r);
	accesslog_write(r, lg, SHARED_LOG_BEGIN, 0, 0);
	r->log_state = ACCESSLOG_BEGUN;
}

/* The record that ends r's response: WHOLE, or the END of its BEGIN. sending: it goes just
 * before the response's last send, which the page's `sending` then names. */
static void accesslog_final(ps_request *r, struct shared_log *lg, unsigned flags, uint64_t end_written,
                            bool sending)
{
	if (r->log_state == ACCESSLOG_NONE)
		accesslog_start(r);
	if (sending)
		__atomic_store_n(&lg->sending, r->log_serial, __ATOMIC_RELAXED);
	accesslog_write(r, lg, r->log_state == ACCESSLOG_BEGUN ? SHARED_LOG_END : SHARED_LOG_WHOLE, flags,
	                end_written);
	r->log_state = ACCESSLOG_DONE;
}

void accesslog_last(ps_request *r, uint64_t end_written)
{
	struct shared_log *lg = accesslog_ring(r);
	if (lg && r->log_state != ACCESSLOG_DONE)
		accesslog_final(r, lg, 0, end_written, true);
}

void accesslog_sent(ps_request *r)
{
	ps_client *c = r->c;
	if (r->log_serial && c && c->page && r->gen == c->gen &&
	    __atomic_load_n(&c->page->log.sending, __ATOMIC_RELAXED) == r->log_serial)
		__atomic_store_n(&c->page->log.sending, 0, __ATOMIC_RELEASE);
}

void accesslog_upgrade(ps_request *r)
{
	struct shared_log *lg = accesslog_ring(r);
	if (lg && r->log_state == ACCESSLOG_NONE)
		accesslog_final(r, lg, SHARED_LOG_UPGRADE, 0, false);
}

void accesslog_abort(ps_request *r)
{
	struct shared_log *lg = accesslog_ring(r);
	/* a response never begun is not one: the daemon's verdict logs the request */
	if (!lg || !r->status)
		return;
	if (r->log_state != ACCESSLOG_DONE) {
		accesslog_final(r, lg, SHARED_LOG_ABORTED, 0, false);
	} else if (__atomic_load_n(&lg->sending, __ATOMIC_RELAXED) == r->log_serial) {
		/* its last send failed: an END for the same serial marks the record it follows */
		accesslog_write(r, lg, SHARED_LOG_END, SHARED_LOG_ABORTED, 0);
		accesslog_sent(r);
	}
}
