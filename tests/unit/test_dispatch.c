/* test_dispatch.c: unit tests of request dispatch (src/common/dispatch.c): from an
 * accepted head to its owner, the encoded-slash check, and what a refusal leaves. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "dispatch.h"
#include "route.h"
#include "url_prefix.h"

#define OWNER(n) ((void *)(uintptr_t)(n))

static struct route_table *routes;
static struct http_head head; /* large: not on the stack */

static int setup(void **state)
{
	static const char *const prefixes[] = {"http://+:80/blog/", "http://*:80/"};
	char err[256];

	routes = route_new();
	assert_non_null(routes);
	for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
		struct url_prefix p;
		if (url_prefix_parse(prefixes[k], &p, err, sizeof(err)) != 0)
			fail_msg("%s: %s", prefixes[k], err);
		assert_int_equal(route_add(routes, &p, OWNER(k + 1), NULL), 0);
	}
	return 0;
}

static int teardown(void **state)
{
	route_free(routes);
	return 0;
}

/* Parses req (a whole head) and routes it on 127.0.0.1:80; returns the status. */
static int route(const char *req, struct dispatch *d, char *path)
{
	static struct ps_addr local;
	static const struct canon_limits canon = CANON_LIMITS_DEFAULT;
	struct http_scan scan;
	char scratch[256];

	memset(&local, 0, sizeof(local));
	local.family = AF_INET;
	local.port = 80;
	inet_pton(AF_INET, "127.0.0.1", local.addr);
	http_scan_init(&scan);
	assert_int_equal(http_head_parse(&scan, req, strlen(req), NULL, &head), HTTP_HEAD_DONE);
	assert_true(dispatch_path_cap(&head) <= sizeof(scratch));
	memset(d, 0, sizeof(*d));
	d->buf = req;
	d->h = &head;
	d->local = &local;
	d->port = 80;
	d->canon = &canon;
	d->owner = OWNER(999); /* whatever a caller left there */
	return dispatch_route(routes, d, path, scratch);
}

static void test_routed(void **state)
{
	struct dispatch d;
	char path[256];

	assert_int_equal(route("GET /blog/%7Ex/../y HTTP/1.1\r\nHost: Example.COM\r\n\r\n", &d, path), 0);
	assert_ptr_equal(d.owner, OWNER(1));
	assert_string_equal(path, "/blog/y");
	assert_int_equal(d.path_len, 7);
	assert_string_equal(d.host, "example.com");
	/* HTTP/1.0 without Host: the local address is the host */
	assert_int_equal(route("GET /x HTTP/1.0\r\n\r\n", &d, path), 0);
	assert_ptr_equal(d.owner, OWNER(2));
	assert_string_equal(d.host, "127.0.0.1");
}

/* "/blog\up" is one segment for "*" (owner 2) and "/blog/up" for "+" (owner 1): refused,
 * and the owner the first lookup found is not left behind (found by fuzz/fuzz_head.c). */
static void test_refused_has_no_owner(void **state)
{
	struct dispatch d;
	char path[256];

	assert_int_equal(route("GET /blog\\up HTTP/1.1\r\nHost: a\r\n\r\n", &d, path), 400);
	assert_null(d.owner);
	assert_non_null(strstr(d.reason, "encoded"));
	assert_int_equal(route("GET /blog%2Fup HTTP/1.1\r\nHost: a\r\n\r\n", &d, path), 400);
	assert_null(d.owner);
	assert_int_equal(route("GET /../x HTTP/1.1\r\nHost: a\r\n\r\n", &d, path), 400);
	assert_null(d.owner);
	/* the same reading both ways is routed */
	assert_int_equal(route("GET /blog/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n", &d, path), 0);
	assert_ptr_equal(d.owner, OWNER(1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routed),
	    cmocka_unit_test(test_refused_has_no_owner),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
