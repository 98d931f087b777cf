/* launch.c: what starting an unmodified app needs, for portshare-run and portshare-apps. */
#include "launch.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int launch_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

char *launch_substitute(const char *arg, const char *port, const char *sock)
{
	size_t cap = strlen(arg) + 1, len = 0;
	for (const char *p = arg; (p = strchr(p, '{')) != NULL; p++)
		cap += strlen(port) + strlen(sock);
	char *out = malloc(cap);
	if (!out)
		return NULL;
	for (const char *p = arg; *p;) {
		const char *with = NULL;
		size_t skip = 0;
		if (strncmp(p, "{port}", 6) == 0)
			with = port, skip = 6;
		else if (strncmp(p, "{socket}", 8) == 0)
			with = sock, skip = 8;
		if (with) {
			memcpy(out + len, with, strlen(with));
			len += strlen(with);
			p += skip;
		} else {
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	return out;
}

bool launch_accepts(const struct backend_addr *a)
{
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0;
	close(fd);
	return ok;
}
