/* canon.h: the canonical form of a request path, on which routing runs (DESIGN §3).
 * Decodes percent-escapes of unreserved characters only, collapses "//", removes dot
 * segments (RFC 3986 §5.2.4), in that order; refuses what is ambiguous. No I/O. */
#ifndef PS_CANON_H
#define PS_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct canon_limits {
	uint32_t max_segment_length; /* default 260 (UrlSegmentMaxLength) */
	uint32_t max_segments;       /* default 255 (UrlSegmentMaxCount) */
};
#define CANON_LIMITS_DEFAULT                                                                                 \
	{                                                                                                    \
		260, 255                                                                                     \
	}

enum canon_result {
	CANON_OK = 0,
	CANON_BAD = 400,  /* invalid escape, encoded NUL or control, climbs above "/", ... */
	CANON_LONG = 414, /* a segment or the segment count is over the limit */
};

/* in: the path part of an origin-form target (starts with '/', no query). out: at
 * least inlen + 2 bytes; NUL-terminated. *alt_differs is set when the path holds %2F,
 * %5C or '\', in which case `alt` (same capacity) receives the canonical path with
 * those read as '/': the caller routes both and answers 400 if they differ.
 * *reason gets a static text on failure. */
enum canon_result canon_path(const char *in, size_t inlen, const struct canon_limits *lim, char *out,
                             size_t *outlen, char *alt, bool *alt_differs, const char **reason);

#endif
