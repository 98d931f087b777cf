/* reply.h: parses a backend's response (its "reply", to keep the word "response" for
 * what goes to the client) with the strict llhttp build, plus the checks a proxy needs so
 * that a backend cannot smuggle a second response: bare LF, obs-fold, duplicate or
 * malformed Content-Length, Content-Length with Transfer-Encoding, any Transfer-Encoding
 * but one "chunked", bad chunk sizes, oversized chunk extensions and trailers. No I/O. */
#ifndef PS_PROXY_REPLY_H
#define PS_PROXY_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "llhttp.h"

#define REPLY_FIELDS_MAX 100

struct reply_field {
	uint32_t name_off, name_len, value_off, value_len; /* into the head */
};

/* Body bytes go to on_body as llhttp finds them (de-chunked). */
typedef int (*reply_body_cb)(void *arg, const char *at, size_t n);

struct reply {
	llhttp_t parser;
	const char *head; /* the head given to reply_head() */
	int status;
	int version_minor;
	int64_t content_length; /* -1: none */
	bool chunked;
	bool keep_alive; /* the backend lets the connection carry the next request */
	bool complete;   /* the whole reply has been parsed */
	bool has_body;   /* after reply_head: a body follows (HEAD/1xx/204/304 have none) */
	bool upgrade;    /* 101 */
	const char *why; /* why the reply was refused */
	/* internal */
	bool head_request, in_head, failed_cb;
	uint32_t cl_count, te_count, extra_bytes;
	reply_body_cb on_body;
	void *arg;
	uint32_t nfields;
	/* last: reply_head clears everything before it, and only fields[0, nfields) are read */
	struct reply_field fields[REPLY_FIELDS_MAX];
};

/* Length of the head at buf[0, len) through its empty line, 0 while incomplete, -1 at
 * a bare LF (whose head would never end in CRLF CRLF: refused at once, not waited for). */
ssize_t reply_head_length(const char *buf, size_t len);

/* Parses the head buf[0, len) (len from reply_head_length). head_request: the request
 * was HEAD (no body follows whatever the head says). 0, or -1 with r->why. The fields
 * point into buf, which must live while they are used. */
int reply_head(struct reply *r, const char *buf, size_t len, bool head_request, reply_body_cb on_body,
               void *arg);

/* Feeds body bytes; returns the count consumed (it stops at the reply's end: anything
 * after is not part of it), or -1 with r->why (the connection must be dropped). */
ssize_t reply_body(struct reply *r, const char *buf, size_t len);
/* The backend closed the connection: ends a close-delimited body. 0, or -1 with why. */
int reply_eof(struct reply *r);

/* The field's name/value copied NUL-terminated into out (cap bytes); false if too long. */
bool reply_field_text(const struct reply *r, uint32_t i, char *name, size_t name_cap, char *value,
                      size_t value_cap);

#endif
