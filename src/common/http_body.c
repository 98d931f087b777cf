/* http_body.c: decodes a request body after its head, with the same strict llhttp build
 * as http_head.c, capping what llhttp does not (DESIGN §4, §5a). */
#include "http_body.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "llhttp.h"

#include "http_head.h" /* http_llhttp_reason */

#define CHUNK_EXT_MAX 1024 /* bytes of extensions on one chunk-size line */
#define TRAILERS_MAX 8192  /* bytes of the whole trailer section */

/* The body decoder: the library's half of "the same parser decides framing" (DESIGN §4). */
struct http_body {
	llhttp_t parser;
	uint64_t max_body, total;
	char *out;        /* where on_body writes during one execute */
	size_t out_space; /* never less than the bytes given to that execute */
	size_t produced;
	uint32_t ext_bytes; /* on the current chunk-size line */
	/* The trailer section is checked by the decoder itself, byte by byte, before llhttp
	 * sees it: llhttp 8.1 takes a bare LF as a line end there ("0\r\n\n" ends the
	 * request) and accepts obs-fold, so a front end that reads the section by CRLF alone
	 * would find the request's end elsewhere (smuggling). */
	uint32_t trailer_bytes; /* of the section so far, line ends included */
	uint32_t trailer_line;  /* bytes of the current trailer line before its CR */
	bool trailer_cr;        /* the last trailer byte was a CR */
	bool trailer_start;     /* llhttp paused where the section starts */
	bool in_trailers, trailers_end, headers_done, done, failed;
	const char *why;
};

static int body_fail_cb(struct http_body *b, const char *why)
{
	b->why = why;
	return -1;
}

static int body_on_headers_complete(llhttp_t *p)
{
	struct http_body *b = p->data;

	b->headers_done = true;
	return 0;
}

static int body_on_body(llhttp_t *p, const char *at, size_t n)
{
	struct http_body *b = p->data;

	if (b->max_body != 0 && b->total + n > b->max_body)
		return body_fail_cb(b, "too large");
	if (n > b->out_space)
		return body_fail_cb(b, "BadRequest: body where none was expected");
	memcpy(b->out, at, n);
	b->out += n;
	b->out_space -= n;
	b->produced += n;
	b->total += n;
	return 0;
}

static int body_on_chunk_header(llhttp_t *p)
{
	struct http_body *b = p->data;

	b->ext_bytes = 0;
	if (p->content_length == 0) {
		/* the last chunk: pause, so that the feed knows the section's first byte */
		b->in_trailers = true;
		b->trailer_start = true;
		return HPE_PAUSED;
	} else if (b->max_body != 0 && p->content_length > b->max_body - b->total)
		return body_fail_cb(b, "too large"); /* refuse before the chunk arrives */
	return 0;
}

/* llhttp enforces no sizes on chunk extensions (DESIGN §4); count name, value and separator. */
static int body_on_chunk_ext(llhttp_t *p, const char *at, size_t n)
{
	struct http_body *b = p->data;

	b->ext_bytes += (uint32_t)(n < CHUNK_EXT_MAX ? n : CHUNK_EXT_MAX) + 1;
	if (b->ext_bytes > CHUNK_EXT_MAX)
		return body_fail_cb(b, "BadRequest: chunk extension too long");
	return 0;
}

/* Pausing here makes the consumed count stop at the exact end of the request. */
static int body_on_message_complete(llhttp_t *p)
{
	struct http_body *b = p->data;

	b->done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t body_settings = {
    .on_headers_complete = body_on_headers_complete,
    .on_body = body_on_body,
    .on_chunk_header = body_on_chunk_header,
    .on_chunk_extension_name = body_on_chunk_ext,
    .on_chunk_extension_value = body_on_chunk_ext,
    .on_message_complete = body_on_message_complete,
};

struct http_body *http_body_new(const char *head, size_t head_len, uint64_t max_body)
{
	struct http_body *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	llhttp_init(&b->parser, HTTP_REQUEST, &body_settings);
	b->parser.data = b;
	b->max_body = max_body;
	llhttp_errno_t err = llhttp_execute(&b->parser, head, head_len);
	bool ok = b->headers_done &&
	          (err == HPE_OK || ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && b->done &&
	                             llhttp_get_error_pos(&b->parser) == head + head_len));
	if (!ok) {
		free(b);
		errno = EINVAL;
		return NULL;
	}
	/* a Content-Length over the limit is refused before any of the body is read */
	if (!b->done && max_body != 0 && !(b->parser.flags & F_CHUNKED) &&
	    b->parser.content_length > max_body) {
		b->failed = true;
		b->why = "too large";
	}
	return b;
}

void http_body_free(struct http_body *b)
{
	free(b);
}

bool http_body_done(const struct http_body *b)
{
	return b->done;
}

static bool body_trailers_refuse(struct http_body *b, const char *why)
{
	b->why = why;
	return false;
}

/* Checks trailer bytes in[0, n) before llhttp parses them (RFC 9112 §7.1.2, §2.2, §5.2):
 * every line ends in CRLF, no obs-fold, no empty field name, the section within
 * TRAILERS_MAX. Stops at the empty line that ends the section: what follows is the next
 * request's. False with b->why set on a violation. */
static bool body_check_trailers(struct http_body *b, const char *in, size_t n)
{
	for (size_t k = 0; k < n && !b->trailers_end; k++) {
		char c = in[k];
		if (++b->trailer_bytes > TRAILERS_MAX)
			return body_trailers_refuse(b, "BadRequest: trailers too large");
		if (b->trailer_cr) {
			if (c != '\n')
				return body_trailers_refuse(b, "BadRequest: lone CR in trailers");
			b->trailer_cr = false;
			b->trailers_end = b->trailer_line == 0;
			b->trailer_line = 0;
		} else if (c == '\r') {
			b->trailer_cr = true;
		} else if (c == '\n') {
			return body_trailers_refuse(b, "BadRequest: bare LF in trailers");
		} else {
			bool first = b->trailer_line++ == 0;
			if (first && (c == ' ' || c == '\t'))
				return body_trailers_refuse(b, "BadRequest: obs-fold in trailers");
			if (first && c == ':')
				return body_trailers_refuse(b, "BadRequest: empty trailer name");
		}
	}
	return true;
}

ssize_t http_body_feed(struct http_body *b, const char *in, size_t inlen, char *out, size_t outcap,
                       size_t *outlen, const char **why)
{
	size_t used = 0;

	*outlen = 0;
	while (!b->failed && !b->done && used < inlen && *outlen < outcap) {
		/* llhttp gives no way to stop inside a body span, so never hand it more
		 * input than there is room for output: the body is never longer than that. */
		size_t n = inlen - used < outcap - *outlen ? inlen - used : outcap - *outlen;
		const char *p = in + used, *end = p + n;
		if (b->in_trailers && !body_check_trailers(b, p, n)) {
			b->failed = true;
			break;
		}
		b->out = out + *outlen;
		b->out_space = n;
		b->produced = 0;
		b->trailer_start = false;
		llhttp_errno_t err = llhttp_execute(&b->parser, p, n);
		if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && b->done) {
			end = llhttp_get_error_pos(&b->parser);
		} else if (err == HPE_PAUSED && b->trailer_start) {
			/* the last chunk's line ended at end: the trailers are checked from there */
			end = llhttp_get_error_pos(&b->parser);
			llhttp_resume(&b->parser);
		} else if (err != HPE_OK) {
			b->failed = true;
			if (b->why == NULL)
				b->why = http_llhttp_reason(err);
			break;
		}
		*outlen += b->produced;
		used += (size_t)(end - p);
	}
	if (b->failed) {
		*why = b->why;
		return -1;
	}
	return (ssize_t)used;
}
