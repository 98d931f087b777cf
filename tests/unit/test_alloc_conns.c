/* test_alloc_conns.c: every allocation of the library's connection cache
 * (src/lib/conns.c) made to fail in turn (tests/unit/failalloc.h): conns_add answers
 * NULL, leaves the table as it was (a replaced entry stays, its fd open) and does not
 * take the fd; a later add works. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "failalloc.h"

#include "../../src/lib/conns.c"

/* The cache frees a TLS connection's records with conn_io.c, which this test does not link:
 * its entries are all plain. */
void conn_io_free_tls(struct held_conn *cn)
{
	assert_null(cn->tls);
}

/* More than the first array holds (64), so the table grows while they are added. */
#define MANY 150
#define REPLACED_ID 7

struct conns_state {
	struct conns t;
	unsigned first; /* ids first..last-1 are what the operation adds */
	unsigned last;
	int replaced_fd; /* replacing: the fd cached under REPLACED_ID before; else -1 */
};

static int fresh_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* Every entry is where its id hashes to, cached, alive, with its fd open, and the
 * count is the number of entries. Returns how many of first..last-1 are there. */
static unsigned check_table(const struct conns *t, unsigned first, unsigned last)
{
	size_t entries = 0;
	unsigned found = 0;

	for (size_t i = 0; i < t->nslots; i++) {
		for (const struct held_conn *cn = t->slots[i]; cn; cn = cn->next) {
			assert_int_equal(conns_slot(t, cn->id), i);
			assert_int_equal(cn->cached, 1);
			assert_true(cn->refs >= 1);
			assert_true(fd_open(cn->fd));
			assert_ptr_equal(conns_find(t, cn->id), cn);
			entries++;
		}
	}
	assert_int_equal(t->count, entries);
	for (unsigned id = first; id < last; id++)
		found += conns_find(t, id) != NULL;
	return found;
}

static void *conns_setup(unsigned preload, unsigned first, unsigned last)
{
	struct conns_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->first = first;
	s->last = last;
	s->replaced_fd = -1;
	for (unsigned id = 1000; id < 1000 + preload; id++)
		assert_non_null(conns_add(&s->t, id, fresh_fd()));
	return s;
}

static void conns_teardown(void *state)
{
	struct conns_state *s = state;

	conns_free(&s->t);
	free(s);
}

/* The operation: cache a fresh fd under every id of first..last-1 not cached yet (a
 * retry finishes what a failed run began), or, replacing, under every one. */
static bool add_run(void *state)
{
	struct conns_state *s = state;

	for (unsigned id = s->first; id < s->last; id++) {
		if (conns_find(&s->t, id) && s->replaced_fd < 0)
			continue;
		int fd = fresh_fd();
		struct held_conn *cn = conns_add(&s->t, id, fd);
		if (cn == NULL) {
			/* not taken: the caller closes it */
			assert_true(fd_open(fd));
			close(fd);
			return false;
		}
		assert_int_equal(cn->fd, fd);
		assert_ptr_equal(conns_find(&s->t, id), cn);
	}
	return true;
}

static void add_check(void *state, bool done)
{
	struct conns_state *s = state;
	unsigned found = check_table(&s->t, s->first, s->last);

	if (done)
		assert_int_equal(found, s->last - s->first);
}

/* The first add to an empty table: the array and the entry. */

static void *empty_setup(void)
{
	return conns_setup(0, 1, 2);
}

static void test_first_add(void **unused)
{
	const struct failalloc_case c = {empty_setup, add_run, add_check, conns_teardown};

	assert_int_equal(failalloc_run(&c), 2);
}

/* Many adds onto a table in use: entries, and the array doubling on the way. */

static void *many_setup(void)
{
	return conns_setup(10, 1, 1 + MANY);
}

static void test_many_adds(void **unused)
{
	const struct failalloc_case c = {many_setup, add_run, add_check, conns_teardown};
	unsigned long n = failalloc_run(&c);

	assert_int_equal(n, MANY + 2);
	print_message("conns: %lu allocations in %u adds, each failed in turn\n", n, MANY);
}

/* An add under an id already cached: when it fails, the old entry must still be there
 * with its fd open (the caller still holds the connection). */

static void *replace_setup(void)
{
	struct conns_state *s = conns_setup(5, REPLACED_ID, REPLACED_ID + 1);

	s->replaced_fd = fresh_fd();
	assert_non_null(conns_add(&s->t, REPLACED_ID, s->replaced_fd));
	return s;
}

static void replace_check(void *state, bool done)
{
	struct conns_state *s = state;
	const struct held_conn *cn = conns_find(&s->t, REPLACED_ID);

	assert_int_equal(check_table(&s->t, REPLACED_ID, REPLACED_ID + 1), 1);
	assert_int_equal(s->t.count, 6);
	if (done) {
		/* replaced: the old fd was released with its entry */
		assert_int_not_equal(cn->fd, s->replaced_fd);
	} else {
		assert_int_equal(cn->fd, s->replaced_fd);
	}
}

static bool replace_run(void *state)
{
	struct conns_state *s = state;
	struct held_conn *old = conns_find(&s->t, REPLACED_ID);

	/* a retry after a failure replaces the same old entry */
	assert_non_null(old);
	assert_int_equal(old->fd, s->replaced_fd);
	return add_run(state);
}

static void test_replace(void **unused)
{
	const struct failalloc_case c = {replace_setup, replace_run, replace_check, conns_teardown};

	assert_int_equal(failalloc_run(&c), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_add),
	    cmocka_unit_test(test_many_adds),
	    cmocka_unit_test(test_replace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
