/* forward.h: one request forwarded to the backend and its reply back to the client,
 * both streamed: the request head rewritten (hop-by-hop headers, Forwarded and
 * X-Forwarded-*, framing), the body passed on as it is read, the reply checked strictly
 * (reply.h) and re-framed by the library; 502/504/abort with a reason on stderr. */
#ifndef PS_PROXY_FORWARD_H
#define PS_PROXY_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "portshare.h"

#include "backend.h"
#include "reply.h"

#define FORWARD_HEAD_MAX 32768
#define FORWARD_HEADER_STORE 65536

struct proxy_config;
struct forward_member;

/* One per thread; everything a request needs, allocated once. */
struct forward {
	const struct proxy_config *cfg;
	struct backend_pool pool;
	/* the batch being finished (forward_batch): its members from batch_next on have not
	 * begun, and forward_give_back_rest may give them back */
	struct forward_member *batch;
	ps_request **batch_rs;
	int batch_next, batch_n;
	int64_t solo_until; /* no batch before then: a recent one had a reply to stream */
	/* per request */
	struct backend_target *target; /* its users count the tunnels too (tunnel_start) */
	struct reply reply;
	ps_header headers[REPLY_FIELDS_MAX];
	char head[FORWARD_HEAD_MAX];
	char store[FORWARD_HEADER_STORE]; /* the reply's header names and values, NUL-ended */
	char body[BACKEND_BUF];           /* request body on its way, reply body on its way */
	size_t body_len;
};

void forward_init(struct forward *f, const struct proxy_config *cfg);
void forward_fini(struct forward *f);
/* Forwards r to target and answers it; the caller frees r (which aborts a response left
 * unfinished) and keeps target alive until this returns. */
void forward_request(struct forward *f, ps_request *r, struct backend_target *target);

/* At most this many requests go to the backend together (forward_batch). */
#define FORWARD_BATCH_MAX 32
/* Whether r may go in a batch: GET or HEAD, without a body or an upgrade (sent ahead of
 * the replies of others, and given back once sent if it must: it changes nothing). */
bool forward_batchable(ps_request *r);
/* Whether the requests waiting behind the next one should be taken for a batch: not for
 * FORWARD_SOLO_MS after a batch in which a reply was not whole at once (a large body, a
 * stream, a slow backend): finished in turn, such replies keep the others waiting, and
 * give-backs cost the backend's work; what the backend answers at once is what batches
 * are for. */
bool forward_batching(const struct forward *f);
/* Forwards rs[0, n) together: each head goes to the backend (on a connection of its own)
 * before any reply is waited for, and each reply is answered as soon as it is whole, so
 * the backend takes them in one wake-up as it would from an event-driven proxy. Members
 * not batchable are forwarded on their own after the others are sent. What is left after
 * FORWARD_LONG_MS is finished in turn; when one of those turns long, the pool's alarm
 * rings, and the alarm's function must call forward_give_back_rest. Given-back requests
 * are set to NULL in rs; the caller frees the rest. */
void forward_batch(struct forward *f, ps_request **rs, int n, struct backend_target *target);
/* Gives back to the daemon (ps_request_give_back) every member of the batch being
 * finished that has not begun, so that none waits behind the long one: their backend
 * connections are closed (only GET and HEAD are sent ahead), and other threads send them
 * again. Nothing outside forward_batch. */
void forward_give_back_rest(struct forward *f);

#endif
