/* test_alloc_snapshot.c: every allocation of the route snapshot (src/common/snapshot.c)
 * made to fail in turn (tests/unit/failalloc.h): snapshot_write answers -1 and leaves no
 * descriptor open, snapshot_read answers -1 and leaves out empty, and both work again
 * once memory does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "failalloc.h"
#include "route.h"
#include "shared.h"

/* Enough prefixes that the snapshot's buffer grows several times while it is written
 * and the table read back rehashes several times. */
#define NPREFIXES 300
#define NQUEUES 10
#define GENERATION 77

static const struct http_limits test_http = {12345, 6789};
static const struct canon_limits test_canon = {200, 77};

struct snap_state {
	struct route_table *t;
	int fd;
	size_t size;
	struct snapshot out;
};

static struct url_prefix prefix_of(unsigned i)
{
	struct url_prefix p;
	char text[128], err[256];

	snprintf(text, sizeof(text), "http://h%u.example:8080/p%u/", i, i);
	if (url_prefix_parse(text, &p, err, sizeof(err)) != 0)
		fail_msg("\"%s\": %s", text, err);
	return p;
}

/* Owners are queue ids already: prefix i goes to queue i % NQUEUES + 1. */
static uint32_t owner_id(void *owner)
{
	return (uint32_t)(uintptr_t)owner;
}

static uint32_t queue_of(unsigned i)
{
	return i % NQUEUES + 1;
}

static int write_snapshot(const struct route_table *t)
{
	struct snapshot_queue_src src[NQUEUES];

	for (unsigned i = 0; i < NQUEUES; i++)
		src[i] = (struct snapshot_queue_src){i + 1, 1000 * (i + 1)};
	return snapshot_write(t, owner_id, src, NQUEUES, GENERATION, &test_http, &test_canon);
}

/* s routes every prefix to its queue and nothing else, and knows every queue. */
static void check_snapshot(const struct snapshot *s)
{
	assert_int_equal(s->generation, GENERATION);
	assert_int_equal(s->nqueues, NQUEUES);
	assert_int_equal(s->http.max_request_bytes, test_http.max_request_bytes);
	assert_int_equal(s->canon.max_segments, test_canon.max_segments);
	assert_int_equal(route_count(s->routes), NPREFIXES);
	for (unsigned q = 1; q <= NQUEUES; q++)
		assert_int_equal(snapshot_max_body(s, q), 1000 * q);
	for (unsigned i = 0; i < NPREFIXES; i++) {
		struct url_prefix p = prefix_of(i);
		struct route_query rq = {.host = p.host, .port = p.port, .path = p.path};
		void *owner;
		assert_int_equal(route_lookup(s->routes, &rq, &owner, NULL), ROUTE_FOUND);
		assert_int_equal((uintptr_t)owner, queue_of(i));
	}
	struct route_query stranger = {.host = "nobody.example", .port = 8080, .path = "/p1/"};
	void *owner;
	assert_int_equal(route_lookup(s->routes, &stranger, &owner, NULL), ROUTE_NO_HOST);
}

static void *table_setup(void)
{
	struct snap_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->fd = -1;
	s->t = route_new();
	assert_non_null(s->t);
	for (unsigned i = 0; i < NPREFIXES; i++) {
		struct url_prefix p = prefix_of(i);
		assert_int_equal(route_add(s->t, &p, (void *)(uintptr_t)queue_of(i), NULL), 0);
	}
	return s;
}

static void snap_teardown(void *state)
{
	struct snap_state *s = state;

	if (s->fd >= 0)
		close(s->fd);
	snapshot_clear(&s->out);
	route_free(s->t);
	free(s);
}

/* snapshot_write: the fd, or -1 (the driver checks that no fd is left open). */

static bool write_run(void *state)
{
	struct snap_state *s = state;

	s->fd = write_snapshot(s->t);
	if (s->fd < 0)
		assert_int_equal(s->fd, -1);
	return s->fd >= 0;
}

static void write_check(void *state, bool done)
{
	struct snap_state *s = state;
	struct stat st;

	if (!done)
		return;
	assert_int_equal(fstat(s->fd, &st), 0);
	assert_int_equal(snapshot_read(s->fd, (size_t)st.st_size, &s->out), 0);
	check_snapshot(&s->out);
}

static void test_write(void **unused)
{
	const struct failalloc_case c = {table_setup, write_run, write_check, snap_teardown};
	unsigned long n = failalloc_run(&c);

	/* the buffer starts at 4 KiB and doubles */
	assert_true(n >= 3);
	print_message("snapshot_write: %lu allocations, each failed in turn\n", n);
}

/* snapshot_read: 0, or -1 with out all zero. */

static void *written_setup(void)
{
	struct snap_state *s = table_setup();
	struct stat st;

	s->fd = write_snapshot(s->t);
	assert_true(s->fd >= 0);
	assert_int_equal(fstat(s->fd, &st), 0);
	s->size = (size_t)st.st_size;
	return s;
}

static bool read_run(void *state)
{
	struct snap_state *s = state;

	memset(&s->out, 0xa5, sizeof(s->out));
	int rc = snapshot_read(s->fd, s->size, &s->out);
	if (rc != 0)
		assert_int_equal(rc, -1);
	return rc == 0;
}

static void read_check(void *state, bool done)
{
	struct snap_state *s = state;
	static const struct snapshot empty;

	if (done)
		check_snapshot(&s->out);
	else
		assert_memory_equal(&s->out, &empty, sizeof(empty));
}

static void test_read(void **unused)
{
	const struct failalloc_case c = {written_setup, read_run, read_check, snap_teardown};
	unsigned long n = failalloc_run(&c);

	/* the queues, the table, and an entry per prefix at least */
	assert_true(n > NPREFIXES + 2);
	print_message("snapshot_read: %lu allocations, each failed in turn\n", n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write),
	    cmocka_unit_test(test_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
