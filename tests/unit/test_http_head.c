/* test_http_head.c: unit tests of the request head parser (src/common/http_head.c,
 * DESIGN §5, §5a). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llhttp.h"

#include "http_head.h"

#define S(lit) lit, sizeof(lit) - 1

static const struct http_limits defaults = HTTP_LIMITS_DEFAULT;

/* One call on a private copy of exactly len bytes (no NUL after), so AddressSanitizer
 * catches a read past len. */
static enum http_head_result parse_call(struct http_scan *s, const char *req, size_t len,
                                        const struct http_limits *lim, struct http_head *h)
{
	char *copy = malloc(len ? len : 1);

	assert_non_null(copy);
	memcpy(copy, req, len);
	enum http_head_result r = http_head_parse(s, copy, len, lim, h);
	free(copy);
	return r;
}

static enum http_head_result parse_whole(const char *req, size_t len, const struct http_limits *lim,
                                         struct http_head *h)
{
	struct http_scan s;

	http_scan_init(&s);
	return parse_call(&s, req, len, lim, h);
}

/* The same request grown one byte per call: the result must not depend on how the bytes arrived. */
static enum http_head_result parse_bytewise(const char *req, size_t len, const struct http_limits *lim,
                                            struct http_head *h)
{
	struct http_scan s;
	enum http_head_result r = HTTP_HEAD_INCOMPLETE;

	http_scan_init(&s);
	for (size_t n = 1; n <= len && r == HTTP_HEAD_INCOMPLETE; n++)
		r = parse_call(&s, req, n, lim, h);
	return r;
}

static void assert_span_equal(struct http_span a, struct http_span b)
{
	assert_int_equal(a.off, b.off);
	assert_int_equal(a.len, b.len);
}

static void assert_same_head(const struct http_head *a, const struct http_head *b)
{
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->action, b->action);
	if (a->reason || b->reason)
		assert_string_equal(a->reason, b->reason);
	if (a->status != 0)
		return;
	assert_int_equal(a->skip, b->skip);
	assert_int_equal(a->head_len, b->head_len);
	assert_int_equal(a->method, b->method);
	assert_int_equal(a->version_major, b->version_major);
	assert_int_equal(a->version_minor, b->version_minor);
	assert_span_equal(a->method_s, b->method_s);
	assert_span_equal(a->target, b->target);
	assert_span_equal(a->path, b->path);
	assert_span_equal(a->query, b->query);
	assert_int_equal(a->absolute_form, b->absolute_form);
	assert_int_equal(a->asterisk_form, b->asterisk_form);
	assert_string_equal(a->host, b->host);
	assert_int_equal(a->host_port, b->host_port);
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->chunked, b->chunked);
	assert_int_equal(a->keep_alive, b->keep_alive);
	assert_int_equal(a->upgrade, b->upgrade);
	assert_int_equal(a->expect_continue, b->expect_continue);
	assert_int_equal(a->nfields, b->nfields);
	for (uint32_t k = 0; k < a->nfields; k++) {
		assert_span_equal(a->fields[k].name, b->fields[k].name);
		assert_span_equal(a->fields[k].value, b->fields[k].value);
	}
}

/* Parses whole and byte by byte, checks both agree, and returns the whole result. */
static enum http_head_result parse_both(const char *req, size_t len, const struct http_limits *lim,
                                        struct http_head *h)
{
	static struct http_head h2;
	enum http_head_result r = parse_whole(req, len, lim, h);

	assert_int_equal(parse_bytewise(req, len, lim, &h2), r);
	assert_same_head(h, &h2);
	return r;
}

static bool span_is(const char *buf, struct http_span sp, const char *want)
{
	return sp.len == strlen(want) && memcmp(buf + sp.off, want, sp.len) == 0;
}

struct refusal {
	const char *req;
	int status;
	enum http_action action;
	const char *reason; /* prefix */
};

static void check_refusals(const struct refusal *t, size_t n, const struct http_limits *lim)
{
	static struct http_head h;

	for (size_t k = 0; k < n; k++) {
		enum http_head_result r = parse_both(t[k].req, strlen(t[k].req), lim, &h);
		if (r != HTTP_HEAD_ERROR || h.status != t[k].status || h.action != t[k].action ||
		    strncmp(h.reason, t[k].reason, strlen(t[k].reason)) != 0)
			fail_msg("case %zu %s: result %d status %d action %d reason %s", k, t[k].req, r,
			         h.status, h.action, h.reason ? h.reason : "(null)");
	}
}

static void test_accept_basic(void **state)
{
	static const char req[] = "GET /a/b?x=1&y HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Pad:  v w \t\r\n"
	                          "Empty:\r\n\r\n";
	static struct http_head h;

	assert_int_equal(parse_both(S(req), &defaults, &h), HTTP_HEAD_DONE);
	assert_int_equal(h.status, 0);
	assert_int_equal(h.skip, 0);
	assert_int_equal(h.head_len, sizeof(req) - 1);
	assert_int_equal(h.method, HTTP_GET);
	assert_int_equal(h.version_major, 1);
	assert_int_equal(h.version_minor, 1);
	assert_true(span_is(req, h.method_s, "GET"));
	assert_true(span_is(req, h.target, "/a/b?x=1&y"));
	assert_true(span_is(req, h.path, "/a/b"));
	assert_true(span_is(req, h.query, "x=1&y"));
	assert_false(h.absolute_form);
	assert_false(h.asterisk_form);
	assert_string_equal(h.host, "example.com");
	assert_int_equal(h.host_port, 8080);
	assert_int_equal(h.content_length, -1);
	assert_false(h.chunked);
	assert_true(h.keep_alive);
	assert_false(h.upgrade);
	assert_false(h.expect_continue);
	assert_int_equal(h.nfields, 3);
	assert_true(span_is(req, h.fields[0].name, "Host"));
	assert_true(span_is(req, h.fields[1].value, "v w"));
	assert_true(span_is(req, h.fields[2].name, "Empty"));
	assert_int_equal(h.fields[2].value.len, 0);
	const struct http_field *f = http_head_field(&h, req, "x-pad");
	assert_non_null(f);
	assert_ptr_equal(f, &h.fields[1]);
	assert_null(http_head_field(&h, req, "x-pa"));
}

/* The head ends exactly at the empty line; whatever follows (a body, the next request) is not part of it. */
static void test_accept_with_tail(void **state)
{
	static const char req[] =
	    "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n";
	static struct http_head h;

	assert_int_equal(parse_both(S(req), &defaults, &h), HTTP_HEAD_DONE);
	assert_int_equal(h.head_len, strstr(req, "hello") - req);
	assert_int_equal(h.content_length, 5);
	assert_int_equal(h.method, HTTP_POST);
	/* a repeated call on the same bytes finds the same head */
	struct http_scan s;
	static struct http_head h2;
	http_scan_init(&s);
	assert_int_equal(parse_call(&s, S(req), &defaults, &h2), HTTP_HEAD_DONE);
	assert_int_equal(parse_call(&s, S(req), &defaults, &h2), HTTP_HEAD_DONE);
	assert_same_head(&h, &h2);
}

static void test_nothing_yet(void **state)
{
	struct http_scan s;
	static struct http_head h;

	http_scan_init(&s);
	assert_int_equal(http_head_parse(&s, NULL, 0, NULL, &h), HTTP_HEAD_INCOMPLETE);
	assert_int_equal(parse_call(&s, S("\r"), NULL, &h), HTTP_HEAD_INCOMPLETE);
	assert_int_equal(parse_call(&s, S("\r\nGET / HTTP/1.1\r"), NULL, &h), HTTP_HEAD_INCOMPLETE);
	assert_int_equal(s.skip, 2);
	assert_int_equal(parse_call(&s, S("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), NULL, &h),
	                 HTTP_HEAD_DONE);
}

static void test_leading_crlf_skipped(void **state)
{
	static const char req[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	static struct http_head h;

	assert_int_equal(parse_both(S(req), &defaults, &h), HTTP_HEAD_DONE);
	assert_int_equal(h.skip, 4);
	assert_int_equal(h.head_len, sizeof(req) - 1 - 4);
	assert_true(span_is(req, h.method_s, "GET"));
	assert_true(span_is(req, h.fields[0].value, "a"));
}

static void test_http10_and_keep_alive(void **state)
{
	static struct http_head h;

	assert_int_equal(parse_both(S("GET / HTTP/1.0\r\n\r\n"), &defaults, &h), HTTP_HEAD_DONE);
	assert_string_equal(h.host, "");
	assert_int_equal(h.host_port, -1);
	assert_int_equal(h.version_minor, 0);
	assert_false(h.keep_alive);
	assert_int_equal(parse_both(S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), &defaults, &h),
	                 HTTP_HEAD_DONE);
	assert_true(h.keep_alive);
	assert_int_equal(
	    parse_both(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &defaults, &h),
	    HTTP_HEAD_DONE);
	assert_false(h.keep_alive);
	/* RFC 9112 §6.1: chunked in HTTP/1.0 is read, then the connection closes */
	assert_int_equal(
	    parse_both(S("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"),
	               &defaults, &h),
	    HTTP_HEAD_DONE);
	assert_true(h.chunked);
	assert_false(h.keep_alive);
}

static void test_absolute_form_host_wins(void **state)
{
	static const char req[] = "GET HTTP://Example.ORG:81/p/q?z HTTP/1.1\r\nHost: other.example\r\n\r\n";
	static struct http_head h;

	assert_int_equal(parse_both(S(req), &defaults, &h), HTTP_HEAD_DONE);
	assert_true(h.absolute_form);
	assert_string_equal(h.host, "example.org");
	assert_int_equal(h.host_port, 81);
	assert_true(span_is(req, h.path, "/p/q"));
	assert_true(span_is(req, h.query, "z"));

	static const char bare[] = "GET https://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n";
	assert_int_equal(parse_both(S(bare), &defaults, &h), HTTP_HEAD_DONE);
	assert_string_equal(h.host, "a.example");
	assert_int_equal(h.path.len, 0); /* read as "/" */
	assert_int_equal(h.query.len, 0);

	static const char query[] = "GET http://a.example?x HTTP/1.1\r\nHost: a.example\r\n\r\n";
	assert_int_equal(parse_both(S(query), &defaults, &h), HTTP_HEAD_DONE);
	assert_int_equal(h.path.len, 0);
	assert_true(span_is(query, h.query, "x"));

	/* a valid Host is checked (RFC 9112 §3.2) but changes neither host nor port */
	static const char ports[] = "GET http://a.example:81/ HTTP/1.1\r\nHost: b.example:82\r\n\r\n";
	assert_int_equal(parse_both(S(ports), &defaults, &h), HTTP_HEAD_DONE);
	assert_string_equal(h.host, "a.example");
	assert_int_equal(h.host_port, 81);
}

static void test_options_asterisk(void **state)
{
	static const char req[] = "OPTIONS * HTTP/1.1\r\nHost: a.example:80\r\n\r\n";
	static struct http_head h;

	assert_int_equal(parse_both(S(req), &defaults, &h), HTTP_HEAD_DONE);
	assert_true(h.asterisk_form);
	assert_int_equal(h.method, HTTP_OPTIONS);
	assert_true(span_is(req, h.path, "*"));
	assert_string_equal(h.host, "a.example");
	assert_int_equal(h.host_port, 80);
}

static void test_framing_flags(void **state)
{
	static struct http_head h;

	assert_int_equal(
	    parse_both(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"), &defaults, &h),
	    HTTP_HEAD_DONE);
	assert_true(h.chunked);
	assert_int_equal(h.content_length, -1);
	assert_int_equal(
	    parse_both(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &defaults, &h),
	    HTTP_HEAD_DONE);
	assert_int_equal(h.content_length, 0);
	assert_int_equal(
	    parse_both(S("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"),
	               &defaults, &h),
	    HTTP_HEAD_DONE);
	assert_int_equal(h.content_length, INT64_MAX);
	assert_int_equal(
	    parse_both(S("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
	               &defaults, &h),
	    HTTP_HEAD_DONE);
	assert_true(h.upgrade);
	assert_int_equal(
	    parse_both(S("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), &defaults, &h),
	    HTTP_HEAD_DONE);
	assert_false(h.upgrade);
	assert_int_equal(
	    parse_both(S("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n"),
	               &defaults, &h),
	    HTTP_HEAD_DONE);
	assert_true(h.expect_continue);
}

static void test_hosts(void **state)
{
	static struct http_head h;

	assert_int_equal(parse_both(S("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), &defaults, &h),
	                 HTTP_HEAD_DONE);
	assert_string_equal(h.host, "[::1]");
	assert_int_equal(h.host_port, 8080);
	assert_int_equal(parse_both(S("GET / HTTP/1.1\r\nHost: [2001:DB8::A]\r\n\r\n"), &defaults, &h),
	                 HTTP_HEAD_DONE);
	assert_string_equal(h.host, "[2001:db8::a]");
	assert_int_equal(h.host_port, -1);
	assert_int_equal(parse_both(S("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), &defaults, &h),
	                 HTTP_HEAD_DONE);
	assert_string_equal(h.host, "127.0.0.1");
	assert_int_equal(parse_both(S("GET / HTTP/1.1\r\nHost: \r\n\r\n"), &defaults, &h), HTTP_HEAD_DONE);
	assert_string_equal(h.host, "");
	assert_int_equal(parse_both(S("GET / HTTP/1.1\r\nHost: a%2Db:\r\n\r\n"), &defaults, &h),
	                 HTTP_HEAD_DONE);
	assert_string_equal(h.host, "a%2db");
	assert_int_equal(h.host_port, -1);
}

/* DESIGN §5a: the strict build refuses a lone CR; the default build takes each of these
 * (CVE-2023-30589), the last one inside a chunked body, where the pre-scan of the head
 * cannot help. */
static void test_llhttp_is_strict(void **state)
{
	static const char *const lone_cr[] = {
	    "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nX:\r\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\r0\r\n\r\n",
	};
	llhttp_settings_t settings;
	llhttp_t p;

	llhttp_settings_init(&settings);
	for (size_t k = 0; k < sizeof(lone_cr) / sizeof(lone_cr[0]); k++) {
		llhttp_init(&p, HTTP_REQUEST, &settings);
		assert_int_equal(llhttp_execute(&p, lone_cr[k], strlen(lone_cr[k])), HPE_STRICT);
	}
}

static void test_refused_line_breaks(void **state)
{
	static const struct refusal t[] = {
	    {"GET / HTTP/1.1\r\nHost: a\rX-Smuggled: 1\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: lone CR"},
	    {"GET / HTTP/1.1\rHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: lone CR"},
	    {"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: lone CR"},
	    {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: bare LF"},
	    {"GET / HTTP/1.1\r\nHost: a\r\n\n", 400, HTTP_RESPOND, "BadRequest: bare LF"},
	    {"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: bare LF"},
	    {"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: bare LF"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Content-Length: 5\r\n\r\nhello", 400, HTTP_RESPOND,
	     "BadRequest: obs-fold"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n\tContent-Length: 5\r\n\r\nhello", 400, HTTP_RESPOND,
	     "BadRequest: obs-fold"},
	    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: obs-fold"},
	};
	check_refusals(t, sizeof(t) / sizeof(t[0]), &defaults);
}

static void test_refused_request_line(void **state)
{
	static const struct refusal t[] = {
	    {"GET /\r\n", 400, HTTP_DROP, "BadRequest: HTTP/0.9"},
	    {"GET /index.html\r\n\r\n", 400, HTTP_DROP, "BadRequest: HTTP/0.9"},
	    {"GET /?x\r\n", 400, HTTP_DROP, "BadRequest: HTTP/0.9"},
	    /* two tokens, but no origin-form target: a malformed request line, not HTTP/0.9 */
	    {"GET HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET HTTP/1.1\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET HTTP/1.0\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET http://a.example/\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET *\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"OPTIONS *\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"CONNECT a.example:443\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET ?/admin/\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    /* one SP, but not HTTP/0.9: a lenient parser reads the HTAB as SP and sees HTTP/1.1 */
	    {"GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET /a\x01"
	     "b\r\n\r\n",
	     400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET /caf\xc3\xa9\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, HTTP_GOAWAY, "Version_N/S"},
	    {"PRI * HTTP/2.0\r\n", 505, HTTP_GOAWAY, "Version_N/S"},
	    {"PRI / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: HPE_"},
	    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, HTTP_RESPOND, "Version_N/S"},
	    {"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, HTTP_RESPOND, "Version_N/S"},
	    {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, HTTP_RESPOND, "Version_N/S"},
	    {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505, HTTP_RESPOND, "Version_N/S"},
	    {"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: version"},
	    {"GET / http/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: version"},
	    {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: "},
	    {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"GET \r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {" GET / HTTP/1.1\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: request line"},
	    {"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 405, HTTP_RESPOND,
	     "Verb CONNECT"},
	    {"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501, HTTP_RESPOND, "Verb"},
	    {"get / HTTP/1.1\r\nHost: a\r\n\r\n", 501, HTTP_RESPOND, "Verb"},
	    {"GETX / HTTP/1.1\r\nHost: a\r\n\r\n", 501, HTTP_RESPOND, "Verb"},
	    {"DESCRIBE / HTTP/1.1\r\nHost: a\r\n\r\n", 501, HTTP_RESPOND, "Verb"},
	    {"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: HPE_INVALID_METHOD"},
	    {"\x16\x03\x01\x02\x00\x01\x00", 400, HTTP_RESPOND, "BadRequest: HPE_INVALID_METHOD"},
	    {"HTTP/1.1 200 OK\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: HPE_INVALID_METHOD"},
	    {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: asterisk-form"},
	    {"GET a.example:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND,
	     "BadRequest: HPE_INVALID_URL"},
	    {"GET ftp://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND,
	     "BadRequest: request-target"},
	    {"GET http://user@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND,
	     "BadRequest: userinfo"},
	    {"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: target host"},
	    {"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: HPE_INVALID_URL"},
	};
	check_refusals(t, sizeof(t) / sizeof(t[0]), &defaults);
}

static void test_refused_fields(void **state)
{
	static const struct refusal t[] = {
	    {"GET / HTTP/1.1\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: missing Host"},
	    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: duplicate Host"},
	    {"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: duplicate Host"},
	    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: Host"},
	    {"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: Host"},
	    {"GET / HTTP/1.1\r\nHost: a:1x\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: Host"},
	    {"GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: Host"},
	    {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: Host"},
	    {"GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: Host"},
	    {"GET / HTTP/1.1\r\nHost: a\xff\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: Host"},
	    /* RFC 9112 §3.2: an invalid Host is 400 even when the absolute-form authority wins */
	    {"GET http://a.example/ HTTP/1.1\r\nHost: a b\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: Host"},
	    {"GET http://a.example/ HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400, HTTP_RESPOND,
	     "BadRequest: Host"},
	    {"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: empty header name"},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n", 400, HTTP_RESPOND,
	     "BadRequest: HPE_INVALID_HEADER_TOKEN"},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400, HTTP_RESPOND,
	     "BadRequest: HPE_INVALID_HEADER_TOKEN"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
	     HTTP_RESPOND, "BadRequest: "},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: "},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: "},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: "},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400, HTTP_RESPOND, "BadRequest: "},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, HTTP_RESPOND,
	     "BadRequest: "},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", 400, HTTP_RESPOND,
	     "BadRequest: Content-Length"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
	     HTTP_RESPOND, "BadRequest: "},
	    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
	     HTTP_RESPOND, "BadRequest: "},
	};
	check_refusals(t, sizeof(t) / sizeof(t[0]), &defaults);
}

static void test_refused_transfer_encoding(void **state)
{
#define TE(v) "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " v "\r\n\r\n"
	static const struct refusal t[] = {
	    {TE("identity, chunked"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE("chunked, identity"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE("chunked, chunked"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE("gzip, chunked"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE("gzip"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE("identity"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE(",chunked"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE("chunked,"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE(""), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE("chunked;q=1"), 400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {TE("xchunked"), 501, HTTP_RESPOND, "TransferEncoding unknown"},
	    {TE("chunked, xfoo"), 501, HTTP_RESPOND, "TransferEncoding unknown"},
	    {TE("br"), 501, HTTP_RESPOND, "TransferEncoding unknown"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	     400, HTTP_RESPOND, "TransferEncoding not chunked"},
	    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
	     400, HTTP_RESPOND, "TransferEncoding not chunked"},
	};
#undef TE
	check_refusals(t, sizeof(t) / sizeof(t[0]), &defaults);
}

static char *repeat(const char *head, const char *unit, size_t times, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * times + tl + 1);

	assert_non_null(s);
	memcpy(s, head, hl);
	for (size_t k = 0; k < times; k++)
		memcpy(s + hl + k * ul, unit, ul);
	memcpy(s + hl + ul * times, tail, tl + 1);
	return s;
}

static void test_size_limits(void **state)
{
	static const struct http_limits small = {64, 64};
	static struct http_head h;

	/* exactly 64 bytes fits; one more does not */
	static const char fits[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789012345678901234567\r\n\r\n";
	assert_int_equal(sizeof(fits) - 1, 64);
	assert_int_equal(parse_both(S(fits), &small, &h), HTTP_HEAD_DONE);
	static const char over[] =
	    "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 01234567890123456789012345678\r\n\r\n";
	assert_int_equal(parse_both(S(over), &small, &h), HTTP_HEAD_ERROR);
	assert_int_equal(h.status, 431);
	assert_string_equal(h.reason, "Header");

	/* a request line not complete within the limit is 414, even before it ends */
	char *longline = repeat("GET /", "a", 80, "");
	assert_int_equal(parse_both(longline, strlen(longline), &small, &h), HTTP_HEAD_ERROR);
	assert_int_equal(h.status, 414);
	assert_string_equal(h.reason, "URL");
	free(longline);

	/* a head not complete within the limit is 431, even before it ends */
	static const char endless[] =
	    "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8";
	assert_int_equal(parse_both(S(endless), &small, &h), HTTP_HEAD_ERROR);
	assert_int_equal(h.status, 431);

	/* one line over max_field_length */
	static const struct http_limits field = {1024, 32};
	char *longfield = repeat("GET / HTTP/1.1\r\nHost: a\r\nX: ", "b", 30, "\r\n\r\n");
	assert_int_equal(parse_both(longfield, strlen(longfield), &field, &h), HTTP_HEAD_ERROR);
	assert_int_equal(h.status, 431);
	free(longfield);
	char *okfield = repeat("GET / HTTP/1.1\r\nHost: a\r\nX: ", "b", 29, "\r\n\r\n");
	assert_int_equal(parse_both(okfield, strlen(okfield), &field, &h), HTTP_HEAD_DONE);
	free(okfield);

	/* field count */
	char *many = repeat("GET / HTTP/1.1\r\nHost: a\r\n", "X: y\r\n", HTTP_MAX_FIELDS - 1, "\r\n");
	assert_int_equal(parse_both(many, strlen(many), &defaults, &h), HTTP_HEAD_DONE);
	assert_int_equal(h.nfields, HTTP_MAX_FIELDS);
	free(many);
	char *toomany = repeat("GET / HTTP/1.1\r\nHost: a\r\n", "X: y\r\n", HTTP_MAX_FIELDS, "\r\n");
	assert_int_equal(parse_both(toomany, strlen(toomany), &defaults, &h), HTTP_HEAD_ERROR);
	assert_int_equal(h.status, 431);
	free(toomany);

	/* the defaults: a 16 KiB request line */
	char *url = repeat("GET /", "u", 16400, " HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(parse_whole(url, strlen(url), NULL, &h), HTTP_HEAD_ERROR);
	assert_int_equal(h.status, 414);
	free(url);
}

static void test_status_and_methods(void **state)
{
	static const int used[] = {100, 101, 200, 201, 204, 206, 301, 302, 304, 400, 403, 404,
	                           405, 408, 411, 413, 414, 417, 431, 500, 501, 502, 503, 505};
	for (size_t k = 0; k < sizeof(used) / sizeof(used[0]); k++)
		assert_string_not_equal(http_status_text(used[k]), "Unknown");
	assert_string_equal(http_status_text(404), "Not Found");
	assert_string_equal(http_status_text(799), "Unknown");
	assert_true(http_method_idempotent(HTTP_GET));
	assert_true(http_method_idempotent(HTTP_PUT));
	assert_true(http_method_idempotent(HTTP_DELETE));
	assert_true(http_method_idempotent(HTTP_OPTIONS));
	assert_true(http_method_idempotent(HTTP_TRACE));
	assert_true(http_method_idempotent(HTTP_HEAD));
	assert_false(http_method_idempotent(HTTP_POST));
	assert_false(http_method_idempotent(HTTP_PATCH));
	assert_string_equal(http_method_name(HTTP_PROPFIND), "PROPFIND");
	assert_string_equal(http_method_name(200), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accept_basic),
	    cmocka_unit_test(test_accept_with_tail),
	    cmocka_unit_test(test_nothing_yet),
	    cmocka_unit_test(test_leading_crlf_skipped),
	    cmocka_unit_test(test_http10_and_keep_alive),
	    cmocka_unit_test(test_absolute_form_host_wins),
	    cmocka_unit_test(test_options_asterisk),
	    cmocka_unit_test(test_framing_flags),
	    cmocka_unit_test(test_hosts),
	    cmocka_unit_test(test_llhttp_is_strict),
	    cmocka_unit_test(test_refused_line_breaks),
	    cmocka_unit_test(test_refused_request_line),
	    cmocka_unit_test(test_refused_fields),
	    cmocka_unit_test(test_refused_transfer_encoding),
	    cmocka_unit_test(test_size_limits),
	    cmocka_unit_test(test_status_and_methods),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
