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

/* One per thread; everything a request needs, allocated once. */
struct forward {
	const struct proxy_config *cfg;
	struct backend_pool pool;
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
#define FORWARD_BATCH_MAX 16
/* Whether r may go in a batch: GET or HEAD, without a body or an upgrade (sent ahead of
 * the replies of others, and given back once sent if it must: it changes nothing). */
bool forward_batchable(ps_request *r);
/* Forwards rs[0, n) together: each head goes to the backend (on a connection of its own)
 * before any reply is waited for, and each reply is answered as soon as it is whole, so
 * the backend takes them in one wake-up as it would from an event-driven proxy. Members
 * not batchable are forwarded on their own after the others are sent. When more than one
 * is left waiting or streaming at FORWARD_LONG_MS, one stays and the others are given
 * back to the daemon (ps_request_give_back: rs[i] set to NULL) so none waits behind
 * another's stream. The caller frees the rest. */
void forward_batch(struct forward *f, ps_request **rs, int n, struct backend_target *target);

#endif
