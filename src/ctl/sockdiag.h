/* sockdiag.h: the TCP sockets listening on a port, asked of the kernel through sock_diag
 * netlink (as `ss -ltn` does). portsharectl only: the daemon's seccomp filter allows no
 * netlink, and it reads /proc instead (port_owner.h). */
#ifndef PS_CTL_SOCKDIAG_H
#define PS_CTL_SOCKDIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

struct sockdiag_socket {
	struct ps_addr addr; /* the local address and port; family AF_INET or AF_INET6 */
	bool v6only;         /* AF_INET6: false when IPv4 connections come to it too */
	unsigned uid;        /* who created it */
	unsigned long inode;
};

/* Every TCP socket listening on port, IPv4 and IPv6, any address, sorted by family and
 * address. 0 with *n of them in *out, malloc'd (NULL when none; the caller frees it), or
 * -1 with errno set. */
int sockdiag_listeners(uint16_t port, struct sockdiag_socket **out, size_t *n);

#endif
