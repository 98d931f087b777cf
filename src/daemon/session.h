/* session.h: sessions on the control socket: their messages in and out. */
#ifndef PS_DAEMON_SESSION_H
#define PS_DAEMON_SESSION_H

#include <stdint.h>
#include "protocol.h"
#include "queue-t.h"
#include "session-t.h"

void session_accept(void);
int session_deliver(struct session *s, struct request *req);
/* Sends a message with an fd (SHM); the fd stays the caller's. 0 or -1. */
int session_send_fd(struct session *s, const struct ps_msg *m, int fd);
void session_send_conn_closed(uint32_t session_id, uint64_t conn_id);
/* DEMAND answering the DEMAND_WAIT of that seq (demand.c). */
void session_send_demand(struct session *s, uint32_t seq, uint32_t queue_id, int status);
/* LIMITS: what the library enforces (EntityBody, DrainEntityBody, MinSendRate). */
void session_send_limits(struct session *s);
void session_send_limits_all(void); /* after a reload */
void session_close_all(void);
/* REPLY to the request with that seq; text may be NULL. */
void session_reply(struct session *s, uint32_t seq, int status, uint32_t id, const char *text);
/* Marks the session for closing after this batch: never free it under a caller. */
void session_kill_later(struct session *s, const char *why);

#endif
