/* app.c: portsharectl app add|delete|show|stop|start|restart: checks the words, sends them
 * to portshare-apps as one message and prints its answer (apps_wire.h says what crosses);
 * and the apps' part of status and who, asked the same way. */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "apps_wire.h"
#include "ctl.h"

const char *app_help(void)
{
	return "usage: portsharectl app add NAME --url PREFIX [--url PREFIX ...]\n"
	       "           (--backend http://127.0.0.1:PORT|unix:/PATH [--strip-prefix]\n"
	       "            | [--user USER | --allow-root] [--workers N] [--idle-timeout S]\n"
	       "              [--always-running] [--strip-prefix] -- COMMAND [ARG ...])\n"
	       "           [--rapid-fail-count N] [--rapid-fail-interval S]\n"
	       "       portsharectl app delete NAME\n"
	       "       portsharectl app stop|start|restart NAME\n"
	       "       portsharectl app show [--json]\n"
	       "  Apps of the portshare-apps supervisor (root only: its socket is 0600 root).\n"
	       "  --backend URL      a proxy queue in front of an app someone else runs\n"
	       "  COMMAND ARG...     started with {port} in its arguments and $PORT set to a\n"
	       "                     loopback port (or {socket} to a private unix socket),\n"
	       "                     on the first request (or at once with\n"
	       "                     --always-running), as USER (root only with --allow-root)\n"
	       "  --allow-root       let COMMAND run as root (without --user)\n"
	       "  --workers N        requests forwarded at once, at most (default 64)\n"
	       "  --idle-timeout S   stop the command after S seconds without a request\n"
	       "                     (default 1200)\n"
	       "  --rapid-fail-count N, --rapid-fail-interval S\n"
	       "                     N crashes within S seconds and the app is failed: not\n"
	       "                     started again, its URLs answer 503 until app start\n"
	       "                     (default 5 in 300; N 0: never)\n"
	       "  stop NAME          stop the command; its URLs answer 503 until app start\n"
	       "  start NAME         a stopped or failed app serves again (started on demand)\n"
	       "  restart NAME       a new process on a new port; requests go to it once it\n"
	       "                     accepts, the old one stops when its requests are done\n"
	       "  --apps-socket PATH before app: the supervisor's socket\n"
	       "                     (default " APPS_DEFAULT_SOCKET ")\n";
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
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(apps_socket) >= sizeof(sa.sun_path))
		return ctl_usage_error("app", "socket path too long: %s", apps_socket);
	strcpy(sa.sun_path, apps_socket);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		fprintf(stderr, "portsharectl: cannot reach portshare-apps at %s: %s%s\n", apps_socket,
		        strerror(e),
		        e == EACCES ? " (only root may manage apps)"
		                    : " (is portshare-apps running? --apps-socket PATH)");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	struct timeval tv = {30, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = send(fd, msg, len, MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		n = recv(fd, msg, sizeof(msg) - 1, 0);
	close(fd);
	if (n <= 0) {
		fprintf(stderr, "portsharectl: no answer from portshare-apps at %s: %s\n", apps_socket,
		        n < 0 ? strerror(errno) : "it closed the connection");
		return 1;
	}
	msg[n] = '\0';
	if (msg[0] != '0') {
		fprintf(stderr, "portsharectl: app %s: %s", verb, msg + 1);
		return 1;
	}
	fputs(msg + 1, stdout);
	return 0;
}
