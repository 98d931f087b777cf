/* url_prefix.c: parses and prints URL prefixes "http://HOST:PORT/PATH/" (DESIGN §3). */
#include "url_prefix.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "canon.h"

#define URL_PREFIX_EXAMPLE "http://+:8080/app/"

__attribute__((format(printf, 3, 4))) static int url_prefix_fail(char *err, size_t errlen, const char *fmt,
                                                                 ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Digits only, no sign, no leading zero, 1..65535. */
static int url_prefix_port(const char *s, size_t n, uint16_t *port)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || s[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* RFC 1123 host name: labels of letters, digits and inner hyphens, 1..63 bytes each,
 * 253 in all. Stored lower case so that route lookups compare bytes. */
static int url_prefix_name(const char *s, size_t n, struct url_prefix *p, char *err, size_t errlen)
{
	bool numeric_label = true;
	size_t label = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0)
		return url_prefix_fail(err, errlen, "host is empty: use '+', '*', a name or an IP address");
	if (n > 253)
		return url_prefix_fail(err, errlen, "host name is longer than 253 bytes");
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? s[i] : '.';
		if (c == '.') {
			if (label == 0)
				return url_prefix_fail(err, errlen, "host name has an empty label: '%.*s'",
				                       (int)n, s);
			if (s[i - 1] == '-')
				return url_prefix_fail(err, errlen,
				                       "a host name label must not end with '-': '%.*s'",
				                       (int)n, s);
			label = 0;
			if (i < n) {
				numeric_label = true;
				p->host[i] = '.';
			}
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return url_prefix_fail(err, errlen,
			                       "host name may hold only letters, digits, '-' and '.': '%.*s'",
			                       (int)n, s);
		if (c == '-' && label == 0)
			return url_prefix_fail(
			    err, errlen, "a host name label must not start with '-': '%.*s'", (int)n, s);
		if (++label > 63)
			return url_prefix_fail(err, errlen, "a host name label is longer than 63 bytes");
		if (c < '0' || c > '9')
			numeric_label = false;
		p->host[i] = c;
	}
	/* WHATWG URL and some resolvers read "1.2.3" or "127.1" as an IPv4 address; a
	 * name that ends in a numeric label is refused rather than guessed at. */
	if (numeric_label)
		return url_prefix_fail(err, errlen, "invalid IPv4 address '%.*s' (use a dotted quad)", (int)n,
		                       s);
	p->host[n] = '\0';
	p->cls = HOST_NAME;
	return 0;
}

static int url_prefix_ip(const char *s, size_t n, int family, struct url_prefix *p)
{
	char text[INET6_ADDRSTRLEN];

	if (n >= sizeof(text))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	/* glibc's inet_pton takes only a strict dotted quad for AF_INET: no leading zeros,
	 * no short forms, no octal or hex. */
	if (inet_pton(family, text, p->ip.addr) != 1)
		return -1;
	p->ip.family = (uint16_t)family;
	if (inet_ntop(family, p->ip.addr, p->host, sizeof(p->host)) == NULL)
		return -1;
	p->cls = HOST_IP;
	return 0;
}

static int url_prefix_host(const char *s, size_t n, struct url_prefix *p, char *err, size_t errlen)
{
	if (n == 1 && (s[0] == '+' || s[0] == '*')) {
		p->cls = s[0] == '+' ? HOST_STRONG : HOST_WEAK;
		p->host[0] = s[0];
		p->host[1] = '\0';
		return 0;
	}
	if (n > 0 && s[0] == '[') {
		if (n < 2 || s[n - 1] != ']' || url_prefix_ip(s + 1, n - 2, AF_INET6, p) < 0)
			return url_prefix_fail(err, errlen, "invalid IPv6 address '%.*s' (write it as [::1])",
			                       (int)n, s);
		return 0;
	}
	if (url_prefix_ip(s, n, AF_INET, p) == 0)
		return 0;
	return url_prefix_name(s, n, p, err, errlen);
}

/* The path goes through the same canonicaliser as request paths, so that a prefix
 * and the requests it should match are compared in one form. */
static int url_prefix_path(const char *s, size_t n, struct url_prefix *p, char *err, size_t errlen)
{
	char out[PS_PREFIX_MAX + 2], alt[PS_PREFIX_MAX + 2];
	const char *reason = "";
	bool alt_differs = false;
	size_t len;

	if (n == 0) {
		s = "/";
		n = 1;
	}
	if (memchr(s, '?', n))
		return url_prefix_fail(err, errlen, "a prefix has no query: remove '?' and what follows");
	if (memchr(s, '#', n))
		return url_prefix_fail(err, errlen, "a prefix has no fragment: remove '#' and what follows");
	if (canon_path(s, n, NULL, out, &len, alt, &alt_differs, &reason) != CANON_OK)
		return url_prefix_fail(err, errlen, "invalid path (%s): '%.*s'", reason, (int)n, s);
	if (alt_differs)
		return url_prefix_fail(
		    err, errlen, "a prefix path must not contain %%2F, %%5C or '\\': '%.*s'", (int)n, s);
	/* Fits in p->path: the whole prefix string is at most PS_PREFIX_MAX bytes. */
	if (out[len - 1] != '/')
		out[len++] = '/';
	memcpy(p->path, out, len);
	p->path[len] = '\0';
	return 0;
}

int url_prefix_parse(const char *s, struct url_prefix *p, char *err, size_t errlen)
{
	const char *auth, *end, *colon;
	size_t slen;

	memset(p, 0, sizeof(*p));
	if (err && errlen)
		err[0] = '\0';
	if (s == NULL)
		return url_prefix_fail(err, errlen, "no prefix given: " URL_PREFIX_EXAMPLE);
	slen = strlen(s);
	if (slen > PS_PREFIX_MAX)
		return url_prefix_fail(err, errlen, "prefix is longer than %d bytes", PS_PREFIX_MAX);
	if (strncasecmp(s, "http://", 7) == 0) {
		auth = s + 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		p->https = true;
		auth = s + 8;
	} else {
		return url_prefix_fail(err, errlen,
		                       "prefix must start with http:// or https://: " URL_PREFIX_EXAMPLE);
	}
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)))
		return url_prefix_fail(err, errlen, "a prefix has no user name: remove the part before '@'");
	if (*end == '?' || *end == '#')
		return url_prefix_fail(err, errlen, "a prefix has no query or fragment: " URL_PREFIX_EXAMPLE);

	/* The port is after the last ':' outside an IPv6 literal's brackets. */
	colon = NULL;
	for (const char *c = end; c > auth; c--) {
		if (c[-1] == ']')
			break;
		if (c[-1] == ':') {
			colon = c - 1;
			break;
		}
	}
	if (colon == NULL || colon + 1 == end)
		return url_prefix_fail(err, errlen, "port is required: " URL_PREFIX_EXAMPLE);
	if (url_prefix_port(colon + 1, (size_t)(end - colon - 1), &p->port) < 0)
		return url_prefix_fail(err, errlen,
		                       "invalid port '%.*s': use 1 to 65535, digits only, no leading zero",
		                       (int)(end - colon - 1), colon + 1);
	if (url_prefix_host(auth, (size_t)(colon - auth), p, err, errlen) < 0)
		return -1;
	return url_prefix_path(end, strlen(end), p, err, errlen);
}

int url_prefix_format(const struct url_prefix *p, char *buf, size_t len)
{
	const char *scheme = p->https ? "https" : "http";
	char ip[INET6_ADDRSTRLEN];

	switch (p->cls) {
	case HOST_STRONG:
		return snprintf(buf, len, "%s://+:%u%s", scheme, (unsigned)p->port, p->path);
	case HOST_WEAK:
		return snprintf(buf, len, "%s://*:%u%s", scheme, (unsigned)p->port, p->path);
	case HOST_IP:
		/* Printed from the address, not from host, so a prefix built by hand prints too. */
		if (inet_ntop(p->ip.family, p->ip.addr, ip, sizeof(ip)) == NULL)
			snprintf(ip, sizeof(ip), "?");
		if (p->ip.family == AF_INET6)
			return snprintf(buf, len, "%s://[%s]:%u%s", scheme, ip, (unsigned)p->port, p->path);
		return snprintf(buf, len, "%s://%s:%u%s", scheme, ip, (unsigned)p->port, p->path);
	default:
		return snprintf(buf, len, "%s://%s:%u%s", scheme, p->host, (unsigned)p->port, p->path);
	}
}

bool url_prefix_equal(const struct url_prefix *a, const struct url_prefix *b)
{
	return a->https == b->https && a->cls == b->cls && a->port == b->port && !strcmp(a->host, b->host) &&
	       !strcmp(a->path, b->path);
}
