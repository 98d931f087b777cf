/* log.c: the daemon's log on stderr: events, and the error log (one line per answer
 * the daemon gives itself, with HTTP.sys's reason names). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "daemon.h"

void log_info(const char *fmt, ...)
{
	va_list ap;
	char line[1024];
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "portshared: %s\n", line);
}

const char *addr_format(const struct ps_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (a->family == AF_INET || a->family == AF_INET6)
		inet_ntop(a->family, a->addr, ip, sizeof(ip));
	snprintf(buf, len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, a->port);
	return buf;
}

void log_error_answer(const struct conn *c, int status, const char *reason)
{
	char remote[80], local[80];
	addr_format(&c->remote, remote, sizeof(remote));
	addr_format(&c->local, local, sizeof(local));
	if (status)
		log_info("error-log %s %s %d %s", remote, local, status, reason);
	else
		log_info("error-log %s %s - %s", remote, local, reason);
}
