/* answer.c: the answers the daemon gives itself (DESIGN §5): a status line, Date, a short
 * plain-text body naming the status, and the error-log line with HTTP.sys's reason; and
 * the HTTP/2 GOAWAY for a prior-knowledge preface. conn.c writes them. */
#include "answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accesslog.h"
#include "conn.h"
#include "http_date.h"
#include "http_head.h"
#include "llhttp.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "tls.h"

void answer_send(struct conn *c, int status, const char *reason, bool close, bool head_method,
                 const char *extra)
{
	char body[96], *out;
	const char *text = http_status_text(status);
	metrics_answer(status, reason);
	if (reason)
		log_error_answer(c, status, reason);
	/* a short plain-text body naming the status; none for 200 (OPTIONS *) */
	int body_len = status == 200 ? 0 : snprintf(body, sizeof(body), "%d %s\n", status, text);
	int n = asprintf(&out,
	                 "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: portshare\r\nContent-Type: text/plain\r\n"
	                 "Content-Length: %d\r\n%s%s%s\r\n%s",
	                 status, text, http_date_now(), body_len, close ? "Connection: close\r\n" : "",
	                 status == 503 ? "Retry-After: 1\r\n" : "", extra ? extra : "",
	                 head_method || !body_len ? "" : body);
	if (n < 0) {
		conn_abort(c);
		return;
	}
	accesslog_answer(c, status, head_method ? 0 : (uint64_t)body_len);
	conn_write(c, out, (size_t)n, close);
}

void answer_request(struct conn *c, int status, const char *reason, bool close)
{
	struct request *r = c->req;
	bool head_method = r && r->method == HTTP_HEAD;
	if (c->tls && !tls_conn_live(c)) {
		/* a worker had it: the daemon writes with the record state it handed over, which
		 * holds on the write side as long as the worker wrote nothing (it answers only
		 * then), and closes: what the worker may have read is not known */
		if (tls_conn_resume(c) < 0) {
			if (r)
				request_free(r);
			conn_abort(c);
			return;
		}
		close = true;
	}
	if (r)
		accesslog_note(c, r->data, r->head_len, r->arrived_us, r->queue);
	if (r) {
		/* a request that had a body: no 100 was sent, so close rather than read it */
		close = close || r->has_body || !r->keep_alive;
		if (!close)
			conn_keep_pipelined(c, r);
		request_free(r);
	}
	answer_send(c, status, reason, close, head_method, NULL);
}

void answer_goaway(struct conn *c)
{
	/* HTTP/2 GOAWAY, last stream 0, error HTTP_1_1_REQUIRED (0xd), RFC 9113 §6.8 */
	static const char frame[17] = {0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0d};
	char *out = malloc(sizeof(frame));
	log_error_answer(c, 0, "BadRequest: HTTP/2 preface on an HTTP/1.1 port");
	if (!out) {
		conn_abort(c);
		return;
	}
	memcpy(out, frame, sizeof(frame));
	conn_write(c, out, sizeof(frame), true);
}
