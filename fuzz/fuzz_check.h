/* fuzz_check.h: the one assertion the fuzz targets use. Unlike assert() it is never
 * compiled out, and it names the broken invariant before abort() hands over to
 * libFuzzer, which saves the input. */
#ifndef PS_FUZZ_CHECK_H
#define PS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                                     \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);         \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

#endif
