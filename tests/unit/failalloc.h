/* failalloc.h: an allocator for unit tests that fails the Nth allocation on request, as
 * SQLite's test harness does, so that every allocation path of a module can be made to
 * fail in turn.
 *
 * Every unit-test binary is linked with -Wl,--wrap for malloc, calloc, realloc, free,
 * strdup, strndup, fopen and fclose (Makefile), so the calls made by the objects of
 * the test binary (the test and the modules it links) come here first. Calls made
 * inside shared libraries (glibc's own, cmocka's) do not: asprintf, open_memstream,
 * getline and the like allocate inside glibc and cannot be failed this way.
 *
 * fopen counts as an allocation (it allocates the FILE); a refused call returns NULL
 * with errno ENOMEM, as the real one would. */
#ifndef PS_TEST_FAILALLOC_H
#define PS_TEST_FAILALLOC_H

#include <stdbool.h>

/* Fails the n-th allocation from now (1 is the next one) and, if sticky, every later
 * one too. n = 0 fails nothing and only counts. */
void failalloc_arm(unsigned long n, bool sticky);
/* Stops failing; the count goes on. */
void failalloc_disarm(void);
/* Allocation calls since the last failalloc_arm, refused ones included. */
unsigned long failalloc_count(void);
/* Blocks (and FILEs) obtained through the wrappers and not released yet: a test
 * compares it before and after, so leaks show in every build, not only under ASan. */
long failalloc_live(void);

/* One operation tested SQLite-style by failalloc_run. state is the test's own. */
struct failalloc_case {
	/* Builds the state the operation works on (the allocator is not armed). */
	void *(*setup)(void);
	/* The operation. Returns whether it succeeded; on failure it has already
	 * asserted that the failure was the documented one (-1, NULL, PS_ENOMEM...). It
	 * must be repeatable: run again after a failure, it completes the work. */
	bool (*run)(void *state);
	/* Asserts that the state is consistent (allocator not armed); done says whether
	 * the operation has completed. */
	void (*check)(void *state, bool done);
	/* Frees the state. */
	void (*teardown)(void *state);
};

/* Runs c once to count its allocations N, then for each i in 1..N twice more: with
 * allocation i failing, and with i and every later one failing. Each time the
 * operation must report failure, the state must pass check, the same operation must
 * then succeed with the allocator working again, and after teardown no block or file
 * descriptor may be left over. Returns N. */
unsigned long failalloc_run(const struct failalloc_case *c);

#endif
