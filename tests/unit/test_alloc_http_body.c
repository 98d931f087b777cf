/* test_alloc_http_body.c: the one allocation of src/common/http_body.c made to fail
 * (tests/unit/failalloc.h): http_body_new answers NULL with errno ENOMEM, which its
 * caller tells apart from a refused head (EINVAL). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "failalloc.h"
#include "http_body.h"

#define S(lit) lit, sizeof(lit) - 1

static const char chunked_head[] = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
static const char chunked_body[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

struct body_state {
	struct http_body *b;
};

static void *body_setup(void)
{
	struct body_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	return s;
}

static bool body_run(void *state)
{
	struct body_state *s = state;

	errno = 0;
	s->b = http_body_new(S(chunked_head), 0);
	if (s->b == NULL)
		assert_int_equal(errno, ENOMEM);
	return s->b != NULL;
}

static void body_check(void *state, bool done)
{
	struct body_state *s = state;
	char out[64];
	size_t got = 0;
	const char *why = NULL;

	if (!done) {
		assert_null(s->b);
		return;
	}
	assert_int_equal(http_body_feed(s->b, S(chunked_body), out, sizeof(out), &got, &why),
	                 sizeof(chunked_body) - 1);
	assert_int_equal(got, 11);
	assert_memory_equal(out, "hello world", 11);
	assert_true(http_body_done(s->b));
}

static void body_teardown(void *state)
{
	struct body_state *s = state;

	http_body_free(s->b);
	free(s);
}

static void test_body_new(void **unused)
{
	const struct failalloc_case c = {body_setup, body_run, body_check, body_teardown};

	assert_int_equal(failalloc_run(&c), 1);
}

/* A head the decoder refuses is not a memory failure: retrying cannot help. */
static void test_body_refused_head(void **unused)
{
	errno = 0;
	assert_null(http_body_new(S("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 0));
	assert_int_equal(errno, EINVAL);
}

/* Decoding a body allocates nothing: only http_body_new can fail for memory. */
static void test_body_feed_allocates_nothing(void **unused)
{
	struct http_body *b = http_body_new(S(chunked_head), 0);
	char out[4];
	size_t used = 0, got;
	const char *why = NULL;

	assert_non_null(b);
	failalloc_arm(0, false);
	while (!http_body_done(b)) {
		ssize_t n = http_body_feed(b, chunked_body + used, sizeof(chunked_body) - 1 - used, out,
		                           sizeof(out), &got, &why);
		assert_true(n >= 0);
		used += (size_t)n;
	}
	assert_int_equal(failalloc_count(), 0);
	failalloc_disarm();
	http_body_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_new),
	    cmocka_unit_test(test_body_refused_head),
	    cmocka_unit_test(test_body_feed_allocates_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
