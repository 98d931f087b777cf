/* prefix_ok.h: the unit tests' URL prefix from text, failing the test when it is refused.
 * Include after <cmocka.h> and "url_prefix.h". */
#ifndef PORTSHARE_TEST_PREFIX_OK_H
#define PORTSHARE_TEST_PREFIX_OK_H

static inline struct url_prefix prefix_ok(const char *s)
{
	struct url_prefix p;
	char err[256];

	if (url_prefix_parse(s, &p, err, sizeof(err)) != 0)
		fail_msg("\"%s\" refused: %s", s, err);
	return p;
}

#endif
