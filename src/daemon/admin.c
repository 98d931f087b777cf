/* admin.c: portsharectl's commands (COMMAND messages): URL reservations, queue grants,
 * the listen list, exclusions and certificate bindings (certs.c), changed by admins and
 * kept in the state directory (store.c) before they take effect; and the read-only
 * questions anyone may ask: who is on a port, which queue gets a URL. */
#include "admin.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "acl.h"
#include "addr.h"
#include "certs.h"
#include "daemon-t.h"
#include "json_write.h"
#include "delegate.h"
#include "dispatch.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "portshare.h"
#include "queue.h"
#include "redirect.h"
#include "route.h"
#include "session-t.h"
#include "store.h"
#include "url_prefix.h"

/* One command being carried out: its words, who asked, where its output goes. */
struct cmd {
	const char *words[PS_COMMAND_WORDS];
	int n;
	bool json;
	const struct session *s;
	FILE *out;
	char *err;
	size_t errlen;
};

static int fail(struct cmd *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct cmd *c, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return status;
}

static int need_admin(struct cmd *c)
{
	/* the settings are the new daemon's from the moment it asked for them */
	if (dm->takeover_to)
		return fail(c, PS_ESTATE,
		            "portshared is handing over to a new portshared; run the command again in a "
		            "moment");
	if (c->s->admin)
		return 0;
	return fail(
	    c, PS_EDENIED,
	    "%s %s is for admins (root, portshared's own user, or members of its AdminGroup%s%s); you are "
	    "user %s (uid %u)",
	    c->words[0], c->words[1], dm->cfg.admin_group_set ? " " : "",
	    dm->cfg.admin_group_set ? dm->cfg.admin_group : "", c->s->user, (unsigned)c->s->uid);
}

/* Makes next the settings: written to the state directory first, then in force. On a
 * failed write nothing changes. Takes next (freed on failure). */
static int commit(struct cmd *c, struct settings *next)
{
	char why[1024], back[1024];
	int rc = store_save(dm->state_dir, next, why, sizeof(why));
	if (rc == -2 && store_save(dm->state_dir, &dm->settings, back, sizeof(back)) < 0)
		log_error(
		    "the settings file may now hold a change that was refused (%s), and the old settings "
		    "could not be written back: %s",
		    why, back);
	if (rc < 0) {
		store_free(next);
		log_error("a settings change was refused: %s", why);
		return fail(c, PS_ESYSTEM, "the change is not made: %s", why);
	}
	store_free(&dm->settings);
	dm->settings = *next;
	return 0;
}

static int parse_principals(struct cmd *c, int from, struct principal *who, unsigned *n,
                            struct principal *owner)
{
	*n = 0;
	for (int i = from; i < c->n; i++) {
		if (owner && !strncmp(c->words[i], "owner=", 6)) {
			if (store_parse_principal(c->words[i] + 6, owner) < 0 || owner->kind != 'u')
				return fail(c, PS_EINVAL, "bad owner '%s'", c->words[i] + 6);
			continue;
		}
		if (*n == SETTINGS_PRINCIPALS_MAX)
			return fail(c, PS_EINVAL, "at most %d users and groups", SETTINGS_PRINCIPALS_MAX);
		if (store_parse_principal(c->words[i], &who[*n]) < 0)
			return fail(c, PS_EINVAL, "bad user or group '%s'", c->words[i]);
		(*n)++;
	}
	return 0;
}

static void principals_json(FILE *f, const struct principal *who, unsigned n)
{
	fputs("\"users\":[", f);
	for (unsigned i = 0, first = 1; i < n; i++)
		if (who[i].kind == 'u') {
			fprintf(f, "%s{\"uid\":%u,\"name\":", first ? "" : ",", who[i].id);
			json_write_string(f, who[i].name);
			fputc('}', f);
			first = 0;
		}
	fputs("],\"groups\":[", f);
	for (unsigned i = 0, first = 1; i < n; i++)
		if (who[i].kind == 'g') {
			fprintf(f, "%s{\"gid\":%u,\"name\":", first ? "" : ",", who[i].id);
			json_write_string(f, who[i].name);
			fputc('}', f);
			first = 0;
		}
	fputc(']', f);
}

/* ---------------------------------------------------------------- urlacl */

static struct reservation *reservation_find(struct settings *st, const struct url_prefix *p)
{
	for (size_t i = 0; i < st->nreservations; i++) {
		if (url_prefix_equal(&st->reservations[i].prefix, p))
			return &st->reservations[i];
	}
	return NULL;
}

static int urlacl_show(struct cmd *c)
{
	const struct settings *st = &dm->settings;
	char p[PS_PREFIX_MAX + 300], whom[2048];
	if (c->json)
		fputs("{\"reservations\":[", c->out);
	else if (!st->nreservations)
		fputs("no URL reservations: only admins may register URLs\n", c->out);
	for (size_t i = 0; i < st->nreservations; i++) {
		const struct reservation *r = &st->reservations[i];
		url_prefix_format(&r->prefix, p, sizeof(p));
		if (c->json) {
			fprintf(c->out, "%s{\"prefix\":", i ? "," : "");
			json_write_string(c->out, p);
			fputc(',', c->out);
			principals_json(c->out, r->who, r->nwho);
			fputc('}', c->out);
		} else {
			acl_principals_text(r->who, r->nwho, whom, sizeof(whom));
			fprintf(c->out, "%-40s %s\n", p, whom);
		}
	}
	if (c->json)
		fputs("]}\n", c->out);
	return 0;
}

static int urlacl(struct cmd *c)
{
	const char *verb = c->words[1];
	if (!strcmp(verb, "show"))
		return urlacl_show(c);
	int rc = need_admin(c);
	if (rc || c->n < 3)
		return rc ? rc : fail(c, PS_EINVAL, "urlacl %s needs a URL prefix", verb);
	struct url_prefix p;
	char why[256], text[PS_PREFIX_MAX + 300];
	if (url_prefix_parse(c->words[2], &p, why, sizeof(why)) < 0)
		return fail(c, PS_EINVAL, "%s: %s", c->words[2], why);
	url_prefix_format(&p, text, sizeof(text));
	struct settings next;
	if (store_copy(&dm->settings, &next) < 0)
		return fail(c, PS_ENOMEM, "out of memory");
	struct reservation *r = reservation_find(&next, &p);
	if (!strcmp(verb, "delete")) {
		if (!r) {
			store_free(&next);
			return fail(c, PS_ENOTFOUND,
			            "there is no reservation for %s (portsharectl urlacl show)", text);
		}
		*r = next.reservations[--next.nreservations];
	} else {
		struct reservation add = {.prefix = p};
		if ((rc = parse_principals(c, 3, add.who, &add.nwho, NULL)) || !add.nwho) {
			store_free(&next);
			return rc ? rc : fail(c, PS_EINVAL, "urlacl add needs --user or --group");
		}
		if (r) {
			store_free(&next);
			return fail(c, PS_EEXIST, "there is a reservation for %s already; delete it first",
			            text);
		}
		r = store_slot(&next.reservations, next.nreservations, sizeof(*r));
		if (!r) {
			store_free(&next);
			return fail(c, PS_ELIMIT, "at most %d reservations (or out of memory)",
			            SETTINGS_ENTRIES_MAX);
		}
		*r = add;
		next.nreservations++;
	}
	if ((rc = commit(c, &next)))
		return rc;
	log_info("urlacl %s %s by pid %d (user %s)", verb, text, (int)c->s->pid, c->s->user);
	fprintf(c->out, "%s %s\n", !strcmp(verb, "delete") ? "deleted the reservation for" : "reserved",
	        text);
	if (!strcmp(verb, "delete"))
		fputs("registrations already made under it stay (status marks them)\n", c->out);
	return 0;
}

/* ---------------------------------------------------------------- iplisten, exclude */

/* An address without its port, as the listen list and `who` show it: "::", not "[::]". */
static void addr_text(const struct ps_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family, a->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

static int iplisten_show(struct cmd *c)
{
	const char *src = listener_listen_source();
	struct listener_plan plan[LISTENER_PLAN_MAX];
	unsigned n = listener_plan(0, plan);
	char a[PS_ADDR_TEXT_MAX];
	if (c->json) {
		fprintf(c->out, "{\"source\":\"%s\",\"addresses\":[", src);
		for (unsigned i = 0; i < n; i++) {
			addr_text(&plan[i].addr, a, sizeof(a));
			fprintf(c->out, "%s\"%s\"", i ? "," : "", a);
		}
		fputs("]}\n", c->out);
		return 0;
	}
	fprintf(c->out, "%s\n",
	        !strcmp(src, "state")    ? "listen list (managed with portsharectl iplisten):"
	        : !strcmp(src, "config") ? "listen list (from the config file's listen lines):"
	                                 : "listen list: empty, so every address:");
	for (unsigned i = 0; i < n; i++) {
		addr_text(&plan[i].addr, a, sizeof(a));
		fprintf(c->out, "  %s\n", a);
	}
	return 0;
}

static bool same_addr(const struct ps_addr *a, const struct ps_addr *b, bool port)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, 16) && (!port || a->port == b->port);
}

static int iplisten(struct cmd *c)
{
	const char *verb = c->words[1];
	if (!strcmp(verb, "show"))
		return iplisten_show(c);
	int rc = need_admin(c);
	if (rc || c->n != 3)
		return rc ? rc : fail(c, PS_EINVAL, "iplisten %s takes one address", verb);
	struct ps_addr a;
	if (config_parse_addr(c->words[2], &a) < 0)
		return fail(c, PS_EINVAL, "'%s' is not an IP address (127.0.0.1, ::1)", c->words[2]);
	struct settings next;
	if (store_copy(&dm->settings, &next) < 0)
		return fail(c, PS_ENOMEM, "out of memory");
	bool copied = false;
	if (!next.listen_managed) {
		/* from now on the list lives here; it starts as the config file's */
		next.listen_managed = true;
		memcpy(next.listen, dm->cfg.listen, sizeof(next.listen));
		next.nlisten = dm->cfg.nlisten;
		copied = dm->cfg.nlisten > 0;
	}
	unsigned at = next.nlisten;
	for (unsigned i = 0; i < next.nlisten; i++)
		if (same_addr(&next.listen[i], &a, false))
			at = i;
	if (!strcmp(verb, "add")) {
		if (at < next.nlisten && !copied) {
			store_free(&next);
			return fail(c, PS_EEXIST, "%s is on the listen list already", c->words[2]);
		}
		if (at == next.nlisten) {
			if (next.nlisten == CONFIG_LISTEN_MAX) {
				store_free(&next);
				return fail(c, PS_ELIMIT, "at most %d listen addresses", CONFIG_LISTEN_MAX);
			}
			next.listen[next.nlisten++] = a;
		}
	} else {
		if (at == next.nlisten) {
			store_free(&next);
			return fail(c, PS_ENOTFOUND,
			            "%s is not on the listen list (portsharectl iplisten show)", c->words[2]);
		}
		next.listen[at] = next.listen[--next.nlisten];
	}
	/* a listen list the ports in use cannot be bound on is not taken: the old one is
	 * put back (file and listeners), so no app is left unreachable */
	struct settings old;
	if (store_copy(&dm->settings, &old) < 0) {
		store_free(&next);
		return fail(c, PS_ENOMEM, "out of memory");
	}
	if ((rc = commit(c, &next))) {
		store_free(&old);
		return rc;
	}
	char report[1024];
	if (listener_resync(report, sizeof(report))) {
		char why[1100];
		snprintf(why, sizeof(why), "%s", report);
		rc = commit(c, &old);
		listener_resync(NULL, 0);
		delegate_routes_changed();
		return rc ? rc
		          : fail(c, PS_EPORTINUSE,
		                 "the change is not made, the listen list stays as it was: %s", why);
	}
	store_free(&old);
	log_info("iplisten %s %s by pid %d (user %s)", verb, c->words[2], (int)c->s->pid, c->s->user);
	if (copied)
		fprintf(c->out,
		        "the listen list now lives in the state directory (it started as %s's listen lines, "
		        "which are ignored from now on)\n",
		        dm->cfg.path);
	delegate_routes_changed();
	return iplisten_show(c);
}

static int exclude_show(struct cmd *c)
{
	const struct settings *st = &dm->settings;
	char a[PS_ADDR_TEXT_MAX];
	if (c->json)
		fputs("{\"exclusions\":[", c->out);
	else if (!st->nexclusions)
		fputs("no exclusions\n", c->out);
	for (unsigned i = 0; i < st->nexclusions; i++) {
		addr_format(&st->exclusions[i], a, sizeof(a));
		if (c->json)
			fprintf(c->out, "%s\"%s\"", i ? "," : "", a);
		else
			fprintf(c->out, "%s%s\n", a,
			        addr_is_wildcard(&st->exclusions[i]) ? "  (every address of its family)"
			                                             : "");
	}
	if (c->json)
		fputs("]}\n", c->out);
	return 0;
}

static int exclude(struct cmd *c)
{
	const char *verb = c->words[1];
	if (!strcmp(verb, "show"))
		return exclude_show(c);
	int rc = need_admin(c);
	if (rc || c->n != 3)
		return rc ? rc : fail(c, PS_EINVAL, "exclude %s takes one ADDR:PORT", verb);
	struct ps_addr a;
	if (store_parse_endpoint(c->words[2], &a) < 0)
		return fail(c, PS_EINVAL, "'%s' is not ADDR:PORT (0.0.0.0:80, 127.0.0.1:8080, [::]:80)",
		            c->words[2]);
	struct settings next;
	if (store_copy(&dm->settings, &next) < 0)
		return fail(c, PS_ENOMEM, "out of memory");
	unsigned at = next.nexclusions;
	for (unsigned i = 0; i < next.nexclusions; i++)
		if (same_addr(&next.exclusions[i], &a, true))
			at = i;
	if (!strcmp(verb, "add")) {
		bool exists = at < next.nexclusions; /* store_free zeroes next */
		if (exists || next.nexclusions == SETTINGS_EXCLUSIONS_MAX) {
			store_free(&next);
			return fail(c, exists ? PS_EEXIST : PS_ELIMIT, "%s",
			            exists ? "that endpoint is excluded already" : "too many exclusions");
		}
		next.exclusions[next.nexclusions++] = a;
	} else {
		if (at == next.nexclusions) {
			store_free(&next);
			return fail(c, PS_ENOTFOUND, "%s is not excluded (portsharectl exclude show)",
			            c->words[2]);
		}
		next.exclusions[at] = next.exclusions[--next.nexclusions];
	}
	if ((rc = commit(c, &next)))
		return rc;
	log_info("exclude %s %s by pid %d (user %s)", verb, c->words[2], (int)c->s->pid, c->s->user);
	/* an excluded endpoint is released at once; one no longer excluded is bound, if it can be */
	char report[1024];
	if (listener_resync(report, sizeof(report)))
		fprintf(c->out, "warning: %s\n", report);
	return exclude_show(c);
}

/* ---------------------------------------------------------------- redirect */

static int redirect_show(struct cmd *c)
{
	const struct settings *st = &dm->settings;
	char p[PS_PREFIX_MAX + 300];
	if (c->json)
		fputs("{\"redirects\":[", c->out);
	else if (!st->nredirects)
		fputs("no redirects\n", c->out);
	for (unsigned i = 0; i < st->nredirects; i++) {
		url_prefix_format(&st->redirects[i].from, p, sizeof(p));
		if (c->json) {
			fprintf(c->out, "%s{\"from\":", i ? "," : "");
			json_write_string(c->out, p);
			fprintf(c->out, ",\"to_port\":%u}", (unsigned)st->redirects[i].to_port);
		} else {
			fprintf(c->out, "%s -> https, port %u (below apps' own prefixes)\n", p,
			        (unsigned)st->redirects[i].to_port);
		}
	}
	if (c->json)
		fputs("]}\n", c->out);
	return 0;
}

/* redirect add http://HOST:PORT/PATH/ https[:PORT] | delete PREFIX | show */
static int redirect(struct cmd *c)
{
	const char *verb = c->words[1];
	if (!strcmp(verb, "show"))
		return redirect_show(c);
	int rc = need_admin(c);
	bool add = !strcmp(verb, "add");
	if (rc || c->n != (add ? 4 : 3))
		return rc ? rc
		          : fail(c, PS_EINVAL,
		                 "usage: redirect add http://HOST:PORT/PATH/ https[:PORT] | "
		                 "redirect delete http://HOST:PORT/PATH/ | redirect show");
	struct redirect r = {.to_port = 443};
	char why[256];
	if (url_prefix_parse(c->words[2], &r.from, why, sizeof(why)) < 0)
		return fail(c, PS_EINVAL, "%s", why);
	if (r.from.https)
		return fail(c, PS_EINVAL, "a redirect goes from an http:// prefix to https (not %s)",
		            c->words[2]);
	if (add) {
		const char *to = c->words[3];
		char *end = NULL;
		unsigned long port = 443;
		if (strncmp(to, "https", 5) || (to[5] && to[5] != ':'))
			return fail(c, PS_EINVAL, "the target is https or https:PORT (not '%s')", to);
		if (to[5] == ':')
			port = strtoul(to + 6, &end, 10);
		if ((to[5] == ':' && (!end || *end || end == to + 6)) || port == 0 || port > 65535 ||
		    port == r.from.port)
			return fail(c, PS_EINVAL, "bad https port in '%s' (1 to 65535, not the prefix's own)",
			            to);
		r.to_port = (uint16_t)port;
	}
	struct settings next;
	if (store_copy(&dm->settings, &next) < 0)
		return fail(c, PS_ENOMEM, "out of memory");
	unsigned at = next.nredirects;
	for (unsigned i = 0; i < next.nredirects; i++)
		if (url_prefix_equal(&next.redirects[i].from, &r.from))
			at = i;
	if (add) {
		bool exists = at < next.nredirects;
		if (exists || next.nredirects == SETTINGS_REDIRECTS_MAX) {
			store_free(&next);
			return fail(c, exists ? PS_EEXIST : PS_ELIMIT, "%s",
			            exists ? "that prefix redirects already (delete it first)"
			                   : "too many redirects");
		}
		next.redirects[next.nredirects++] = r;
	} else {
		if (at == next.nredirects) {
			store_free(&next);
			return fail(c, PS_ENOTFOUND, "%s does not redirect (portsharectl redirect show)",
			            c->words[2]);
		}
		next.redirects[at] = next.redirects[--next.nredirects];
	}
	if (redirect_apply(&next) < 0) {
		store_free(&next);
		return fail(c, PS_ENOMEM, "out of memory");
	}
	if ((rc = commit(c, &next))) {
		redirect_apply(&dm->settings);
		return rc;
	}
	log_info("redirect %s %s by pid %d (user %s)", verb, c->words[2], (int)c->s->pid, c->s->user);
	/* its port is listened on from now (or no longer, when nothing else needs it) */
	char report[1024];
	if (listener_resync(report, sizeof(report)))
		fprintf(c->out, "warning: %s\n", report);
	return redirect_show(c);
}

/* ---------------------------------------------------------------- grants */

/* Removes from who (n) every entry listed in drop (nd; none: all). */
static void principals_drop(struct principal *who, unsigned *n, const struct principal *drop, unsigned nd)
{
	unsigned k = 0;
	for (unsigned i = 0; i < *n; i++) {
		bool gone = !nd;
		for (unsigned j = 0; j < nd && !gone; j++)
			gone = who[i].kind == drop[j].kind && who[i].id == drop[j].id;
		if (!gone)
			who[k++] = who[i];
	}
	*n = k;
}

static void principals_merge(struct principal *who, unsigned *n, const struct principal *add, unsigned na)
{
	for (unsigned j = 0; j < na; j++) {
		bool have = false;
		for (unsigned i = 0; i < *n && !have; i++)
			have = who[i].kind == add[j].kind && who[i].id == add[j].id;
		if (!have && *n < SETTINGS_PRINCIPALS_MAX)
			who[(*n)++] = add[j];
	}
}

static int grant_show(struct cmd *c)
{
	char whom[2048];
	bool first = true;
	if (c->json)
		fputs("{\"grants\":[", c->out);
	for (size_t i = 0; i < dm->settings.ngrants; i++) {
		const struct grant *g = &dm->settings.grants[i];
		if (c->json) {
			fprintf(c->out, "%s{\"queue\":", first ? "" : ",");
			json_write_string(c->out, g->queue);
			fprintf(c->out, ",\"owner\":{\"uid\":%u,\"name\":", g->owner.id);
			json_write_string(c->out, g->owner.name);
			fputs("},\"by\":\"admin\",", c->out);
			principals_json(c->out, g->who, g->nwho);
			fputc('}', c->out);
		} else {
			acl_principals_text(g->who, g->nwho, whom, sizeof(whom));
			fprintf(c->out, "queue %s (owner %s): %s (an admin's, kept)\n", g->queue,
			        g->owner.name, whom);
		}
		first = false;
	}
	struct list *p, *t;
	list_for_each_safe(p, t, &dm->queues)
	{
		struct queue *q = container_of(p, struct queue, link);
		if (!q->ngrants)
			continue;
		if (c->json) {
			fprintf(c->out, "%s{\"queue\":", first ? "" : ",");
			json_write_string(c->out, q->name);
			fprintf(c->out, ",\"owner\":{\"uid\":%u,\"name\":", (unsigned)q->uid);
			json_write_string(c->out, q->creator_user);
			fputs("},\"by\":\"owner\",", c->out);
			principals_json(c->out, q->grants, q->ngrants);
			fputc('}', c->out);
		} else {
			acl_principals_text(q->grants, q->ngrants, whom, sizeof(whom));
			fprintf(c->out, "queue %s (owner %s): %s (its owner's, while the queue lives)\n",
			        q->name, q->creator_user, whom);
		}
		first = false;
	}
	if (c->json)
		fputs("]}\n", c->out);
	else if (first)
		fputs("no grants: each queue is joined by its owner's processes and admins only\n", c->out);
	return 0;
}

static int grant(struct cmd *c)
{
	const char *verb = c->words[1];
	if (!strcmp(verb, "show"))
		return grant_show(c);
	if (c->n < 3)
		return fail(c, PS_EINVAL, "grant %s needs a queue name", verb);
	const char *name = c->words[2];
	if (!protocol_queue_name_ok(name))
		return fail(c, PS_EINVAL, "'%s' is not a queue name (1 to %d of A-Z a-z 0-9 . _ -)", name,
		            PS_QUEUE_NAME_MAX);
	struct principal who[SETTINGS_PRINCIPALS_MAX], owner = {0};
	unsigned n;
	int rc = parse_principals(c, 3, who, &n, &owner);
	if (rc)
		return rc;
	struct queue *q = queue_find(name);
	if (!c->s->admin) {
		/* a queue's owner grants for the queue's life */
		if (!q || q->uid != c->s->uid)
			return need_admin(c);
		if (!strcmp(verb, "add"))
			principals_merge(q->grants, &q->ngrants, who, n);
		else
			principals_drop(q->grants, &q->ngrants, who, n);
		fprintf(c->out,
		        "queue %s: granted while it lives (an admin's grant is kept across restarts)\n",
		        name);
		return 0;
	}
	if (!owner.kind) {
		if (!q)
			return fail(c, PS_EINVAL, "queue %s does not exist: name its owner with --owner USER",
			            name);
		owner = (struct principal){.kind = 'u', .id = (uint32_t)q->uid};
		snprintf(owner.name, sizeof(owner.name), "%s", q->creator_user);
	}
	struct settings next;
	if (store_copy(&dm->settings, &next) < 0)
		return fail(c, PS_ENOMEM, "out of memory");
	struct grant *g = NULL;
	for (size_t i = 0; i < next.ngrants; i++)
		if (!strcmp(next.grants[i].queue, name))
			g = &next.grants[i];
	if (!strcmp(verb, "add")) {
		if (!n) {
			store_free(&next);
			return fail(c, PS_EINVAL, "grant add needs --user or --group");
		}
		if (g && g->owner.id != owner.id) {
			store_free(&next);
			return fail(c, PS_EEXIST,
			            "queue name %s is granted for owner %s already; delete that grant first",
			            name, g->owner.name);
		}
		if (!g) {
			g = store_slot(&next.grants, next.ngrants, sizeof(*g));
			if (!g) {
				store_free(&next);
				return fail(c, PS_ELIMIT, "at most %d grants (or out of memory)",
				            SETTINGS_ENTRIES_MAX);
			}
			next.ngrants++;
			snprintf(g->queue, sizeof(g->queue), "%s", name);
			g->owner = owner;
		}
		principals_merge(g->who, &g->nwho, who, n);
	} else {
		if (!g) {
			store_free(&next);
			return fail(c, PS_ENOTFOUND,
			            "queue %s has no admin's grant (portsharectl grant show)", name);
		}
		principals_drop(g->who, &g->nwho, who, n);
		if (!g->nwho)
			*g = next.grants[--next.ngrants];
	}
	if ((rc = commit(c, &next)))
		return rc;
	log_info("grant %s %s by pid %d (user %s)", verb, name, (int)c->s->pid, c->s->user);
	return grant_show(c);
}

/* ---------------------------------------------------------------- sslcert */

/* sslcert add|update KIND ENDPOINT CERT_PATH KEY_PATH CHAIN_PEM KEY_PEM: portsharectl (run
 * by an admin) read the files, which the daemon's user may not be able to (DESIGN §8);
 * update is what sslcert reload sends for a binding that exists. sslcert delete KIND
 * ENDPOINT; sslcert show. */
static int sslcert(struct cmd *c)
{
	const char *verb = c->n >= 2 ? c->words[1] : "";
	if (!strcmp(verb, "show") && c->n == 2) {
		certs_show(c->out, c->json);
		return 0;
	}
	bool add = !strcmp(verb, "add"), update = !strcmp(verb, "update");
	if (!add && !update && strcmp(verb, "delete"))
		return fail(c, PS_EINVAL, "sslcert takes add, delete, show or reload");
	int rc = need_admin(c);
	if (rc)
		return rc;
	if (c->n != ((add || update) ? 8 : 4) ||
	    (strcmp(c->words[2], "hostport") && strcmp(c->words[2], "ipport")))
		return fail(c, PS_EINVAL, "sslcert %s: --hostport NAME:PORT or --ipport ADDR:PORT%s", verb,
		            (add || update) ? ", --cert FILE and --key FILE" : "");
	if (!add && !update)
		rc = certs_delete(c->words[2], c->words[3], c->err, c->errlen);
	else {
		struct certs_add a = {.kind = c->words[2],
		                      .endpoint = c->words[3],
		                      .replace = update,
		                      .src_cert = c->words[4],
		                      .src_key = c->words[5],
		                      .chain = c->words[6],
		                      .chain_len = strlen(c->words[6]),
		                      .key = c->words[7],
		                      .key_len = strlen(c->words[7])};
		char warn[512];
		rc = certs_add(&a, warn, sizeof(warn), c->err, c->errlen);
		if (!rc)
			fputs(warn, c->out);
	}
	if (rc) {
		log_error("sslcert %s %s %s by pid %d (user %s) refused: %s", verb, c->words[2], c->words[3],
		          (int)c->s->pid, c->s->user, c->err);
		return rc;
	}
	log_info("sslcert %s %s %s by pid %d (user %s)", verb, c->words[2], c->words[3], (int)c->s->pid,
	         c->s->user);
	fprintf(c->out, "%s %s %s\n",
	        add      ? "bound"
	        : update ? "reloaded"
	                 : "deleted the binding of",
	        c->words[2], c->words[3]);
	return 0;
}

/* ---------------------------------------------------------------- who, route */

static void workers_json(FILE *f, const struct queue *q)
{
	fputs("\"workers\":[", f);
	bool first = true;
	struct list *p, *t;
	list_for_each_safe(p, t, (struct list *)&q->attached)
	{
		const struct attach *a = container_of(p, struct attach, qlink);
		fprintf(f, "%s{\"pid\":%d,\"program\":", first ? "" : ",", (int)a->s->pid);
		json_write_string(f, a->s->program);
		fputs(",\"user\":", f);
		json_write_string(f, a->s->user);
		fputc('}', f);
		first = false;
	}
	fputc(']', f);
}

struct who_walk {
	FILE *f;
	uint16_t port;
	bool first;
};

static void who_prefix(const struct url_prefix *p, void *owner, void *arg)
{
	struct who_walk *w = arg;
	const struct queue *q = owner;
	if (p->port != w->port)
		return;
	char text[PS_PREFIX_MAX + 300];
	url_prefix_format(p, text, sizeof(text));
	fprintf(w->f, "%s{\"url\":", w->first ? "" : ",");
	json_write_string(w->f, text);
	fputs(",\"queue\":", w->f);
	json_write_string(w->f, q->name);
	fputc(',', w->f);
	workers_json(w->f, q);
	fputc('}', w->f);
	w->first = false;
}

static int who(struct cmd *c)
{
	char *end;
	unsigned long port = c->n == 2 ? strtoul(c->words[1], &end, 10) : 0;
	if (c->n != 2 || *end || port < 1 || port > 65535)
		return fail(c, PS_EINVAL, "who takes a port number");
	struct listener_plan plan[LISTENER_PLAN_MAX];
	unsigned n = listener_plan((uint16_t)port, plan);
	bool needed = route_port_count(dm->routes, (uint16_t)port) > 0 || redirect_on_port((uint16_t)port);
	char a[PS_ADDR_TEXT_MAX];
	fprintf(c->out, "{\"port\":%lu,\"daemon_pid\":%d,\"listen\":{\"source\":\"%s\",\"addresses\":[", port,
	        (int)getpid(), listener_listen_source());
	for (unsigned i = 0; i < n; i++) {
		addr_text(&plan[i].addr, a, sizeof(a));
		fprintf(c->out, "%s\"%s\"", i ? "," : "", a);
	}
	fputs("]},\"endpoints\":[", c->out);
	for (unsigned i = 0; i < n; i++) {
		bool bound = listener_is_bound(&plan[i].addr);
		char why[160];
		listener_why_unbound(&plan[i], needed, why, sizeof(why));
		addr_text(&plan[i].addr, a, sizeof(a));
		fprintf(c->out, "%s{\"address\":\"%s\",\"port\":%lu,\"bound\":%s,\"why\":", i ? "," : "", a,
		        port, bound ? "true" : "false");
		json_write_string(c->out, why);
		fputc('}', c->out);
	}
	fputs("],\"prefixes\":[", c->out);
	struct who_walk w = {c->out, (uint16_t)port, true};
	route_foreach(dm->routes, who_prefix, &w);
	bool tls = route_port_count(dm->routes, (uint16_t)port) && listener_port_tls((uint16_t)port);
	fprintf(c->out, "],\"tls\":%s,\"redirect\":%s,\"bindings\":", tls ? "true" : "false",
	        redirect_on_port((uint16_t)port) ? "true" : "false");
	certs_port_json(c->out, (uint16_t)port);
	fputs("}\n", c->out);
	return 0;
}

static const char *class_name(enum host_class cls)
{
	static const char *const names[] = {"+", "host", "ip", "*"};
	return cls < HOST_CLASS_COUNT ? names[cls] : "?";
}

static int route(struct cmd *c)
{
	if (c->n != 2)
		return fail(c, PS_EINVAL, "route takes a URL (http://HOST:PORT/PATH)");
	/* the URL as a request on a connection to HOST:PORT: prefix syntax, then a head */
	struct url_prefix u;
	char why[256];
	if (url_prefix_parse(c->words[1], &u, why, sizeof(why)) < 0 || u.cls == HOST_STRONG ||
	    u.cls == HOST_WEAK)
		return fail(c, PS_EINVAL, "%s: %s", c->words[1],
		            u.cls == HOST_STRONG || u.cls == HOST_WEAK
		                ? "give a host name or address, not + or *"
		                : why);
	const char *path = strstr(c->words[1] + 7, "/");
	char host[300];
	snprintf(host, sizeof(host), "%s", u.cls == HOST_IP && u.ip.family == AF_INET6 ? "" : u.host);
	if (u.cls == HOST_IP && u.ip.family == AF_INET6)
		snprintf(host, sizeof(host), "[%s]", u.host);
	static char head[PS_PREFIX_MAX + 512];
	int hl = snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path ? path : "/", host);
	static struct http_head h;
	struct http_scan scan;
	struct http_limits hl_lim = HTTP_LIMITS_DEFAULT;
	http_scan_init(&scan);
	const char *url = c->words[1];
	if (hl < 0 || (size_t)hl >= sizeof(head) ||
	    http_head_parse(&scan, head, (uint32_t)hl, &hl_lim, &h) != HTTP_HEAD_DONE)
		return fail(c, PS_EINVAL, "%s: not a request target the daemon would accept", url);
	struct ps_addr local = {0};
	if (u.cls == HOST_IP) {
		local = u.ip;
	} else {
		local.family = AF_INET; /* a host name: any local address; 127.0.0.1 stands for it */
		inet_pton(AF_INET, "127.0.0.1", local.addr);
	}
	local.port = u.port;
	struct canon_limits cl = {dm->cfg.limits.url_segment_max_length,
	                          dm->cfg.limits.url_segment_max_count};
	struct dispatch d = {.buf = head, .h = &h, .local = &local, .port = u.port, .canon = &cl};
	static char cpath[(PS_MSG_MAX / 2) + 2], scratch[sizeof(cpath)];
	dispatch_route(dm->routes, &d, cpath, scratch);
	fputs("{\"url\":", c->out);
	json_write_string(c->out, url);
	if (d.status) {
		fprintf(c->out, ",\"status\":%d,\"reason\":", d.status);
		json_write_string(c->out, d.reason ? d.reason : "");
		fputs("}\n", c->out);
		return 0;
	}
	const struct queue *q = d.owner;
	fputs(",\"status\":0,\"reason\":\"\"", c->out);
	if (d.prefix) {
		char text[PS_PREFIX_MAX + 300];
		url_prefix_format(d.prefix, text, sizeof(text));
		fprintf(c->out, ",\"class\":\"%s\",\"prefix\":", class_name(d.prefix->cls));
		json_write_string(c->out, text);
	}
	fputs(",\"queue\":", c->out);
	json_write_string(c->out, q->name);
	fputc(',', c->out);
	workers_json(c->out, q);
	fputs("}\n", c->out);
	return 0;
}

int admin_settings_load(char *err, size_t errlen)
{
	/* the admins' settings: reservations, grants, listen list, exclusions */
	if (store_load(dm->state_dir, &dm->settings, err, errlen) < 0) {
		log_error("%s (it was written by portshared; restore it from a backup, or remove it to start "
		          "with no settings)",
		          err);
		return -1;
	}
	if (redirect_apply(&dm->settings) < 0) {
		snprintf(err, errlen, "out of memory");
		log_error("redirects: %s", err);
		return -1;
	}
	/* the certificate bindings and the session-ticket key (certs/ of the state directory) */
	if (certs_init(dm->state_dir, err, errlen) < 0) {
		log_error("certificate bindings: %s", err);
		return -1;
	}
	listener_warn_ignored();
	return 0;
}

/* ---------------------------------------------------------------- the switch */

int admin_command(const struct session *s, const struct ps_msg *m, char **out, size_t *outlen, char *err,
                  size_t errlen)
{
	struct cmd c = {.s = s, .json = m->hdr.flags & PS_STATUS_JSON, .err = err, .errlen = errlen};
	for (size_t off = 0; off < m->text_len && c.n < PS_COMMAND_WORDS; off += strlen(m->text + off) + 1)
		c.words[c.n++] = m->text + off;
	*out = NULL;
	*outlen = 0;
	c.out = open_memstream(out, outlen);
	if (!c.out)
		return fail(&c, PS_ENOMEM, "out of memory");
	static const struct {
		const char *name;
		int (*fn)(struct cmd *);
		bool verbs; /* takes add, delete, show */
	} table[] = {{"urlacl", urlacl, true},    {"iplisten", iplisten, true}, {"exclude", exclude, true},
	             {"grant", grant, true},      {"who", who, false},          {"route", route, false},
	             {"sslcert", sslcert, false}, {"redirect", redirect, true}};
	int rc = PS_EINVAL;
	snprintf(err, errlen,
	         "unknown command '%s' (this portshared knows urlacl, iplisten, exclude, grant, redirect, "
	         "who, route, "
	         "sslcert)",
	         c.n ? c.words[0] : "");
	for (size_t i = 0; c.n && i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(c.words[0], table[i].name))
			continue;
		if (table[i].verbs &&
		    (c.n < 2 || (strcmp(c.words[1], "add") && strcmp(c.words[1], "delete") &&
		                 strcmp(c.words[1], "show")))) {
			rc = fail(&c, PS_EINVAL, "%s takes add, delete or show", c.words[0]);
			break;
		}
		err[0] = '\0';
		rc = table[i].fn(&c);
		break;
	}
	if (fclose(c.out) != 0 && !rc)
		rc = fail(&c, PS_ENOMEM, "out of memory");
	if (rc) {
		free(*out);
		*out = NULL;
		*outlen = 0;
	}
	return rc;
}
