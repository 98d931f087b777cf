/* http_head.h: finds and checks an HTTP/1.x request head, with llhttp (strict build)
 * plus the checks llhttp 8.1 does not make (DESIGN §5a). No I/O. The daemon and the
 * library both use it, so they always agree on a request's framing. */
#ifndef PS_HTTP_HEAD_H
#define PS_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_FIELDS 128 /* header lines; more is 431 */
#define HTTP_HOST_MAX 255

struct http_limits {
	uint32_t max_request_bytes; /* whole head; default 16384 (MaxRequestBytes) */
	uint32_t max_field_length;  /* one header line; default 16384 (MaxFieldLength) */
};
/* clang-format off */
#define HTTP_LIMITS_DEFAULT { 16384, 16384 }
/* clang-format on */

struct http_span {
	uint32_t off, len; /* into the buffer given to http_head_parse (skip included) */
};

struct http_field {
	struct http_span name, value; /* value without surrounding OWS */
};

/* What the daemon must do with a head it refused. */
enum http_action {
	HTTP_RESPOND = 0, /* answer `status`, then close */
	HTTP_DROP = 1,    /* close without an HTTP/1.1 response (HTTP/0.9) */
	HTTP_GOAWAY = 2,  /* HTTP/2 preface: send an h2 GOAWAY(HTTP_1_1_REQUIRED), close */
};

/* Incremental scan state: keep it between calls for one request so a head that
 * arrives one byte at a time is scanned once, not once per byte. */
struct http_scan {
	uint32_t scanned; /* bytes already checked */
	uint32_t line_start;
	uint32_t first_line_end; /* 0 until the request line's CRLF is seen */
	uint32_t skip;           /* leading empty lines (CRLF) ignored before the request (RFC 9112 §2.2) */
};

struct http_head {
	/* where the head is in the buffer given: [skip, skip+head_len) */
	uint32_t skip;
	uint32_t head_len; /* through the final CRLF CRLF */
	uint8_t method;    /* llhttp_method_t */
	uint8_t version_major, version_minor;
	struct http_span method_s, target; /* raw request-target */
	struct http_span path, query;      /* of the target: path (origin- or absolute-form), after '?' */
	/* path.len is 0 for an absolute-form target without a path ("http://h" or
	 * "http://h?q"): read it as "/". For OPTIONS * the path is the "*". */
	bool absolute_form;
	bool asterisk_form;           /* OPTIONS * */
	char host[HTTP_HOST_MAX + 1]; /* lower case, port stripped: authority, else Host, else "" */
	int host_port;                /* port named in the authority/Host, or -1 */
	int64_t content_length;       /* -1 if none */
	bool chunked;
	bool keep_alive;      /* llhttp_should_keep_alive */
	bool upgrade;         /* Connection: upgrade + Upgrade header */
	bool expect_continue; /* Expect: 100-continue */
	/* refusal */
	int status; /* 0 when accepted; else 400, 405, 408, 414, 431, 501, 505 */
	enum http_action action;
	const char *reason; /* error-log reason: "BadRequest: bare LF", "Verb", ... */
	uint32_t nfields;
	/* last: only fields[0, nfields) are ever written or read, so a reset clears and a
	 * copy moves only what comes before (http_head_used) */
	struct http_field fields[HTTP_MAX_FIELDS];
};

/* Bytes of h that hold its value: everything before the fields, and the fields used. */
static inline size_t http_head_used(const struct http_head *h)
{
	return offsetof(struct http_head, fields) + h->nfields * sizeof(h->fields[0]);
}

enum http_head_result {
	HTTP_HEAD_INCOMPLETE = 0, /* need more bytes */
	HTTP_HEAD_DONE = 1,       /* h describes an accepted head */
	HTTP_HEAD_ERROR = 2,      /* h->status/action/reason say how to refuse */
};

void http_scan_init(struct http_scan *s);
/* Looks at buf[0, len) (all bytes of this request so far, the same prefix each call,
 * growing) and parses the head once it is complete. */
enum http_head_result http_head_parse(struct http_scan *s, const char *buf, size_t len,
                                      const struct http_limits *lim, struct http_head *h);

/* Case-insensitive lookup; returns the first field named so, or NULL. */
const struct http_field *http_head_field(const struct http_head *h, const char *buf, const char *name);
/* RFC 9110 §9.2.2 */
bool http_method_idempotent(uint8_t method);
const char *http_method_name(uint8_t method);
const char *http_status_text(int status);
/* "BadRequest: HPE_..." for an llhttp_errno_t: the error-log reason for what llhttp refused. */
const char *http_llhttp_reason(int err);

#endif
