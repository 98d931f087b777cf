/* url_prefix.h: parses and prints URL prefixes "http://HOST:PORT/PATH/" (DESIGN §3). */
#ifndef PS_URL_PREFIX_H
#define PS_URL_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* Host classes in the order routing tries them (HTTP.sys's order). */
enum host_class {
	HOST_STRONG = 0, /* "+": every host name on the port */
	HOST_NAME = 1,   /* an explicit host name, case-insensitive */
	HOST_IP = 2,     /* an IP literal: any host name, connections to that local address */
	HOST_WEAK = 3,   /* "*": any host name, any local address */
	HOST_CLASS_COUNT
};

struct url_prefix {
	bool https;
	enum host_class cls;
	char host[256];    /* lower case name; for HOST_IP the address as inet_ntop prints it */
	struct ps_addr ip; /* HOST_IP only (port 0) */
	uint16_t port;
	char path[PS_PREFIX_MAX + 1]; /* canonical, starts and ends with '/' */
};

/* Returns 0, or -1 with a message in err ("port is required", ...). */
int url_prefix_parse(const char *s, struct url_prefix *p, char *err, size_t errlen);
/* The same prefix (scheme, host class and host, port, path). */
bool url_prefix_equal(const struct url_prefix *a, const struct url_prefix *b);
/* "http://+:8080/a/" form; returns snprintf's count */
int url_prefix_format(const struct url_prefix *p, char *buf, size_t len);

#endif
