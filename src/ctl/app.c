/* app.c: portsharectl app add|delete|show|stop|start|restart: checks the words, sends them
 * to portshare-apps as one message and prints its answer (apps_wire.h says what crosses);
 * and the apps' part of status and who, asked the same way. */
#include "app.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "apps_wire.h"
#include "ctl.h"
#include "json.h"
#include "json_write.h"
#include "url_prefix.h"

const char *app_help(void)
{
	return "usage: portsharectl app add NAME --url PREFIX [--url PREFIX ...]\n"
	       "           (--backend http://127.0.0.1:PORT|unix:/PATH [--strip-prefix] [--workers N]\n"
	       "            | [--user USER | --allow-root] [--workers N] [--idle-timeout S]\n"
	       "              [--rapid-fail-count N] [--rapid-fail-interval S]\n"
	       "              [--always-running] [--strip-prefix] [--port-env]\n"
	       "              -- COMMAND [ARG ...])\n"
	       "       portsharectl app delete NAME\n"
	       "       portsharectl app stop|start|restart NAME\n"
	       "       portsharectl app show [--json]\n"
	       "  Apps of the portshare-apps supervisor (root only: its socket is 0600 root).\n"
	       "  --backend URL      a proxy queue in front of an app someone else runs\n"
	       "  COMMAND ARG...     started on the first request (or at once with\n"
	       "                     --always-running), as USER (root only with --allow-root).\n"
	       "                     An HTTP app has {port} in its arguments (or $PORT in a\n"
	       "                     shell line, or --port-env) and gets a loopback port in\n"
	       "                     {port} and $PORT, or {socket}, a private unix socket,\n"
	       "                     behind a proxy; any other command is a libportshare app:\n"
	       "                     it gets $PORTSHARE_QUEUE and $PORTSHARE_SOCKET and joins\n"
	       "                     the app's queue itself\n"
	       "  --port-env         an HTTP app that reads $PORT only (no {port} argument)\n"
	       "  --allow-root       let COMMAND run as root (without --user)\n"
	       "  --workers N        N processes of COMMAND (default 1, at most 16), each\n"
	       "                     restarted on its own, all stopped and restarted\n"
	       "                     together: a libportshare app's on its queue, an HTTP\n"
	       "                     app's each on a port of its own behind the proxy (each\n"
	       "                     request to the one with the fewest in progress); with\n"
	       "                     --backend: requests forwarded at once (default 64)\n"
	       "  --idle-timeout S   stop the command after S seconds without a request\n"
	       "                     (default 1200)\n"
	       "  --rapid-fail-count N, --rapid-fail-interval S\n"
	       "                     N crashes within S seconds and the app is failed: not\n"
	       "                     started again, its URLs answer 503 until app start\n"
	       "                     (default 5 in 300; N 0: never)\n"
	       "  stop NAME          stop the command; its URLs answer 503 until app start\n"
	       "  start NAME         a stopped or failed app serves again (started on demand)\n"
	       "  restart NAME       a new set of --workers processes (an HTTP app's on new\n"
	       "                     ports); requests go to it once all accept (a\n"
	       "                     libportshare app: once all have joined the queue), the\n"
	       "                     old ones stop when their requests are done\n"
	       "  --apps-socket PATH before app: the supervisor's socket\n"
	       "                     (default " APPS_DEFAULT_SOCKET ")\n";
}

/* Sends msg (len bytes of NUL-ended words) to portshare-apps and puts its answer in msg,
 * NUL-ended ('0' or '1', then text), waiting wait_s seconds at most: 0, or -1 with why in
 * err, one line for a person. */
static int app_ask(const char *apps_socket, char msg[APPS_MSG_MAX], size_t len, int wait_s, char *err,
                   size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(apps_socket) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", apps_socket);
		return -1;
	}
	strcpy(sa.sun_path, apps_socket);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot reach portshare-apps at %s: %s%s", apps_socket, strerror(e),
		         e == EACCES ? " (only root may manage apps)"
		                     : " (is portshare-apps running? --apps-socket PATH)");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct timeval tv = {wait_s, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = send(fd, msg, len, MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		n = recv(fd, msg, APPS_MSG_MAX - 1, 0);
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "no answer from portshare-apps at %s: %s", apps_socket,
		         n < 0 ? strerror(errno) : "it closed the connection");
		return -1;
	}
	msg[n] = '\0';
	return 0;
}

int app_run(const char *apps_socket, int argc, char **argv)
{
	if (argc < 1)
		return ctl_usage_error("app", "which? add, delete, show, stop, start or restart (try: "
		                              "portsharectl app --help)");
	const char *verb = argv[0];
	if (!strcmp(verb, "show")) {
		if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json")))
			return ctl_usage_error("app", "show takes no argument but --json");
	} else if (!strcmp(verb, "delete") || !strcmp(verb, "stop") || !strcmp(verb, "start") ||
	           !strcmp(verb, "restart")) {
		if (argc != 2)
			return ctl_usage_error("app", "app %s takes one app name", verb);
	} else if (!strcmp(verb, "add")) {
		if (argc < 4)
			return ctl_usage_error("app", "app add needs a name, --url PREFIX and --backend URL "
			                              "or -- COMMAND (try: portsharectl app --help)");
	} else {
		return ctl_usage_error("app", "unknown '%s': add, delete, show, stop, start or restart",
		                       verb);
	}
	static char msg[APPS_MSG_MAX];
	size_t len = 0;
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;
		if (len + n > sizeof(msg))
			return ctl_usage_error("app", "the command line is longer than %d bytes",
			                       APPS_MSG_MAX);
		memcpy(msg + len, argv[i], n);
		len += n;
	}
	char err[PATH_MAX + 160];
	if (app_ask(apps_socket, msg, len, 30, err, sizeof(err)) < 0) {
		fprintf(stderr, "portsharectl: %s\n", err);
		return 1;
	}
	if (msg[0] != '0') {
		fprintf(stderr, "portsharectl: app %s: %s", verb, msg + 1);
		return 1;
	}
	fputs(msg + 1, stdout);
	return 0;
}

struct json *app_list(const char *apps_socket, char *err, size_t errlen)
{
	static char msg[APPS_MSG_MAX];
	static const char show[] = "show\0--json";
	memcpy(msg, show, sizeof(show));
	/* a stuck supervisor must not hold status and who up for long */
	if (app_ask(apps_socket, msg, sizeof(show), 3, err, errlen) < 0)
		return NULL;
	char why[160];
	struct json *j = msg[0] == '0' ? json_parse(msg + 1, why, sizeof(why)) : NULL;
	if (!j || json_get(j, "apps") == NULL) {
		snprintf(err, errlen, "portshare-apps at %s gave no list of apps: %.200s", apps_socket,
		         msg[0] == '0' ? (j ? "no \"apps\"" : why) : msg + 1);
		json_free(j);
		return NULL;
	}
	return j;
}

/* Whether one of the app's URL prefixes is on port (0: any). */
static bool app_on_port(const struct json *app, unsigned port)
{
	const struct json *urls = json_get(app, "urls");
	for (size_t i = 0; i < json_count(urls); i++) {
		struct url_prefix p;
		char err[256];
		if (!port ||
		    (url_prefix_parse(json_string(json_at(urls, i), ""), &p, err, sizeof(err)) == 0 &&
		     p.port == port))
			return true;
	}
	return false;
}

void app_print(const struct json *list, const char *err, unsigned port, bool json, const char *indent)
{
	const struct json *apps = json_get(list, "apps");
	if (json) {
		fputs(",\"apps\":", stdout);
		if (!list) {
			fputs("null,\"apps_error\":", stdout);
			json_write_string(stdout, err);
			return;
		}
		putchar('[');
		for (size_t i = 0, n = 0; i < json_count(apps); i++) {
			const struct json *a = json_at(apps, i), *pids = json_get(a, "pids"),
			                  *urls = json_get(a, "urls");
			if (!app_on_port(a, port))
				continue;
			static const char *const keys[] = {"name", "queue", "state", "backend"};
			for (size_t k = 0; k < 4; k++) {
				printf(k ? ",\"%s\":" : "%s{\"%s\":", k ? keys[k] : n++ ? "," : "", keys[k]);
				json_write_string(stdout, json_string(json_get(a, keys[k]), ""));
			}
			fputs(",\"pids\":[", stdout);
			for (size_t k = 0; k < json_count(pids); k++)
				printf("%s%lld", k ? "," : "", json_int(json_at(pids, k), 0));
			fputs("],\"urls\":[", stdout);
			for (size_t k = 0; k < json_count(urls); k++) {
				if (k)
					putchar(',');
				json_write_string(stdout, json_string(json_at(urls, k), ""));
			}
			fputs("]}", stdout);
		}
		putchar(']');
		return;
	}
	if (!list) {
		printf("%sapps: %s\n", indent, err);
		return;
	}
	size_t shown = 0;
	for (size_t i = 0; i < json_count(apps); i++) {
		const struct json *a = json_at(apps, i), *pids = json_get(a, "pids"),
		                  *urls = json_get(a, "urls");
		if (!app_on_port(a, port))
			continue;
		if (!shown++ && !port)
			printf("%sapps (portshare-apps):\n", indent);
		printf("%s%sapp %s (queue %s): %s, backend %s", indent, port ? "" : "  ",
		       json_string(json_get(a, "name"), "?"), json_string(json_get(a, "queue"), "?"),
		       json_string(json_get(a, "state"), "?"), json_string(json_get(a, "backend"), "?"));
		for (size_t k = 0; k < json_count(pids); k++)
			printf("%s%lld",
			       k                      ? ", "
			       : json_count(pids) > 1 ? ", pids "
			                              : ", pid ",
			       json_int(json_at(pids, k), 0));
		if (!port)
			for (size_t k = 0; k < json_count(urls); k++)
				printf(" %s", json_string(json_at(urls, k), "?"));
		putchar('\n');
	}
	if (!shown && !port)
		printf("%sapps (portshare-apps): none\n", indent);
}
