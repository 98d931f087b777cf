/* http_body.h: the library's request body decoder: the same strict llhttp build as the
 * head parser (http_head.h) finds where a body ends and de-chunks it (DESIGN §4). No I/O. */
#ifndef PS_HTTP_BODY_H
#define PS_HTTP_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* ssize_t */

/* Feed the raw bytes after the head, get the de-chunked body out. */
struct http_body;
/* head/head_len: the request head exactly as http_head_parse delimited it (from the
 * request line through the empty line); it is fed to llhttp to set the framing state.
 * max_body 0: unlimited. Chunk extensions and trailers are capped by the decoder
 * itself (llhttp enforces no sizes). NULL with errno ENOMEM on no memory (worth
 * retrying), or with errno EINVAL for a head llhttp refuses (never worth it). */
struct http_body *http_body_new(const char *head, size_t head_len, uint64_t max_body);
void http_body_free(struct http_body *b);
/* Consumes from in[0, inlen): writes body bytes to out (up to outcap). Returns the
 * bytes of `in` consumed (*outlen set to body bytes produced), or -1 on a framing error
 * (*why set; "too large" when max_body is exceeded: answer 413). Stops consuming at the
 * exact end of the request. Never consumes a body byte it has no room to write out
 * (chunk framing is consumed without output, so the count consumed may pass outcap);
 * outcap 0 makes no progress. */
ssize_t http_body_feed(struct http_body *b, const char *in, size_t inlen, char *out, size_t outcap,
                       size_t *outlen, const char **why);
bool http_body_done(const struct http_body *b); /* the whole request has been consumed */

#endif
