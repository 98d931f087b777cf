/* dispatch.c: routes an accepted request head to its queue, the same way for the daemon
 * and for the library's delegated connections. */
#include "dispatch.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "route.h"

size_t dispatch_path_cap(const struct http_head *h)
{
	return (h->path.len ? h->path.len : 1) + 2;
}

/* HTTP/1.0 without Host: the local address names the host (DESIGN §2). */
static void dispatch_host(struct dispatch *d)
{
	if (d->h->host[0]) {
		snprintf(d->host, sizeof(d->host), "%s", d->h->host);
		return;
	}
	if (!inet_ntop(d->local->family, d->local->addr, d->host, sizeof(d->host)))
		d->host[0] = 0;
}

/* A refused request has no owner, whatever a lookup found before it was refused. */
static int dispatch_refuse(struct dispatch *d, int status, const char *reason)
{
	d->owner = NULL;
	d->status = status;
	d->reason = reason;
	return status;
}

int dispatch_route(const struct route_table *t, struct dispatch *d, char *path, char *scratch)
{
	const struct http_head *h = d->h;
	/* an absolute-form target without a path means "/" */
	const char *raw = h->path.len ? d->buf + h->path.off : "/";
	size_t rawlen = h->path.len ? h->path.len : 1;
	bool alt_differs = false;
	const char *why = NULL;
	d->owner = NULL;
	d->status = 0;
	enum canon_result cr =
	    canon_path(raw, rawlen, d->canon, path, &d->path_len, scratch, &alt_differs, &why);
	if (cr != CANON_OK) {
		snprintf(d->reason_buf, sizeof(d->reason_buf), "%s: %s",
		         cr == CANON_LONG ? "URL" : "BadRequest", why ? why : "bad path");
		return dispatch_refuse(d, cr, d->reason_buf);
	}
	dispatch_host(d);
	struct route_query q = {.host = d->host, .port = d->port, .local = d->local, .path = path};
	enum route_result rr = route_lookup(t, &q, &d->owner, &d->prefix);
	if (alt_differs) {
		/* an encoded / or \ must not change which application gets the request */
		void *alt_owner = NULL;
		q.path = scratch;
		if (route_lookup(t, &q, &alt_owner, NULL) != rr || alt_owner != d->owner)
			return dispatch_refuse(d, 400,
			                       "BadRequest: an encoded / or \\ would change the route");
	}
	if (rr == ROUTE_NO_HOST)
		return dispatch_refuse(d, 400, "InvalidHostname");
	if (rr == ROUTE_NO_PATH)
		return dispatch_refuse(d, 404, "NotFound");
	return 0;
}
