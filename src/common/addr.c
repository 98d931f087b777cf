/* addr.c: the wire's address (struct ps_addr) to and from struct sockaddr, and as text. */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

socklen_t addr_to_sockaddr(const struct ps_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(a->port);
		memcpy(&in->sin_addr, a->addr, 4);
		return sizeof(*in);
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a->port);
		in6->sin6_scope_id = a->scope_id;
		memcpy(&in6->sin6_addr, a->addr, 16);
		return sizeof(*in6);
	}
	return 0;
}

void addr_from_sockaddr(const struct sockaddr_storage *ss, struct ps_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		a->family = AF_INET;
		a->port = ntohs(in->sin_port);
		memcpy(a->addr, &in->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		a->family = AF_INET6;
		a->port = ntohs(in6->sin6_port);
		a->scope_id = in6->sin6_scope_id;
		memcpy(a->addr, &in6->sin6_addr, 16);
	}
}

const char *addr_format(const struct ps_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (a->family == AF_INET || a->family == AF_INET6)
		inet_ntop(a->family, a->addr, ip, sizeof(ip));
	snprintf(buf, len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, a->port);
	return buf;
}

bool addr_is_wildcard(const struct ps_addr *a)
{
	static const uint8_t zero[16];
	return !memcmp(a->addr, zero, a->family == AF_INET ? 4 : 16);
}
