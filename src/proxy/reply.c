/* reply.c: strict parsing of a backend's response with llhttp (HTTP_RESPONSE), adding
 * the checks the strict build of llhttp 8.1 does not make (DESIGN §5a, held for replies
 * as for requests). */
#include "reply.h"

#include <string.h>
#include <strings.h>

#define REPLY_EXTRA_MAX 8192 /* chunk extensions and trailers of one reply, in bytes */

ssize_t reply_head_length(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i == 0 || buf[i - 1] != '\r')
			return -1;
		if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return (ssize_t)(i + 1);
	}
	return 0;
}

static int reply_refuse(struct reply *r, const char *why)
{
	r->why = why;
	r->failed_cb = true;
	return -1;
}

/* RFC 9112 §2.2, §5.2: every line ends in CRLF, no obs-fold, no NUL (llhttp 8.1 accepts
 * a bare LF and obs-fold, which would hide a header from us and not from a client). */
static const char *reply_scan(const char *buf, size_t len)
{
	bool line_start = false;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (c == '\0')
			return "NUL in the head";
		if (c == '\n' && (i == 0 || buf[i - 1] != '\r'))
			return "bare LF in the head";
		if (c == '\r' && (i + 1 >= len || buf[i + 1] != '\n'))
			return "lone CR in the head";
		if (line_start && (c == ' ' || c == '\t'))
			return "obs-fold in the head";
		line_start = c == '\n';
	}
	return NULL;
}

static int reply_on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct reply *r = p->data;
	if (!r->in_head) {
		r->extra_bytes += (uint32_t)n;
		return r->extra_bytes > REPLY_EXTRA_MAX ? reply_refuse(r, "trailers too large") : 0;
	}
	/* the head is parsed in one llhttp_execute, so every name comes in one piece */
	if (r->nfields == REPLY_FIELDS_MAX)
		return reply_refuse(r, "too many header fields");
	struct reply_field *f = &r->fields[r->nfields++];
	memset(f, 0, sizeof(*f));
	f->name_off = (uint32_t)(at - r->head);
	f->name_len = (uint32_t)n;
	return 0;
}

static int reply_on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct reply *r = p->data;
	if (!r->in_head) {
		r->extra_bytes += (uint32_t)n;
		return r->extra_bytes > REPLY_EXTRA_MAX ? reply_refuse(r, "trailers too large") : 0;
	}
	struct reply_field *f = &r->fields[r->nfields - 1];
	f->value_off = (uint32_t)(at - r->head);
	f->value_len = (uint32_t)n;
	return 0;
}

static bool reply_name_is(const struct reply *r, const struct reply_field *f, const char *name)
{
	return strlen(name) == f->name_len && strncasecmp(r->head + f->name_off, name, f->name_len) == 0;
}

/* Framing decided by us as well as by llhttp: both must agree, or the reply is refused. */
static int reply_on_headers_complete(llhttp_t *p)
{
	struct reply *r = p->data;
	r->in_head = false;
	r->status = p->status_code;
	r->version_minor = p->http_minor;
	if (p->http_major != 1 || p->http_minor > 1)
		return reply_refuse(r, "not an HTTP/1.x reply");
	for (uint32_t i = 0; i < r->nfields; i++) {
		struct reply_field *f = &r->fields[i];
		const char *v = r->head + f->value_off;
		/* trim trailing OWS (llhttp gives the value with it) */
		while (f->value_len > 0 && (v[f->value_len - 1] == ' ' || v[f->value_len - 1] == '\t'))
			f->value_len--;
		if (f->name_len == 0)
			return reply_refuse(r, "empty header name");
		if (reply_name_is(r, f, "Content-Length")) {
			if (++r->cl_count > 1)
				return reply_refuse(r, "more than one Content-Length");
			if (f->value_len == 0 || f->value_len > 18)
				return reply_refuse(r, "bad Content-Length");
			int64_t cl = 0;
			for (uint32_t k = 0; k < f->value_len; k++) {
				if (v[k] < '0' || v[k] > '9')
					return reply_refuse(r, "bad Content-Length");
				cl = cl * 10 + (v[k] - '0');
			}
			r->content_length = cl;
		} else if (reply_name_is(r, f, "Transfer-Encoding")) {
			if (++r->te_count > 1 || f->value_len != 7 || strncasecmp(v, "chunked", 7) != 0)
				return reply_refuse(r, "Transfer-Encoding other than one chunked");
			r->chunked = true;
		}
	}
	if (r->cl_count && r->te_count)
		return reply_refuse(r, "Content-Length with Transfer-Encoding");
	if (r->chunked != !!(p->flags & F_CHUNKED))
		return reply_refuse(r, "Transfer-Encoding not understood alike");
	bool no_body = r->head_request || r->status < 200 || r->status == 204 || r->status == 304;
	if (r->status == 101) {
		r->upgrade = true;
		return 2; /* no body: what follows is the new protocol */
	}
	if ((r->status < 200 || r->status == 204) && (r->cl_count || r->te_count))
		return reply_refuse(r, "framing on a reply that has no body");
	r->has_body = !no_body;
	/* known now for a reply whose end its head tells; a chunked or close-delimited
	 * one is settled again when it ends */
	r->keep_alive = llhttp_should_keep_alive(p);
	return no_body ? 1 : 0;
}

static int reply_on_body(llhttp_t *p, const char *at, size_t n)
{
	struct reply *r = p->data;
	if (r->on_body && r->on_body(r->arg, at, n) < 0) {
		r->failed_cb = true;
		return -1;
	}
	return 0;
}

static int reply_on_chunk_ext(llhttp_t *p, const char *at, size_t n)
{
	struct reply *r = p->data;
	r->extra_bytes += (uint32_t)n + 1;
	return r->extra_bytes > REPLY_EXTRA_MAX ? reply_refuse(r, "chunk extensions too large") : 0;
}

/* Pausing here makes the consumed count stop at the reply's exact end. */
static int reply_on_message_complete(llhttp_t *p)
{
	struct reply *r = p->data;
	r->complete = true;
	r->keep_alive = llhttp_should_keep_alive(p) && !r->upgrade;
	return HPE_PAUSED;
}

static const llhttp_settings_t reply_settings = {
    .on_header_field = reply_on_header_field,
    .on_header_value = reply_on_header_value,
    .on_headers_complete = reply_on_headers_complete,
    .on_body = reply_on_body,
    .on_chunk_extension_name = reply_on_chunk_ext,
    .on_chunk_extension_value = reply_on_chunk_ext,
    .on_message_complete = reply_on_message_complete,
};

static const char *reply_llhttp_why(struct reply *r, llhttp_errno_t err)
{
	if (r->why)
		return r->why;
	const char *reason = llhttp_get_error_reason(&r->parser);
	return reason && *reason ? reason : llhttp_errno_name(err);
}

int reply_head(struct reply *r, const char *buf, size_t len, bool head_request, reply_body_cb on_body,
               void *arg)
{
	memset(r, 0, offsetof(struct reply, fields));
	r->head = buf;
	r->content_length = -1;
	r->head_request = head_request;
	r->in_head = true;
	r->on_body = on_body;
	r->arg = arg;
	if ((r->why = reply_scan(buf, len)) != NULL)
		return -1;
	llhttp_init(&r->parser, HTTP_RESPONSE, &reply_settings);
	r->parser.data = r;
	llhttp_errno_t err = llhttp_execute(&r->parser, buf, len);
	if (err == HPE_PAUSED_UPGRADE && r->upgrade)
		return 0;
	if (err == HPE_PAUSED && r->complete && llhttp_get_error_pos(&r->parser) == buf + len)
		return 0;
	if (err != HPE_OK || r->in_head) {
		r->why = r->in_head && err == HPE_OK ? "head not complete" : reply_llhttp_why(r, err);
		return -1;
	}
	return 0;
}

ssize_t reply_body(struct reply *r, const char *buf, size_t len)
{
	if (r->complete || len == 0)
		return 0;
	llhttp_errno_t err = llhttp_execute(&r->parser, buf, len);
	if (err == HPE_PAUSED && r->complete)
		return llhttp_get_error_pos(&r->parser) - buf;
	if (err != HPE_OK) {
		r->why = r->failed_cb && !r->why ? "the client went away" : reply_llhttp_why(r, err);
		return -1;
	}
	return (ssize_t)len;
}

int reply_eof(struct reply *r)
{
	if (r->complete)
		return 0;
	llhttp_errno_t err = llhttp_finish(&r->parser);
	if ((err == HPE_OK || err == HPE_PAUSED) && r->complete) {
		r->keep_alive = false;
		return 0;
	}
	r->why = "the backend closed the connection before the end of its reply";
	return -1;
}

bool reply_field_text(const struct reply *r, uint32_t i, char *name, size_t name_cap, char *value,
                      size_t value_cap)
{
	const struct reply_field *f = &r->fields[i];
	if (f->name_len >= name_cap || f->value_len >= value_cap)
		return false;
	memcpy(name, r->head + f->name_off, f->name_len);
	name[f->name_len] = '\0';
	memcpy(value, r->head + f->value_off, f->value_len);
	value[f->value_len] = '\0';
	return true;
}
