/* apps_native.h: libportshare apps of portshare-apps (apps_native.c): their queue, the
 * grant to their user, and the controller thread that waits for demand on it. */
#ifndef PS_PROXY_APPS_NATIVE_H
#define PS_PROXY_APPS_NATIVE_H

#include "apps.h"

/* Creates a's persistent queue with its URLs (a queue of the same name must be gone),
 * grants a's user the right to join it and starts its controller thread, which ends
 * when the queue is deleted (then a is unregistered, for apps_retry). 0, or -1 after
 * saying why. */
int apps_native_register(struct app *a);
/* Removes the grant apps_native_register made (the app is deleted). */
void apps_native_unregister(const struct app *a);
/* The daemon's socket, as a's app gets it in $PORTSHARE_SOCKET. */
const char *apps_native_socket(const struct app *a);

#endif
