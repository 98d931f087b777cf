/* who.h: portsharectl who: what holds a port on this machine, and which app gets a URL. */
#ifndef PS_CTL_WHO_H
#define PS_CTL_WHO_H

#include "ctl.h"

/* The command's --help text. */
const char *who_help(void);
/* portsharectl who ARGS; c is not open yet (the daemon may be down); the apps of
 * portshare-apps on the port are asked at apps_socket. The exit status: 0 the port is
 * held, 1 it is free, 2 an error. */
int who_run(struct ctl *c, const char *apps_socket, int argc, char **argv);

#endif
