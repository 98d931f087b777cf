/* takeover.h: portshared --upgrade, the takeover (DESIGN §10): the new daemon takes the old one's listeners,
 * control socket, queues and connections. */
#ifndef PS_DAEMON_TAKEOVER_H
#define PS_DAEMON_TAKEOVER_H

#include <stddef.h>
#include "conn-t.h"
#include "protocol.h"
#include "session-t.h"

/* portshared --upgrade (DESIGN §10). The new daemon: */
/* At start-up, before the loop runs: connects to the running daemon, asks for its
 * state and adopts it (listeners, queues and URLs). Returns the control socket's
 * listening fd, or -1 with err saying why (for the person who typed --upgrade). */
int takeover_connect(char *err, size_t errlen);
/* Once the loop and threads are ready: tells the old daemon we accept, watches the
 * link for the connections it hands over, starts ReattachGrace. */
void takeover_start(void);
/* The old daemon: */
/* HELLO with PS_HELLO_TAKEOVER: admins only. */
void takeover_hello(struct session *s, const struct ps_msg *m);
/* Any later message on the takeover session. */
void takeover_handle(struct session *s, const struct ps_msg *m);
void takeover_session_closed(struct session *s);
/* Gives c, with every byte read and not yet used, to the new daemon (a front thread
 * moves it to thread 0 first); ends it cleanly if there is none. c is gone afterwards. */
void takeover_hand_over_conn(struct conn *c);
/* REATTACH: s is to finish what it holds here and reconnect (to the new daemon). */
void takeover_send_reattach(struct session *s);

#endif
