/* test_route.c: unit tests of the route table (src/common/route.c): class order,
 * longest whole-segment prefix, 400 vs 404, and lookups that do not scan. */
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

#include "route.h"
#include "prefix_ok.h"

/* Hash slots inspected by this thread's lookups; defined in route.c for this test. */
extern _Thread_local unsigned long route_probe_count;

#define OWNER(n) ((void *)(uintptr_t)(n))

static void add(struct route_table *t, const char *prefix, uintptr_t owner)
{
	struct url_prefix p = prefix_ok(prefix);
	void *holder = OWNER(999);

	if (route_add(t, &p, OWNER(owner), &holder) != 0)
		fail_msg("route_add \"%s\" failed", prefix);
	assert_null(holder);
}

static void del(struct route_table *t, const char *prefix)
{
	struct url_prefix p = prefix_ok(prefix);

	if (route_del(t, &p) != 0)
		fail_msg("route_del \"%s\" failed", prefix);
}

/* local: an address as text, or NULL for none. Returns the owner, or 0 with *res set. */
static uintptr_t lookup(const struct route_table *t, const char *host, uint16_t port, const char *local,
                        const char *path, enum route_result *res, const struct url_prefix **matched)
{
	struct ps_addr addr = {0};
	struct route_query q = {.host = host, .port = port, .local = NULL, .path = path};
	void *owner = OWNER(999);

	if (local) {
		addr.family = strchr(local, ':') ? AF_INET6 : AF_INET;
		assert_int_equal(inet_pton(addr.family, local, addr.addr), 1);
		q.local = &addr;
	}
	*res = route_lookup(t, &q, &owner, matched);
	if (*res != ROUTE_FOUND) {
		assert_null(owner);
		if (matched)
			assert_null(*matched);
		return 0;
	}
	return (uintptr_t)owner;
}

static void expect_owner(const struct route_table *t, const char *host, uint16_t port, const char *local,
                         const char *path, uintptr_t want)
{
	enum route_result res;
	uintptr_t got = lookup(t, host, port, local, path, &res, NULL);

	if (res != ROUTE_FOUND || got != want)
		fail_msg("host \"%s\" port %u local %s path \"%s\": want owner %lu, got %lu (result %d)",
		         host, port, local ? local : "-", path, (unsigned long)want, (unsigned long)got, res);
}

static void expect_result(const struct route_table *t, const char *host, uint16_t port, const char *local,
                          const char *path, enum route_result want)
{
	enum route_result res;
	uintptr_t got = lookup(t, host, port, local, path, &res, NULL);

	if (res != want)
		fail_msg("host \"%s\" port %u path \"%s\": want %d, got %d (owner %lu)", host, port, path,
		         want, res, (unsigned long)got);
}

static int setup(void **state)
{
	*state = route_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	route_free(*state);
	return 0;
}

static void test_class_order(void **state)
{
	struct route_table *t = *state;

	add(t, "http://*:80/", 4);
	add(t, "http://127.0.0.2:80/", 3);
	add(t, "http://example.com:80/", 2);
	add(t, "http://+:80/", 1);
	expect_owner(t, "example.com", 80, "127.0.0.2", "/x", 1);
	del(t, "http://+:80/");
	expect_owner(t, "example.com", 80, "127.0.0.2", "/x", 2);
	expect_owner(t, "other.com", 80, "127.0.0.2", "/x", 3);
	expect_owner(t, "other.com", 80, "127.0.0.9", "/x", 4);
	del(t, "http://example.com:80/");
	expect_owner(t, "example.com", 80, "127.0.0.2", "/x", 3);
	del(t, "http://127.0.0.2:80/");
	expect_owner(t, "example.com", 80, "127.0.0.2", "/x", 4);
	expect_owner(t, "", 80, NULL, "/", 4);
}

/* HTTP.sys: the first class with a full match wins, even against a longer path in a
 * later class; a class whose paths do not match lets the next class try. */
static void test_first_full_match_wins(void **state)
{
	struct route_table *t = *state;

	add(t, "http://+:80/api/", 1);
	add(t, "http://example.com:80/", 2);
	add(t, "http://example.com:80/api/v1/", 5);
	add(t, "http://*:80/", 4);
	expect_owner(t, "example.com", 80, "10.0.0.1", "/api/x", 1);
	expect_owner(t, "example.com", 80, "10.0.0.1", "/api/v1/x", 1);
	expect_owner(t, "example.com", 80, "10.0.0.1", "/other", 2);
	expect_owner(t, "other.com", 80, "10.0.0.1", "/other", 4);
	expect_owner(t, "other.com", 80, "10.0.0.1", "/api", 1);

	add(t, "http://10.0.0.1:80/ip/", 3);
	expect_owner(t, "other.com", 80, "10.0.0.1", "/ip/x", 3);
	expect_owner(t, "example.com", 80, "10.0.0.1", "/ip/x", 2);
	expect_owner(t, "other.com", 80, "10.0.0.2", "/ip/x", 4);
}

static void test_ip_class(void **state)
{
	struct route_table *t = *state;

	add(t, "http://127.0.0.2:80/", 3);
	add(t, "http://[::1]:80/", 6);
	expect_owner(t, "any.name", 80, "127.0.0.2", "/", 3);
	expect_owner(t, "", 80, "127.0.0.2", "/x", 3);
	expect_owner(t, "any.name", 80, "::1", "/", 6);
	expect_owner(t, "any.name", 80, "::ffff:127.0.0.2", "/", 3);
	expect_result(t, "any.name", 80, "127.0.0.3", "/", ROUTE_NO_HOST);
	expect_result(t, "any.name", 80, "::2", "/", ROUTE_NO_HOST);
	expect_result(t, "any.name", 80, NULL, "/", ROUTE_NO_HOST);
	expect_result(t, "127.0.0.2", 80, "127.0.0.9", "/", ROUTE_NO_HOST);
}

static void test_longest_prefix(void **state)
{
	struct route_table *t = *state;

	add(t, "http://+:80/", 1);
	add(t, "http://+:80/a/", 2);
	add(t, "http://+:80/a/b/", 3);
	expect_owner(t, "h", 80, NULL, "/a/b/c", 3);
	expect_owner(t, "h", 80, NULL, "/a/b/", 3);
	expect_owner(t, "h", 80, NULL, "/a/b", 3);
	expect_owner(t, "h", 80, NULL, "/a/bc", 2);
	expect_owner(t, "h", 80, NULL, "/a/", 2);
	expect_owner(t, "h", 80, NULL, "/a", 2);
	expect_owner(t, "h", 80, NULL, "/ab", 1);
	expect_owner(t, "h", 80, NULL, "/", 1);
	del(t, "http://+:80/a/");
	expect_owner(t, "h", 80, NULL, "/a/x", 1);
	expect_owner(t, "h", 80, NULL, "/a/b/x", 3);
}

static void test_segment_boundaries(void **state)
{
	struct route_table *t = *state;
	const struct url_prefix *m;
	enum route_result res;

	add(t, "http://+:80/blog/", 7);
	expect_owner(t, "h", 80, NULL, "/blog/", 7);
	expect_owner(t, "h", 80, NULL, "/blog/x", 7);
	expect_owner(t, "h", 80, NULL, "/blog/x/y/", 7);
	expect_owner(t, "h", 80, NULL, "/blog", 7);
	expect_result(t, "h", 80, NULL, "/blogger", ROUTE_NO_PATH);
	expect_result(t, "h", 80, NULL, "/blogger/", ROUTE_NO_PATH);
	expect_result(t, "h", 80, NULL, "/blog2/x", ROUTE_NO_PATH);
	expect_result(t, "h", 80, NULL, "/blo", ROUTE_NO_PATH);
	expect_result(t, "h", 80, NULL, "/", ROUTE_NO_PATH);
	expect_result(t, "h", 80, NULL, "/x/blog/", ROUTE_NO_PATH);

	assert_int_equal(lookup(t, "h", 80, NULL, "/blog", &res, &m), 7);
	assert_string_equal(m->path, "/blog/");
	assert_int_equal(m->cls, HOST_STRONG);
}

static void test_case(void **state)
{
	struct route_table *t = *state;

	add(t, "http://Example.COM:80/Blog/", 1);
	expect_owner(t, "example.com", 80, NULL, "/Blog/x", 1);
	expect_owner(t, "EXAMPLE.com", 80, NULL, "/Blog", 1);
	expect_result(t, "example.com", 80, NULL, "/blog/x", ROUTE_NO_PATH);
	expect_result(t, "example.com", 80, NULL, "/BLOG", ROUTE_NO_PATH);
	expect_result(t, "example.org", 80, NULL, "/Blog/", ROUTE_NO_HOST);
}

static void test_ports(void **state)
{
	struct route_table *t = *state;

	add(t, "http://+:80/", 1);
	add(t, "http://example.com:8080/", 2);
	expect_owner(t, "example.com", 80, NULL, "/", 1);
	expect_owner(t, "example.com", 8080, NULL, "/", 2);
	expect_result(t, "other.com", 8080, NULL, "/", ROUTE_NO_HOST);
	expect_result(t, "example.com", 8081, NULL, "/", ROUTE_NO_HOST);
}

static void test_400_vs_404(void **state)
{
	struct route_table *t = *state;

	add(t, "http://example.com:80/app/", 1);
	add(t, "http://+:81/app/", 2);
	expect_result(t, "other.com", 80, NULL, "/app/", ROUTE_NO_HOST);
	expect_result(t, "", 80, NULL, "/app/", ROUTE_NO_HOST);
	expect_result(t, "example.com", 80, NULL, "/x", ROUTE_NO_PATH);
	expect_result(t, "example.com", 80, NULL, "/", ROUTE_NO_PATH);
	expect_result(t, "whatever", 81, NULL, "/x", ROUTE_NO_PATH);
	expect_result(t, "whatever", 82, NULL, "/app/", ROUTE_NO_HOST);
	/* a path the canonicaliser would never produce routes nowhere, it does not crash */
	expect_result(t, "whatever", 81, NULL, "*", ROUTE_NO_PATH);
	expect_result(t, "whatever", 81, NULL, "", ROUTE_NO_PATH);

	struct route_query q = {.host = NULL, .port = 81, .local = NULL, .path = NULL};
	void *owner;
	assert_int_equal(route_lookup(t, &q, &owner, NULL), ROUTE_NO_PATH);
	q.port = 80;
	assert_int_equal(route_lookup(t, &q, &owner, NULL), ROUTE_NO_HOST);
}

static void test_duplicates(void **state)
{
	struct route_table *t = *state;
	struct url_prefix p;
	void *holder = NULL;

	add(t, "http://example.com:80/a/", 1);
	p = prefix_ok("http://EXAMPLE.com.:80/a");
	assert_int_equal(route_add(t, &p, OWNER(2), &holder), -2);
	assert_ptr_equal(holder, OWNER(1));
	assert_int_equal(route_add(t, &p, OWNER(2), NULL), -2);
	p = prefix_ok("http://example.com:80/./a//");
	assert_int_equal(route_add(t, &p, OWNER(2), &holder), -2);
	/* what differs in scheme, class, host, port or path is another prefix */
	add(t, "https://example.com:80/a/", 3);
	add(t, "http://example.com:81/a/", 4);
	add(t, "http://example.org:80/a/", 5);
	add(t, "http://example.com:80/A/", 6);
	add(t, "http://+:80/a/", 7);
	add(t, "http://*:80/a/", 8);
	assert_int_equal(route_count(t), 7);
	expect_owner(t, "example.com", 80, NULL, "/a/", 7);
}

static void test_delete(void **state)
{
	struct route_table *t = *state;
	struct url_prefix p = prefix_ok("http://+:80/a/");

	assert_int_equal(route_del(t, &p), -1);
	add(t, "http://+:80/a/", 1);
	assert_int_equal(route_del(t, &p), 0);
	assert_int_equal(route_del(t, &p), -1);
	assert_int_equal(route_count(t), 0);
	expect_result(t, "h", 80, NULL, "/a/", ROUTE_NO_HOST);
	add(t, "http://+:80/a/", 2);
	expect_owner(t, "h", 80, NULL, "/a/", 2);
}

static void collect(const struct url_prefix *p, void *owner, void *arg)
{
	uintptr_t *sum = arg;

	assert_int_equal(p->port == 80 || p->port == 8080, 1);
	*sum += (uintptr_t)owner;
}

static void test_port_count_and_foreach(void **state)
{
	struct route_table *t = *state;
	uintptr_t sum = 0;

	add(t, "http://+:80/a/", 1);
	add(t, "http://example.com:80/", 2);
	add(t, "http://127.0.0.1:80/", 4);
	add(t, "https://*:80/", 8);
	add(t, "http://*:8080/", 16);
	assert_int_equal(route_port_count(t, 80), 4);
	assert_int_equal(route_port_count(t, 8080), 1);
	assert_int_equal(route_port_count(t, 81), 0);
	route_foreach(t, collect, &sum);
	assert_int_equal(sum, 31);
	del(t, "http://example.com:80/");
	del(t, "http://*:8080/");
	assert_int_equal(route_port_count(t, 80), 3);
	assert_int_equal(route_port_count(t, 8080), 0);
	assert_int_equal(route_count(t), 3);
}

/* https is kept in the key but routes like http until TLS listeners exist; at equal
 * length http is tried first. */
static void test_https(void **state)
{
	struct route_table *t = *state;
	const struct url_prefix *m;
	enum route_result res;

	add(t, "https://+:443/s/", 1);
	assert_int_equal(lookup(t, "h", 443, NULL, "/s/x", &res, &m), 1);
	assert_true(m->https);
	add(t, "http://+:443/s/", 2);
	expect_owner(t, "h", 443, NULL, "/s/x", 2);
	add(t, "https://+:443/s/t/", 3);
	expect_owner(t, "h", 443, NULL, "/s/t/x", 3);
}

static void test_deep_and_long_paths(void **state)
{
	struct route_table *t = *state;
	char prefix[PS_PREFIX_MAX + 1], path[8192];
	size_t n;

	add(t, "http://+:80/a/", 1);
	/* a request far deeper than any prefix: probes stop at the deepest prefix */
	n = 0;
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(path + n, sizeof(path) - n, "/a");
	route_probe_count = 0;
	expect_owner(t, "h", 80, NULL, path, 1);
	assert_true(route_probe_count < 16);

	/* one segment longer than any prefix */
	path[0] = '/';
	memset(path + 1, 'a', 6000);
	path[6001] = '\0';
	expect_result(t, "h", 80, NULL, path, ROUTE_NO_PATH);
	memcpy(path, "/a/", 3);
	expect_owner(t, "h", 80, NULL, path, 1);

	/* the deepest prefix the canonicaliser allows (255 segments) */
	n = (size_t)snprintf(prefix, sizeof(prefix), "http://+:80");
	for (int i = 0; i < 255; i++)
		n += (size_t)snprintf(prefix + n, sizeof(prefix) - n, "/a");
	add(t, prefix, 2);
	memcpy(path, prefix + 11, n - 11);
	strcpy(path + n - 11, "/b/c");
	expect_owner(t, "h", 80, NULL, path, 2);
	path[n - 11 - 1] = 'b';
	expect_owner(t, "h", 80, NULL, path, 1);
}

/* Lookups on 10,000 prefixes touch as few hash slots as on 10. */
static void build(struct route_table *t, int count)
{
	char s[128];

	for (int i = 0; i < count; i++) {
		switch (i % 4) {
		case 0:
			snprintf(s, sizeof(s), "http://+:80/s%d/", i);
			break;
		case 1:
			snprintf(s, sizeof(s), "http://h%d.example:80/n%d/", i, i);
			break;
		case 2:
			snprintf(s, sizeof(s), "http://10.0.%d.%d:80/i%d/", i / 256, i % 256, i);
			break;
		default:
			snprintf(s, sizeof(s), "http://*:80/w%d/x/", i);
			break;
		}
		add(t, s, (uintptr_t)i + 1);
	}
}

/* Looks up request i's own path; returns the slots inspected. */
static unsigned long probe(const struct route_table *t, int i, enum route_result want)
{
	char host[64], local[32], path[64];
	enum route_result res;
	uintptr_t got;

	snprintf(host, sizeof(host), "h%d.example", i);
	snprintf(local, sizeof(local), "10.0.%d.%d", i / 256, i % 256);
	switch (i % 4) {
	case 0:
		snprintf(path, sizeof(path), "/s%d/page", i);
		break;
	case 1:
		snprintf(path, sizeof(path), "/n%d/a/b", i);
		break;
	case 2:
		snprintf(path, sizeof(path), "/i%d", i);
		break;
	default:
		snprintf(path, sizeof(path), "/w%d/x/y/z", i);
		break;
	}
	route_probe_count = 0;
	got = lookup(t, host, 80, local, path, &res, NULL);
	if (res != want || (want == ROUTE_FOUND && got != (uintptr_t)i + 1))
		fail_msg("request %d (%s): want %d owner %d, got %d owner %lu", i, path, want, i + 1, res,
		         (unsigned long)got);
	return route_probe_count;
}

static void test_ten_thousand(void **state)
{
	struct route_table *small = *state, *big = route_new();
	unsigned long small_total = 0, big_total = 0, big_max = 0;

	assert_non_null(big);
	build(small, 10);
	build(big, 10000);
	assert_int_equal(route_count(big), 10000);
	assert_int_equal(route_port_count(big, 80), 10000);
	for (int i = 0; i < 10; i++)
		small_total += probe(small, i, ROUTE_FOUND);
	for (int i = 0; i < 10000; i++) {
		unsigned long n = probe(big, i, ROUTE_FOUND);
		big_total += n;
		if (n > big_max)
			big_max = n;
	}
	/* A scan would touch thousands of slots per lookup; hashing touches a handful,
	 * set by the request path's segments, the same with 10 prefixes as with 10,000. */
	print_message("slots per lookup: 10 prefixes %.2f, 10000 prefixes %.2f (max %lu)\n",
	              small_total / 10.0, big_total / 10000.0, big_max);
	assert_true(big_max <= 64);
	assert_true(big_total / 10000.0 <= small_total / 10.0 + 4.0);

	/* Remove every other one: the removed route nowhere, the others still route. */
	for (int i = 0; i < 10000; i += 2) {
		struct url_prefix p;
		char s[128];
		if (i % 4 == 0)
			snprintf(s, sizeof(s), "http://+:80/s%d/", i);
		else
			snprintf(s, sizeof(s), "http://10.0.%d.%d:80/i%d/", i / 256, i % 256, i);
		p = prefix_ok(s);
		assert_int_equal(route_del(big, &p), 0);
	}
	assert_int_equal(route_count(big), 5000);
	for (int i = 0; i < 10000; i++) {
		/* the removed ones route nowhere, but "*" still covers every host: 404 */
		enum route_result want = i % 2 ? ROUTE_FOUND : ROUTE_NO_PATH;
		assert_true(probe(big, i, want) <= 64);
	}
	route_free(big);
}

/* The rules of DESIGN §3 written as a plain scan, to compare the table against after
 * every change of a random sequence of adds and deletes. */
struct model_prefix {
	char text[64];
	struct url_prefix p;
	bool present;
};

static bool model_path_matches(const char *prefix, const char *path)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 || (strlen(path) == n - 1 && strncmp(path, prefix, n - 1) == 0);
}

static enum route_result model_lookup(const struct model_prefix *m, size_t count, const char *host,
                                      uint16_t port, const char *local, const char *path, uintptr_t *owner)
{
	bool host_seen = false;

	for (int cls = 0; cls < HOST_CLASS_COUNT; cls++) {
		size_t best = 0, best_len = 0;
		for (size_t i = 0; i < count; i++) {
			const struct url_prefix *p = &m[i].p;
			if (!m[i].present || (int)p->cls != cls || p->port != port)
				continue;
			if (cls == HOST_NAME && strcmp(p->host, host) != 0)
				continue;
			if (cls == HOST_IP && strcmp(p->host, local) != 0)
				continue;
			host_seen = true;
			if (model_path_matches(p->path, path) && strlen(p->path) > best_len) {
				best = i;
				best_len = strlen(p->path);
			}
		}
		if (best_len) {
			*owner = best + 1;
			return ROUTE_FOUND;
		}
	}
	return host_seen ? ROUTE_NO_PATH : ROUTE_NO_HOST;
}

static void test_random_against_model(void **state)
{
	static const char *hosts[] = {"+", "*", "h0", "h1", "h2", "10.0.0.1", "10.0.0.2"};
	static const char *paths[] = {"/", "/a/", "/a/b/", "/b/", "/ab/"};
	static const char *qhosts[] = {"h0", "h1", "h2", "h3", ""};
	static const char *qlocals[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
	static const char *qpaths[] = {"/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/abc", "/b/x", "/c"};
	struct model_prefix m[7 * 2 * 5];
	struct route_table *t = *state;
	size_t count = 0, present = 0;
	uint32_t rnd = 12345;

	for (size_t h = 0; h < 7; h++)
		for (unsigned port = 80; port <= 81; port++)
			for (size_t k = 0; k < 5; k++) {
				snprintf(m[count].text, sizeof(m[count].text), "http://%s:%u%s", hosts[h],
				         port, paths[k]);
				m[count].p = prefix_ok(m[count].text);
				m[count++].present = false;
			}
	for (int op = 0; op < 20000; op++) {
		rnd = rnd * 1103515245u + 12345u;
		size_t i = (rnd >> 8) % count;
		void *holder = NULL;
		if (m[i].present) {
			assert_int_equal(route_del(t, &m[i].p), 0);
			present--;
		} else {
			assert_int_equal(route_add(t, &m[i].p, OWNER(i + 1), &holder), 0);
			present++;
		}
		m[i].present = !m[i].present;
		assert_int_equal(route_count(t), present);
		if (m[i].present) {
			assert_int_equal(route_add(t, &m[i].p, OWNER(1000), &holder), -2);
			assert_ptr_equal(holder, OWNER(i + 1));
		}
		for (int q = 0; q < 8; q++) {
			rnd = rnd * 1103515245u + 12345u;
			uint32_t r = rnd >> 4;
			const char *host = qhosts[r % 5], *local = qlocals[(r / 5) % 3],
			           *path = qpaths[(r / 15) % 9];
			uint16_t port = (uint16_t)(80 + (r / 135) % 3);
			uintptr_t want = 0, got;
			enum route_result want_res = model_lookup(m, count, host, port, local, path, &want),
			                  res;
			got = lookup(t, host, port, local, path, &res, NULL);
			if (res != want_res || (res == ROUTE_FOUND && got != want))
				fail_msg("op %d: %s:%u local %s %s: want %d/%lu, got %d/%lu", op, host, port,
				         local, path, want_res, (unsigned long)want, res, (unsigned long)got);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_class_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_full_match_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ip_class, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_longest_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_segment_boundaries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_case, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ports, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_400_vs_404, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_port_count_and_foreach, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_https, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deep_and_long_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ten_thousand, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_against_model, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
