/* test_alloc_route.c: every allocation of the route table (src/common/route.c) made to
 * fail in turn (tests/unit/failalloc.h): route_new answers NULL, route_add answers -1
 * and leaves the table routing exactly what it routed before, and a later add works. */
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

#include "failalloc.h"
#include "route.h"
#include "prefix_ok.h"

#define OWNER(n) ((void *)(uintptr_t)(n))
/* Enough prefixes that both hash tables grow more than once while they are added. */
#define LIFE_PREFIXES 40

struct table_state {
	struct route_table *t;
};

/* The prefixes every table starts with, owners 1.. in order; their paths are not
 * used by the added prefixes, so each lookup below can only find one owner. */
static const char *const baseline[] = {
    "http://+:8000/base/",
    "http://base.example:8001/base/",
    "http://*:8002/",
};
#define NBASELINE (sizeof(baseline) / sizeof(baseline[0]))
#define ADDED_OWNER(i) (100 + (i))

/* Added prefix i: every host class, three ports, some https, some deep paths. */
static struct url_prefix added(unsigned i)
{
	static const char *const hosts[] = {"+", "h%u.example", "10.0.0.%u", "[fd00::%u]", "*"};
	char host[64], text[160];

	snprintf(host, sizeof(host), hosts[i % 5], i % 3 + 1);
	snprintf(text, sizeof(text), "%s://%s:%u/p%u/%s", i % 7 == 3 ? "https" : "http", host, 8000 + i % 3,
	         i, i % 4 == 1 ? "sub/deeper/" : "");
	return prefix_ok(text);
}

/* The query a request matching exactly p's path would make. */
static void query_for(const struct url_prefix *p, struct route_query *q, struct ps_addr *local)
{
	memset(local, 0, sizeof(*local));
	local->family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", local->addr);
	if (p->cls == HOST_IP)
		*local = p->ip;
	q->host = p->cls == HOST_NAME ? p->host : "other.example";
	q->port = p->port;
	q->local = local;
	q->path = p->path;
}

static uintptr_t owner_of(const struct route_table *t, const struct url_prefix *p)
{
	struct route_query q;
	struct ps_addr local;
	void *owner;

	query_for(p, &q, &local);
	return route_lookup(t, &q, &owner, NULL) == ROUTE_FOUND ? (uintptr_t)owner : 0;
}

static void add_ok(struct route_table *t, const struct url_prefix *p, uintptr_t owner)
{
	void *holder = OWNER(999);

	assert_int_equal(route_add(t, p, OWNER(owner), &holder), 0);
	assert_null(holder);
}

/* route_add as a retried operation: 0, or -2 with our own owner when an earlier
 * attempt added it; the only failure allowed is -1 (no memory). */
static bool add_again(struct route_table *t, const struct url_prefix *p, uintptr_t owner)
{
	void *holder = NULL;
	int rc = route_add(t, p, OWNER(owner), &holder);

	if (rc == -2)
		assert_ptr_equal(holder, OWNER(owner));
	else if (rc != 0)
		assert_int_equal(rc, -1);
	return rc != -1;
}

static void *table_with_baseline(void)
{
	struct table_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->t = route_new();
	assert_non_null(s->t);
	for (unsigned i = 0; i < NBASELINE; i++) {
		struct url_prefix p = prefix_ok(baseline[i]);
		add_ok(s->t, &p, i + 1);
	}
	return s;
}

static void table_teardown(void *state)
{
	struct table_state *s = state;

	route_free(s->t);
	free(s);
}

struct present {
	bool added[LIFE_PREFIXES];
	size_t count;
};

static void collect(const struct url_prefix *p, void *owner, void *arg)
{
	struct present *seen = arg;
	uintptr_t o = (uintptr_t)owner;

	seen->count++;
	if (o >= ADDED_OWNER(0) && o < ADDED_OWNER(LIFE_PREFIXES))
		seen->added[o - ADDED_OWNER(0)] = true;
}

/* What t answers for a request to p's host and port, on p's path or on another. */
static enum route_result answer(const struct route_table *t, const struct url_prefix *p, const char *path,
                                uintptr_t *owner)
{
	struct route_query q;
	struct ps_addr local;
	void *o;
	enum route_result res;

	query_for(p, &q, &local);
	if (path)
		q.path = path;
	res = route_lookup(t, &q, &o, NULL);
	*owner = res == ROUTE_FOUND ? (uintptr_t)o : 0;
	return res;
}

/* The table holds the baseline and some of the added prefixes, nothing half-added: it
 * answers every request (found, 404 or 400) as a table freshly built from what it
 * lists does, and its counts agree. A counter left behind by a failed add would turn
 * a 400 into a 404 here. */
static void check_table(const struct route_table *t, unsigned nbase, unsigned nadded, bool all)
{
	struct present seen = {0};
	struct route_table *ref = route_new();
	size_t present = 0;

	assert_non_null(ref);
	route_foreach(t, collect, &seen);
	assert_int_equal(route_count(t), seen.count);
	for (unsigned i = 0; i < nbase; i++) {
		struct url_prefix p = prefix_ok(baseline[i]);
		add_ok(ref, &p, i + 1);
		assert_int_equal(owner_of(t, &p), i + 1);
	}
	for (unsigned i = 0; i < nadded; i++) {
		struct url_prefix p = added(i);
		if (all)
			assert_true(seen.added[i]);
		if (seen.added[i]) {
			add_ok(ref, &p, ADDED_OWNER(i));
			present++;
		}
	}
	assert_int_equal(seen.count, nbase + present);
	for (unsigned i = 0; i < nadded; i++) {
		struct url_prefix p = added(i);
		for (int other = 0; other < 2; other++) {
			const char *path = other ? "/nothing/" : NULL;
			uintptr_t got, want;
			enum route_result res = answer(t, &p, path, &got),
			                  ref_res = answer(ref, &p, path, &want);
			if (res != ref_res || got != want)
				fail_msg("prefix %u (%s), path %s: result %d owner %lu, a fresh table says "
				         "%d owner %lu",
				         i, seen.added[i] ? "present" : "absent", path ? path : p.path, res,
				         (unsigned long)got, ref_res, (unsigned long)want);
		}
	}
	for (uint16_t port = 8000; port < 8003; port++)
		assert_int_equal(route_port_count(t, port), route_port_count(ref, port));
	route_free(ref);
}

/* route_new: NULL on no memory. */

static void *nothing_setup(void)
{
	struct table_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	return s;
}

static bool new_run(void *state)
{
	struct table_state *s = state;

	s->t = route_new();
	return s->t != NULL;
}

static void new_check(void *state, bool done)
{
	struct table_state *s = state;

	if (done)
		assert_int_equal(route_count(s->t), 0);
	else
		assert_null(s->t);
}

static void test_new(void **unused)
{
	const struct failalloc_case c = {nothing_setup, new_run, new_check, table_teardown};

	assert_int_equal(failalloc_run(&c), 1);
}

/* The first prefix of an empty table: its entry, both counters and all three hash
 * arrays are allocated by this one add. */

static void *empty_setup(void)
{
	struct table_state *s = nothing_setup();

	s->t = route_new();
	assert_non_null(s->t);
	return s;
}

static bool first_run(void *state)
{
	struct table_state *s = state;
	struct url_prefix p = added(1);

	return add_again(s->t, &p, ADDED_OWNER(1));
}

static void first_check(void *state, bool done)
{
	struct table_state *s = state;

	check_table(s->t, 0, 2, false);
	if (done)
		assert_int_equal(route_count(s->t), 1);
}

static void test_first_add(void **unused)
{
	const struct failalloc_case c = {empty_setup, first_run, first_check, table_teardown};

	assert_int_equal(failalloc_run(&c), 5);
}

/* Forty adds onto a table that already routes: new counters, shared counters, and
 * both hash tables growing (rehash) on the way. */

static bool life_run(void *state)
{
	struct table_state *s = state;

	for (unsigned i = 0; i < LIFE_PREFIXES; i++) {
		struct url_prefix p = added(i);
		if (!add_again(s->t, &p, ADDED_OWNER(i)))
			return false;
	}
	return true;
}

static void life_check(void *state, bool done)
{
	struct table_state *s = state;

	check_table(s->t, NBASELINE, LIFE_PREFIXES, done);
	if (!done)
		return;
	/* and the table is still one that deletes and adds; emptied of what was added,
	 * it answers as the baseline alone (no counter outlives its prefixes) */
	for (unsigned i = 0; i < LIFE_PREFIXES; i += 2) {
		struct url_prefix p = added(i);
		assert_int_equal(route_del(s->t, &p), 0);
	}
	check_table(s->t, NBASELINE, LIFE_PREFIXES, false);
	for (unsigned i = 0; i < LIFE_PREFIXES; i += 2) {
		struct url_prefix p = added(i);
		add_ok(s->t, &p, ADDED_OWNER(i));
	}
	check_table(s->t, NBASELINE, LIFE_PREFIXES, true);
	for (unsigned i = 0; i < LIFE_PREFIXES; i++) {
		struct url_prefix p = added(i);
		assert_int_equal(route_del(s->t, &p), 0);
	}
	check_table(s->t, NBASELINE, LIFE_PREFIXES, false);
	assert_int_equal(route_count(s->t), NBASELINE);
}

static void test_table_life(void **unused)
{
	const struct failalloc_case c = {table_with_baseline, life_run, life_check, table_teardown};
	unsigned long n = failalloc_run(&c);

	/* at least one entry per prefix, and some counters and hash arrays */
	assert_true(n > LIFE_PREFIXES);
	print_message("route: %lu allocations in %u adds, each failed in turn\n", n, LIFE_PREFIXES);
}

/* Lookups, deletes and refused adds (duplicate, malformed) allocate nothing that
 * outlives them. */
static void test_no_allocation_left(void **unused)
{
	struct table_state *s = table_with_baseline();
	struct url_prefix dup = prefix_ok(baseline[0]);
	void *holder = NULL;
	long live = failalloc_live();

	failalloc_arm(0, false);
	assert_int_equal(owner_of(s->t, &dup), 1);
	assert_int_equal(route_add(s->t, &dup, OWNER(7), &holder), -2);
	assert_ptr_equal(holder, OWNER(1));
	/* the refused duplicate allocated its entry and freed it again */
	assert_int_equal(failalloc_count(), 1);
	assert_int_equal(failalloc_live(), live);
	assert_int_equal(route_del(s->t, &dup), 0);
	assert_int_equal(failalloc_count(), 1);
	failalloc_disarm();
	table_teardown(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new),
	    cmocka_unit_test(test_first_add),
	    cmocka_unit_test(test_table_life),
	    cmocka_unit_test(test_no_allocation_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
