/* canon.c: turns a request path into the canonical form routing runs on (DESIGN §3). */
#include "canon.h"

#include <string.h>

static const char canon_hexdigits[] = "0123456789ABCDEF";

static int canon_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 3986 §2.3: the only characters whose escaped and plain forms are equivalent. */
static bool canon_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

/* Copies in to out, decoding escapes of unreserved characters and upper-casing the
 * others. When sep_as_slash is set, %2F, %5C and '\' become '/': that is the path a
 * backend that decodes them (or a Windows one) would see. *seen_sep tells whether any
 * of them occurred. Returns the length written, or -1 with *reason set. */
static long canon_decode(const char *in, size_t inlen, char *out, bool sep_as_slash, bool *seen_sep,
                         const char **reason)
{
	size_t w = 0;

	*seen_sep = false;
	for (size_t r = 0; r < inlen; r++) {
		unsigned char c = (unsigned char)in[r];

		if (c == '%') {
			int hi = r + 2 < inlen ? canon_hex((unsigned char)in[r + 1]) : -1;
			int lo = hi >= 0 ? canon_hex((unsigned char)in[r + 2]) : -1;
			if (lo < 0) {
				*reason =
				    "invalid percent escape in path ('%' must be followed by two hex digits)";
				return -1;
			}
			r += 2;
			unsigned char v = (unsigned char)(hi << 4 | lo);
			if (v < 0x20 || v == 0x7f) {
				*reason = "encoded NUL or control character in path";
				return -1;
			}
			if (v == '/' || v == '\\') {
				*seen_sep = true;
				if (sep_as_slash) {
					out[w++] = '/';
					continue;
				}
			}
			if (canon_unreserved(v)) {
				out[w++] = (char)v;
			} else {
				out[w++] = '%';
				out[w++] = canon_hexdigits[hi];
				out[w++] = canon_hexdigits[lo];
			}
			continue;
		}
		/* llhttp's strict mode refuses most of these already; the router must not
		 * depend on that. */
		if (c <= 0x20 || c >= 0x7f) {
			*reason = "control character, space or non-ASCII byte in path";
			return -1;
		}
		if (c == '#') {
			*reason = "'#' in path";
			return -1;
		}
		if (c == '?') {
			*reason = "'?' in path (the query must be split off first)";
			return -1;
		}
		if (c == '\\') {
			*seen_sep = true;
			if (sep_as_slash)
				c = '/';
		}
		out[w++] = (char)c;
	}
	return (long)w;
}

/* In place on buf (len bytes, buf[0] == '/'): collapses "//" runs, then removes dot
 * segments as RFC 3986 §5.2.4 does, except that climbing above "/" is an error rather
 * than silently staying at "/", since the client meant something we cannot serve. The
 * write position never passes the read position, so one buffer suffices. */
static enum canon_result canon_segments(char *buf, size_t len, size_t *outlen, const char **reason)
{
	size_t r = 0, w = 0;
	bool dir = false; /* the last segment was ".", ".." or empty: the result ends in '/' */

	while (r < len) {
		while (r < len && buf[r] == '/')
			r++;
		size_t s = r;
		while (r < len && buf[r] != '/')
			r++;
		size_t n = r - s;

		if (n == 0) {
			dir = true;
		} else if (n == 1 && buf[s] == '.') {
			dir = true;
		} else if (n == 2 && buf[s] == '.' && buf[s + 1] == '.') {
			if (w == 0) {
				*reason = "path climbs above '/'";
				return CANON_BAD;
			}
			while (buf[--w] != '/')
				;
			dir = true;
		} else {
			buf[w++] = '/';
			memmove(buf + w, buf + s, n);
			w += n;
			dir = false;
		}
	}
	if (w == 0 || dir)
		buf[w++] = '/';
	buf[w] = '\0';
	*outlen = w;
	return CANON_OK;
}

/* HTTP.sys applies its UrlSegmentMaxLength/Count to the path it routes on, so a long
 * segment that a ".." removes does not count. A NULL lim or a 0 field means the default:
 * a configuration that leaves a limit out must not lift it. */
static enum canon_result canon_check_limits(const char *p, size_t len, const struct canon_limits *lim,
                                            const char **reason)
{
	static const struct canon_limits def = CANON_LIMITS_DEFAULT;
	uint32_t max_len = lim && lim->max_segment_length ? lim->max_segment_length : def.max_segment_length;
	uint32_t max_count = lim && lim->max_segments ? lim->max_segments : def.max_segments;
	size_t count = 0;

	for (size_t i = 1; i < len;) {
		size_t s = i;
		while (i < len && p[i] != '/')
			i++;
		if (i - s > max_len) {
			*reason = "a path segment is too long";
			return CANON_LONG;
		}
		count++;
		i++;
	}
	if (count > max_count) {
		*reason = "the path has too many segments";
		return CANON_LONG;
	}
	return CANON_OK;
}

/* One form (primary or alternative): decode, then collapse and remove dots, then check
 * the limits. */
static enum canon_result canon_form(const char *in, size_t inlen, const struct canon_limits *lim, char *out,
                                    size_t *outlen, bool sep_as_slash, bool *seen_sep, const char **reason)
{
	long n = canon_decode(in, inlen, out, sep_as_slash, seen_sep, reason);
	if (n < 0)
		return CANON_BAD;
	enum canon_result res = canon_segments(out, (size_t)n, outlen, reason);
	if (res != CANON_OK)
		return res;
	return canon_check_limits(out, *outlen, lim, reason);
}

enum canon_result canon_path(const char *in, size_t inlen, const struct canon_limits *lim, char *out,
                             size_t *outlen, char *alt, bool *alt_differs, const char **reason)
{
	const char *why = NULL;
	bool seen_sep = false;
	size_t altlen;
	enum canon_result res;

	if (alt_differs)
		*alt_differs = false;
	if (alt)
		alt[0] = '\0';
	out[0] = '\0';
	*outlen = 0;
	if (in == NULL || inlen == 0 || in[0] != '/') {
		res = CANON_BAD;
		why = "the path must start with '/'";
		goto done;
	}
	res = canon_form(in, inlen, lim, out, outlen, false, &seen_sep, &why);
	if (res != CANON_OK || !seen_sep)
		goto done;
	/* A caller that cannot route the alternative form must not route this path at all:
	 * the two readings might reach different queues. */
	if (alt == NULL) {
		res = CANON_BAD;
		why = "encoded '/' or '\\' in path";
		goto done;
	}
	res = canon_form(in, inlen, lim, alt, &altlen, true, &seen_sep, &why);
	if (res == CANON_OK && alt_differs)
		*alt_differs = true;
done:
	if (res != CANON_OK) {
		out[0] = '\0';
		*outlen = 0;
		if (alt)
			alt[0] = '\0';
	}
	if (reason)
		*reason = why;
	return res;
}
