/* answer.h: the answers the daemon gives itself (DESIGN §5). */
#ifndef PS_DAEMON_ANSWER_H
#define PS_DAEMON_ANSWER_H

#include <stdbool.h>

#include "conn-t.h"

/* Answers status on c (logging reason in the error log when not NULL), with extra header
 * lines (each ending CRLF) or NULL; close: then close the connection. */
void answer_send(struct conn *c, int status, const char *reason, bool close, bool head_method,
                 const char *extra);
/* Answers the request c holds (queued, or taken back from a worker), or the connection
 * when it holds none; a request with a body, or not keep-alive, closes it. */
void answer_request(struct conn *c, int status, const char *reason, bool close);
/* An HTTP/2 prior-knowledge preface: GOAWAY(HTTP_1_1_REQUIRED), then close. */
void answer_goaway(struct conn *c);

#endif
