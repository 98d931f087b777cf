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

#endif
