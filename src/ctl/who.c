/* who.c: portsharectl who PORT|ADDR:PORT|URL: every TCP socket listening on the port
 * (sockdiag.c), the processes holding each (port_owner.c, systemd_socket.c), and what
 * portshared says of the port and of the URL (its commands "who" and "route"). */
#include "who.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "app.h"
#include "json.h"
#include "json_write.h"
#include "port_owner.h"
#include "sockdiag.h"
#include "systemd_socket.h"
#include "url_prefix.h"

#define WHO_HOLDERS_MAX 1024 /* processes looked at; more are counted only */
#define WHO_TEXT_HOLDERS 3   /* processes the text names per socket; --json names all */
#define WHO_EXAMPLES                                                                                         \
	"portsharectl who 80, who 127.0.0.1:8080, who '[::1]:8080' or who http://localhost:8080/app/"

struct who_query {
	const char *arg;              /* as typed */
	char url[PS_PREFIX_MAX + 64]; /* the URL with its port, without query or fragment; "" if none */
	struct ps_addr addr;          /* the port, and the address (family 0: every address) */
};

struct who_holder {
	unsigned long inode;
	pid_t pid;
	struct port_process p;
};

/* What portshared said, or why it said nothing. */
struct who_daemon {
	bool running;
	char error[PS_TEXT_MAX + 160]; /* no answer to "who": why */
	char route_error[PS_TEXT_MAX + 160];
	char *who_text, *route_text; /* its answers (JSON objects), or NULL */
	struct json *who, *route;
};

struct who {
	struct who_query q;
	struct sockdiag_socket *sockets; /* the listeners the query covers */
	size_t n, others;                /* how many, and how many other listeners on the port */
	struct who_holder *holders;
	size_t nholders, holders_total; /* looked at, and found */
	unsigned unreadable;            /* processes whose fds we may not read */
	struct who_daemon d;
	struct json *apps;               /* portshare-apps' apps, or NULL: */
	char apps_error[PATH_MAX + 200]; /* why not */
};

const char *who_help(void)
{
	return "usage: portsharectl who PORT|ADDR:PORT|URL [--json]\n"
	       "  What holds a TCP port on this machine, and which app gets a URL. For every socket\n"
	       "  listening on the port (IPv4 and IPv6, any address) it shows the process holding it:\n"
	       "  pid, program, user and systemd unit; for a socket systemd holds for socket activation,\n"
	       "  the .socket unit and the service it starts. When the holder is portshared, it adds\n"
	       "  every URL prefix on the port with its queue and workers (pid, program, user). ADDR:PORT\n"
	       "  shows only the sockets that take connections to ADDR (or would stop a bind to it).\n"
	       "  For a URL it also says which queue and worker would get it and why (host class,\n"
	       "  longest prefix), or the status portshared would answer itself. For a free port it\n"
	       "  says whether portshared would bind it when an app asks (listen list, exclusions).\n"
	       "  Works without the daemon (then only the sockets). Run it as root to see every\n"
	       "  process: as another user, sockets held by other users' processes show their uid only.\n"
	       "  --json prints one JSON object.\n"
	       "Exit status: 0 something listens on the port, 1 the port is free, 2 an error.\n"
	       "Examples:\n"
	       "  portsharectl who 80\n"
	       "  portsharectl who http://localhost:8080/app/index.html --json\n";
}

/* ---------------------------------------------------------------- the question */

static int who_usage(const char *fmt, const char *arg)
{
	return ctl_usage_error("who", fmt, arg);
}

/* PORT: digits only, 1..65535. 0 or -1. */
static int who_port(const char *s, uint16_t *port)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 5 || atoi(s) < 1 || atoi(s) > 65535)
		return -1;
	*port = (uint16_t)atoi(s);
	return 0;
}

/* http[s]://HOST[:PORT][/PATH]: the port (80 or 443 by default), the address when HOST is
 * one, and the URL as the daemon's route takes it (port given, no query or fragment). */
static int who_parse_url(const char *arg, struct who_query *q)
{
	bool https = !strncasecmp(arg, "https://", 8);
	if (!https && strncasecmp(arg, "http://", 7))
		return who_usage("'%s': a URL starts with http:// or https:// (try: " WHO_EXAMPLES ")", arg);
	const char *auth = arg + (https ? 8 : 7);
	size_t alen = strcspn(auth, "/?#"), hlen = alen;
	const char *colon = memrchr(auth, ':', alen), *bracket = memrchr(auth, ']', alen);
	if (colon && (!bracket || colon > bracket))
		hlen = (size_t)(colon - auth);
	/* the port typed, else the scheme's ("http://host:/" types none either) */
	const char *port = auth + hlen + 1;
	int plen = (int)(alen - hlen) - 1;
	if (plen <= 0) {
		port = https ? "443" : "80";
		plen = (int)strlen(port);
	}
	const char *path = auth + alen;
	int pathlen = (int)strcspn(path, "?#");
	if (pathlen == 0) {
		path = "/";
		pathlen = 1;
	}
	char prefix[sizeof(q->url)], err[256];
	struct url_prefix p;
	int n = snprintf(q->url, sizeof(q->url), "%s://%.*s:%.*s%.*s", https ? "https" : "http", (int)hlen,
	                 auth, plen, port, pathlen, path);
	if (n < 0 || (size_t)n >= sizeof(q->url))
		return who_usage("'%.60s...': the URL is too long", arg);
	/* the host and port checked as a prefix's are ("http://HOST:PORT/") */
	snprintf(prefix, sizeof(prefix), "%s://%.*s:%.*s/", https ? "https" : "http", (int)hlen, auth, plen,
	         port);
	if (url_prefix_parse(prefix, &p, err, sizeof(err)) < 0)
		return ctl_usage_error("who", "'%s': %s (try: " WHO_EXAMPLES ")", arg, err);
	if (p.cls == HOST_STRONG || p.cls == HOST_WEAK)
		return who_usage("'%s': a URL names a host, not + or * (try: http://localhost:8080/app/)",
		                 arg);
	if (p.cls == HOST_IP)
		q->addr = p.ip;
	q->addr.port = p.port;
	return 0;
}

/* ADDR:PORT, with ADDR an IPv4 address, an IPv6 one in brackets, or * for any. */
static int who_parse_endpoint(const char *arg, struct who_query *q)
{
	const char *colon = strrchr(arg, ':');
	if (!colon || strchr(arg, '/'))
		return who_usage("'%s' is not a port, ADDR:PORT or URL (try: " WHO_EXAMPLES ")", arg);
	if (arg[0] != '[' && memchr(arg, ':', (size_t)(colon - arg)))
		return who_usage("'%s': write an IPv6 address in brackets, as in [::1]:8080", arg);
	if (who_port(colon + 1, &q->addr.port) < 0)
		return who_usage("'%s': the port is a number from 1 to 65535", arg);
	if (colon - arg == 1 && arg[0] == '*')
		return 0;
	char host[INET6_ADDRSTRLEN + 2];
	size_t hlen = (size_t)(colon - arg);
	if (hlen >= sizeof(host))
		return who_usage("'%s': ADDR is an IP address: 127.0.0.1, [::1], 0.0.0.0 or [::]", arg);
	memcpy(host, arg, hlen);
	host[hlen] = 0;
	bool v6 = host[0] == '[' && hlen > 2 && host[hlen - 1] == ']';
	if (v6)
		host[hlen - 1] = 0;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, v6 ? host + 1 : host, q->addr.addr) != 1)
		return who_usage(
		    "'%s': ADDR is an IP address: 127.0.0.1, [::1], 0.0.0.0 or [::] (for a host name "
		    "give a URL, as in http://localhost:8080/)",
		    arg);
	q->addr.family = v6 ? AF_INET6 : AF_INET;
	return 0;
}

static int who_parse(int argc, char **argv, struct who_query *q, bool *json)
{
	memset(q, 0, sizeof(*q));
	*json = false;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			*json = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return who_usage("unknown option '%s' (try: portsharectl who --help)", argv[i]);
		else if (q->arg)
			return who_usage("'%s': who takes one PORT, ADDR:PORT or URL (try: " WHO_EXAMPLES ")",
			                 argv[i]);
		else
			q->arg = argv[i];
	}
	if (!q->arg)
		return ctl_usage_error("who", "which port? (try: " WHO_EXAMPLES ")");
	if (strstr(q->arg, "://"))
		return who_parse_url(q->arg, q);
	if (strspn(q->arg, "0123456789") == strlen(q->arg))
		return who_port(q->arg, &q->addr.port) < 0
		           ? who_usage("'%s': the port is a number from 1 to 65535 (try: " WHO_EXAMPLES ")",
		                       q->arg)
		           : 0;
	return who_parse_endpoint(q->arg, q);
}

/* ---------------------------------------------------------------- what we see */

/* Whether s takes connections to the address asked for, or stops a bind to it. */
static bool who_covers(const struct ps_addr *want, const struct sockdiag_socket *s)
{
	const struct ps_addr *a = &s->addr;
	if (!want->family)
		return true;
	if (a->family == want->family)
		return addr_is_wildcard(want) || addr_is_wildcard(a) || !memcmp(a->addr, want->addr, 16);
	/* [::] without IPV6_V6ONLY takes IPv4 connections too */
	return want->family == AF_INET && !s->v6only && addr_is_wildcard(a);
}

static bool who_dual_stack(const struct sockdiag_socket *s)
{
	return s->addr.family == AF_INET6 && !s->v6only && addr_is_wildcard(&s->addr);
}

/* The listening sockets the query covers and the processes holding them. 0, or -1 after
 * saying why. */
static int who_find(struct who *w)
{
	size_t all;
	if (sockdiag_listeners(w->q.addr.port, &w->sockets, &all) < 0) {
		fprintf(stderr,
		        "portsharectl: who: cannot list the listening sockets (sock_diag netlink): %s\n",
		        strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < all; i++)
		if (who_covers(&w->q.addr, &w->sockets[i]))
			w->sockets[w->n++] = w->sockets[i];
	w->others = all - w->n;
	if (!w->n)
		return 0;
	unsigned long *inodes = calloc(w->n, sizeof(*inodes));
	struct port_holder *found = calloc(WHO_HOLDERS_MAX, sizeof(*found));
	w->holders = calloc(WHO_HOLDERS_MAX, sizeof(*w->holders));
	if (!inodes || !found || !w->holders) {
		free(inodes);
		free(found);
		fprintf(stderr, "portsharectl: who: out of memory\n");
		return -1;
	}
	for (size_t i = 0; i < w->n; i++)
		inodes[i] = w->sockets[i].inode;
	w->holders_total = port_owner_holders(inodes, w->n, found, WHO_HOLDERS_MAX, &w->unreadable);
	w->nholders = w->holders_total < WHO_HOLDERS_MAX ? w->holders_total : WHO_HOLDERS_MAX;
	for (size_t i = 0; i < w->nholders; i++) {
		struct who_holder *h = &w->holders[i];
		h->inode = found[i].inode;
		h->pid = found[i].pid;
		if (port_owner_process(h->pid, &h->p) < 0)
			snprintf(h->p.program, sizeof(h->p.program), "(gone)");
	}
	free(inodes);
	free(found);
	return 0;
}

static const char *user_name(unsigned uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", uid);
	return buf;
}

static bool is_systemd(const struct who_holder *h)
{
	return h->pid == 1 && !strcmp(h->p.program, "systemd");
}

/* ---------------------------------------------------------------- what portshared says */

/* Runs a two-word command: the answer, a JSON object (its text in *text), or NULL with why
 * in err. */
static struct json *who_command(struct ctl *c, const char *const words[2], char **text, char *err,
                                size_t errlen)
{
	char *out, why[160];
	int rc = ctl_command(c, true, 2, words, &out);
	if (rc == CTL_FAILED) {
		ctl_close(c);
		snprintf(err, errlen,
		         "it ended the session when asked '%s' (a portshared without that command?)",
		         words[0]);
		return NULL;
	}
	if (rc) {
		snprintf(err, errlen, "%s", out);
		free(out);
		return NULL;
	}
	struct json *j = json_parse(out, why, sizeof(why));
	if (!j || j->type != JSON_OBJECT) {
		snprintf(err, errlen, "its answer to '%s' is not a JSON object (%s)", words[0],
		         j ? "another value" : why);
		json_free(j);
		free(out);
		return NULL;
	}
	for (size_t n = strlen(out); n && (out[n - 1] == '\n' || out[n - 1] == ' '); n--)
		out[n - 1] = 0; /* one line of JSON when it goes into ours */
	*text = out;
	return j;
}

/* Asks portshared, if it runs, about the port and the URL. */
static void who_ask(struct ctl *c, struct who *w)
{
	struct who_daemon *d = &w->d;
	c->quiet = true; /* a stopped daemon is no error here */
	errno = 0;
	if (ctl_open(c) < 0) {
		int e = errno;
		if (e == ENOENT || e == ECONNREFUSED)
			snprintf(d->error, sizeof(d->error),
			         "portshared is not running (nothing answers at %s)", c->socket_path);
		else
			snprintf(d->error, sizeof(d->error), "portshared at %s cannot be asked: %s",
			         c->socket_path, e ? strerror(e) : "see the message above");
		return;
	}
	d->running = true;
	char port[8];
	snprintf(port, sizeof(port), "%u", w->q.addr.port);
	const char *who[2] = {"who", port};
	d->who = who_command(c, who, &d->who_text, d->error, sizeof(d->error));
	if (d->who && w->q.url[0]) {
		const char *route[2] = {"route", w->q.url};
		d->route = who_command(c, route, &d->route_text, d->route_error, sizeof(d->route_error));
	}
}

/* Whether the daemon's address text (with or without brackets) is a's address. */
static bool same_address(const char *text, const struct ps_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 2];
	uint8_t bin[16] = {0};
	size_t n = strlen(text);
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, text, n + 1);
	if (buf[0] == '[' && n > 2 && buf[n - 1] == ']') {
		buf[n - 1] = 0;
		memmove(buf, buf + 1, n - 1);
	}
	return inet_pton(a->family, buf, bin) == 1 && !memcmp(bin, a->addr, 16);
}

/* portshared's pid when it holds s: a holder of that pid or program (another instance
 * is portshared too), or an endpoint it says it has bound (when we may not see its fds);
 * else 0. */
static long who_portshared(const struct who *w, const struct sockdiag_socket *s)
{
	long pid = json_int(json_get(w->d.who, "daemon_pid"), 0);
	for (size_t i = 0; i < w->nholders; i++) {
		const struct who_holder *h = &w->holders[i];
		if (h->inode == s->inode && (h->pid == pid || !strcmp(h->p.program, "portshared")))
			return h->pid;
	}
	if (pid <= 0)
		return 0;
	const struct json *eps = json_get(w->d.who, "endpoints");
	for (size_t i = 0; i < json_count(eps); i++) {
		const struct json *e = json_at(eps, i);
		if (json_true(json_get(e, "bound")) && json_int(json_get(e, "port"), 0) == s->addr.port &&
		    same_address(json_string(json_get(e, "address"), ""), &s->addr))
			return pid;
	}
	return 0;
}

/* Why no process is named for s (none of those we may see holds it). */
static const char *unseen(const struct who *w, const struct sockdiag_socket *s, char *buf, size_t len)
{
	char user[64];
	snprintf(buf, len, "owned by uid %u (%s); %s", s->uid, user_name(s->uid, user, sizeof(user)),
	         w->unreadable ? "run as root to see the process"
	                       : "no process here holds it (one in another PID namespace?)");
	return buf;
}

/* ---------------------------------------------------------------- text */

static void print_process(const struct who_holder *h, const struct sockdiag_socket *s)
{
	char user[64];
	if (is_systemd(h)) {
		struct systemd_socket unit;
		char why[200];
		if (systemd_socket_find(&s->addr, &unit, why, sizeof(why)) == 0)
			printf("pid 1 systemd: socket unit %s%s%s", unit.unit,
			       unit.activates[0] ? ", starts " : "", unit.activates);
		else
			printf("pid 1 systemd (socket activation; the .socket unit is unknown: %s)", why);
		return;
	}
	printf("pid %d %s (user %s", (int)h->pid, h->p.program, user_name(h->p.uid, user, sizeof(user)));
	if (h->p.unit[0])
		printf(", unit %s", h->p.unit);
	putchar(')');
}

static void print_socket(const struct who *w, const struct sockdiag_socket *s, int width)
{
	char a[PS_ADDR_TEXT_MAX + 16], user[64];
	addr_format(&s->addr, a, sizeof(a));
	if (who_dual_stack(s))
		strcat(a, " (+IPv4)");
	printf("%-*s  ", width, a);
	size_t shown = 0, more = 0;
	for (size_t i = 0; i < w->nholders; i++) {
		if (w->holders[i].inode != s->inode)
			continue;
		if (shown == WHO_TEXT_HOLDERS) {
			more++;
			continue;
		}
		if (shown++)
			fputs(", ", stdout);
		print_process(&w->holders[i], s);
	}
	if (more)
		printf(", and %zu more (--json lists all)", more);
	if (!shown) {
		long pid = who_portshared(w, s);
		char why[160];
		if (pid)
			printf("portshared, pid %ld (by its own answer; owned by uid %u (%s))", pid, s->uid,
			       user_name(s->uid, user, sizeof(user)));
		else
			fputs(unseen(w, s, why, sizeof(why)), stdout);
	}
	putchar('\n');
}

static void print_workers(const struct json *workers)
{
	if (!json_count(workers)) {
		fputs("no worker", stdout);
		return;
	}
	/* a process with several sessions on the queue (a proxy's threads) is named once, with
	 * how many */
	bool first = true;
	for (size_t i = 0; i < json_count(workers); i++) {
		long long pid = json_int(json_get(json_at(workers, i), "pid"), 0);
		size_t n = 1, seen = 0;
		for (size_t j = 0; j < json_count(workers); j++) {
			if (json_int(json_get(json_at(workers, j), "pid"), 0) != pid)
				continue;
			seen += j < i;
			n += j > i;
		}
		if (seen)
			continue;
		const struct json *k = json_at(workers, i);
		printf("%spid %lld %s (user %s)", first ? "" : ", ", pid,
		       json_string(json_get(k, "program"), "?"), json_string(json_get(k, "user"), "?"));
		if (n > 1)
			printf(", %zu sessions", n);
		first = false;
	}
}

static const char *listen_source(const char *source)
{
	return !strcmp(source, "default")  ? "the default"
	       : !strcmp(source, "config") ? "from the config file"
	       : !strcmp(source, "state")  ? "set with portsharectl iplisten"
	                                   : source;
}

static bool would_bind(const struct json *e)
{
	const char *why = json_string(json_get(e, "why"), "");
	return json_true(json_get(e, "bound")) || !*why || !strcmp(why, "no prefix needs it");
}

/* portshared's view of the port: listen list, endpoints (bound, or why not), prefixes. */
static void print_daemon(const struct who *w)
{
	const struct json *who = w->d.who;
	const struct json *listen = json_get(who, "listen"), *addrs = json_get(listen, "addresses");
	const struct json *eps = json_get(who, "endpoints"), *prefixes = json_get(who, "prefixes");
	printf("  portshared (pid %lld), listen list", json_int(json_get(who, "daemon_pid"), 0));
	for (size_t i = 0; i < json_count(addrs); i++)
		printf(" %s", json_string(json_at(addrs, i), "?"));
	printf(" (%s)\n", listen_source(json_string(json_get(listen, "source"), "?")));
	if (!json_count(eps))
		printf("  it binds nothing on port %u\n", w->q.addr.port);
	for (size_t i = 0; i < json_count(eps); i++) {
		const struct json *e = json_at(eps, i);
		const char *text = json_string(json_get(e, "address"), "?");
		char where[PS_ADDR_TEXT_MAX];
		snprintf(where, sizeof(where), strchr(text, ':') && text[0] != '[' ? "[%s]:%u" : "%s:%u",
		         text, w->q.addr.port);
		const char *why = json_string(json_get(e, "why"), "");
		if (json_true(json_get(e, "bound")))
			printf("  endpoint %s: bound\n", where);
		else if (!w->n && would_bind(e))
			printf("  endpoint %s: free; bound as soon as an app registers a prefix on port %u\n",
			       where, w->q.addr.port);
		else
			printf("  endpoint %s: not bound: %s\n", where, *why ? why : "(no reason given)");
	}
	for (size_t i = 0; i < json_count(prefixes); i++) {
		const struct json *p = json_at(prefixes, i);
		printf("  %s -> queue %s: ", json_string(json_get(p, "url"), "?"),
		       json_string(json_get(p, "queue"), "?"));
		print_workers(json_get(p, "workers"));
		putchar('\n');
	}
	if (json_true(json_get(who, "tls")))
		printf("  port %u is TLS: portshared does the handshake\n", w->q.addr.port);
	if (json_true(json_get(who, "redirect")))
		printf("  port %u: an admin's redirect to https answers what no app takes (portsharectl "
		       "redirect show)\n",
		       w->q.addr.port);
	const struct json *bindings = json_get(who, "bindings");
	for (size_t i = 0; i < json_count(bindings); i++) {
		const struct json *b = json_at(bindings, i), *names = json_get(b, "names");
		printf("  certificate %s %s: %s", json_string(json_get(b, "kind"), "?"),
		       json_string(json_get(b, "endpoint"), "?"), json_string(json_get(b, "subject"), "?"));
		for (size_t k = 0; k < json_count(names); k++)
			printf("%s%s", k ? ", " : " (", json_string(json_at(names, k), "?"));
		printf("%s, until %s%s\n", json_count(names) ? ")" : "",
		       json_string(json_get(b, "not_after"), "?"),
		       json_true(json_get(b, "loaded")) ? "" : "; NOT LOADED");
	}
}

/* Why a prefix of host class cls took the URL (HTTP.sys's order: +, host name, IP, *). */
static const char *class_words(const char *cls)
{
	return !strcmp(cls, "+")      ? "host +: any host name"
	       : !strcmp(cls, "host") ? "its host name"
	       : !strcmp(cls, "ip")   ? "its IP address"
	       : !strcmp(cls, "*")    ? "host *: no other host matched"
	                              : cls;
}

/* Where portshared would send the URL, and why. */
static void print_route(const struct who *w)
{
	const struct json *r = w->d.route;
	if (!r) {
		printf("  %s: portshared's answer is unavailable: %s\n", w->q.url, w->d.route_error);
		return;
	}
	long long status = json_int(json_get(r, "status"), 0);
	if (status) {
		printf("  %s: portshared answers %lld itself (%s)\n", w->q.url, status,
		       json_string(json_get(r, "reason"), ""));
		return;
	}
	printf("  %s -> queue %s, prefix %s (%s; longest path match): ", w->q.url,
	       json_string(json_get(r, "queue"), "?"), json_string(json_get(r, "prefix"), "?"),
	       class_words(json_string(json_get(r, "class"), "?")));
	print_workers(json_get(r, "workers"));
	putchar('\n');
}

static void who_print_text(const struct who *w)
{
	int width = 0;
	bool portshared = false;
	for (size_t i = 0; i < w->n; i++) {
		char a[PS_ADDR_TEXT_MAX];
		int len = (int)strlen(addr_format(&w->sockets[i].addr, a, sizeof(a))) +
		          (who_dual_stack(&w->sockets[i]) ? 8 : 0);
		width = len > width ? len : width;
		portshared = portshared || who_portshared(w, &w->sockets[i]);
	}
	if (!w->n) {
		char a[PS_ADDR_TEXT_MAX];
		if (w->q.addr.family)
			printf("%s is free: nothing listens on it", addr_format(&w->q.addr, a, sizeof(a)));
		else
			printf("port %u is free: nothing listens on it (IPv4 or IPv6)", w->q.addr.port);
		if (w->others)
			printf("; %zu other socket%s on port %u (portsharectl who %u)", w->others,
			       w->others == 1 ? " listens" : "s listen", w->q.addr.port, w->q.addr.port);
		putchar('\n');
	}
	for (size_t i = 0; i < w->n; i++)
		print_socket(w, &w->sockets[i], width);
	if (w->nholders < w->holders_total)
		printf("  (%zu more processes hold these sockets; only the first %d are shown)\n",
		       w->holders_total - w->nholders, WHO_HOLDERS_MAX);
	const struct json *who = w->d.who;
	/* portshared's part only where it matters: a free port (would it bind it?), a URL, a
	 * socket of its own, or prefixes of its own on a port another program holds */
	bool relevant = !w->n || w->q.url[0] || portshared || json_count(json_get(who, "prefixes"));
	if (!relevant)
		return;
	if (!who) {
		printf("  %s%s\n", w->d.running ? "portshared's answer is unavailable: " : "", w->d.error);
	} else {
		print_daemon(w);
		if (w->q.url[0])
			print_route(w);
	}
	app_print(w->apps, w->apps_error, w->q.addr.port, false, "  ");
}

/* ---------------------------------------------------------------- JSON */

static void json_key_string(const char *key, const char *value)
{
	printf(",\"%s\":", key);
	json_write_string(stdout, value);
}

static void json_socket(const struct who *w, const struct sockdiag_socket *s)
{
	char ip[INET6_ADDRSTRLEN], user[64];
	inet_ntop(s->addr.family, s->addr.addr, ip, sizeof(ip));
	printf("{\"address\":\"%s\",\"port\":%u,\"ipv4_too\":%s,\"inode\":%lu,\"uid\":%u", ip, s->addr.port,
	       who_dual_stack(s) ? "true" : "false", s->inode, s->uid);
	json_key_string("user", user_name(s->uid, user, sizeof(user)));
	long portshared = who_portshared(w, s);
	printf(",\"portshared\":%s,\"processes\":[", portshared ? "true" : "false");
	bool first = true, systemd = false;
	for (size_t i = 0; i < w->nholders; i++) {
		const struct who_holder *h = &w->holders[i];
		if (h->inode != s->inode)
			continue;
		printf("%s{\"pid\":%d", first ? "" : ",", (int)h->pid);
		json_key_string("program", h->p.program);
		printf(",\"uid\":%u", h->p.uid);
		json_key_string("user", user_name(h->p.uid, user, sizeof(user)));
		if (h->p.unit[0])
			json_key_string("unit", h->p.unit);
		else
			fputs(",\"unit\":null", stdout);
		putchar('}');
		first = false;
		systemd = systemd || is_systemd(h);
	}
	putchar(']');
	if (first) {
		char why[160];
		json_key_string("unseen", unseen(w, s, why, sizeof(why)));
	}
	if (systemd) {
		struct systemd_socket unit;
		char why[200];
		fputs(",\"systemd\":{", stdout);
		if (systemd_socket_find(&s->addr, &unit, why, sizeof(why)) == 0) {
			fputs("\"socket_unit\":", stdout);
			json_write_string(stdout, unit.unit);
			json_key_string("activates", unit.activates);
		} else {
			fputs("\"error\":", stdout);
			json_write_string(stdout, why);
		}
		putchar('}');
	}
	putchar('}');
}

static void who_print_json(const struct who *w, const char *socket_path)
{
	char ip[INET6_ADDRSTRLEN];
	printf("{\"query\":");
	json_write_string(stdout, w->q.arg);
	printf(",\"port\":%u,\"address\":", w->q.addr.port);
	if (w->q.addr.family) {
		inet_ntop(w->q.addr.family, w->q.addr.addr, ip, sizeof(ip));
		json_write_string(stdout, ip);
	} else {
		fputs("null", stdout);
	}
	fputs(",\"url\":", stdout);
	if (w->q.url[0])
		json_write_string(stdout, w->q.url);
	else
		fputs("null", stdout);
	printf(",\"held\":%s,\"sockets\":[", w->n ? "true" : "false");
	for (size_t i = 0; i < w->n; i++) {
		if (i)
			putchar(',');
		json_socket(w, &w->sockets[i]);
	}
	printf("],\"other_sockets\":%zu", w->others);
	if (w->nholders < w->holders_total)
		printf(",\"processes_not_listed\":%zu", w->holders_total - w->nholders);
	printf(",\"portshared\":{\"running\":%s", w->d.running ? "true" : "false");
	json_key_string("socket", socket_path);
	if (!w->d.who)
		json_key_string("error", w->d.error);
	else
		printf(",\"who\":%s", w->d.who_text);
	if (w->d.route)
		printf(",\"route\":%s", w->d.route_text);
	else if (w->d.who && w->q.url[0])
		json_key_string("route_error", w->d.route_error);
	putchar('}');
	app_print(w->apps, w->apps_error, w->q.addr.port, true, "");
	fputs("}\n", stdout);
}

int who_run(struct ctl *c, const char *apps_socket, int argc, char **argv)
{
	struct who w = {0};
	bool json;
	int rc = who_parse(argc, argv, &w.q, &json);
	if (rc)
		return rc;
	if (who_find(&w) < 0) {
		rc = 2;
	} else {
		who_ask(c, &w);
		w.apps = app_list(apps_socket, w.apps_error, sizeof(w.apps_error));
		if (json)
			who_print_json(&w, c->socket_path);
		else
			who_print_text(&w);
		rc = w.n ? 0 : 1;
	}
	json_free(w.d.who);
	json_free(w.d.route);
	json_free(w.apps);
	free(w.d.who_text);
	free(w.d.route_text);
	free(w.sockets);
	free(w.holders);
	return rc;
}
