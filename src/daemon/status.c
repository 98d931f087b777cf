/* status.c: renders what `portsharectl status` shows: endpoints, queues, their URLs,
 * workers and counters, as text for people or JSON for programs. */
#include "status.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "addr.h"
#include "conn-t.h"
#include "daemon-t.h"
#include "json_write.h"
#include "delegate.h"
#include "list.h"
#include "metrics.h"
#include "listener.h"
#include "queue-t.h"
#include "route.h"
#include "session-t.h"
#include "threads.h"

static void render_endpoints(FILE *f, bool json)
{
	static uint8_t ports[65536 / 8];
	listener_port_map(ports);
	bool first = true;
	fputs(json ? "\"endpoints\":[" : "endpoints:\n", f);
	for (uint32_t port = 1; port < 65536; port++) {
		if (!(ports[port / 8] & (1u << (port % 8))))
			continue;
		struct listener_plan plan[LISTENER_PLAN_MAX];
		unsigned n = listener_plan((uint16_t)port, plan);
		for (unsigned i = 0; i < n; i++) {
			char ip[INET6_ADDRSTRLEN], why[160], a[PS_ADDR_TEXT_MAX];
			inet_ntop(plan[i].addr.family, plan[i].addr.addr, ip, sizeof(ip));
			bool bound = listener_is_bound(&plan[i].addr);
			bool tls =
			    listener_port_tls((uint16_t)port) && route_port_count(dm->routes, (uint16_t)port);
			listener_why_unbound(&plan[i], true, why, sizeof(why));
			if (json) {
				fprintf(f, "%s{\"address\":", first ? "" : ",");
				json_write_string(f, ip);
				fprintf(f, ",\"port\":%u,\"bound\":%s,\"tls\":%s,\"why\":", port,
				        bound ? "true" : "false", tls ? "true" : "false");
				json_write_string(f, why);
				fputc('}', f);
			} else {
				fprintf(f, "  %-28s %s%s%s%s\n", addr_format(&plan[i].addr, a, sizeof(a)),
				        bound ? "bound" : "not bound", tls ? ", TLS" : "", *why ? ": " : "",
				        why);
			}
			first = false;
		}
	}
	if (json)
		fputs("]", f);
	else if (first)
		fputs("  (none: no URL is registered)\n", f);
}

/* The reservation that allows u for q's owner, as status shows it: "reservation P",
 * "an admin's", or a mark when none does any more (HTTP.sys keeps such registrations). */
static const char *url_cover(const struct queue *q, const struct ident *owner, const struct url_prefix *u,
                             char *buf, size_t len)
{
	const struct reservation *r = acl_reservation_for(u);
	char p[PS_PREFIX_MAX + 300];
	if (r && acl_in(r->who, r->nwho, owner)) {
		url_prefix_format(&r->prefix, p, sizeof(p));
		snprintf(buf, len, "reservation %s", p);
	} else if (acl_is_admin(owner)) {
		snprintf(buf, len, "an admin's");
	} else {
		snprintf(buf, len, "NOT COVERED: no reservation allows user %s any more", q->creator_user);
	}
	return buf;
}

static void render_settings(FILE *f, bool json)
{
	const struct settings *st = &dm->settings;
	char p[PS_PREFIX_MAX + 300], whom[2048], a[PS_ADDR_TEXT_MAX];
	fprintf(f, json ? ",\"listen_source\":\"%s\",\"reservations\":[" : "listen list: %s\nreservations:\n",
	        listener_listen_source());
	for (size_t i = 0; i < st->nreservations; i++) {
		url_prefix_format(&st->reservations[i].prefix, p, sizeof(p));
		acl_principals_text(st->reservations[i].who, st->reservations[i].nwho, whom, sizeof(whom));
		if (json) {
			fprintf(f, "%s{\"prefix\":", i ? "," : "");
			json_write_string(f, p);
			fputs(",\"allows\":", f);
			json_write_string(f, whom);
			fputc('}', f);
		} else {
			fprintf(f, "  %-38s %s\n", p, whom);
		}
	}
	if (!json && !st->nreservations)
		fputs("  (none: only admins may register URLs)\n", f);
	fputs(json ? "],\"exclusions\":[" : "exclusions:\n", f);
	for (unsigned i = 0; i < st->nexclusions; i++) {
		addr_format(&st->exclusions[i], a, sizeof(a));
		if (json)
			fprintf(f, "%s\"%s\"", i ? "," : "", a);
		else
			fprintf(f, "  %s\n", a);
	}
	if (json)
		fputc(']', f);
	else if (!st->nexclusions)
		fputs("  (none)\n", f);
}

static void render_queue(FILE *f, bool json, const struct queue *q, bool first)
{
	char u[PS_PREFIX_MAX + 64], cover[PS_PREFIX_MAX + 400];
	struct list *p, *t;
	struct delegate_counts dc;
	delegate_counts(q, &dc);
	uint64_t delegated = dc.served,
	         served = q->served + dc.served + dc.delivered + metrics_served_before(q->name);
	struct ident owner;
	acl_ident_of_user(q->uid, q->creator_user, &owner);
	if (json) {
		fprintf(f, "%s{\"name\":", first ? "" : ",");
		json_write_string(f, q->name);
		fprintf(
		    f,
		    ",\"persistent\":%s,\"reattach_wait\":%s,\"depth\":%u,\"max_length\":%u,\"served\":%llu,"
		    "\"delegated\":%llu,\"refused\":%llu,\"urls\":[",
		    q->persistent ? "true" : "false", q->reattach_wait ? "true" : "false", q->depth,
		    q->max_length, (unsigned long long)served, (unsigned long long)delegated,
		    (unsigned long long)q->refused);
		for (size_t i = 0; i < q->nurls; i++) {
			url_prefix_format(&q->urls[i], u, sizeof(u));
			fputs(i ? "," : "", f);
			json_write_string(f, u);
		}
		fputs("],\"url_refused\":", f);
		json_write_string(f, q->url_refused);
		fputs(",\"url_allowed_by\":[", f);
		for (size_t i = 0; i < q->nurls; i++) {
			fputs(i ? "," : "", f);
			json_write_string(f, url_cover(q, &owner, &q->urls[i], cover, sizeof(cover)));
		}
		fputs("],\"workers\":[", f);
	} else {
		fprintf(f, "  %s%s: depth %u/%u, served %llu (%llu by the worker alone), refused %llu\n",
		        q->name, q->persistent ? " (persistent)" : "", q->depth, q->max_length,
		        (unsigned long long)served, (unsigned long long)delegated,
		        (unsigned long long)q->refused);
		for (size_t i = 0; i < q->nurls; i++) {
			url_prefix_format(&q->urls[i], u, sizeof(u));
			fprintf(f, "    url    %s  (%s)\n", u,
			        url_cover(q, &owner, &q->urls[i], cover, sizeof(cover)));
		}
		if (q->url_refused[0])
			fprintf(f, "    refused %s\n", q->url_refused);
		if (!q->nattached && q->reattach_wait)
			fputs("    worker (none re-attached yet after the upgrade: requests are held)\n", f);
		else if (!q->nattached)
			fputs("    worker (none attached: requests get 503 AppOffline)\n", f);
	}
	bool wfirst = true;
	list_for_each_safe(p, t, (struct list *)&q->attached)
	{
		const struct attach *a = container_of(p, struct attach, qlink);
		const struct session *s = a->s;
		if (json) {
			fprintf(f, "%s{\"pid\":%d,\"uid\":%u,\"user\":", wfirst ? "" : ",", (int)s->pid,
			        (unsigned)s->uid);
			json_write_string(f, s->user);
			fputs(",\"program\":", f);
			json_write_string(f, s->program);
			fprintf(f, ",\"receives\":%u,\"draining\":%s,\"demand_wait\":%s}", a->receives,
			        a->draining ? "true" : "false", a->demand_wait ? "true" : "false");
		} else {
			fprintf(f, "    worker pid %d (%s, user %s), %u receive%s waiting%s%s\n", (int)s->pid,
			        s->program, s->user, a->receives, a->receives == 1 ? "" : "s",
			        a->draining ? ", draining" : "",
			        a->demand_wait ? ", waiting for demand" : "");
		}
		wfirst = false;
	}
	if (json)
		fputs("]}", f);
}

/* Per event-loop thread: connections held now and accepted so far. */
static void render_threads(FILE *f, bool json)
{
	fputs(json ? "\"threads\":[" : "threads:", f);
	for (unsigned i = 0; i < dm->nthreads; i++) {
		const struct thread *t = &dm->threads[i];
		uint32_t n = atomic_load_explicit(&t->nconns, memory_order_relaxed);
		uint64_t a = atomic_load_explicit(&t->accepted, memory_order_relaxed);
		if (json)
			fprintf(f, "%s{\"connections\":%u,\"accepted\":%llu}", i ? "," : "", n,
			        (unsigned long long)a);
		else
			fprintf(f, " [%u] %u held, %llu accepted%s", i, n, (unsigned long long)a,
			        i + 1 == dm->nthreads ? "\n" : ";");
	}
	fputs(json ? "]," : "", f);
}

char *status_render(bool json, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	uint32_t in_workers = 0, tls = 0, nconns = threads_conns();
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->conns)
	{
		const struct conn *c = container_of(p, struct conn, link);
		in_workers += c->state == CONN_DELIVERED;
		tls += c->tls != NULL;
	}
	/* TLS: of the main thread's connections (handshakes under way on front threads are
	 * counted once their heads reach it) */
	if (json) {
		fprintf(f, "{\"version\":1,\"pid\":%d,\"socket\":", (int)getpid());
		json_write_string(f, dm->socket_path);
		fprintf(f, ",\"connections\":%u,\"connections_in_workers\":%u,\"connections_tls\":%u,",
		        nconns, in_workers, tls);
	} else {
		fprintf(f, "portshared pid %d, socket %s, %u connection%s (%u held by workers, %u TLS)\n",
		        (int)getpid(), dm->socket_path, nconns, nconns == 1 ? "" : "s", in_workers, tls);
	}
	render_threads(f, json);
	render_endpoints(f, json);
	fputs(json ? ",\"queues\":[" : "queues:\n", f);
	bool first = true;
	list_for_each_safe(p, t, &dm->queues)
	{
		render_queue(f, json, container_of(p, struct queue, link), first);
		first = false;
	}
	if (json)
		fputs("]", f);
	else if (first)
		fputs("  (none)\n", f);
	render_settings(f, json);
	if (json)
		fputs("}\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
