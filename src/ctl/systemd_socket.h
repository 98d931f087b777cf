/* systemd_socket.h: for a socket systemd (pid 1) holds for socket activation, its .socket
 * unit and the services that unit starts, from `systemctl list-sockets`. */
#ifndef PS_CTL_SYSTEMD_SOCKET_H
#define PS_CTL_SYSTEMD_SOCKET_H

#include <stddef.h>

#include "protocol.h"

struct systemd_socket {
	char unit[256];      /* "nginx.socket" */
	char activates[512]; /* "nginx.service", several separated by ", ", or "" */
};

/* Finds the socket unit listening on a (an exact address match first, else the only unit
 * on its port). systemctl runs once per process; its output is kept for later calls.
 * 0, or -1 with why in why. */
int systemd_socket_find(const struct ps_addr *a, struct systemd_socket *s, char *why, size_t whylen);

#endif
