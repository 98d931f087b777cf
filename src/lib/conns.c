/* conns.c: the conn_id -> fd cache of a session (chained hash, see conns.h). */
#include "conns.h"

#include <stdlib.h>
#include <unistd.h>

#include "conn_io.h"

static size_t conns_slot(const struct conns *t, uint64_t id)
{
	/* conn ids are sequential in the daemon: a multiplicative hash spreads them */
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (t->nslots - 1);
}

struct held_conn *conns_find(const struct conns *t, uint64_t id)
{
	if (t->nslots == 0)
		return NULL;
	for (struct held_conn *cn = t->slots[conns_slot(t, id)]; cn; cn = cn->next)
		if (cn->id == id)
			return cn;
	return NULL;
}

static int conns_grow(struct conns *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 64;
	struct held_conn **slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -1;
	struct conns bigger = {slots, n, t->count};
	for (size_t i = 0; i < t->nslots; i++) {
		struct held_conn *cn = t->slots[i];
		while (cn) {
			struct held_conn *next = cn->next;
			size_t s = conns_slot(&bigger, cn->id);
			cn->next = slots[s];
			slots[s] = cn;
			cn = next;
		}
	}
	free(t->slots);
	*t = bigger;
	return 0;
}

struct held_conn *conns_add(struct conns *t, uint64_t id, int fd)
{
	/* Everything is allocated before the old entry goes, so that running out of memory
	 * leaves the table as it was (a bigger array is no change a caller can see). */
	struct held_conn *old = conns_find(t, id);
	if (!old && t->count >= t->nslots && conns_grow(t) < 0)
		return NULL;
	struct held_conn *cn = calloc(1, sizeof(*cn));
	if (!cn)
		return NULL;
	if (old)
		conns_del(t, old);
	cn->id = id;
	cn->fd = fd;
	cn->refs = 1;
	cn->cached = 1;
	size_t s = conns_slot(t, id);
	cn->next = t->slots[s];
	t->slots[s] = cn;
	t->count++;
	return cn;
}

void conns_del(struct conns *t, struct held_conn *cn)
{
	if (!cn->cached)
		return;
	for (struct held_conn **p = &t->slots[conns_slot(t, cn->id)]; *p; p = &(*p)->next) {
		if (*p == cn) {
			*p = cn->next;
			break;
		}
	}
	cn->next = NULL;
	cn->cached = 0;
	t->count--;
	conns_release(cn);
}

void conns_clear(struct conns *t)
{
	for (size_t i = 0; i < t->nslots; i++) {
		struct held_conn *cn = t->slots[i];
		while (cn) {
			struct held_conn *next = cn->next;
			cn->next = NULL;
			cn->cached = 0;
			conns_release(cn);
			cn = next;
		}
		t->slots[i] = NULL;
	}
	t->count = 0;
}

void conns_free(struct conns *t)
{
	conns_clear(t);
	free(t->slots);
	t->slots = NULL;
	t->nslots = 0;
}

void conns_hold(struct held_conn *cn)
{
	cn->refs++;
}

void conns_release(struct held_conn *cn)
{
	if (--cn->refs > 0)
		return;
	/* A delegated connection's epoll registration is removed before its delegation drops
	 * its reference (delegate.c), so a plain close is enough. */
	if (cn->fd >= 0)
		close(cn->fd);
	conn_io_free_tls(cn);
	free(cn);
}
