/* status.h: the status text for portsharectl status. */
#ifndef PS_DAEMON_STATUS_H
#define PS_DAEMON_STATUS_H

#include <stdbool.h>
#include <stddef.h>

/* Appends the status text (json or human) to a malloc'd buffer; NULL on no memory. */
char *status_render(bool json, size_t *len);

#endif
