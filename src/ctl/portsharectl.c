/* portsharectl.c: the admin and diagnostic CLI; talks to portshared's control socket. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "portshare.h"
#include "protocol.h"
#include "transport.h"

static char buf[PS_MSG_MAX];

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: portsharectl [--socket PATH] COMMAND [OPTIONS]\n"
	        "\n"
	        "Commands:\n"
	        "  status [--json]   endpoints (bound or not), URL prefixes -> queue -> worker processes,\n"
	        "                    queue depth and requests served\n"
	        "\n"
	        "Options:\n"
	        "  --socket PATH     the daemon's control socket (default: $" PS_SOCKET_ENV
	        ", then " PS_DEFAULT_SOCKET ")\n"
	        "  -h, --help        this text\n"
	        "\n"
	        "Exit status: 0 on success, 1 when the daemon cannot be reached or refuses, 2 on a usage "
	        "error.\n");
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "portsharectl: socket path %s is too long\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr,
		        "portsharectl: cannot reach portshared at %s: %s (is it running? --socket or $%s "
		        "name another socket)\n",
		        path, strerror(errno), PS_SOCKET_ENV);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int ctl_send(int fd, struct ps_msg *m)
{
	ssize_t len = protocol_encode(m, buf, sizeof(buf));
	if (len < 0 || transport_send(fd, buf, (size_t)len, -1, 0) != len) {
		fprintf(stderr, "portsharectl: cannot send to portshared: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* Receives the next message whose seq is `seq`; -1 on a closed or broken session. */
static int ctl_recv(int fd, uint32_t seq, struct ps_msg *m)
{
	for (;;) {
		int got_fd;
		bool fd_lost;
		const char *why;
		enum transport_result r = transport_recv(fd, buf, 0, false, m, &got_fd, &fd_lost, &why);
		if (r != TRANSPORT_MSG) {
			fprintf(stderr, "portsharectl: portshared ended the session (%s)\n",
			        r == TRANSPORT_ERROR ? strerror(errno)
			        : r == TRANSPORT_BAD ? why
			                             : "closed");
			return -1;
		}
		if (m->hdr.seq == seq && (m->hdr.type == PS_MSG_REPLY || m->hdr.type == PS_MSG_STATUS_DATA))
			return 0;
	}
}

static int ctl_hello(int fd)
{
	struct ps_msg m = {.hdr = {.type = PS_MSG_HELLO, .seq = 1}};
	m.u.hello.version = PS_PROTO_VERSION;
	m.u.hello.pid = (uint32_t)getpid();
	snprintf(m.u.hello.program, sizeof(m.u.hello.program), "portsharectl");
	if (ctl_send(fd, &m) < 0 || ctl_recv(fd, 1, &m) < 0)
		return -1;
	if (m.u.reply.status) {
		fprintf(stderr, "portsharectl: portshared refused the session: %.*s\n", (int)m.text_len,
		        m.text);
		return -1;
	}
	return 0;
}

static int cmd_status(int fd, int argc, char **argv)
{
	bool json = false;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else {
			fprintf(stderr, "portsharectl: status: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	struct ps_msg m = {.hdr = {.type = PS_MSG_STATUS, .seq = 2, .flags = json ? PS_STATUS_JSON : 0}};
	if (ctl_send(fd, &m) < 0)
		return 1;
	do {
		if (ctl_recv(fd, 2, &m) < 0)
			return 1;
		fwrite(m.text, 1, m.text_len, stdout);
	} while (m.hdr.flags & PS_STATUS_MORE);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	const char *path = getenv(PS_SOCKET_ENV);
	int o;
	if (!path || !*path)
		path = PS_DEFAULT_SOCKET;
	/* options before the command only; the command parses its own */
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (o == 's')
			path = optarg;
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
	if (strcmp(cmd, "status")) {
		fprintf(stderr, "portsharectl: unknown command '%s' (try --help)\n", cmd);
		return 2;
	}
	int fd = ctl_connect(path);
	if (fd < 0 || ctl_hello(fd) < 0)
		return 1;
	int rc = cmd_status(fd, argc - optind - 1, argv + optind + 1);
	close(fd);
	return rc;
}
