/* test_http_body.c: unit tests of the request body decoder (src/common/http_body.c,
 * DESIGN §2a, §4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_body.h"

#define S(lit) lit, sizeof(lit) - 1

struct body_run {
	ssize_t consumed; /* -1 on error */
	size_t body_len;
	char body[4096];
	const char *why;
	bool done;
};

/* Feeds `in` cut at the given offsets (each piece copied to exactly its size), handing
 * the decoder only what it did not consume before, as a reader would; out gets outcap. */
static void body_run(const char *head, const char *in, size_t inlen, const size_t *cuts, size_t ncuts,
                     size_t outcap, uint64_t max_body, struct body_run *r)
{
	struct http_body *b = http_body_new(head, strlen(head), max_body);
	size_t used = 0, avail = 0;

	assert_non_null(b);
	memset(r, 0, sizeof(*r));
	for (size_t c = 0; c <= ncuts; c++) {
		avail = c < ncuts && cuts[c] < inlen ? cuts[c] : inlen;
		for (;;) {
			size_t n = avail - used, got = 0;
			char *piece = malloc(n ? n : 1), *out = malloc(outcap ? outcap : 1);
			assert_non_null(piece);
			assert_non_null(out);
			memcpy(piece, in + used, n);
			ssize_t k = http_body_feed(b, piece, n, out, outcap, &got, &r->why);
			free(piece);
			if (k < 0) {
				free(out);
				r->consumed = -1;
				r->done = http_body_done(b);
				http_body_free(b);
				return;
			}
			assert_true((size_t)k <= n);
			assert_true(got <= outcap);
			assert_true(r->body_len + got <= sizeof(r->body));
			memcpy(r->body + r->body_len, out, got);
			r->body_len += got;
			used += (size_t)k;
			free(out);
			if (k == 0 || used == avail)
				break;
		}
	}
	r->consumed = (ssize_t)used;
	r->done = http_body_done(b);
	http_body_free(b);
}

#define CL_HEAD "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
#define CHUNK_HEAD "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
#define NEXT "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"

static void assert_body(const struct body_run *r, size_t consumed, const char *body)
{
	if (r->consumed < 0)
		fail_msg("error: %s", r->why);
	assert_int_equal(r->consumed, consumed);
	assert_int_equal(r->body_len, strlen(body));
	assert_memory_equal(r->body, body, r->body_len);
	assert_true(r->done);
}

static void test_body_content_length(void **state)
{
	static const char in[] = "hello world" NEXT;
	struct body_run r;

	body_run(CL_HEAD, S(in), NULL, 0, 4096, 0, &r);
	assert_body(&r, 11, "hello world");
	/* an output buffer of one byte still gets every byte and stops at the end */
	body_run(CL_HEAD, S(in), NULL, 0, 1, 0, &r);
	assert_body(&r, 11, "hello world");
	/* not all there yet */
	body_run(CL_HEAD, "hello", 5, NULL, 0, 4096, 0, &r);
	assert_int_equal(r.consumed, 5);
	assert_false(r.done);
}

static const char chunked_in[] = "5;name=value\r\nhello\r\n6;flag\r\n world\r\n"
                                 "0;last=\"q s\"\r\nX-Trailer: one\r\nY:  two \r\n\r\n" NEXT;
static const size_t chunked_end = sizeof(chunked_in) - 1 - (sizeof(NEXT) - 1);

static void test_body_chunked(void **state)
{
	struct body_run r;

	body_run(CHUNK_HEAD, S(chunked_in), NULL, 0, 4096, 0, &r);
	assert_body(&r, chunked_end, "hello world");
	body_run(CHUNK_HEAD, "0\r\n\r\n" NEXT, 5 + sizeof(NEXT) - 1, NULL, 0, 4096, 0, &r);
	assert_body(&r, 5, "");
}

/* DESIGN §2a: split at every byte offset, the end of the request is found at the same byte. */
static void test_body_split_everywhere(void **state)
{
	static const char cl_in[] = "hello world" NEXT;
	struct body_run r;

	for (size_t cut = 0; cut <= sizeof(chunked_in) - 1; cut++) {
		body_run(CHUNK_HEAD, S(chunked_in), &cut, 1, 4096, 0, &r);
		assert_body(&r, chunked_end, "hello world");
		body_run(CHUNK_HEAD, S(chunked_in), &cut, 1, 3, 0, &r);
		assert_body(&r, chunked_end, "hello world");
	}
	for (size_t cut = 0; cut <= sizeof(cl_in) - 1; cut++) {
		body_run(CL_HEAD, S(cl_in), &cut, 1, 4096, 0, &r);
		assert_body(&r, 11, "hello world");
	}
	/* and one byte at a time */
	size_t cuts[sizeof(chunked_in)];
	for (size_t k = 0; k < sizeof(chunked_in) - 1; k++)
		cuts[k] = k + 1;
	body_run(CHUNK_HEAD, S(chunked_in), cuts, sizeof(chunked_in) - 1, 4096, 0, &r);
	assert_body(&r, chunked_end, "hello world");
}

static void test_body_none(void **state)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http_body *b = http_body_new(S(head), 0);
	char out[16];
	size_t got = 99;
	const char *why = NULL;

	assert_non_null(b);
	assert_true(http_body_done(b));
	assert_int_equal(http_body_feed(b, S(NEXT), out, sizeof(out), &got, &why), 0);
	assert_int_equal(got, 0);
	http_body_free(b);

	/* an upgrade request without a body is an ordinary request until the 101 */
	static const char up[] =
	    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
	b = http_body_new(S(up), 0);
	assert_non_null(b);
	assert_true(http_body_done(b));
	http_body_free(b);

	/* Content-Length: 0 */
	static const char zero[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
	b = http_body_new(S(zero), 0);
	assert_non_null(b);
	assert_true(http_body_done(b));
	http_body_free(b);
}

static void test_body_bad_heads(void **state)
{
	assert_null(http_body_new(S("GET / HTTP/1.1\r\nHost: a\r\n"), 0));     /* cut short */
	assert_null(http_body_new(S("FOO / HTTP/1.1\r\nHost: a\r\n\r\n"), 0)); /* refused */
	assert_null(
	    http_body_new(S("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"), 0)); /* past the head */
	assert_null(
	    http_body_new(S("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 0)); /* no framing */
}

/* The last chunk, then `fields` trailer lines of 48 bytes each, then the empty line. */
static char *last_chunk_with_trailers(size_t fields)
{
	static const char field[] = "X-T: 0123456789012345678901234567890123456789\r\n";
	char *s = malloc(3 + fields * (sizeof(field) - 1) + 3);
	size_t n = 3;

	assert_non_null(s);
	memcpy(s, "0\r\n", 3);
	for (size_t k = 0; k < fields; k++, n += sizeof(field) - 1)
		memcpy(s + n, field, sizeof(field) - 1);
	memcpy(s + n, "\r\n", 3);
	return s;
}

static void test_body_errors_and_caps(void **state)
{
	struct body_run r;

	body_run(CHUNK_HEAD, S("5\r\nhelloXX0\r\n\r\n"), NULL, 0, 4096, 0, &r);
	assert_int_equal(r.consumed, -1);
	assert_non_null(r.why);
	body_run(CHUNK_HEAD, S("zz\r\n"), NULL, 0, 4096, 0, &r);
	assert_int_equal(r.consumed, -1);

	/* chunk extensions: 1 KiB per chunk */
	char ext[2048];
	int n = snprintf(ext, sizeof(ext), "1;x=%0900d\r\na\r\n0\r\n\r\n", 0);
	body_run(CHUNK_HEAD, ext, (size_t)n, NULL, 0, 4096, 0, &r);
	assert_body(&r, (size_t)n, "a");
	n = snprintf(ext, sizeof(ext), "1;x=%01100d\r\na\r\n0\r\n\r\n", 0);
	body_run(CHUNK_HEAD, ext, (size_t)n, NULL, 0, 4096, 0, &r);
	assert_int_equal(r.consumed, -1);
	assert_non_null(strstr(r.why, "extension"));
	/* the cap counts across pieces too */
	size_t cuts[] = {10, 300, 700, 1000};
	body_run(CHUNK_HEAD, ext, (size_t)n, cuts, 4, 4096, 0, &r);
	assert_int_equal(r.consumed, -1);

	/* trailers: 8 KiB in all */
	char *tr = last_chunk_with_trailers(200);
	body_run(CHUNK_HEAD, tr, strlen(tr), NULL, 0, 4096, 0, &r);
	assert_int_equal(r.consumed, -1);
	assert_non_null(strstr(r.why, "trailer"));
	size_t tcuts[] = {2, 3, 4, 100, 5000};
	body_run(CHUNK_HEAD, tr, strlen(tr), tcuts, 5, 4096, 0, &r);
	assert_int_equal(r.consumed, -1);
	free(tr);
	tr = last_chunk_with_trailers(100);
	body_run(CHUNK_HEAD, tr, strlen(tr), tcuts, 5, 4096, 0, &r);
	assert_body(&r, strlen(tr), "");
	free(tr);
}

/* DESIGN §5a: the strict llhttp build refuses a lone CR inside a chunked body, where no
 * check of the head can help (test_http_head.c: llhttp itself does). */
static void test_body_lone_cr(void **state)
{
	struct body_run r;

	body_run(CHUNK_HEAD, S("5\r\nhello\r\r0\r\n\r\n"), NULL, 0, 4096, 0, &r);
	assert_int_equal(r.consumed, -1);
	assert_string_equal(r.why, "BadRequest: HPE_STRICT");
}

/* llhttp 8.1 ends a trailer section at a bare LF and takes obs-fold there; the decoder
 * refuses both, so no front end that reads lines by CRLF finds another end (found by
 * fuzz/fuzz_body.c: "0\r\n\n" ended the request, the bytes after it were the next). */
static void test_body_trailer_lines(void **state)
{
	static const char *const refused[] = {
	    "0\r\n\n" NEXT,                 /* bare LF as the empty line */
	    "0\r\nA: b\r\n\n" NEXT,         /* ... after a field */
	    "0\r\nA: b\n\r\n" NEXT,         /* bare LF ending a field */
	    "0\r\nA: b\r\n c\r\n\r\n" NEXT, /* obs-fold */
	    "0\r\nA: b\r\n\td\r\n\r\n",     /* obs-fold with a tab */
	    "0\r\n: c\r\n\r\n" NEXT,        /* empty field name */
	    "0\r\n\rX",                     /* lone CR */
	};
	struct body_run r;

	for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++) {
		for (size_t cut = 0; cut <= strlen(refused[k]); cut++) {
			body_run(CHUNK_HEAD, refused[k], strlen(refused[k]), &cut, 1, 4096, 0, &r);
			if (r.consumed != -1)
				fail_msg("case %zu cut at %zu: accepted, %zd consumed", k, cut, r.consumed);
			assert_false(r.done);
		}
	}
	/* the next request's bytes are not the trailers': a bare LF there is not judged here */
	static const char next_bad[] = "0\r\nA: b\r\n\r\nGET /\n\n";
	for (size_t cut = 0; cut <= sizeof(next_bad) - 1; cut++) {
		body_run(CHUNK_HEAD, S(next_bad), &cut, 1, 4096, 0, &r);
		assert_body(&r, sizeof(next_bad) - 1 - 7, "");
	}
}

static void test_body_max(void **state)
{
	struct body_run r;

	/* Content-Length over the limit: refused before reading anything */
	body_run(CL_HEAD, S("hello world"), NULL, 0, 4096, 10, &r);
	assert_int_equal(r.consumed, -1);
	assert_string_equal(r.why, "too large");
	body_run(CL_HEAD, "", 0, NULL, 0, 4096, 10, &r);
	assert_int_equal(r.consumed, -1);
	body_run(CL_HEAD, S("hello world"), NULL, 0, 4096, 11, &r);
	assert_body(&r, 11, "hello world");
	/* chunked: the chunk that would pass the limit */
	body_run(CHUNK_HEAD, S(chunked_in), NULL, 0, 4096, 10, &r);
	assert_int_equal(r.consumed, -1);
	assert_string_equal(r.why, "too large");
	body_run(CHUNK_HEAD, S(chunked_in), NULL, 0, 4096, 11, &r);
	assert_body(&r, chunked_end, "hello world");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_content_length),
	    cmocka_unit_test(test_body_chunked),
	    cmocka_unit_test(test_body_split_everywhere),
	    cmocka_unit_test(test_body_none),
	    cmocka_unit_test(test_body_bad_heads),
	    cmocka_unit_test(test_body_errors_and_caps),
	    cmocka_unit_test(test_body_lone_cr),
	    cmocka_unit_test(test_body_trailer_lines),
	    cmocka_unit_test(test_body_max),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
