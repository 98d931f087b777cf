/* addr.h: the wire's address (struct ps_addr, protocol.h) to and from the socket API's,
 * and as text; one place for the daemon, the library and portsharectl. */
#ifndef PS_ADDR_H
#define PS_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "protocol.h"

/* Room for the longest addr_format() text: "[" INET6_ADDRSTRLEN "]:65535". */
#define PS_ADDR_TEXT_MAX 64

/* Fills ss from a (AF_INET or AF_INET6) and returns its length; 0 for another family. */
socklen_t addr_to_sockaddr(const struct ps_addr *a, struct sockaddr_storage *ss);
/* Fills a from ss; a is all zero for a family other than AF_INET and AF_INET6. */
void addr_from_sockaddr(const struct sockaddr_storage *ss, struct ps_addr *a);
/* "1.2.3.4:80" or "[::1]:80" into buf; returns buf. */
const char *addr_format(const struct ps_addr *a, char *buf, size_t len);
/* 0.0.0.0 or ::, by a's family. */
bool addr_is_wildcard(const struct ps_addr *a);

#endif
