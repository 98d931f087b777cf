/* fuzz_body.c: libFuzzer target for the library's request body decoder (http_body_* in
 * src/common/http_body.c): a request head as http_head_parse accepts it, then the bytes
 * after it fed in pieces of sizes chosen by the input, with output room chosen likewise,
 * as src/lib/request.c does. The decoded body and where the request ends are checked
 * against the head's framing, and for chunked bodies against a small reference decoder
 * written from RFC 9112 §7.1 that is strict about line ends.
 *
 * Input: two control bytes (the piece sizes and output room; max_body), then a request:
 * head and body bytes. */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "http_body.h"
#include "http_head.h"

#include "fuzz_check.h"

enum ref_result { REF_INCOMPLETE, REF_COMPLETE, REF_ERROR };

/* One line [*pos, CRLF) of in[0, len): sets *line_end to the CR. An LF or a CR not in a
 * CRLF pair is an error: a front end could read a bare one either way. */
static enum ref_result ref_line(const uint8_t *in, size_t len, size_t pos, size_t *line_end)
{
	for (size_t k = pos; k < len; k++) {
		if (in[k] == '\n')
			return REF_ERROR;
		if (in[k] == '\r') {
			if (k + 1 == len)
				return REF_INCOMPLETE;
			if (in[k + 1] != '\n')
				return REF_ERROR;
			*line_end = k;
			return REF_COMPLETE;
		}
	}
	return REF_INCOMPLETE;
}

/* HEXDIG's value, or -1 */
static int ref_hex(uint8_t c)
{
	static const char digits[] = "0123456789abcdef";
	const char *d = c ? strchr(digits, tolower(c)) : NULL;
	return d ? (int)(d - digits) : -1;
}

/* chunk-size [ chunk-ext ] on [from, to): 1*HEXDIG, then nothing or BWS ";" and the rest
 * (the extension's syntax does not change the framing, so it is not checked here). */
static bool ref_size_line(const uint8_t *in, size_t from, size_t to, uint64_t *size)
{
	size_t k = from;

	*size = 0;
	for (; k < to && ref_hex(in[k]) >= 0; k++) {
		if (*size >> 60)
			return false;
		*size = *size << 4 | (uint64_t)ref_hex(in[k]);
	}
	if (k == from)
		return false;
	while (k < to && (in[k] == ' ' || in[k] == '\t'))
		k++;
	return k == to || in[k] == ';';
}

/* A whole chunked body (RFC 9112 §7.1) from in[0, len): body bytes to out (room for len),
 * *end after the final CRLF when complete. */
static enum ref_result ref_dechunk(const uint8_t *in, size_t len, uint8_t *out, size_t *outlen, size_t *end)
{
	size_t pos = 0, eol;
	uint64_t size;
	enum ref_result r;

	*outlen = 0;
	for (;;) {
		if ((r = ref_line(in, len, pos, &eol)) != REF_COMPLETE)
			return r;
		if (!ref_size_line(in, pos, eol, &size))
			return REF_ERROR;
		pos = eol + 2;
		if (size == 0)
			break;
		if (size > len - pos) {
			memcpy(out + *outlen, in + pos, len - pos);
			*outlen += len - pos;
			return REF_INCOMPLETE;
		}
		memcpy(out + *outlen, in + pos, size);
		*outlen += size;
		pos += size;
		if (len - pos < 2)
			return len - pos == 1 && in[pos] != '\r' ? REF_ERROR : REF_INCOMPLETE;
		if (in[pos] != '\r' || in[pos + 1] != '\n')
			return REF_ERROR;
		pos += 2;
	}
	/* trailer section: field lines up to an empty line */
	for (;;) {
		if ((r = ref_line(in, len, pos, &eol)) != REF_COMPLETE)
			return r;
		bool empty = eol == pos;
		pos = eol + 2;
		if (empty)
			break;
	}
	*end = pos;
	return REF_COMPLETE;
}

/* xorshift32: the piece sizes, a function of the control byte only. */
static uint32_t next_random(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static uint64_t choose_max_body(uint8_t control)
{
	switch (control & 3) {
	case 2:
		return control >> 2; /* 0..63: small, often exceeded */
	case 3:
		return 1000;
	default:
		return 0; /* unlimited */
	}
}

/* What the decoder did with the whole stream. */
struct feed_result {
	size_t consumed;
	size_t produced;
	bool done, failed;
	const char *why;
};

/* Feeds stream[0, len) as src/lib/request.c does: each call gets what is left of the
 * current piece; what it does not consume is offered again. Checks each call's contract. */
static void feed_pieces(struct http_body *b, const uint8_t *stream, size_t len, uint8_t control,
                        uint8_t *body, struct feed_result *res)
{
	uint32_t rnd = 0x9e3779b9u ^ control;

	memset(res, 0, sizeof(*res));
	res->done = http_body_done(b);
	while (res->consumed < len && !res->done && !res->failed) {
		size_t piece = 1 + next_random(&rnd) % 24;
		size_t cap = next_random(&rnd) % 11; /* 0 now and then: no progress expected */
		if (piece > len - res->consumed)
			piece = len - res->consumed;
		/* exact allocations: AddressSanitizer sees any access past either */
		char *in = malloc(piece), *out = malloc(cap ? cap : 1);
		FUZZ_CHECK(in && out);
		memcpy(in, stream + res->consumed, piece);
		size_t outlen = 12345;
		const char *why = NULL;
		ssize_t used = http_body_feed(b, in, piece, out, cap, &outlen, &why);
		if (used < 0) {
			FUZZ_CHECK(why != NULL);
			res->failed = true;
			res->why = why;
		} else {
			FUZZ_CHECK((size_t)used <= piece && outlen <= cap);
			FUZZ_CHECK(outlen <= (size_t)used);
			if (cap == 0)
				FUZZ_CHECK(used == 0 && outlen == 0);
			memcpy(body + res->produced, out, outlen);
			res->consumed += (size_t)used;
			res->produced += outlen;
			res->done = http_body_done(b);
			/* request.c takes no progress and no end for a framing error; it also
			 * means this loop ends */
			if (cap > 0)
				FUZZ_CHECK(used > 0 || res->done);
		}
		free(in);
		free(out);
	}
	if (res->failed) {
		/* a failed decoder stays failed */
		size_t outlen;
		const char *why = NULL;
		char out[4];
		FUZZ_CHECK(http_body_feed(b, "0\r\n\r\n", 5, out, sizeof(out), &outlen, &why) == -1);
	} else if (res->done) {
		/* a finished decoder consumes nothing more: the rest is the next request */
		size_t outlen;
		const char *why = NULL;
		char out[4];
		FUZZ_CHECK(http_body_feed(b, "GET", 3, out, sizeof(out), &outlen, &why) == 0 && outlen == 0);
	}
}

/* The framing the head declared, against what the decoder did with the stream. */
static void check_framing(const struct http_head *h, const uint8_t *stream, size_t len, uint64_t max_body,
                          const uint8_t *body, const struct feed_result *res)
{
	FUZZ_CHECK(res->produced <= res->consumed);
	if (max_body != 0)
		FUZZ_CHECK(res->produced <= max_body);
	if (res->failed) {
		if (strcmp(res->why, "too large") == 0)
			FUZZ_CHECK(max_body != 0);
		if (!h->chunked)
			FUZZ_CHECK(strcmp(res->why, "too large") == 0 &&
			           (uint64_t)h->content_length > max_body);
		return;
	}
	if (!h->chunked) {
		/* Content-Length: exactly that many bytes, passed through unchanged */
		uint64_t cl = h->content_length > 0 ? (uint64_t)h->content_length : 0;
		FUZZ_CHECK(res->produced == res->consumed);
		FUZZ_CHECK(memcmp(body, stream, res->produced) == 0);
		FUZZ_CHECK(res->done == (res->consumed == cl));
		FUZZ_CHECK(res->consumed <= cl);
		if (!res->done)
			FUZZ_CHECK(res->consumed == len); /* it stopped for want of bytes only */
		return;
	}
	uint8_t *ref = malloc(len ? len : 1);
	size_t ref_len = 0, ref_end = 0;
	FUZZ_CHECK(ref != NULL);
	enum ref_result r = ref_dechunk(stream, res->consumed, ref, &ref_len, &ref_end);
	if (res->done) {
		FUZZ_CHECK(r == REF_COMPLETE && ref_end == res->consumed);
		FUZZ_CHECK(ref_len == res->produced && memcmp(ref, body, ref_len) == 0);
	} else {
		/* everything consumed so far is the start of a valid chunked body */
		FUZZ_CHECK(res->consumed == len);
		FUZZ_CHECK(r == REF_INCOMPLETE);
		FUZZ_CHECK(ref_len == res->produced && memcmp(ref, body, ref_len) == 0);
	}
	free(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_head h; /* large: not on the stack */
	struct http_scan scan;

	if (size < 3)
		return 0;
	uint8_t piece_control = data[0];
	uint64_t max_body = choose_max_body(data[1]);
	data += 2;
	size -= 2;

	/* the library decodes only bodies of heads the daemon accepted */
	http_scan_init(&scan);
	if (http_head_parse(&scan, (const char *)data, size, NULL, &h) != HTTP_HEAD_DONE)
		return 0;
	char *head = malloc(h.head_len);
	FUZZ_CHECK(head != NULL);
	memcpy(head, data + h.skip, h.head_len);
	const uint8_t *stream = data + h.skip + h.head_len;
	size_t len = size - h.skip - h.head_len;

	struct http_body *b = http_body_new(head, h.head_len, max_body);
	FUZZ_CHECK(b != NULL);
	/* no body declared: the request ends with its head (RFC 9112 §6.3) */
	FUZZ_CHECK(http_body_done(b) == (!h.chunked && h.content_length <= 0));

	uint8_t *body = malloc(len ? len : 1);
	struct feed_result res;
	FUZZ_CHECK(body != NULL);
	feed_pieces(b, stream, len, piece_control, body, &res);
	check_framing(&h, stream, len, max_body, body, &res);
	http_body_free(b);
	free(body);
	free(head);
	return 0;
}
