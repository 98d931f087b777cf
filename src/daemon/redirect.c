/* redirect.c: HTTP -> HTTPS redirects answered by the daemon (redirect.h). The redirect
 * prefixes sit in a route table of their own, so a request finds its redirect by the same
 * rules (host classes, longest path) as an app's prefix, and only after the apps' table
 * had nothing for it. */
#include "redirect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-t.h"
#include "http_head.h"
#include "route.h"

static struct route_table *table;
static struct redirect redirects[SETTINGS_REDIRECTS_MAX];
static uint8_t ports[65536 / 8];

int redirect_apply(const struct settings *s)
{
	struct route_table *t = route_new();
	if (!t)
		return -1;
	for (unsigned i = 0; i < s->nredirects; i++) {
		struct url_prefix p = s->redirects[i].from;
		if (route_add(t, &p, &redirects[i], NULL) == -1) {
			route_free(t);
			return -1;
		}
	}
	if (table)
		route_free(table);
	table = t;
	memcpy(redirects, s->redirects, s->nredirects * sizeof(redirects[0]));
	memset(ports, 0, sizeof(ports));
	for (unsigned i = 0; i < s->nredirects; i++)
		ports[s->redirects[i].from.port / 8] |= (uint8_t)(1u << (s->redirects[i].from.port % 8));
	return 0;
}

void redirect_free(void)
{
	if (table)
		route_free(table);
	table = NULL;
	memset(ports, 0, sizeof(ports));
}

bool redirect_on_port(uint16_t port)
{
	return ports[port / 8] & (1u << (port % 8));
}

char *redirect_location(const struct conn *c, const struct http_head *h, const char *host, const char *path)
{
	if (!table || !redirect_on_port(c->port) || !host[0])
		return NULL;
	struct route_query q = {.host = host, .port = c->port, .local = &c->local, .path = path};
	void *owner;
	if (route_lookup(table, &q, &owner, NULL) != ROUTE_FOUND)
		return NULL;
	const struct redirect *r = owner;
	/* the same target: the path as the client wrote it (origin-form, or absolute-form's
	 * path), and its query */
	const char *raw = h->path.len ? c->buf + h->path.off : "/";
	int raw_len = h->path.len ? (int)h->path.len : 1;
	char port[8] = "";
	if (r->to_port != 443)
		snprintf(port, sizeof(port), ":%u", (unsigned)r->to_port);
	char *location = NULL; /* an IPv6 literal host keeps its brackets */
	if (asprintf(&location, "Location: https://%s%s%.*s%s%.*s\r\n", host, port, raw_len, raw,
	             h->query.len ? "?" : "", (int)h->query.len,
	             h->query.len ? c->buf + h->query.off : "") < 0)
		return NULL;
	return location;
}
