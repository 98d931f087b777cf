/* test_canon.c: unit tests of the path canonicaliser (src/common/canon.c, DESIGN §3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canon.h"

struct canon_run {
	enum canon_result res;
	char out[4096];
	char alt[4096];
	size_t len;
	bool differs;
	const char *reason;
};

/* The input is copied to a buffer of exactly len bytes, no NUL after it, so that
 * AddressSanitizer catches any read past inlen; out and alt get exactly the promised
 * inlen + 2 bytes for the same reason. */
static void canon_run_limits(const char *in, size_t len, const struct canon_limits *lim, struct canon_run *r)
{
	char *copy = malloc(len ? len : 1);
	char *out = malloc(len + 2);
	char *alt = malloc(len + 2);

	assert_non_null(copy);
	assert_non_null(out);
	assert_non_null(alt);
	memcpy(copy, in, len);
	r->reason = NULL;
	r->differs = true;
	r->res = canon_path(copy, len, lim, out, &r->len, alt, &r->differs, &r->reason);
	assert_true(len + 2 <= sizeof(r->out));
	memcpy(r->out, out, len + 2);
	memcpy(r->alt, alt, len + 2);
	free(copy);
	free(out);
	free(alt);
}

static void canon_run(const char *in, struct canon_run *r)
{
	canon_run_limits(in, strlen(in), NULL, r);
}

/* want_alt NULL: the path has no encoded separator, alt must not be flagged. */
static void expect_ok(const char *in, const char *want, const char *want_alt)
{
	struct canon_run r;

	canon_run(in, &r);
	if (r.res != CANON_OK)
		fail_msg("\"%s\": expected \"%s\", got %d (%s)", in, want, r.res, r.reason);
	assert_string_equal(r.out, want);
	assert_int_equal(r.len, strlen(want));
	if (want_alt) {
		assert_true(r.differs);
		assert_string_equal(r.alt, want_alt);
	} else {
		assert_false(r.differs);
	}
}

static void expect_fail(const char *in, enum canon_result want)
{
	struct canon_run r;

	canon_run(in, &r);
	if (r.res != want)
		fail_msg("\"%s\": expected %d, got %d (\"%s\")", in, want, r.res, r.out);
	assert_non_null(r.reason);
	assert_true(strlen(r.reason) > 0);
	assert_string_equal(r.out, "");
	assert_false(r.differs);
}

static void test_plain_paths(void **state)
{
	expect_ok("/", "/", NULL);
	expect_ok("/a", "/a", NULL);
	expect_ok("/a/b/c", "/a/b/c", NULL);
	expect_ok("/index.html", "/index.html", NULL);
	expect_ok("/a;b=c/d:e@f/!$&'()*+,=", "/a;b=c/d:e@f/!$&'()*+,=", NULL);
	expect_ok("/...", "/...", NULL);
	expect_ok("/.a/a./..b/", "/.a/a./..b/", NULL);
}

static void test_dot_segments(void **state)
{
	expect_ok("/a/./b", "/a/b", NULL);
	expect_ok("/a/b/../c", "/a/c", NULL);
	expect_ok("/a/b/..", "/a/", NULL);
	expect_ok("/a/b/../", "/a/", NULL);
	expect_ok("/a/.", "/a/", NULL);
	expect_ok("/a/..", "/", NULL);
	expect_ok("/.", "/", NULL);
	expect_ok("/./", "/", NULL);
	expect_ok("/a/b/c/./../../g", "/a/g", NULL);
	expect_ok("/mid/content=5/../6", "/mid/6", NULL);
	expect_ok("/blog//../admin/", "/admin/", NULL);
}

static void test_encoded_dots(void **state)
{
	expect_ok("/a/%2e%2e/b", "/b", NULL);
	expect_ok("/a/%2E%2e/b", "/b", NULL);
	expect_ok("/a/%2e%2E/b", "/b", NULL);
	expect_ok("/a/.%2e/b", "/b", NULL);
	expect_ok("/a/%2e./b", "/b", NULL);
	expect_ok("/a/%2e/b", "/a/b", NULL);
	expect_ok("/a/%2e%2e%2e/b", "/a/.../b", NULL);
	expect_fail("/%2e%2e/", CANON_BAD);
	expect_fail("/%2E%2E", CANON_BAD);
	expect_fail("/a/%2e%2e/%2e%2e/x", CANON_BAD);
}

static void test_climb(void **state)
{
	expect_fail("/..", CANON_BAD);
	expect_fail("/../", CANON_BAD);
	expect_fail("/../a", CANON_BAD);
	expect_fail("/a/../..", CANON_BAD);
	expect_fail("/a/../../b/", CANON_BAD);
	expect_fail("/./..", CANON_BAD);
	expect_fail("//..", CANON_BAD);
	expect_ok("/a/b/../../c", "/c", NULL);
}

static void test_collapse(void **state)
{
	expect_ok("//", "/", NULL);
	expect_ok("///", "/", NULL);
	expect_ok("//a", "/a", NULL);
	expect_ok("/a//b", "/a/b", NULL);
	expect_ok("///a///b///", "/a/b/", NULL);
	/* collapsed before dot removal: ".." climbs over "b", not over an empty segment */
	expect_ok("/a/b//../c", "/a/c", NULL);
	expect_ok("/a/.//./b", "/a/b", NULL);
}

static void test_trailing_slash(void **state)
{
	expect_ok("/a/", "/a/", NULL);
	expect_ok("/a/b/", "/a/b/", NULL);
	expect_ok("/a/b", "/a/b", NULL);
	expect_ok("/a/b/.", "/a/b/", NULL);
	expect_ok("/a//", "/a/", NULL);
}

static void test_encoded_separators(void **state)
{
	expect_ok("/a%2Fb", "/a%2Fb", "/a/b");
	expect_ok("/a%2fb", "/a%2Fb", "/a/b");
	expect_ok("/a%5Cb", "/a%5Cb", "/a/b");
	expect_ok("/a%5cb", "/a%5Cb", "/a/b");
	expect_ok("/a\\b", "/a\\b", "/a/b");
	expect_ok("/blog%2F..%2Fadmin/", "/blog%2F..%2Fadmin/", "/admin/");
	expect_ok("/x/..\\admin", "/x/..\\admin", "/admin");
	expect_ok("/a%2F%2Fb", "/a%2F%2Fb", "/a/b");
	expect_ok("/a/b%2F", "/a/b%2F", "/a/b/");
	/* the alternative reading climbs above "/": refused whatever the primary says */
	expect_fail("/a%2F..%2F..%2Fetc", CANON_BAD);
	expect_fail("/..%5C", CANON_BAD);
	expect_fail("/a\\..\\..", CANON_BAD);
}

static void test_encoded_separator_without_alt(void **state)
{
	char out[16];
	size_t len;
	bool differs = true;
	const char *reason = NULL;

	assert_int_equal(canon_path("/a%2Fb", 6, NULL, out, &len, NULL, &differs, &reason), CANON_BAD);
	assert_non_null(reason);
	assert_false(differs);
	assert_int_equal(canon_path("/a/b", 4, NULL, out, &len, NULL, NULL, NULL), CANON_OK);
	assert_string_equal(out, "/a/b");
}

static void test_controls(void **state)
{
	expect_fail("/a%00", CANON_BAD);
	expect_fail("/%00/", CANON_BAD);
	expect_fail("/a%01b", CANON_BAD);
	expect_fail("/a%1f", CANON_BAD);
	expect_fail("/a%1F", CANON_BAD);
	expect_fail("/a%0d%0aX:%20y", CANON_BAD);
	expect_fail("/a%7f", CANON_BAD);
	expect_fail("/a%7F", CANON_BAD);
	expect_fail("/a b", CANON_BAD);
	expect_fail("/a\tb", CANON_BAD);
	expect_fail("/a\rb", CANON_BAD);
	expect_fail("/a\x7f", CANON_BAD);
	expect_fail("/\x80", CANON_BAD);
	expect_fail("/caf\xc3\xa9", CANON_BAD);
	expect_fail("/a#b", CANON_BAD);
	expect_fail("/a?b", CANON_BAD);
	expect_ok("/a%20b", "/a%20b", NULL);
	expect_ok("/a%23b%3fc", "/a%23b%3Fc", NULL);
	expect_ok("/caf%C3%A9", "/caf%C3%A9", NULL);

	/* a literal NUL inside inlen is a control byte too */
	struct canon_run r;
	canon_run_limits("/a\0b", 4, NULL, &r);
	assert_int_equal(r.res, CANON_BAD);
}

static void test_overlong_and_double_encoding(void **state)
{
	expect_ok("/%c0%ae", "/%C0%AE", NULL);
	expect_ok("/a/%c0%ae%c0%ae/b", "/a/%C0%AE%C0%AE/b", NULL);
	expect_ok("/%e0%80%ae%e0%80%ae/", "/%E0%80%AE%E0%80%AE/", NULL);
	expect_ok("/%c0%af", "/%C0%AF", NULL);
	expect_ok("/%252e%252e/", "/%252e%252e/", NULL);
	expect_ok("/a/%252e%252e/b", "/a/%252e%252e/b", NULL);
	expect_ok("/%252F", "/%252F", NULL);
	expect_ok("/%25", "/%25", NULL);
}

static void test_invalid_escapes(void **state)
{
	expect_fail("/%", CANON_BAD);
	expect_fail("/%4", CANON_BAD);
	expect_fail("/%zz", CANON_BAD);
	expect_fail("/%4g", CANON_BAD);
	expect_fail("/%g4", CANON_BAD);
	expect_fail("/a%", CANON_BAD);
	expect_fail("/a%2", CANON_BAD);
	expect_fail("/%%41", CANON_BAD);
	expect_fail("/% 1", CANON_BAD);
	expect_fail("/%+1", CANON_BAD);
}

static void test_unreserved_decoding(void **state)
{
	expect_ok("/%41%5a%61%7a%30%39", "/AZaz09", NULL);
	expect_ok("/%2d%2E%5f%7E", "/-._~", NULL);
	expect_ok("/%7euser/", "/~user/", NULL);
	/* reserved and other characters stay escaped, in upper-case hex */
	expect_ok("/%3a%40%21%24%26%27", "/%3A%40%21%24%26%27", NULL);
	expect_ok("/%3B%3d", "/%3B%3D", NULL);
	expect_ok("/%ff", "/%FF", NULL);
}

static void test_not_absolute(void **state)
{
	expect_fail("", CANON_BAD);
	expect_fail("a/b", CANON_BAD);
	expect_fail("*", CANON_BAD);
	expect_fail("%2Fa", CANON_BAD);
	expect_fail("http://h/a", CANON_BAD);
}

static char *repeat(char *dst, const char *piece, size_t times)
{
	size_t n = strlen(piece);

	for (size_t i = 0; i < times; i++)
		memcpy(dst + i * n, piece, n);
	dst[times * n] = '\0';
	return dst;
}

static void test_segment_length(void **state)
{
	char seg[1024], path[2048], want[2048];

	repeat(seg, "a", 260);
	snprintf(path, sizeof(path), "/x/%s/y", seg);
	expect_ok(path, path, NULL);
	snprintf(path, sizeof(path), "/%s", seg);
	expect_ok(path, path, NULL);

	repeat(seg, "a", 261);
	snprintf(path, sizeof(path), "/x/%s/y", seg);
	expect_fail(path, CANON_LONG);
	snprintf(path, sizeof(path), "/%s/", seg);
	expect_fail(path, CANON_LONG);

	/* measured on the canonical path: a long segment that ".." removes is fine */
	snprintf(path, sizeof(path), "/%s/../b", seg);
	expect_ok(path, "/b", NULL);
	/* "%41" is one byte once decoded: 261 of them make 261 bytes */
	repeat(seg, "%41", 260);
	snprintf(path, sizeof(path), "/%s", seg);
	snprintf(want, sizeof(want), "/%s", repeat(seg, "A", 260));
	expect_ok(path, want, NULL);
	repeat(seg, "%41", 261);
	snprintf(path, sizeof(path), "/%s", seg);
	expect_fail(path, CANON_LONG);
	/* "%3A" stays three bytes: 87 of them are 261 */
	repeat(seg, "%3A", 87);
	snprintf(path, sizeof(path), "/%s", seg);
	expect_fail(path, CANON_LONG);

	/* a custom limit is honoured */
	struct canon_limits lim = {10, 255};
	struct canon_run r;
	canon_run_limits("/0123456789", 11, &lim, &r);
	assert_int_equal(r.res, CANON_OK);
	canon_run_limits("/0123456789a", 12, &lim, &r);
	assert_int_equal(r.res, CANON_LONG);
	canon_run_limits("/0123456%2F/", 12, &lim, &r);
	assert_int_equal(r.res, CANON_OK);
	assert_string_equal(r.alt, "/0123456/");
	canon_run_limits("/01234567%2F/", 13, &lim, &r);
	assert_int_equal(r.res, CANON_LONG);
	/* a limit left at 0 is the default, not "unlimited" */
	struct canon_limits zero = {0, 0};
	repeat(seg, "a", 261);
	snprintf(path, sizeof(path), "/%s", seg);
	canon_run_limits(path, strlen(path), &zero, &r);
	assert_int_equal(r.res, CANON_LONG);
}

static void test_segment_count(void **state)
{
	char path[2048], want[2048];

	repeat(path, "/a", 255);
	expect_ok(path, path, NULL);
	repeat(path, "/a", 255);
	strcat(path, "/");
	expect_ok(path, path, NULL);
	repeat(path, "/a", 256);
	expect_fail(path, CANON_LONG);
	/* counted on the canonical path */
	repeat(path, "/a", 256);
	strcat(path, "/..");
	strcat(repeat(want, "/a", 255), "/");
	expect_ok(path, want, NULL);
	repeat(path, "//a", 255);
	expect_ok(path, repeat(want, "/a", 255), NULL);

	struct canon_limits lim = {260, 3};
	struct canon_run r;
	canon_run_limits("/a/b/c", 6, &lim, &r);
	assert_int_equal(r.res, CANON_OK);
	canon_run_limits("/a/b/c/d", 8, &lim, &r);
	assert_int_equal(r.res, CANON_LONG);
	/* the alternative form is held to the limits too */
	canon_run_limits("/a/b/c%2Fd", 10, &lim, &r);
	assert_int_equal(r.res, CANON_LONG);
}

/* Not streaming, but every length of an input must be handled without reading past
 * inlen (the ASan build checks that), and the result must be well formed. */
static void test_every_prefix_length(void **state)
{
	static const char *inputs[] = {
	    "/a/%2e%2e/b%2Fc/./d//e/", "/%c0%ae%e0%80%ae/%252e/%7e%41",
	    "/x\\y/..%5C../z%2f",      "/%zz/%4",
	    "/../a/b/../../..",        "//./..//.%2e/",
	};

	for (size_t k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
		size_t n = strlen(inputs[k]);
		for (size_t len = 0; len <= n; len++) {
			struct canon_run r;
			canon_run_limits(inputs[k], len, NULL, &r);
			if (r.res == CANON_OK) {
				assert_int_equal(strlen(r.out), r.len);
				assert_true(r.len <= len);
				assert_int_equal(r.out[0], '/');
				assert_null(strstr(r.out, "//"));
				if (r.differs)
					assert_true(strlen(r.alt) <= len);
			} else {
				assert_true(r.res == CANON_BAD || r.res == CANON_LONG);
			}
		}
	}
}

/* The canonical form is a fixed point: routing a canonical path again changes nothing. */
static void test_idempotent(void **state)
{
	static const char *inputs[] = {
	    "/a/./b/../c//d/", "/%7e%41/%3a", "/a%2Fb/../c", "/%c0%ae/x", "/a/b/..", "/%2e%2e%2e/",
	};

	for (size_t k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
		struct canon_run once, twice;
		canon_run(inputs[k], &once);
		assert_int_equal(once.res, CANON_OK);
		canon_run(once.out, &twice);
		assert_int_equal(twice.res, CANON_OK);
		assert_string_equal(twice.out, once.out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_paths),        cmocka_unit_test(test_dot_segments),
	    cmocka_unit_test(test_encoded_dots),       cmocka_unit_test(test_climb),
	    cmocka_unit_test(test_collapse),           cmocka_unit_test(test_trailing_slash),
	    cmocka_unit_test(test_encoded_separators), cmocka_unit_test(test_encoded_separator_without_alt),
	    cmocka_unit_test(test_controls),           cmocka_unit_test(test_overlong_and_double_encoding),
	    cmocka_unit_test(test_invalid_escapes),    cmocka_unit_test(test_unreserved_decoding),
	    cmocka_unit_test(test_not_absolute),       cmocka_unit_test(test_segment_length),
	    cmocka_unit_test(test_segment_count),      cmocka_unit_test(test_every_prefix_length),
	    cmocka_unit_test(test_idempotent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
