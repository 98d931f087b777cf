/* accesslog.h: the library's half of the access log (DESIGN §9): a record per answered
 * request into the session page's ring (shared.h), which the daemon drains and writes;
 * no application holds the log's fd. */
#ifndef PS_LIB_ACCESSLOG_H
#define PS_LIB_ACCESSLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "portshare.h"

#pragma GCC visibility push(hidden)

/* Before a send of r's response that is not its last: the BEGIN record goes first. */
void accesslog_send(ps_request *r);
/* Just before r's last send (with the slot's end record): end_written is the connection's
 * written counter once it is done. A WHOLE record, or the END of the BEGIN one. */
void accesslog_last(ps_request *r, uint64_t end_written);
/* r's last send returned: its record is the daemon's to write. */
void accesslog_sent(ps_request *r);
/* A 101 is about to go: the request is logged at it (its bytes are the application's). */
void accesslog_upgrade(ps_request *r);
/* r's response was cut short: it is logged as aborted with the body bytes sent so far. */
void accesslog_abort(ps_request *r);

#pragma GCC visibility pop

#endif
