/* route.h: the route table: URL prefix -> owner (a queue), looked up by host class,
 * then longest whole-segment path prefix (DESIGN §3). Lookup cost depends on the
 * path's segment count, not on how many prefixes are registered (hash tables). */
#ifndef PS_ROUTE_H
#define PS_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "url_prefix.h"

struct route_table;

struct route_table *route_new(void);
void route_free(struct route_table *t);
/* 0; -2 if the same prefix is registered (then *holder is its owner); -1 no memory */
int route_add(struct route_table *t, const struct url_prefix *p, void *owner, void **holder);
/* 0, or -1 if absent */
int route_del(struct route_table *t, const struct url_prefix *p);
size_t route_count(const struct route_table *t);
/* How many prefixes need this port (any class, any host); lazy binding uses it. */
size_t route_port_count(const struct route_table *t, uint16_t port);
/* Prefixes on port of one scheme (a port is TLS or plain, never both). */
size_t route_port_scheme_count(const struct route_table *t, uint16_t port, bool https);

struct route_query {
	const char *host;            /* request host: lower case, no port; "" if none */
	uint16_t port;               /* local port the connection arrived on */
	const struct ps_addr *local; /* local address of the connection */
	const char *path;            /* canonical path */
};

enum route_result {
	ROUTE_FOUND = 0,
	ROUTE_NO_HOST = 400, /* no prefix matches the host at all: 400 Invalid Hostname */
	ROUTE_NO_PATH = 404, /* a host matches, no path prefix does */
};

/* On ROUTE_FOUND sets *owner and, if matched is not NULL, *matched to the prefix. */
enum route_result route_lookup(const struct route_table *t, const struct route_query *q, void **owner,
                               const struct url_prefix **matched);

/* Calls fn for every prefix (order unspecified); for status listings. */
void route_foreach(const struct route_table *t, void (*fn)(const struct url_prefix *, void *owner, void *arg),
                   void *arg);

#endif
