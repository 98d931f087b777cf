/* test_snapshot.c: unit tests of the route snapshot (src/common/snapshot.c, DESIGN §6):
 * a table written to a sealed memfd and read back routes exactly as the original; an
 * unsealed or wrongly sized memfd is refused; every truncation and header corruption is
 * refused without crashing (run it under ASan: make BUILD=build-asan SAN=1). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "route.h"
#include "shared.h"

#define SEALS_ALL (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
#define GENERATION 0x1122334455667788ULL
#define FUZZ_ROUNDS 3000

/* Owners in the daemon are queue pointers; snapshot_write maps them to ids. */
struct fake_queue {
	uint32_t id;
	uint64_t max_body;
};

static struct fake_queue queues[] = {
    {1, 0},     {2, 1000},  {3, 1u << 20}, {4, 7},          {5, 0},  {6, 123456789},
    {7, 42},    {8, 0},     {9, 9},        {10, 0x7fffffff}, {11, 5}, {12, 0xffffffffffULL},
};
#define NQUEUES (sizeof(queues) / sizeof(queues[0]))

/* prefix, queue index: every host class, two ports, http and https, a queue with several
 * prefixes, a deep prefix, and a queue (12) with none */
static const struct {
	const char *prefix;
	unsigned q;
} prefixes[] = {
    {"http://+:8080/api/", 0},
    {"http://+:8080/api/v2/", 1},
    {"http://example.com:8080/", 2},
    {"http://example.com:8080/blog/", 3},
    {"http://Other.Example:8080/x/", 4},
    {"http://127.0.0.2:8080/", 5},
    {"http://127.0.0.2:8080/ip4/deep/", 6},
    {"http://[::1]:8080/ip6/", 6},
    {"http://*:8080/", 7},
    {"http://*:8080/weak/a/b/c/d/e/f/", 8},
    {"http://*:9090/w/", 8},
    {"https://+:8443/s/", 9},
    {"http://+:8443/s/", 10},
    {"http://very.long.host.name.example.org:9090/deep/a/b/c/d/", 2},
};
#define NPREFIXES (sizeof(prefixes) / sizeof(prefixes[0]))

struct query {
	const char *host;
	uint16_t port;
	const char *local; /* local address, NULL for none */
	const char *path;
};

static const struct query queries[] = {
    {"example.com", 8080, "127.0.0.1", "/api/x"},
    {"example.com", 8080, "127.0.0.1", "/api"},
    {"example.com", 8080, "127.0.0.1", "/api/v2/y"},
    {"example.com", 8080, "127.0.0.1", "/api/v2"},
    {"example.com", 8080, "127.0.0.1", "/apix"},
    {"example.com", 8080, "127.0.0.1", "/blog/post"},
    {"example.com", 8080, "127.0.0.1", "/blogger"},
    {"example.com", 8080, "127.0.0.2", "/"},
    {"other.example", 8080, "127.0.0.1", "/x/1"},
    {"OTHER.EXAMPLE", 8080, "127.0.0.1", "/x"},
    {"other.example", 8080, "127.0.0.1", "/y"},
    {"other.example", 8080, "127.0.0.2", "/y"},
    {"nobody", 8080, "127.0.0.2", "/ip4/deep/z"},
    {"nobody", 8080, "127.0.0.2", "/ip4/"},
    {"nobody", 8080, "::1", "/ip6/q"},
    {"nobody", 8080, "::1", "/other"},
    {"nobody", 8080, "127.0.0.9", "/weak/a/b/c/d/e/f/g"},
    {"nobody", 8080, "127.0.0.9", "/weak/a/b"},
    {"nobody", 8080, NULL, "/"},
    {"", 8080, NULL, "/anything"},
    {"nobody", 9090, "127.0.0.1", "/w/1"},
    {"nobody", 9090, "127.0.0.1", "/x"},
    {"very.long.host.name.example.org", 9090, "127.0.0.1", "/deep/a/b/c/d/e"},
    {"very.long.host.name.example.org", 9090, "127.0.0.1", "/deep/a/b/c"},
    {"h", 8443, NULL, "/s/1"},
    {"h", 8443, NULL, "/t"},
    {"h", 7070, NULL, "/"},
    {"example.com", 7070, "127.0.0.2", "/api/x"},
};
#define NQUERIES (sizeof(queries) / sizeof(queries[0]))

static uint32_t owner_id(void *owner)
{
	return ((struct fake_queue *)owner)->id;
}

static struct route_table *make_table(void)
{
	struct route_table *t = route_new();
	assert_non_null(t);
	for (size_t i = 0; i < NPREFIXES; i++) {
		struct url_prefix p;
		char err[256];
		void *holder = NULL;
		if (url_prefix_parse(prefixes[i].prefix, &p, err, sizeof(err)) != 0)
			fail_msg("\"%s\": %s", prefixes[i].prefix, err);
		if (route_add(t, &p, &queues[prefixes[i].q], &holder) != 0)
			fail_msg("route_add \"%s\" failed", prefixes[i].prefix);
	}
	return t;
}

static const struct http_limits test_http = {12345, 6789};
static const struct canon_limits test_canon = {200, 77};

static int write_snapshot(const struct route_table *t, uint32_t nq)
{
	struct snapshot_queue_src src[NQUEUES];
	for (size_t i = 0; i < NQUEUES; i++)
		src[i] = (struct snapshot_queue_src){queues[i].id, queues[i].max_body};
	int fd = snapshot_write(t, owner_id, src, nq, GENERATION, &test_http, &test_canon);
	if (fd < 0)
		fail_msg("snapshot_write: %s", strerror(errno));
	return fd;
}

static size_t fd_size(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	assert_true(end >= 0);
	return (size_t)end;
}

/* The snapshot's bytes (malloc'd). */
static unsigned char *fd_bytes(int fd, size_t size)
{
	unsigned char *b = malloc(size ? size : 1);
	assert_non_null(b);
	size_t off = 0;
	for (int i = 0; i < 1000 && off < size; i++) {
		ssize_t n = pread(fd, b + off, size - off, (off_t)off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_int_equal(off, size);
	return b;
}

/* A new memfd holding bytes, with the given seals (0: none; -1: memfd without sealing). */
static int memfd_with(const unsigned char *bytes, size_t len, int seals)
{
	int fd = memfd_create("test-snapshot", MFD_CLOEXEC | (seals < 0 ? 0 : MFD_ALLOW_SEALING));
	assert_true(fd >= 0);
	size_t off = 0;
	for (int i = 0; i < 1000 && off < len; i++) {
		ssize_t n = write(fd, bytes + off, len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_int_equal(off, len);
	if (seals > 0)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* snapshot_read must refuse, and leave nothing behind in out. */
static void expect_refused(int fd, size_t size, const char *what)
{
	struct snapshot s;
	memset(&s, 0xa5, sizeof(s));
	int rc = snapshot_read(fd, size, &s);
	if (rc == 0) {
		snapshot_clear(&s);
		fail_msg("%s: snapshot_read accepted it", what);
	}
	if (rc != -1)
		fail_msg("%s: snapshot_read returned %d, want -1", what, rc);
	if (s.routes != NULL || s.queues != NULL || s.nqueues != 0)
		fail_msg("%s: refused, but out still holds routes %p queues %p nqueues %u", what, (void *)s.routes,
		         (void *)s.queues, s.nqueues);
}

/* Looks q up in a table whose owners are fake_queue pointers (orig) or ids (copy). */
static enum route_result lookup(const struct route_table *t, const struct query *q, bool ids, uint32_t *id,
                                char *matched, size_t mlen)
{
	struct ps_addr addr;
	memset(&addr, 0, sizeof(addr));
	struct route_query rq = {.host = q->host, .port = q->port, .local = NULL, .path = q->path};
	if (q->local) {
		addr.family = strchr(q->local, ':') ? AF_INET6 : AF_INET;
		assert_int_equal(inet_pton(addr.family, q->local, addr.addr), 1);
		rq.local = &addr;
	}
	void *owner = NULL;
	const struct url_prefix *m = NULL;
	enum route_result res = route_lookup(t, &rq, &owner, &m);
	*id = 0;
	matched[0] = '\0';
	if (res == ROUTE_FOUND) {
		assert_non_null(owner);
		assert_non_null(m);
		*id = ids ? (uint32_t)(uintptr_t)owner : owner_id(owner);
		url_prefix_format(m, matched, mlen);
	}
	return res;
}

/* Every query routes the same in both tables: same result, same queue id, same prefix.
 * Returns how many found a queue (so a test can see the queries mean something). */
static int compare_tables(const struct route_table *orig, const struct route_table *copy)
{
	int found = 0;
	for (size_t i = 0; i < NQUERIES; i++) {
		const struct query *q = &queries[i];
		uint32_t a, b;
		char ma[PS_PREFIX_MAX + 300], mb[PS_PREFIX_MAX + 300];
		enum route_result ra = lookup(orig, q, false, &a, ma, sizeof(ma));
		enum route_result rb = lookup(copy, q, true, &b, mb, sizeof(mb));
		if (ra != rb || a != b || strcmp(ma, mb) != 0)
			fail_msg("host \"%s\" port %u local %s path \"%s\": original %d queue %u (%s), copy %d "
			         "queue %u (%s)",
			         q->host, q->port, q->local ? q->local : "-", q->path, ra, a, ma, rb, b, mb);
		found += ra == ROUTE_FOUND;
	}
	return found;
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct route_table *t = make_table();
	int fd = write_snapshot(t, NQUEUES);
	size_t size = fd_size(fd);

	int seals = fcntl(fd, F_GET_SEALS);
	assert_true(seals >= 0);
	assert_int_equal(seals & SEALS_ALL, SEALS_ALL);

	struct snapshot s;
	assert_int_equal(snapshot_read(fd, size, &s), 0);
	assert_non_null(s.routes);
	assert_true(s.generation == GENERATION);
	assert_int_equal(s.http.max_request_bytes, test_http.max_request_bytes);
	assert_int_equal(s.http.max_field_length, test_http.max_field_length);
	assert_int_equal(s.canon.max_segment_length, test_canon.max_segment_length);
	assert_int_equal(s.canon.max_segments, test_canon.max_segments);
	assert_int_equal(s.nqueues, NQUEUES);
	assert_int_equal(route_count(s.routes), NPREFIXES);
	for (size_t i = 0; i < NQUEUES; i++)
		assert_true(snapshot_max_body(&s, queues[i].id) == queues[i].max_body);
	assert_true(snapshot_max_body(&s, 999) == 0);

	int found = compare_tables(t, s.routes);
	assert_true(found >= 15);              /* the queries exercise real routes ... */
	assert_true(found < (int)NQUERIES);    /* ... and 400/404 answers */

	/* the read copy is private: the original changing does not change it */
	struct url_prefix p;
	char err[256];
	assert_int_equal(url_prefix_parse("http://+:8080/api/", &p, err, sizeof(err)), 0);
	assert_int_equal(route_del(t, &p), 0);
	assert_int_equal(route_count(s.routes), NPREFIXES);

	/* a second read of the same fd works too (the library may map a snapshot again) */
	struct snapshot s2;
	assert_int_equal(snapshot_read(fd, size, &s2), 0);
	assert_int_equal(route_count(s2.routes), NPREFIXES);
	snapshot_clear(&s2);

	snapshot_clear(&s);
	assert_null(s.routes);
	assert_null(s.queues);
	close(fd);
	route_free(t);
}

static void test_empty_table(void **state)
{
	(void)state;
	struct route_table *t = route_new();
	assert_non_null(t);
	int fd = write_snapshot(t, 0);
	size_t size = fd_size(fd);
	assert_int_equal(size, sizeof(struct snapshot_header));

	struct snapshot s;
	assert_int_equal(snapshot_read(fd, size, &s), 0);
	assert_int_equal(route_count(s.routes), 0);
	assert_int_equal(s.nqueues, 0);
	assert_int_equal(compare_tables(t, s.routes), 0);
	snapshot_clear(&s);
	close(fd);
	route_free(t);
}

static void test_ten_thousand(void **state)
{
	(void)state;
	struct route_table *t = route_new();
	assert_non_null(t);
	char buf[128];
	for (int i = 0; i < 10000; i++) {
		struct url_prefix p;
		char err[256];
		snprintf(buf, sizeof(buf), "http://h%d.example:8080/p%d/", i % 97, i);
		assert_int_equal(url_prefix_parse(buf, &p, err, sizeof(err)), 0);
		assert_int_equal(route_add(t, &p, &queues[i % NQUEUES], NULL), 0);
	}
	int fd = write_snapshot(t, NQUEUES);
	size_t size = fd_size(fd);
	struct snapshot s;
	assert_int_equal(snapshot_read(fd, size, &s), 0);
	assert_int_equal(route_count(s.routes), 10000);
	for (int i = 0; i < 10000; i += 37) {
		char host[64], path[64];
		snprintf(host, sizeof(host), "h%d.example", i % 97);
		snprintf(path, sizeof(path), "/p%d/x", i);
		struct query q = {host, 8080, "127.0.0.1", path};
		uint32_t id;
		char m[PS_PREFIX_MAX + 300];
		assert_int_equal(lookup(s.routes, &q, true, &id, m, sizeof(m)), ROUTE_FOUND);
		assert_int_equal(id, queues[i % NQUEUES].id);
	}
	snapshot_clear(&s);
	close(fd);
	route_free(t);
}

static void test_unsealed_refused(void **state)
{
	(void)state;
	struct route_table *t = make_table();
	int fd = write_snapshot(t, NQUEUES);
	size_t size = fd_size(fd);
	unsigned char *bytes = fd_bytes(fd, size);

	/* the same bytes, sealed as the daemon seals them: accepted (the control case) */
	int good = memfd_with(bytes, size, SEALS_ALL);
	struct snapshot s;
	assert_int_equal(snapshot_read(good, size, &s), 0);
	assert_int_equal(compare_tables(t, s.routes) > 0, 1);
	snapshot_clear(&s);

	int none = memfd_with(bytes, size, 0);
	expect_refused(none, size, "memfd with no seals");
	int nowrite = memfd_with(bytes, size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	expect_refused(nowrite, size, "memfd without F_SEAL_WRITE");
	int noshrink = memfd_with(bytes, size, F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	expect_refused(noshrink, size, "memfd without F_SEAL_SHRINK");
	int nogrow = memfd_with(bytes, size, F_SEAL_SHRINK | F_SEAL_WRITE | F_SEAL_SEAL);
	expect_refused(nogrow, size, "memfd without F_SEAL_GROW");
	/* sealing not allowed at all: F_GET_SEALS reports only F_SEAL_SEAL */
	int nosealing = memfd_with(bytes, size, -1);
	expect_refused(nosealing, size, "memfd created without MFD_ALLOW_SEALING");

	/* not a memfd at all */
	int p[2];
	assert_int_equal(pipe(p), 0);
	expect_refused(p[0], size, "a pipe");
	close(p[0]);
	close(p[1]);
	expect_refused(-1, size, "fd -1");

	/* the sealed fd with a size that is not its size (the SHM message lies) */
	expect_refused(good, size - 1, "sealed snapshot, size one short");
	expect_refused(good, size + 1, "sealed snapshot, size one long");
	expect_refused(good, size + 4096, "sealed snapshot, size a page long");
	expect_refused(good, 0, "sealed snapshot, size 0");

	close(none);
	close(nowrite);
	close(noshrink);
	close(nogrow);
	close(nosealing);
	close(good);
	free(bytes);
	close(fd);
	route_free(t);
}

static void set_u32(unsigned char *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

/* Every length from 0 to size-1, first as cut (header size now wrong), then with the
 * header's size patched to the cut length, so the record lengths must catch it. */
static void test_truncated(void **state)
{
	(void)state;
	struct route_table *t = make_table();
	int fd = write_snapshot(t, NQUEUES);
	size_t size = fd_size(fd);
	unsigned char *bytes = fd_bytes(fd, size);
	unsigned char *copy = malloc(size);
	assert_non_null(copy);
	char what[128];

	for (size_t len = 0; len < size; len++) {
		int cut = memfd_with(bytes, len, SEALS_ALL);
		snprintf(what, sizeof(what), "cut to %zu of %zu bytes", len, size);
		expect_refused(cut, len, what);
		close(cut);

		memcpy(copy, bytes, size);
		if (len >= offsetof(struct snapshot_header, size) + sizeof(uint32_t))
			set_u32(copy, offsetof(struct snapshot_header, size), (uint32_t)len);
		int patched = memfd_with(copy, len, SEALS_ALL);
		snprintf(what, sizeof(what), "cut to %zu of %zu bytes, header size patched", len, size);
		expect_refused(patched, len, what);
		close(patched);
	}
	free(copy);
	free(bytes);
	close(fd);
	route_free(t);
}

/* Reads b (len bytes) from a new sealed memfd; returns snapshot_read's result and clears. */
static int try_read(const unsigned char *b, size_t len, struct snapshot *out_copy_routes_checked,
                    const struct route_table *orig)
{
	int fd = memfd_with(b, len, SEALS_ALL);
	struct snapshot s;
	int rc = snapshot_read(fd, len, &s);
	close(fd);
	if (rc == 0) {
		if (orig)
			compare_tables(orig, s.routes);
		if (out_copy_routes_checked)
			*out_copy_routes_checked = s;
		else
			snapshot_clear(&s);
	} else if (s.routes != NULL || s.queues != NULL) {
		fail_msg("refused, but out still holds routes %p queues %p", (void *)s.routes, (void *)s.queues);
	}
	return rc;
}

/* The header fields that say how to read the rest (magic, size, counts): any change to
 * them is refused. The others (generation, limits) carry values, not lengths: a change
 * must not crash, and if accepted the routes are still right. */
static void test_header_corrupted(void **state)
{
	(void)state;
	struct route_table *t = make_table();
	int fd = write_snapshot(t, NQUEUES);
	size_t size = fd_size(fd);
	unsigned char *bytes = fd_bytes(fd, size);
	unsigned char *copy = malloc(size);
	assert_non_null(copy);
	static const struct {
		size_t off, len;
		const char *name;
	} must_refuse[] = {
	    {offsetof(struct snapshot_header, magic), 4, "magic"},
	    {offsetof(struct snapshot_header, size), 4, "size"},
	    {offsetof(struct snapshot_header, nqueues), 4, "nqueues"},
	    {offsetof(struct snapshot_header, nprefixes), 4, "nprefixes"},
	};

	for (size_t f = 0; f < sizeof(must_refuse) / sizeof(must_refuse[0]); f++) {
		for (size_t i = 0; i < must_refuse[f].len; i++) {
			size_t off = must_refuse[f].off + i;
			for (int bit = -1; bit < 8; bit++) {
				memcpy(copy, bytes, size);
				copy[off] ^= (unsigned char)(bit < 0 ? 0xff : 1u << bit);
				if (try_read(copy, size, NULL, NULL) == 0)
					fail_msg("header field %s, byte %zu %s: accepted", must_refuse[f].name, i,
					         bit < 0 ? "inverted" : "one bit flipped");
			}
		}
	}
	/* counts off by one either way */
	static const size_t counts[] = {offsetof(struct snapshot_header, nqueues),
	                                offsetof(struct snapshot_header, nprefixes)};
	for (size_t c = 0; c < 2; c++) {
		uint32_t v;
		memcpy(&v, bytes + counts[c], sizeof(v));
		const uint32_t alt[] = {v + 1, v - 1, 0, UINT32_MAX, UINT32_MAX / 16};
		for (size_t a = 0; a < sizeof(alt) / sizeof(alt[0]); a++) {
			memcpy(copy, bytes, size);
			set_u32(copy, counts[c], alt[a]);
			if (try_read(copy, size, NULL, NULL) == 0)
				fail_msg("%s %u instead of %u: accepted", c ? "nprefixes" : "nqueues", alt[a], v);
		}
	}
	/* every other header byte: no crash; if accepted, it routes as the original */
	for (size_t off = 0; off < sizeof(struct snapshot_header); off++) {
		bool length_field = false;
		for (size_t f = 0; f < sizeof(must_refuse) / sizeof(must_refuse[0]); f++)
			length_field |= off >= must_refuse[f].off && off < must_refuse[f].off + must_refuse[f].len;
		if (length_field)
			continue;
		memcpy(copy, bytes, size);
		copy[off] ^= 0xff;
		try_read(copy, size, NULL, t);
	}
	free(copy);
	free(bytes);
	close(fd);
	route_free(t);
}

/* Records corrupted: a prefix's lengths, class, path; then random bytes anywhere. Nothing
 * may crash or read outside the map (ASan); where the corruption is in a length that
 * must add up, it is refused. */
static void test_records_corrupted(void **state)
{
	(void)state;
	struct route_table *t = make_table();
	int fd = write_snapshot(t, NQUEUES);
	size_t size = fd_size(fd);
	unsigned char *bytes = fd_bytes(fd, size);
	unsigned char *copy = malloc(size);
	assert_non_null(copy);
	size_t first = sizeof(struct snapshot_header) + NQUEUES * sizeof(struct snapshot_queue);
	assert_true(first + sizeof(struct snapshot_prefix) <= size);
	struct snapshot_prefix sp;
	memcpy(&sp, bytes + first, sizeof(sp));

	/* host_len / path_len of the first prefix: larger or smaller by 8 moves every later
	 * record; huge ones run past the end */
	const size_t lens[] = {offsetof(struct snapshot_prefix, host_len), offsetof(struct snapshot_prefix, path_len)};
	for (size_t l = 0; l < 2; l++) {
		uint16_t v;
		memcpy(&v, bytes + first + lens[l], sizeof(v));
		const uint16_t alt[] = {(uint16_t)(v + 8), (uint16_t)(v + 4096), 0xffff, 256, 1025};
		for (size_t a = 0; a < sizeof(alt) / sizeof(alt[0]); a++) {
			memcpy(copy, bytes, size);
			memcpy(copy + first + lens[l], &alt[a], sizeof(alt[a]));
			if (try_read(copy, size, NULL, NULL) == 0)
				fail_msg("first prefix %s %u instead of %u: accepted", l ? "path_len" : "host_len",
				         alt[a], v);
		}
	}
	/* class out of range */
	memcpy(copy, bytes, size);
	copy[first + offsetof(struct snapshot_prefix, cls)] = HOST_CLASS_COUNT;
	if (try_read(copy, size, NULL, NULL) == 0)
		fail_msg("a prefix of class %d: accepted", HOST_CLASS_COUNT);
	memcpy(copy, bytes, size);
	copy[first + offsetof(struct snapshot_prefix, cls)] = 0xff;
	if (try_read(copy, size, NULL, NULL) == 0)
		fail_msg("a prefix of class 255: accepted");
	/* a path that does not start with '/' */
	memcpy(copy, bytes, size);
	copy[first + sizeof(sp) + sp.host_len] = 'x';
	if (try_read(copy, size, NULL, NULL) == 0)
		fail_msg("a prefix path not starting with '/': accepted");

	/* random corruption anywhere (fixed seed: reproducible): only no crash is required */
	unsigned seed = 12345;
	int accepted = 0;
	for (int round = 0; round < FUZZ_ROUNDS; round++) {
		memcpy(copy, bytes, size);
		seed = seed * 1103515245u + 12345u;
		int flips = 1 + (int)((seed >> 16) % 4);
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t off = (seed >> 8) % size;
			seed = seed * 1103515245u + 12345u;
			copy[off] ^= (unsigned char)(1 + ((seed >> 16) % 255));
		}
		struct snapshot s;
		if (try_read(copy, size, &s, NULL) == 0) {
			accepted++;
			/* whatever it holds, looking things up in it must be safe */
			for (size_t i = 0; i < NQUERIES; i++) {
				uint32_t id;
				char m[PS_PREFIX_MAX + 300];
				lookup(s.routes, &queries[i], true, &id, m, sizeof(m));
			}
			snapshot_clear(&s);
		}
	}
	print_message("random corruption: %d of %d accepted (bytes in host/path/ip/ids), none crashed\n", accepted,
	              FUZZ_ROUNDS);
	free(copy);
	free(bytes);
	close(fd);
	route_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_empty_table),
	    cmocka_unit_test(test_ten_thousand),
	    cmocka_unit_test(test_unsealed_refused),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_header_corrupted),
	    cmocka_unit_test(test_records_corrupted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
