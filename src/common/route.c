/* route.c: the route table: URL prefix -> owner, found by host class, then by the
 * longest whole-segment path prefix, in time that does not grow with the number of
 * prefixes (DESIGN §3). */
#include "route.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Pseudo host class of the per-port counters (route_port_count). */
#define ROUTE_KEY_PORT HOST_CLASS_COUNT
#define ROUTE_HOST_KEY_MAX 256
/* A registered path is at most PS_PREFIX_MAX bytes and every segment takes at least
 * two ("/x"), so no prefix is deeper than this. */
#define ROUTE_DEPTH_MAX (PS_PREFIX_MAX / 2)

#define ROUTE_FNV_BASIS 14695981039346656037ULL
#define ROUTE_FNV_PRIME 1099511628211ULL

/* Slots inspected by hash lookups in this thread. Deliberately not in route.h: only
 * tests/unit/test_route.c reads it, to prove that lookups do not scan. Thread-local so
 * that event-loop threads looking up concurrently do not race on it. */
_Thread_local unsigned long route_probe_count;

/* What the hash tables store and compare. The path is the prefix's path without its
 * final '/', so that every candidate a request path offers is a prefix of the request
 * path itself ("/blog" for both "/blog" and "/blog/x") and needs no copying. */
struct route_node {
	uint64_t hash;
	uint8_t https;
	uint8_t cls;
	uint16_t port;
	uint16_t host_len;
	uint16_t path_len;
	const uint8_t *host;
	const char *path;
};

/* One registered prefix. node comes first: a found node is cast back to its entry. */
struct route_entry {
	struct route_node node;
	struct url_prefix prefix;
	void *owner;
	uint8_t host[ROUTE_HOST_KEY_MAX];
};

/* How many prefixes a (class, port, host) has, any scheme: tells 404 from 400 without
 * looking at paths. With class ROUTE_KEY_PORT and no host it counts a port's prefixes. */
struct route_counter {
	struct route_node node;
	size_t count;
	uint8_t host[ROUTE_HOST_KEY_MAX];
};

/* Open addressing, linear probing, at most half full, deletion by backward shift (no
 * tombstones, so lookups stay short however many adds and deletes there were). */
struct route_hash {
	struct route_node **slot;
	size_t mask; /* capacity - 1; capacity is a power of two */
	size_t used;
};

struct route_table {
	struct route_hash prefixes;
	struct route_hash counters;
	size_t scheme_count[2]; /* prefixes per scheme: http, https */
	size_t max_depth;       /* deepest prefix ever added: lookups try no deeper path */
};

static uint64_t route_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= ROUTE_FNV_PRIME;
	}
	return h;
}

static uint64_t route_hash_host(unsigned https, unsigned cls, uint16_t port, const uint8_t *host, size_t len)
{
	uint8_t head[4] = {(uint8_t)https, (uint8_t)cls, (uint8_t)(port & 0xff), (uint8_t)(port >> 8)};

	return route_fnv(route_fnv(ROUTE_FNV_BASIS, head, sizeof(head)), host, len);
}

/* Host and path are hashed apart and then mixed, so that a lookup hashes the request
 * path once and reuses the running hash at every '/' for every class. The mix is the
 * splitmix64 finaliser, which spreads FNV's weak high bits over the mask. */
static uint64_t route_hash_mix(uint64_t host_hash, uint64_t path_hash)
{
	uint64_t x = path_hash ^ (host_hash * 0x9e3779b97f4a7c15ULL);

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static void route_node_init(struct route_node *n, unsigned https, unsigned cls, uint16_t port,
                            const uint8_t *host, size_t host_len, const char *path, size_t path_len)
{
	n->https = (uint8_t)https;
	n->cls = (uint8_t)cls;
	n->port = port;
	n->host = host;
	n->host_len = (uint16_t)host_len;
	n->path = path;
	n->path_len = (uint16_t)path_len;
	n->hash = route_hash_mix(route_hash_host(https, cls, port, host, host_len),
	                         route_fnv(ROUTE_FNV_BASIS, path, path_len));
}

static bool route_node_equal(const struct route_node *a, const struct route_node *b)
{
	return a->hash == b->hash && a->https == b->https && a->cls == b->cls && a->port == b->port &&
	       a->host_len == b->host_len && a->path_len == b->path_len &&
	       memcmp(a->host, b->host, a->host_len) == 0 && memcmp(a->path, b->path, a->path_len) == 0;
}

static struct route_node *route_hash_find(const struct route_hash *h, const struct route_node *key)
{
	if (h->used == 0)
		return NULL;
	for (size_t i = key->hash & h->mask;; i = (i + 1) & h->mask) {
		route_probe_count++;
		if (h->slot[i] == NULL)
			return NULL;
		if (route_node_equal(h->slot[i], key))
			return h->slot[i];
	}
}

static void route_hash_place(struct route_node **slot, size_t mask, struct route_node *n)
{
	size_t i = n->hash & mask;

	while (slot[i])
		i = (i + 1) & mask;
	slot[i] = n;
}

static int route_hash_put(struct route_hash *h, struct route_node *n)
{
	if (h->slot == NULL || (h->used + 1) * 2 > h->mask + 1) {
		size_t cap = h->slot ? (h->mask + 1) * 2 : 16;
		struct route_node **slot = calloc(cap, sizeof(*slot));
		if (slot == NULL)
			return -1;
		for (size_t i = 0; h->slot && i <= h->mask; i++)
			if (h->slot[i])
				route_hash_place(slot, cap - 1, h->slot[i]);
		free(h->slot);
		h->slot = slot;
		h->mask = cap - 1;
	}
	route_hash_place(h->slot, h->mask, n);
	h->used++;
	return 0;
}

static void route_hash_remove(struct route_hash *h, const struct route_node *n)
{
	size_t i = n->hash & h->mask;

	while (h->slot[i] != n)
		i = (i + 1) & h->mask;
	/* Pull later members of the run back into the hole when their home slot is not
	 * between the hole and where they sit, so no lookup meets a hole before them. */
	for (size_t j = (i + 1) & h->mask; h->slot[j]; j = (j + 1) & h->mask) {
		size_t home = h->slot[j]->hash & h->mask;
		if (((j - home) & h->mask) >= ((j - i) & h->mask)) {
			h->slot[i] = h->slot[j];
			i = j;
		}
	}
	h->slot[i] = NULL;
	h->used--;
}

/* The bytes that identify a host within its class: the lower-case name; the address
 * (a family byte, then 4 or 16 bytes); nothing for '+', '*' and port counters.
 * Returns the length, or -1 when no host of that class can be made from the input. */
static int route_host_key(unsigned cls, const char *name, const struct ps_addr *ip,
                          uint8_t key[ROUTE_HOST_KEY_MAX])
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	size_t n;

	switch (cls) {
	case HOST_NAME:
		n = name ? strnlen(name, ROUTE_HOST_KEY_MAX) : 0;
		if (n == 0 || n == ROUTE_HOST_KEY_MAX)
			return -1;
		for (size_t i = 0; i < n; i++)
			key[i] = (uint8_t)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
		return (int)n;
	case HOST_IP:
		if (ip == NULL)
			return -1;
		/* A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d; DESIGN §7 sets
		 * IPV6_V6ONLY everywhere, but the match should not depend on that. */
		if (ip->family == AF_INET || (ip->family == AF_INET6 && !memcmp(ip->addr, v4mapped, 12))) {
			key[0] = 4;
			memcpy(key + 1, ip->family == AF_INET ? ip->addr : ip->addr + 12, 4);
			return 5;
		}
		if (ip->family == AF_INET6) {
			key[0] = 6;
			memcpy(key + 1, ip->addr, 16);
			return 17;
		}
		return -1;
	default:
		return 0;
	}
}

static size_t route_counter_get(const struct route_table *t, unsigned cls, uint16_t port, const uint8_t *host,
                                size_t host_len)
{
	struct route_node key;

	route_node_init(&key, 0, cls, port, host, host_len, "", 0);
	struct route_node *n = route_hash_find(&t->counters, &key);
	return n ? ((struct route_counter *)n)->count : 0;
}

/* delta is +1 or -1; a counter that reaches 0 is freed. Only +1 can fail. */
static int route_counter_add(struct route_table *t, unsigned cls, uint16_t port, const uint8_t *host,
                             size_t host_len, int delta)
{
	struct route_node key;
	struct route_counter *c;

	route_node_init(&key, 0, cls, port, host, host_len, "", 0);
	c = (struct route_counter *)route_hash_find(&t->counters, &key);
	if (c) {
		if (delta > 0)
			c->count++;
		else if (--c->count == 0) {
			route_hash_remove(&t->counters, &c->node);
			free(c);
		}
		return 0;
	}
	if (delta < 0)
		return 0;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -1;
	memcpy(c->host, host, host_len);
	route_node_init(&c->node, 0, cls, port, c->host, host_len, "", 0);
	c->count = 1;
	if (route_hash_put(&t->counters, &c->node) < 0) {
		free(c);
		return -1;
	}
	return 0;
}

struct route_table *route_new(void)
{
	return calloc(1, sizeof(struct route_table));
}

void route_free(struct route_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; t->prefixes.slot && i <= t->prefixes.mask; i++)
		free(t->prefixes.slot[i]);
	for (size_t i = 0; t->counters.slot && i <= t->counters.mask; i++)
		free(t->counters.slot[i]);
	free(t->prefixes.slot);
	free(t->counters.slot);
	free(t);
}

/* Fills e's key from e->prefix; -1 if the prefix is not one url_prefix_parse makes. */
static int route_entry_key(struct route_entry *e)
{
	struct url_prefix *p = &e->prefix;
	size_t len = strnlen(p->path, sizeof(p->path));
	size_t depth = 0;
	int host_len;

	if ((unsigned)p->cls >= HOST_CLASS_COUNT || len == 0 || len == sizeof(p->path) || p->path[0] != '/' ||
	    p->path[len - 1] != '/')
		return -1;
	for (size_t i = 0; i < len - 1; i++)
		depth += p->path[i] == '/';
	if (depth > ROUTE_DEPTH_MAX)
		return -1;
	host_len = route_host_key(p->cls, p->host, &p->ip, e->host);
	if (host_len < 0)
		return -1;
	if (p->cls == HOST_NAME) {
		memcpy(p->host, e->host, (size_t)host_len);
		p->host[host_len] = '\0';
	}
	route_node_init(&e->node, p->https, p->cls, p->port, e->host, (size_t)host_len, p->path, len - 1);
	return (int)depth;
}

/* -1 also for a prefix url_prefix_parse would not have made (no final '/', bad class):
 * a caller's bug, refused rather than stored under a key no lookup can build. */
int route_add(struct route_table *t, const struct url_prefix *p, void *owner, void **holder)
{
	struct route_entry *e, *old;
	int depth;

	if (holder)
		*holder = NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	e->prefix = *p;
	e->owner = owner;
	depth = route_entry_key(e);
	if (depth < 0)
		goto fail;
	old = (struct route_entry *)route_hash_find(&t->prefixes, &e->node);
	if (old) {
		if (holder)
			*holder = old->owner;
		free(e);
		return -2;
	}
	if (route_counter_add(t, e->node.cls, e->node.port, e->host, e->node.host_len, 1) < 0)
		goto fail;
	if (route_counter_add(t, ROUTE_KEY_PORT, e->node.port, &e->node.https, 1, 1) < 0)
		goto undo_class;
	if (route_hash_put(&t->prefixes, &e->node) < 0)
		goto undo_port;
	t->scheme_count[e->node.https]++;
	if ((size_t)depth > t->max_depth)
		t->max_depth = (size_t)depth;
	return 0;
undo_port:
	route_counter_add(t, ROUTE_KEY_PORT, e->node.port, &e->node.https, 1, -1);
undo_class:
	route_counter_add(t, e->node.cls, e->node.port, e->host, e->node.host_len, -1);
fail:
	free(e);
	return -1;
}

int route_del(struct route_table *t, const struct url_prefix *p)
{
	struct route_entry key, *e;

	key.prefix = *p;
	if (route_entry_key(&key) < 0)
		return -1;
	e = (struct route_entry *)route_hash_find(&t->prefixes, &key.node);
	if (e == NULL)
		return -1;
	route_hash_remove(&t->prefixes, &e->node);
	route_counter_add(t, e->node.cls, e->node.port, e->host, e->node.host_len, -1);
	route_counter_add(t, ROUTE_KEY_PORT, e->node.port, &e->node.https, 1, -1);
	t->scheme_count[e->node.https]--;
	free(e);
	return 0;
}

size_t route_count(const struct route_table *t)
{
	return t->prefixes.used;
}

size_t route_port_count(const struct route_table *t, uint16_t port)
{
	return route_port_scheme_count(t, port, false) + route_port_scheme_count(t, port, true);
}

size_t route_port_scheme_count(const struct route_table *t, uint16_t port, bool https)
{
	uint8_t key = https;
	return route_counter_get(t, ROUTE_KEY_PORT, port, &key, 1);
}

enum route_result route_lookup(const struct route_table *t, const struct route_query *q, void **owner,
                               const struct url_prefix **matched)
{
	/* The request path's own prefixes that could be registered keys, shortest first:
	 * the path up to each '/', and the whole path when it does not end in '/'. */
	struct {
		size_t len;
		uint64_t hash;
	} cut[ROUTE_DEPTH_MAX + 1];
	size_t ncut = 0;
	const char *path = q->path;
	bool host_seen = false;

	*owner = NULL;
	if (matched)
		*matched = NULL;
	if (path && path[0] == '/') {
		uint64_t h = ROUTE_FNV_BASIS;
		size_t depth = 0, i;
		/* No key is PS_PREFIX_MAX bytes long, so a longer candidate cannot match. */
		for (i = 0; path[i] && i < PS_PREFIX_MAX; i++) {
			if (path[i] == '/') {
				if (depth > t->max_depth)
					break;
				cut[ncut].len = i;
				cut[ncut++].hash = h;
				depth++;
			}
			h = route_fnv(h, path + i, 1);
		}
		if (path[i] == '\0' && path[i - 1] != '/' && depth <= t->max_depth) {
			cut[ncut].len = i;
			cut[ncut++].hash = h;
		}
	}

	/* HTTP.sys's rule: the first class with a matching prefix wins, even over a longer
	 * path in a later class; a class with prefixes for the host but none for the path
	 * lets the next class try. */
	for (unsigned cls = 0; cls < HOST_CLASS_COUNT; cls++) {
		uint8_t host[ROUTE_HOST_KEY_MAX];
		int host_len = route_host_key(cls, q->host, q->local, host);
		uint64_t host_hash[2];

		if (host_len < 0 || route_counter_get(t, cls, q->port, host, (size_t)host_len) == 0)
			continue;
		host_seen = true;
		for (unsigned https = 0; https < 2; https++)
			host_hash[https] = route_hash_host(https, cls, q->port, host, (size_t)host_len);
		for (size_t c = ncut; c-- > 0;) {
			for (unsigned https = 0; https < 2; https++) {
				struct route_node key = {
				    .hash = route_hash_mix(host_hash[https], cut[c].hash),
				    .https = (uint8_t)https,
				    .cls = (uint8_t)cls,
				    .port = q->port,
				    .host = host,
				    .host_len = (uint16_t)host_len,
				    .path = path,
				    .path_len = (uint16_t)cut[c].len,
				};
				struct route_entry *e;
				if (t->scheme_count[https] == 0)
					continue;
				e = (struct route_entry *)route_hash_find(&t->prefixes, &key);
				if (e) {
					*owner = e->owner;
					if (matched)
						*matched = &e->prefix;
					return ROUTE_FOUND;
				}
			}
		}
	}
	return host_seen ? ROUTE_NO_PATH : ROUTE_NO_HOST;
}

void route_foreach(const struct route_table *t, void (*fn)(const struct url_prefix *, void *owner, void *arg),
                   void *arg)
{
	for (size_t i = 0; t->prefixes.slot && i <= t->prefixes.mask; i++) {
		const struct route_entry *e = (const struct route_entry *)t->prefixes.slot[i];
		if (e)
			fn(&e->prefix, e->owner, arg);
	}
}
