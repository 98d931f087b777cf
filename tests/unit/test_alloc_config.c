/* test_alloc_config.c: config_load (src/daemon/config.c) when memory runs out. Its only
 * allocation a test can fail is fopen's FILE (failalloc.h wraps fopen); the stdio
 * buffer that fgets allocates is glibc's own and out of reach, and glibc reads
 * unbuffered when that one fails. The answer must be -1 with an error naming the file,
 * and the config left as it was. */
#include <errno.h>
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

#include "../../src/daemon/config.c"

static const char config_text[] = "# a config file\n"
                                  "listen 127.0.0.1\n"
                                  "listen [::1]\n"
                                  "HeaderWait 2.5\n"
                                  "MaxRequestBytes 8192\n";

struct config_state {
	char path[256];
	struct config c, before;
	char err[512];
};

static void *config_setup(void)
{
	struct config_state *s = calloc(1, sizeof(*s));
	const char *dir = getenv("TMPDIR");

	assert_non_null(s);
	snprintf(s->path, sizeof(s->path), "%s/portshare-config.XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(s->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, config_text, sizeof(config_text) - 1), sizeof(config_text) - 1);
	close(fd);
	/* a config that is not the defaults, so "left as it was" can be seen */
	config_defaults(&s->c);
	s->c.path = s->path;
	s->c.limits.linger_ms = 1;
	s->c.nlisten = 1;
	s->before = s->c;
	return s;
}

static bool config_run(void *state)
{
	struct config_state *s = state;

	s->err[0] = '\0';
	if (config_load(&s->c, s->err, sizeof(s->err)) == 0)
		return true;
	/* FILE: what failed, and why */
	assert_non_null(strstr(s->err, s->path));
	assert_non_null(strstr(s->err, strerror(ENOMEM)));
	return false;
}

static void config_check(void *state, bool done)
{
	struct config_state *s = state;

	if (!done) {
		assert_ptr_equal(s->c.path, s->before.path);
		assert_memory_equal(&s->c.limits, &s->before.limits, sizeof(s->c.limits));
		assert_memory_equal(s->c.listen, s->before.listen, sizeof(s->c.listen));
		assert_int_equal(s->c.nlisten, s->before.nlisten);
		return;
	}
	assert_int_equal(s->c.nlisten, 2);
	assert_int_equal(s->c.limits.header_wait_ms, 2500);
	assert_int_equal(s->c.limits.max_request_bytes, 8192);
	assert_int_equal(s->c.limits.linger_ms, 2000);
}

static void config_teardown(void *state)
{
	struct config_state *s = state;

	unlink(s->path);
	free(s);
}

static void test_config_load(void **unused)
{
	const struct failalloc_case c = {config_setup, config_run, config_check, config_teardown};

	assert_int_equal(failalloc_run(&c), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
