/* ctl.c: portsharectl's session with the daemon: connect, HELLO, and one COMMAND at a
 * time with its output gathered. */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
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

int ctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "portsharectl: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

static int ctl_send(struct ctl *c, struct ps_msg *m)
{
	ssize_t len = protocol_encode(m, buf, sizeof(buf));
	if (len < 0 || transport_send(c->fd, buf, (size_t)len, -1, 0) != len) {
		fprintf(stderr, "portsharectl: cannot send to portshared: %s\n",
		        len < 0 ? "the command is too long" : strerror(errno));
		return -1;
	}
	return 0;
}

/* Receives the next message whose seq is `seq`; -1 on a closed or broken session. */
static int ctl_recv(struct ctl *c, uint32_t seq, struct ps_msg *m)
{
	for (;;) {
		int got_fd;
		bool fd_lost;
		const char *why;
		enum transport_result r = transport_recv(c->fd, buf, 0, false, m, &got_fd, &fd_lost, &why);
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

int ctl_open(struct ctl *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	c->fd = -1;
	if (strlen(c->socket_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "portsharectl: socket path %s is too long\n", c->socket_path);
		return -1;
	}
	strcpy(sa.sun_path, c->socket_path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (!c->quiet)
			fprintf(stderr,
			        "portsharectl: cannot reach portshared at %s: %s (is it running? --socket or "
			        "$%s name another socket)\n",
			        c->socket_path, strerror(errno), PS_SOCKET_ENV);
		ctl_close(c);
		return -1;
	}
	struct ps_msg m = {.hdr = {.type = PS_MSG_HELLO, .seq = ++c->seq}};
	m.u.hello.version = PS_PROTO_VERSION;
	m.u.hello.pid = (uint32_t)getpid();
	snprintf(m.u.hello.program, sizeof(m.u.hello.program), "portsharectl");
	if (ctl_send(c, &m) < 0 || ctl_recv(c, c->seq, &m) < 0) {
		ctl_close(c);
		return -1;
	}
	if (m.u.reply.status) {
		fprintf(stderr, "portsharectl: portshared refused the session: %.*s\n", (int)m.text_len,
		        m.text);
		ctl_close(c);
		return -1;
	}
	return 0;
}

void ctl_close(struct ctl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Appends n bytes to the growing text *out of *len bytes. 0 or -1. */
static int append(char **out, size_t *len, const char *text, size_t n)
{
	char *b = realloc(*out, *len + n + 1);
	if (!b)
		return -1;
	memcpy(b + *len, text, n);
	*len += n;
	b[*len] = '\0';
	*out = b;
	return 0;
}

int ctl_command(struct ctl *c, bool json, int argc, const char *const *argv, char **out)
{
	char words[PS_COMMAND_MAX];
	size_t wlen = 0;
	*out = NULL;
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;
		if (wlen + n > sizeof(words) || i >= PS_COMMAND_WORDS) {
			fprintf(stderr, "portsharectl: the command is too long\n");
			return CTL_FAILED;
		}
		memcpy(words + wlen, argv[i], n);
		wlen += n;
	}
	struct ps_msg m = {
	    .hdr = {.type = PS_MSG_COMMAND, .seq = ++c->seq, .flags = json ? PS_STATUS_JSON : 0}};
	m.text = words;
	m.text_len = wlen;
	if (ctl_send(c, &m) < 0)
		return CTL_FAILED;
	size_t len = 0;
	if (append(out, &len, "", 0) < 0)
		return CTL_FAILED;
	for (;;) {
		if (ctl_recv(c, c->seq, &m) < 0) {
			free(*out);
			*out = NULL;
			return CTL_FAILED;
		}
		if (m.hdr.type == PS_MSG_REPLY) {
			if (m.u.reply.status) { /* the reason replaces any output */
				len = 0;
				(*out)[0] = '\0';
				append(out, &len, m.text, m.text_len);
			}
			return m.u.reply.status;
		}
		if (append(out, &len, m.text, m.text_len) < 0) {
			fprintf(stderr, "portsharectl: out of memory\n");
			free(*out);
			*out = NULL;
			return CTL_FAILED;
		}
	}
}

/* STATUS: the status text in pieces; like ctl_command's output. */
static int ctl_status_flags(struct ctl *c, uint32_t flags, char **out)
{
	struct ps_msg m = {.hdr = {.type = PS_MSG_STATUS, .seq = ++c->seq, .flags = flags}};
	size_t len = 0;
	*out = NULL;
	if (ctl_send(c, &m) < 0 || append(out, &len, "", 0) < 0)
		return -1;
	do {
		if (ctl_recv(c, c->seq, &m) < 0 || append(out, &len, m.text, m.text_len) < 0) {
			free(*out);
			*out = NULL;
			return -1;
		}
	} while (m.hdr.flags & PS_STATUS_MORE);
	return 0;
}

int ctl_status(struct ctl *c, bool json, char **out)
{
	return ctl_status_flags(c, json ? PS_STATUS_JSON : 0, out);
}

int ctl_metrics(struct ctl *c, char **out)
{
	if (ctl_status_flags(c, PS_STATUS_METRICS, out) < 0)
		return -1;
	if (strncmp(*out, "# ", 2) != 0) { /* a daemon from before metrics answers with status */
		fprintf(stderr, "portsharectl: this daemon has no metrics (it is older)\n");
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}
