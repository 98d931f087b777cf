/* dispatch.h: from an accepted request head to its queue: routing host, canonical
 * path, route lookup and the encoded-slash check (DESIGN §3). The daemon and the
 * library's delegated connections both route through it, so they always agree. */
#ifndef PS_DISPATCH_H
#define PS_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "canon.h"
#include "http_head.h"
#include "protocol.h"

struct route_table;
struct url_prefix;

struct dispatch {
	/* in */
	const char *buf;           /* the buffer h was parsed from */
	const struct http_head *h; /* accepted (not asterisk-form: the daemon answers that) */
	const struct ps_addr *local;
	uint16_t port; /* local port of the connection */
	const struct canon_limits *canon;
	/* out */
	void *owner;                     /* the route's owner when status is 0, else NULL */
	const struct url_prefix *prefix; /* the prefix that matched, when status is 0 */
	int status;                      /* 0: routed; else what to answer: 400, 404, 414 */
	const char *reason;              /* error-log reason when status is not 0 */
	char host[HTTP_HOST_MAX + 1];
	size_t path_len;
	char reason_buf[160];
};

/* Room path and scratch each need for this head. */
size_t dispatch_path_cap(const struct http_head *h);
/* Routes d->h. path receives the canonical path (NUL-terminated), scratch is working
 * space; both of dispatch_path_cap() bytes. Returns d->status. */
int dispatch_route(const struct route_table *t, struct dispatch *d, char *path, char *scratch);

#endif
