/* test_url_prefix.c: unit tests of URL prefix parsing and printing (src/common/url_prefix.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "url_prefix.h"
#include "prefix_ok.h"

/* The message must exist and name what to fix: `hint` is a part of it. */
static void parse_fails(const char *s, const char *hint)
{
	struct url_prefix p;
	char err[256];

	if (url_prefix_parse(s, &p, err, sizeof(err)) != -1)
		fail_msg("\"%s\" accepted as path \"%s\"", s, p.path);
	if (strstr(err, hint) == NULL)
		fail_msg("\"%s\": message \"%s\" does not say \"%s\"", s, err, hint);
}

static void expect_format(const char *in, const char *want)
{
	struct url_prefix p = prefix_ok(in);
	char buf[PS_PREFIX_MAX + 64];

	assert_int_equal(url_prefix_format(&p, buf, sizeof(buf)), (int)strlen(want));
	assert_string_equal(buf, want);
	/* the printed form parses back to the same prefix */
	struct url_prefix again = prefix_ok(buf);
	assert_memory_equal(&again, &p, sizeof(p));
}

static void test_wildcards(void **state)
{
	struct url_prefix p = prefix_ok("http://+:8080/app/");
	assert_false(p.https);
	assert_int_equal(p.cls, HOST_STRONG);
	assert_int_equal(p.port, 8080);
	assert_string_equal(p.path, "/app/");

	p = prefix_ok("http://*:80/");
	assert_int_equal(p.cls, HOST_WEAK);
	assert_int_equal(p.port, 80);
	assert_string_equal(p.path, "/");

	p = prefix_ok("HTTPS://+:443/secure/");
	assert_true(p.https);
	assert_int_equal(p.port, 443);

	p = prefix_ok("hTtP://*:1/");
	assert_int_equal(p.port, 1);
	p = prefix_ok("http://*:65535/");
	assert_int_equal(p.port, 65535);
}

static void test_names(void **state)
{
	struct url_prefix p = prefix_ok("http://Example.COM:8080/a/");
	assert_int_equal(p.cls, HOST_NAME);
	assert_string_equal(p.host, "example.com");

	p = prefix_ok("http://example.com.:80/");
	assert_string_equal(p.host, "example.com");
	p = prefix_ok("http://localhost:80/");
	assert_string_equal(p.host, "localhost");
	p = prefix_ok("http://a-b.c0.example:80/");
	assert_string_equal(p.host, "a-b.c0.example");
	p = prefix_ok("http://123.example:80/");
	assert_string_equal(p.host, "123.example");

	char host[300], url[400];
	memset(host, 'a', 63);
	host[63] = '\0';
	snprintf(url, sizeof(url), "http://%s.com:80/", host);
	prefix_ok(url);
	memset(host, 'a', 64);
	host[64] = '\0';
	snprintf(url, sizeof(url), "http://%s.com:80/", host);
	parse_fails(url, "63");

	/* 253 bytes in all: three labels of 63 and one of 61 */
	snprintf(host, sizeof(host), "%.63s.%.63s.%.63s.%.61s", url + 7, url + 7, url + 7, url + 7);
	assert_int_equal(strlen(host), 253);
	snprintf(url, sizeof(url), "http://%s:80/", host);
	prefix_ok(url);
	snprintf(url, sizeof(url), "http://%s.:80/", host);
	prefix_ok(url);
	snprintf(url, sizeof(url), "http://%sa:80/", host);
	parse_fails(url, "253");
}

static void test_bad_names(void **state)
{
	parse_fails("http://exa_mple.com:80/", "letters, digits");
	parse_fails("http://exa mple:80/", "letters, digits");
	parse_fails("http://a..b:80/", "empty label");
	parse_fails("http://.a:80/", "empty label");
	parse_fails("http://a.com..:80/", "empty label");
	parse_fails("http://-a.com:80/", "'-'");
	parse_fails("http://a-.com:80/", "'-'");
	parse_fails("http://:80/", "host is empty");
	parse_fails("http://.:80/", "host is empty");
	parse_fails("http://%41:80/", "letters, digits");
	parse_fails("http://++:80/", "letters, digits");
	parse_fails("http://*.example.com:80/", "letters, digits");
}

static void test_ipv4(void **state)
{
	static const uint8_t want[4] = {127, 0, 0, 2};
	struct url_prefix p = prefix_ok("http://127.0.0.2:8080/x/");

	assert_int_equal(p.cls, HOST_IP);
	assert_int_equal(p.ip.family, AF_INET);
	assert_int_equal(p.ip.port, 0);
	assert_memory_equal(p.ip.addr, want, 4);
	assert_string_equal(p.host, "127.0.0.2");

	prefix_ok("http://0.0.0.0:80/");
	prefix_ok("http://255.255.255.255:80/");
	parse_fails("http://256.1.1.1:80/", "IPv4");
	parse_fails("http://1.2.3:80/", "IPv4");
	parse_fails("http://127.1:80/", "IPv4");
	parse_fails("http://01.2.3.4:80/", "IPv4");
	parse_fails("http://1.2.3.4.5:80/", "IPv4");
	parse_fails("http://0x7f.0.0.1:80/", "IPv4");
}

static void test_ipv6(void **state)
{
	static const uint8_t loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	struct url_prefix p = prefix_ok("http://[::1]:8080/");

	assert_int_equal(p.cls, HOST_IP);
	assert_int_equal(p.ip.family, AF_INET6);
	assert_int_equal(p.ip.port, 0);
	assert_memory_equal(p.ip.addr, loop, 16);
	assert_string_equal(p.host, "::1");
	assert_int_equal(p.port, 8080);

	p = prefix_ok("http://[2001:DB8:0:0:0:0:0:1]:80/a/");
	assert_string_equal(p.host, "2001:db8::1");

	parse_fails("http://[::1:8080/", "IPv6");
	parse_fails("http://[::g]:80/", "IPv6");
	parse_fails("http://[]:80/", "IPv6");
	parse_fails("http://[127.0.0.1]:80/", "IPv6");
	parse_fails("http://[fe80::1%25eth0]:80/", "IPv6");
	parse_fails("http://[::1]:/", "port is required");
	parse_fails("http://[::1]/", "port is required");
	parse_fails("http://::1:80/", "letters, digits");
}

static void test_ports(void **state)
{
	parse_fails("http://+/app/", "port is required: http://+:8080/app/");
	parse_fails("http://+", "port is required");
	parse_fails("http://example.com/", "port is required");
	parse_fails("http://+:/", "port is required");
	parse_fails("http://+:0/", "1 to 65535");
	parse_fails("http://+:65536/", "1 to 65535");
	parse_fails("http://+:99999/", "1 to 65535");
	parse_fails("http://+:123456/", "1 to 65535");
	parse_fails("http://+:08080/", "no leading zero");
	parse_fails("http://+:00/", "no leading zero");
	parse_fails("http://+:80a/", "digits only");
	parse_fails("http://+:-1/", "digits only");
	parse_fails("http://+:+80/", "digits only");
	parse_fails("http://+: 80/", "digits only");
	parse_fails("http://+:80:81/", "letters, digits");
}

static void test_scheme_userinfo_query(void **state)
{
	parse_fails("+:8080/app/", "http://");
	parse_fails("ftp://+:21/", "http://");
	parse_fails("http:/+:80/", "http://");
	parse_fails("//+:80/", "http://");
	parse_fails("", "http://");
	parse_fails("http://user@+:80/", "user name");
	parse_fails("http://user:pw@example.com:80/", "user name");
	parse_fails("http://+:80/a?b=c", "query");
	parse_fails("http://+:80?x", "query");
	parse_fails("http://+:80/a#frag", "fragment");
	parse_fails("http://+:80#frag", "fragment");

	struct url_prefix p;
	assert_int_equal(url_prefix_parse(NULL, &p, NULL, 0), -1);
	assert_int_equal(url_prefix_parse("http://+/", &p, NULL, 0), -1);
}

static void test_path_normalisation(void **state)
{
	assert_string_equal(prefix_ok("http://+:80").path, "/");
	assert_string_equal(prefix_ok("http://+:80/").path, "/");
	assert_string_equal(prefix_ok("http://+:80/app").path, "/app/");
	assert_string_equal(prefix_ok("http://+:80/a/b").path, "/a/b/");
	assert_string_equal(prefix_ok("http://+:80//a//b//").path, "/a/b/");
	assert_string_equal(prefix_ok("http://+:80/a/./b/../c").path, "/a/c/");
	assert_string_equal(prefix_ok("http://+:80/a/..").path, "/");
	assert_string_equal(prefix_ok("http://+:80/%7euser/").path, "/~user/");
	assert_string_equal(prefix_ok("http://+:80/a%3ab/").path, "/a%3Ab/");
	/* paths are case-sensitive: kept as written */
	assert_string_equal(prefix_ok("http://+:80/Blog/").path, "/Blog/");
}

static void test_bad_paths(void **state)
{
	parse_fails("http://+:80/a%2Fb/", "%2F");
	parse_fails("http://+:80/a%2fb/", "%2F");
	parse_fails("http://+:80/a%5Cb/", "%5C");
	parse_fails("http://+:80/a\\b/", "'\\'");
	parse_fails("http://+:80/..", "invalid path");
	parse_fails("http://+:80/a/../../", "above");
	parse_fails("http://+:80/%zz/", "escape");
	parse_fails("http://+:80/%00/", "invalid path");
	parse_fails("http://+:80/a b/", "invalid path");

	char url[PS_PREFIX_MAX + 64], seg[300];
	memset(seg, 'a', 261);
	seg[261] = '\0';
	snprintf(url, sizeof(url), "http://+:80/%s/", seg);
	parse_fails(url, "too long");
}

static void test_lengths(void **state)
{
	char url[PS_PREFIX_MAX + 64];
	size_t head = strlen("http://+:80");

	/* a path of exactly PS_PREFIX_MAX - head bytes fits; a prefix string longer than
	 * PS_PREFIX_MAX does not (the wire carries at most that) */
	strcpy(url, "http://+:80");
	for (size_t i = head; i < PS_PREFIX_MAX; i += 4)
		memcpy(url + i, "/abc", 4);
	url[PS_PREFIX_MAX] = '\0';
	url[PS_PREFIX_MAX - 1] = '/';
	struct url_prefix p = prefix_ok(url);
	assert_int_equal(strlen(p.path), PS_PREFIX_MAX - head);
	url[PS_PREFIX_MAX] = 'x';
	url[PS_PREFIX_MAX + 1] = '\0';
	parse_fails(url, "longer than 1024");
}

static void test_format(void **state)
{
	expect_format("http://+:8080/a", "http://+:8080/a/");
	expect_format("HTTP://*:80//", "http://*:80/");
	expect_format("https://+:443/s/", "https://+:443/s/");
	expect_format("http://Example.Com.:8080/x/./y", "http://example.com:8080/x/y/");
	expect_format("http://[::1]:8080/", "http://[::1]:8080/");
	expect_format("http://[2001:db8::0:1]:80/a/", "http://[2001:db8::1]:80/a/");
	expect_format("http://127.0.0.2:8080/", "http://127.0.0.2:8080/");

	/* snprintf's count when the buffer is short */
	struct url_prefix p = prefix_ok("http://+:8080/abc/");
	char small[8];
	assert_int_equal(url_prefix_format(&p, small, sizeof(small)), 18);
	assert_string_equal(small, "http://");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wildcards),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_bad_names),
	    cmocka_unit_test(test_ipv4),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_scheme_userinfo_query),
	    cmocka_unit_test(test_path_normalisation),
	    cmocka_unit_test(test_bad_paths),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
