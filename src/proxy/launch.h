/* launch.h: what starting an unmodified app needs (portshare-run, portshare-apps): a free
 * loopback port, {port}/{socket} put into its arguments, and whether it accepts yet. */
#ifndef PS_PROXY_LAUNCH_H
#define PS_PROXY_LAUNCH_H

#include <stdbool.h>

#include "backend.h"

/* A port nothing uses on 127.0.0.1 right now (the kernel's choice); -1 with errno. */
int launch_free_port(void);
/* arg with every {port} and {socket} replaced: a new string, NULL when out of memory. */
char *launch_substitute(const char *arg, const char *port, const char *sock);
/* Whether the app accepts connections on its address now. */
bool launch_accepts(const struct backend_addr *a);

#endif
