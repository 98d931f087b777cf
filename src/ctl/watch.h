/* watch.h: portsharectl status --watch, a live view of requests/s, errors/s and depth per
 * queue. */
#ifndef PS_CTL_WATCH_H
#define PS_CTL_WATCH_H

#include "ctl.h"

/* Prints a view every interval seconds (the screen redrawn when stdout is a terminal,
 * else one block after another) until SIGINT or SIGTERM, or count views (count <= 0: no
 * limit). The exit status: 0, 1 when the daemon cannot be read, 2 on a bad interval. */
int watch_run(struct ctl *c, double interval, long count);

#endif
