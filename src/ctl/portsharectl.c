/* portsharectl.c: the admin and diagnostic CLI: parses a command line, resolves user and
 * group names, and has the daemon carry it out over the control socket (ctl.c). */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "apps_wire.h"
#include "ctl.h"
#include "json.h"
#include "portshare.h"
#include "protocol.h"
#include "sslcert.h"
#include "watch.h"
#include "who.h"

#define WORDS_MAX 40
#define WORD_LEN 512

static void usage(FILE *f)
{
	fprintf(f, "usage: portsharectl [--socket PATH] COMMAND [ARGS]   (COMMAND --help for each)\n"
	           "\n"
	           "Seeing what is going on:\n"
	           "  status [--json]                    endpoints (bound or not, and why), URL prefixes ->\n"
	           "                                     queue -> workers, reservations, exclusions\n"
	           "  status --watch [SECONDS] [--count N]   requests/s, errors/s and depth per queue, live\n"
	           "  metrics                            counters and gauges, Prometheus text format\n"
	           "  who PORT|ADDR:PORT|URL [--json]    what holds a port (any program), and which app\n"
	           "                                     gets a URL; works without the daemon\n"
	           "Admin (root, the daemon's user, or a member of its AdminGroup):\n"
	           "  urlacl add PREFIX --user NAME|--group NAME [...]   let users register under PREFIX\n"
	           "  urlacl delete PREFIX\n"
	           "  urlacl show [--json]\n"
	           "  iplisten add ADDR | delete ADDR | show [--json]    the addresses the daemon binds\n"
	           "                                     (none: every address, 0.0.0.0 and ::)\n"
	           "  exclude add ADDR:PORT | delete ADDR:PORT | show [--json]\n"
	           "                                     endpoints the daemon must never bind\n"
	           "  grant add QUEUE --user NAME|--group NAME [...] [--owner USER]\n"
	           "  grant delete QUEUE [--user NAME|--group NAME ...]\n"
	           "  grant show [--json]                who may join a queue besides its owner\n"
	           "  sslcert add --hostport NAME:PORT|--ipport ADDR:PORT --cert FILE --key FILE\n"
	           "  sslcert delete --hostport NAME:PORT|--ipport ADDR:PORT\n"
	           "  sslcert show [--json]              TLS certificate bindings (show: anyone)\n"
	           "  sslcert reload                     read every binding's files again (renewal)\n"
	           "  redirect add http://HOST:PORT/PATH/ https[:PORT] | delete PREFIX | show [--json]\n"
	           "                                     answer 308 to https where no app's prefix matches\n"
	           "Apps (root; over portshare-apps' socket, not the daemon's):\n"
	           "  app add NAME --url PREFIX [...] (--backend URL | [--user U] [--workers N]\n"
	           "          [--idle-timeout S] [--rapid-fail-count N] [--rapid-fail-interval S]\n"
	           "          [--always-running] -- COMMAND [ARG]...)\n"
	           "  app delete|stop|start|restart NAME | show [--json]\n"
	           "                                     proxy queues and apps started on demand\n"
	           "\n"
	           "Options:\n"
	           "  --socket PATH     the daemon's control socket (default: $" PS_SOCKET_ENV
	           ", then " PS_DEFAULT_SOCKET ")\n"
	           "  --apps-socket PATH  portshare-apps' socket (default: " APPS_DEFAULT_SOCKET ")\n"
	           "  -h, --help        this text\n"
	           "\n"
	           "Exit status: 0 on success, 1 when the daemon cannot be reached or refuses, 2 on a usage\n"
	           "error (who: 0 held, 1 free, 2 error).\n");
}

/* ---------------------------------------------------------------- the admin commands */

struct command_help {
	const char *name;
	const char *text;
};

static const struct command_help helps[] = {
    {"status", "usage: portsharectl status [--json]\n"
               "       portsharectl status --watch [SECONDS] [--count N]\n"
               "  What the daemon serves: each endpoint (bound, or why not), each queue with its URL\n"
               "  prefixes, workers (pid, program, user) and counters, the URL reservations and the\n"
               "  exclusions.\n"
               "  --watch: a live view, every SECONDS (default 1; 0.1 to 3600), of each queue's\n"
               "  requests/s (its workers' responses and the daemon's refusals for it), errors/s\n"
               "  (5xx responses and refusals), depth and workers, and a (daemon) row for the\n"
               "  daemon's own answers no queue counts (errors: 4xx and 5xx), each rate from two\n"
               "  successive snapshots. On a terminal the view is redrawn in place, else each one is\n"
               "  printed after the last. It ends on SIGINT (Ctrl-C) or after N views (--count N).\n"},
    {"metrics", "usage: portsharectl metrics\n"
                "  The daemon's counters and gauges in the Prometheus text format (0.0.4): requests\n"
                "  by queue and status class, their time in the worker (a histogram), the daemon's\n"
                "  own answers by reason, queue depth and workers, connections, handoffs, returns,\n"
                "  TLS handshakes, memory and fds. Anyone may read them, as status.\n"},
    {"urlacl",
     "usage: portsharectl urlacl add PREFIX --user NAME|--group NAME [--user NAME|--group NAME ...]\n"
     "       portsharectl urlacl delete PREFIX\n"
     "       portsharectl urlacl show [--json]\n"
     "  A URL reservation (as netsh http add urlacl) lets the users and groups it names register\n"
     "  PREFIX and any prefix below it, on any port (also below 1024). Without one, only admins\n"
     "  may register. PREFIX is http://HOST:PORT/PATH/ with HOST one of + (every host name), a\n"
     "  host name, an IP address, or *. The most specific reservation covering a registration\n"
     "  decides. Deleting a reservation leaves registrations already made (status marks them).\n"
     "  Example: portsharectl urlacl add http://+:80/blog/ --user alice\n"},
    {"iplisten", "usage: portsharectl iplisten add ADDR\n"
                 "       portsharectl iplisten delete ADDR\n"
                 "       portsharectl iplisten show [--json]\n"
                 "  The listen list (as netsh http add iplisten): the addresses portshared binds for\n"
                 "  each port an app needs. Empty: the wildcards 0.0.0.0 and ::. A change rebinds at\n"
                 "  once, keeping registrations and connections. Once changed here, the list lives in\n"
                 "  the state directory and the config file's listen lines are ignored.\n"
                 "  Example: portsharectl iplisten add 127.0.0.2   (keep 127.0.0.1:80 free for another "
                 "server)\n"},
    {"exclude", "usage: portsharectl exclude add ADDR:PORT\n"
                "       portsharectl exclude delete ADDR:PORT\n"
                "       portsharectl exclude show [--json]\n"
                "  An endpoint portshared must never bind, so that another server can have it. ADDR may\n"
                "  be a wildcard (0.0.0.0, [::]). Adding one releases the endpoint at once. A wildcard\n"
                "  cannot be bound while one of its addresses is excluded, so excluding 127.0.0.1:80\n"
                "  leaves port 80 to the addresses the listen list names, if any.\n"
                "  Example: portsharectl exclude add 0.0.0.0:80\n"},
    {"redirect", "usage: portsharectl redirect add http://HOST:PORT/PATH/ https[:PORT]\n"
                 "       portsharectl redirect delete http://HOST:PORT/PATH/\n"
                 "       portsharectl redirect show [--json]\n"
                 "  A port is TLS or plain, never both, so the HTTP -> HTTPS redirect of port 80 is the\n"
                 "  daemon's: a request under the http:// prefix (HOST as in URL prefixes: +, *, a name\n"
                 "  or an address) that no app's own prefix takes gets 308 Permanent Redirect to\n"
                 "  https://HOST[:PORT]/same/target (PORT 443 when not given). Apps' prefixes come\n"
                 "  first, so an ACME client's /.well-known/acme-challenge/ keeps working on port 80.\n"
                 "  The prefix's port is listened on while the redirect exists.\n"
                 "  Example: portsharectl redirect add http://+:80/ https\n"},
    {"grant", "usage: portsharectl grant add QUEUE --user NAME|--group NAME [...] [--owner USER]\n"
              "       portsharectl grant delete QUEUE [--user NAME|--group NAME ...] [--owner USER]\n"
              "       portsharectl grant show [--json]\n"
              "  A queue belongs to the user who created it; a grant lets other users or groups join\n"
              "  it (ps_queue_open). --owner names the queue's owner when the queue does not exist\n"
              "  yet (default: its current owner). Grants are kept by queue name and owner, across\n"
              "  restarts; a queue name granted for one owner cannot be created by another user.\n"
              "  delete without --user or --group removes the whole grant. A queue's owner (not an\n"
              "  admin) may grant its own queue while it lives; such grants are not kept.\n"},
};

static const char *help_of(const char *cmd)
{
	for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
		if (!strcmp(helps[i].name, cmd))
			return helps[i].text;
	return NULL;
}

/* "u:UID:NAME" or "g:GID:NAME" for --user/--group NAME (a number is taken as an id). */
static int principal(const char *cmd, bool group, const char *name, char *out, size_t len)
{
	char *end;
	unsigned long id = strtoul(name, &end, 10);
	if (*name && !*end) {
		snprintf(out, len, "%c:%lu:%s", group ? 'g' : 'u', id, name);
		return 0;
	}
	if (group) {
		struct group *g = getgrnam(name);
		if (!g)
			return ctl_usage_error(cmd, "no such group '%s' (see getent group)", name);
		snprintf(out, len, "g:%u:%s", (unsigned)g->gr_gid, g->gr_name);
	} else {
		struct passwd *p = getpwnam(name);
		if (!p)
			return ctl_usage_error(cmd, "no such user '%s' (see getent passwd)", name);
		snprintf(out, len, "u:%u:%s", (unsigned)p->pw_uid, p->pw_name);
	}
	return 0;
}

/* Runs words on the daemon and prints what it says. */
static int run(struct ctl *c, bool json, int n, char words[][WORD_LEN])
{
	const char *argv[WORDS_MAX];
	for (int i = 0; i < n; i++)
		argv[i] = words[i];
	if (c->fd < 0 && ctl_open(c) < 0)
		return 1;
	char *out;
	int rc = ctl_command(c, json, n, argv, &out);
	if (rc == CTL_FAILED)
		return 1;
	if (rc) {
		fprintf(stderr, "portsharectl: %s\n", out);
		free(out);
		return 1;
	}
	fputs(out, stdout);
	free(out);
	return 0;
}

/* urlacl, iplisten, exclude, grant: VERB and its arguments become the daemon's words;
 * --user/--group become principals, --owner the owner's uid, --json the output form. */
static int cmd_admin(struct ctl *c, const char *cmd, int argc, char **argv)
{
	static char words[WORDS_MAX][WORD_LEN];
	int n = 0;
	bool json = false;
	if (argc < 1)
		return ctl_usage_error(cmd, "which? add, delete or show (try: portsharectl %s --help)", cmd);
	const char *verb = argv[0];
	if (strcmp(verb, "add") && strcmp(verb, "delete") && strcmp(verb, "show"))
		return ctl_usage_error(cmd, "unknown '%s': add, delete or show (try: portsharectl %s --help)",
		                       verb, cmd);
	snprintf(words[n++], WORD_LEN, "%s", cmd);
	snprintf(words[n++], WORD_LEN, "%s", verb);
	int principals = 0, operands = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (n >= WORDS_MAX - 1)
			return ctl_usage_error(cmd, "too many arguments");
		if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--user") || !strcmp(a, "--group") || !strcmp(a, "--owner")) {
			if (i + 1 >= argc)
				return ctl_usage_error(cmd, "%s needs a name", a);
			if (!strcmp(a, "--owner")) {
				if (strcmp(cmd, "grant"))
					return ctl_usage_error(cmd, "--owner is for grant");
				memcpy(words[n], "owner=", 6);
				if (principal(cmd, false, argv[++i], words[n] + 6, WORD_LEN - 6))
					return 2;
				n++;
				continue;
			}
			if (principal(cmd, !strcmp(a, "--group"), argv[++i], words[n], WORD_LEN))
				return 2;
			n++;
			principals++;
		} else if (a[0] == '-' && a[1] == '-') {
			return ctl_usage_error(cmd, "unknown option '%s' (try: portsharectl %s --help)", a,
			                       cmd);
		} else {
			snprintf(words[n++], WORD_LEN, "%s", a);
			operands++;
		}
	}
	bool show = !strcmp(verb, "show");
	if (show && operands)
		return ctl_usage_error(cmd, "show takes no argument but --json");
	bool redirect_add = !strcmp(cmd, "redirect") && !strcmp(verb, "add");
	if (redirect_add && operands != 2)
		return ctl_usage_error(cmd, "redirect add takes an http:// prefix and https or https:PORT");
	if (!show && !redirect_add && operands != 1)
		return ctl_usage_error(cmd, "%s %s takes one %s (try: portsharectl %s --help)", cmd, verb,
		                       !strcmp(cmd, "urlacl")     ? "URL prefix"
		                       : !strcmp(cmd, "iplisten") ? "address"
		                       : !strcmp(cmd, "exclude")  ? "ADDR:PORT"
		                       : !strcmp(cmd, "redirect") ? "URL prefix"
		                                                  : "queue name",
		                       cmd);
	bool needs_principal = !strcmp(verb, "add") && (!strcmp(cmd, "urlacl") || !strcmp(cmd, "grant"));
	if (needs_principal && !principals)
		return ctl_usage_error(cmd, "%s add needs at least one --user NAME or --group NAME", cmd);
	if (principals && strcmp(cmd, "urlacl") && strcmp(cmd, "grant"))
		return ctl_usage_error(cmd, "--user and --group are for urlacl and grant");
	return run(c, json, n, words);
}

/* A positive number, all of text. */
static bool number_arg(const char *text, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(text, &end);
	return *text && !*end && !errno && *out > 0;
}

/* status: the daemon's, then the apps of portshare-apps when its socket answers (root),
 * else one line saying why not; in JSON they go into the daemon's object as "apps". */
static int cmd_status(struct ctl *c, const char *apps_socket, int argc, char **argv)
{
	bool json = false, watch = false;
	double interval = 1, count = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--watch")) {
			watch = true;
			if (i + 1 < argc && argv[i + 1][0] != '-' && !number_arg(argv[++i], &interval))
				return ctl_usage_error(
				    "status", "--watch takes a number of seconds, not '%s'", argv[i]);
		} else if (!strcmp(argv[i], "--count")) {
			if (i + 1 >= argc || !number_arg(argv[++i], &count) || count != (long)count)
				return ctl_usage_error("status", "--count takes a whole number above 0");
		} else {
			return ctl_usage_error(
			    "status", "unknown option '%s' (try: portsharectl status --help)", argv[i]);
		}
	}
	if (watch && json)
		return ctl_usage_error("status", "--watch shows a view for people: no --json with it");
	if (count && !watch)
		return ctl_usage_error("status", "--count is for --watch");
	if (watch)
		return watch_run(c, interval, (long)count);
	char *out, err[PATH_MAX + 200];
	if (ctl_open(c) < 0 || ctl_status(c, json, &out) < 0)
		return 1;
	struct json *apps = app_list(apps_socket, err, sizeof(err));
	char *end = json ? strrchr(out, '}') : NULL;
	if (end) {
		fwrite(out, 1, (size_t)(end - out), stdout);
		app_print(apps, err, 0, true, "");
		fputs("}\n", stdout);
	} else {
		fputs(out, stdout);
		app_print(apps, err, 0, false, "");
	}
	json_free(apps);
	free(out);
	return 0;
}

static int cmd_metrics(struct ctl *c, int argc, char **argv)
{
	if (argc > 0)
		return ctl_usage_error("metrics", "unknown option '%s' (try: portsharectl metrics --help)",
		                       argv[0]);
	char *out;
	if (ctl_open(c) < 0 || ctl_metrics(c, &out) < 0)
		return 1;
	fputs(out, stdout);
	free(out);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", required_argument, 0, 's'},
	                                     {"apps-socket", required_argument, 0, 'a'},
	                                     {"help", no_argument, 0, 'h'},
	                                     {0, 0, 0, 0}};
	const char *apps_socket = APPS_DEFAULT_SOCKET;
	struct ctl c = {.socket_path = getenv(PS_SOCKET_ENV), .fd = -1};
	int o;
	if (!c.socket_path || !*c.socket_path)
		c.socket_path = PS_DEFAULT_SOCKET;
	/* options before the command only; the command parses its own */
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (o == 's')
			c.socket_path = optarg;
		else if (o == 'a')
			apps_socket = optarg;
		else if (o == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	int cargc = argc - optind - 1;
	char **cargv = argv + optind + 1;
	/* an app's command after "--" keeps its own --help */
	for (int i = 0; i < cargc && strcmp(cargv[i], "--"); i++) {
		if (!strcmp(cargv[i], "--help") || !strcmp(cargv[i], "-h")) {
			const char *h = !strcmp(cmd, "who")       ? who_help()
			                : !strcmp(cmd, "sslcert") ? sslcert_help()
			                : !strcmp(cmd, "app")     ? app_help()
			                                          : help_of(cmd);
			if (!h)
				break;
			fputs(h, stdout);
			return 0;
		}
	}
	int rc;
	if (!strcmp(cmd, "status"))
		rc = cmd_status(&c, apps_socket, cargc, cargv);
	else if (!strcmp(cmd, "metrics"))
		rc = cmd_metrics(&c, cargc, cargv);
	else if (!strcmp(cmd, "who"))
		rc = who_run(&c, apps_socket, cargc, cargv);
	else if (!strcmp(cmd, "sslcert"))
		rc = sslcert_run(&c, cargc, cargv);
	else if (!strcmp(cmd, "app"))
		rc = app_run(apps_socket, cargc, cargv);
	else if (help_of(cmd))
		rc = cmd_admin(&c, cmd, cargc, cargv);
	else {
		fprintf(stderr, "portsharectl: unknown command '%s' (try: portsharectl --help)\n", cmd);
		return 2;
	}
	ctl_close(&c);
	return rc;
}
