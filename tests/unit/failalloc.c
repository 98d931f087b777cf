/* failalloc.c: the failing allocator of the unit tests (see failalloc.h): --wrap'ped
 * malloc & co. that refuse the Nth call on request, and the SQLite-style driver that
 * fails every allocation of an operation in turn. */
#include "failalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Descriptors below this are looked at by the leak check. */
#define FAILALLOC_FD_SCAN 1024

static unsigned long fail_at; /* 0: fail nothing */
static bool fail_sticky;
static unsigned long calls;
static long live;

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
FILE *__real_fopen(const char *path, const char *mode);
int __real_fclose(FILE *f);

void failalloc_arm(unsigned long n, bool sticky)
{
	fail_at = n;
	fail_sticky = sticky;
	calls = 0;
}

void failalloc_disarm(void)
{
	fail_at = 0;
}

unsigned long failalloc_count(void)
{
	return calls;
}

long failalloc_live(void)
{
	return live;
}

/* Counts one allocation call; true if it is to be refused. */
static bool failalloc_refuse(void)
{
	calls++;
	if (fail_at == 0 || calls < fail_at || (calls > fail_at && !fail_sticky))
		return false;
	errno = ENOMEM;
	return true;
}

static void *failalloc_track(void *p)
{
	if (p)
		live++;
	return p;
}

void *__wrap_malloc(size_t size)
{
	return failalloc_refuse() ? NULL : failalloc_track(__real_malloc(size));
}

void *__wrap_calloc(size_t n, size_t size)
{
	return failalloc_refuse() ? NULL : failalloc_track(__real_calloc(n, size));
}

/* A refused realloc leaves the block as it was, as a real failure does. */
void *__wrap_realloc(void *p, size_t size)
{
	if (p == NULL)
		return __wrap_malloc(size);
	if (failalloc_refuse())
		return NULL;
	void *q = __real_realloc(p, size);
	/* realloc(p, 0) may free p and return NULL (glibc) */
	if (q == NULL && size == 0)
		live--;
	return q;
}

void __wrap_free(void *p)
{
	if (p)
		live--;
	__real_free(p);
}

char *__wrap_strdup(const char *s)
{
	return failalloc_refuse() ? NULL : failalloc_track(__real_strdup(s));
}

char *__wrap_strndup(const char *s, size_t n)
{
	return failalloc_refuse() ? NULL : failalloc_track(__real_strndup(s, n));
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
	return failalloc_refuse() ? NULL : failalloc_track(__real_fopen(path, mode));
}

int __wrap_fclose(FILE *f)
{
	live--;
	return __real_fclose(f);
}

static int failalloc_open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < FAILALLOC_FD_SCAN; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* One pass with allocation `at` failing (0: none). Returns the allocations counted. */
static unsigned long failalloc_step(const struct failalloc_case *c, unsigned long at, bool sticky)
{
	long live_before = failalloc_live();
	int fds_before = failalloc_open_fds();
	void *state = c->setup();

	if (getenv("FAILALLOC_TRACE"))
		print_message("failalloc: allocation %lu failing%s\n", at,
		              sticky ? ", and every later one" : "");
	failalloc_arm(at, sticky);
	bool done = c->run(state);
	unsigned long n = failalloc_count();
	failalloc_disarm();

	bool refused = at != 0 && n >= at;
	if (refused && done)
		fail_msg("allocation %lu of %lu failed%s, yet the operation reported success", at, n,
		         sticky ? " (and every later one)" : "");
	if (!refused && !done)
		fail_msg("the operation failed with no allocation refused (allocation %lu of %lu)", at, n);
	c->check(state, done);
	if (!done) {
		/* the allocator works again: the same operation must now complete */
		if (!c->run(state))
			fail_msg("after allocation %lu failed, the operation still fails with memory", at);
		c->check(state, true);
	}
	c->teardown(state);
	if (failalloc_live() != live_before)
		fail_msg("allocation %lu failing%s: %ld block(s) leaked", at, sticky ? " (sticky)" : "",
		         failalloc_live() - live_before);
	if (failalloc_open_fds() != fds_before)
		fail_msg("allocation %lu failing%s: %d file descriptor(s) leaked", at,
		         sticky ? " (sticky)" : "", failalloc_open_fds() - fds_before);
	return n;
}

unsigned long failalloc_run(const struct failalloc_case *c)
{
	unsigned long total = failalloc_step(c, 0, false);

	for (unsigned long i = 1; i <= total; i++) {
		failalloc_step(c, i, false);
		failalloc_step(c, i, true);
	}
	return total;
}
