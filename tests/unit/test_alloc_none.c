/* test_alloc_none.c: the modules that must not allocate, shown not to (with the
 * counting allocator of tests/unit/failalloc.h): url_prefix.c, canon.c, protocol.c,
 * http_head.c and dispatch.c work in the caller's buffers only, so they
 * have no allocation failure to handle. Should one start allocating, its test here
 * fails and it needs a test_alloc_<module>.c of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "canon.h"
#include "dispatch.h"
#include "failalloc.h"
#include "http_head.h"
#include "protocol.h"
#include "route.h"
#include "url_prefix.h"

#define S(lit) lit, sizeof(lit) - 1

static const char request[] =
    "GET /app/a%2Fb/../c?x=1 HTTP/1.1\r\n"
    "Host: Example.COM:8080\r\n"
    "Content-Length: 0\r\n"
    "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
    "\r\n";

static void expect_no_allocation(const char *what)
{
	unsigned long n = failalloc_count();

	failalloc_disarm();
	if (n != 0)
		fail_msg("%s made %lu allocation(s): it needs allocation-failure tests now", what, n);
}

static void test_url_prefix(void **unused)
{
	static const char *const texts[] = {
	    "http://+:8080/app/",  "https://*:443/",       "http://Example.COM:80/a/./b/../c",
	    "http://10.1.2.3:80/", "http://[fd00::1]:80/", "http://bad host:80/",
	    "http://x:99999/",     "http://x:80/a?b",      "http://x:80/%2F/",
	};
	char err[256], out[PS_PREFIX_MAX + 64];

	failalloc_arm(0, false);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct url_prefix p;
		if (url_prefix_parse(texts[i], &p, err, sizeof(err)) == 0)
			url_prefix_format(&p, out, sizeof(out));
	}
	expect_no_allocation("url_prefix_parse/format");
}

static void test_canon(void **unused)
{
	static const char *const paths[] = {"/a//b/./c/../d", "/%41%2f%5C\\x", "/../x", "/a%00", "/%zz"};
	struct canon_limits lim = CANON_LIMITS_DEFAULT;
	char out[64], alt[64];
	size_t len;
	bool alt_differs;
	const char *reason;

	failalloc_arm(0, false);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		canon_path(paths[i], strlen(paths[i]), &lim, out, &len, alt, &alt_differs, &reason);
	expect_no_allocation("canon_path");
}

static void test_protocol(void **unused)
{
	static unsigned char buf[PS_MSG_MAX];
	struct ps_msg m, back;
	const char *why;

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_DELIVER;
	m.hdr.seq = 7;
	m.u.deliver.conn_id = 1;
	m.u.deliver.req_id = 2;
	m.u.deliver.queue_id = 3;
	m.u.deliver.local.family = AF_INET;
	m.u.deliver.remote.family = AF_INET;
	m.u.deliver.head_len = sizeof(request) - 1;
	m.u.deliver.path_len = 2;
	m.u.deliver.host_len = 11;
	m.head = request;
	m.path = "/c";
	m.host = "example.com";

	failalloc_arm(0, false);
	ssize_t n = protocol_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(protocol_decode(buf, (size_t)n, &back, &why), 0);
	assert_int_equal(protocol_decode(buf, (size_t)n - 1, &back, &why), -1);
	expect_no_allocation("protocol_encode/decode");
}

/* The head parser, whole and grown byte by byte, accepted and refused. */
static void test_http_head(void **unused)
{
	static const char refused[] = "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n";
	struct http_limits lim = HTTP_LIMITS_DEFAULT;
	struct http_scan scan;
	static struct http_head h;

	failalloc_arm(0, false);
	http_scan_init(&scan);
	assert_int_equal(http_head_parse(&scan, S(request), &lim, &h), HTTP_HEAD_DONE);
	http_scan_init(&scan);
	for (size_t n = 1; n < sizeof(request) - 1; n++)
		assert_int_equal(http_head_parse(&scan, request, n, &lim, &h), HTTP_HEAD_INCOMPLETE);
	http_scan_init(&scan);
	assert_int_equal(http_head_parse(&scan, S(refused), &lim, &h), HTTP_HEAD_ERROR);
	expect_no_allocation("http_head_parse");
}

static void test_dispatch(void **unused)
{
	struct route_table *t = route_new();
	struct url_prefix p;
	char err[256];
	struct http_limits lim = HTTP_LIMITS_DEFAULT;
	struct canon_limits canon = CANON_LIMITS_DEFAULT;
	struct http_scan scan;
	static struct http_head h;
	struct ps_addr local = {.family = AF_INET};

	assert_non_null(t);
	assert_int_equal(url_prefix_parse("http://example.com:8080/app/", &p, err, sizeof(err)), 0);
	assert_int_equal(route_add(t, &p, t, NULL), 0);
	http_scan_init(&scan);
	assert_int_equal(http_head_parse(&scan, S(request), &lim, &h), HTTP_HEAD_DONE);
	struct dispatch d = {.buf = request, .h = &h, .local = &local, .port = 8080, .canon = &canon};
	char path[sizeof(request)], scratch[sizeof(request)];
	assert_true(dispatch_path_cap(&h) <= sizeof(path));

	failalloc_arm(0, false);
	dispatch_route(t, &d, path, scratch);
	expect_no_allocation("dispatch_route");
	route_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_prefix), cmocka_unit_test(test_canon),
	    cmocka_unit_test(test_protocol),   cmocka_unit_test(test_http_head),
	    cmocka_unit_test(test_dispatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
