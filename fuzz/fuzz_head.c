/* fuzz_head.c: libFuzzer target for what the daemon does with the bytes of a request
 * head: the scan and checks of http_head_parse (with llhttp), then for an accepted head
 * the canonicaliser and the router (dispatch_route), with invariants checked on each.
 *
 * Input: one control byte, then the bytes a client sent. The control byte picks where
 * the bytes are split into two arrivals (the daemon parses the first piece, then the
 * whole, keeping its struct http_scan between the calls, as src/daemon/conn.c does),
 * and small or default limits, the local address family and the local port. Requests
 * without a body that follow an accepted one are parsed in turn (pipelining), up to four. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "canon.h"
#include "dispatch.h"
#include "http_body.h"
#include "http_head.h"
#include "route.h"
#include "url_prefix.h"

#include "fuzz_check.h"

/* Owner n is (void *)n; every prefix has its own, so a route can be named by owner. */
static const char *const fuzz_head_prefixes[] = {
    "http://+:80/blog/",
    "http://+:80/admin/",
    "http://example.com:80/",
    "http://example.com:80/api/",
    "http://www.example.com:80/api/v1/",
    "http://127.0.0.1:80/local/",
    "http://[::1]:80/local6/",
    "http://*:80/",
    "https://+:80/secure/",
    "http://+:8080/",
    "http://+:8080/a/b/c/",
    "http://+:8080/%7Euser/",
    "http://+:8080/a%20b/",
    "http://xn--bcher-kva.example:8080/",
    "http://*:8080/wild/",
    "http://[::1]:8080/v6only/",
};
#define FUZZ_HEAD_NPREFIXES (sizeof(fuzz_head_prefixes) / sizeof(fuzz_head_prefixes[0]))

/* and one more, owner FUZZ_HEAD_DEEP: "/deep/" then 200 levels of "x/", within the
 * default segment count, so that lookups try many levels */
#define FUZZ_HEAD_DEEP (FUZZ_HEAD_NPREFIXES + 1)
#define FUZZ_HEAD_DEEP_LEVELS 200

static struct route_table *fuzz_routes;

static void fuzz_head_add(const char *s, uintptr_t owner)
{
	struct url_prefix p;
	char err[256];

	if (url_prefix_parse(s, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_head: prefix %s: %s\n", s, err);
		abort();
	}
	FUZZ_CHECK(route_add(fuzz_routes, &p, (void *)owner, NULL) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char deep[PS_PREFIX_MAX + 1];

	fuzz_routes = route_new();
	FUZZ_CHECK(fuzz_routes != NULL);
	for (size_t k = 0; k < FUZZ_HEAD_NPREFIXES; k++)
		fuzz_head_add(fuzz_head_prefixes[k], k + 1);
	size_t n = (size_t)snprintf(deep, sizeof(deep), "http://+:8080/deep/");
	for (int level = 0; level < FUZZ_HEAD_DEEP_LEVELS; level++, n += 2)
		memcpy(deep + n, "x/", 3);
	fuzz_head_add(deep, FUZZ_HEAD_DEEP);
	return 0;
}

/* What the control byte chooses. */
struct fuzz_head_setup {
	size_t split;
	struct http_limits lim;
	struct ps_addr local;
	uint16_t port;
};

static void fuzz_head_setup(uint8_t control, size_t len, struct fuzz_head_setup *s)
{
	static const uint16_t ports[] = {80, 8080, 80, 81};
	const struct http_limits def = HTTP_LIMITS_DEFAULT;

	s->split = len * control / 255;
	/* small limits make the 414/431 paths reachable with short inputs */
	s->lim = (control & 1) ? (struct http_limits){200, 60} : def;
	memset(&s->local, 0, sizeof(s->local));
	if (control & 2) {
		s->local.family = AF_INET6;
		s->local.addr[15] = 1; /* ::1 */
	} else {
		s->local.family = AF_INET;
		s->local.addr[0] = 127;
		s->local.addr[3] = 1;
	}
	s->port = ports[(control >> 2) & 3];
	s->local.port = s->port;
}

static bool span_inside(struct http_span sp, uint32_t from, uint32_t to)
{
	return sp.off >= from && sp.off <= to && sp.len <= to - sp.off;
}

/* What must hold of every accepted head in buf[0, len). */
static void check_accepted(const char *buf, size_t len, const struct http_head *h)
{
	uint32_t from = h->skip, to = h->skip + h->head_len;

	FUZZ_CHECK(h->status == 0);
	FUZZ_CHECK((size_t)h->skip + h->head_len <= len);
	FUZZ_CHECK(h->head_len >= 4 && memcmp(buf + to - 4, "\r\n\r\n", 4) == 0);
	/* the head ends at its first empty line: no CRLF CRLF earlier in it */
	FUZZ_CHECK(memmem(buf + from, h->head_len - 2, "\r\n\r\n", 4) == NULL);
	/* RFC 9110 §5.5: NUL in a field value MUST be refused (or replaced, which we do not) */
	FUZZ_CHECK(memchr(buf + from, '\0', h->head_len) == NULL);
	FUZZ_CHECK(h->version_major == 1 && (h->version_minor == 0 || h->version_minor == 1));
	FUZZ_CHECK(span_inside(h->method_s, from, to) && span_inside(h->target, from, to));
	FUZZ_CHECK(span_inside(h->path, from, to) && span_inside(h->query, from, to));
	FUZZ_CHECK(h->target.len > 0 && memchr(buf + h->target.off, ' ', h->target.len) == NULL);
	FUZZ_CHECK(h->nfields <= HTTP_MAX_FIELDS);
	for (uint32_t k = 0; k < h->nfields; k++) {
		const struct http_field *f = &h->fields[k];
		FUZZ_CHECK(span_inside(f->name, from, to) && span_inside(f->value, from, to));
		FUZZ_CHECK(f->name.len > 0);
		FUZZ_CHECK(memchr(buf + f->value.off, '\r', f->value.len) == NULL);
		FUZZ_CHECK(memchr(buf + f->value.off, '\n', f->value.len) == NULL);
	}
	size_t hostlen = strnlen(h->host, sizeof(h->host));
	FUZZ_CHECK(hostlen < sizeof(h->host));
	for (size_t k = 0; k < hostlen; k++)
		FUZZ_CHECK(!(h->host[k] >= 'A' && h->host[k] <= 'Z'));
	FUZZ_CHECK(h->host_port >= -1 && h->host_port <= 65535);
	FUZZ_CHECK(h->content_length >= -1);
	/* one framing only (RFC 9112 §6.3) */
	FUZZ_CHECK(!(h->chunked && h->content_length != -1));
	if (h->version_minor == 1)
		FUZZ_CHECK(http_head_field(h, buf, "host") != NULL);
	if (h->asterisk_form)
		FUZZ_CHECK(h->target.len == 1 && buf[h->target.off] == '*');
	if (!h->absolute_form && !h->asterisk_form)
		FUZZ_CHECK(h->path.len > 0 && buf[h->path.off] == '/');
}

/* Two parses of one head agree on everything the daemon and the library act on. */
static void check_same_head(const struct http_head *a, const char *abuf, const struct http_head *b,
                            const char *bbuf)
{
	FUZZ_CHECK(a->head_len == b->head_len);
	FUZZ_CHECK(a->method == b->method && a->version_minor == b->version_minor);
	FUZZ_CHECK(a->content_length == b->content_length && a->chunked == b->chunked);
	FUZZ_CHECK(a->keep_alive == b->keep_alive && a->upgrade == b->upgrade);
	FUZZ_CHECK(a->expect_continue == b->expect_continue);
	FUZZ_CHECK(a->absolute_form == b->absolute_form && a->asterisk_form == b->asterisk_form);
	FUZZ_CHECK(strcmp(a->host, b->host) == 0 && a->host_port == b->host_port);
	FUZZ_CHECK(a->path.len == b->path.len && a->nfields == b->nfields);
	FUZZ_CHECK(memcmp(abuf + a->path.off, bbuf + b->path.off, a->path.len) == 0);
}

/* Characters a canonical path may hold, escapes aside (canon.c's decode). A '\\' stays:
 * dispatch_route has routed the path with it read as '/' too, to the same owner. */
static bool canon_char_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '#' && c != '?';
}

static bool is_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* The canonical form as canon.h defines it; also a fixed point of canon_path. */
static void check_canonical(const char *path, size_t len, const struct canon_limits *lim)
{
	FUZZ_CHECK(len > 0 && strlen(path) == len && path[0] == '/');
	FUZZ_CHECK(strstr(path, "//") == NULL && strstr(path, "/./") == NULL && strstr(path, "/../") == NULL);
	FUZZ_CHECK(!(len >= 2 && strcmp(path + len - 2, "/.") == 0));
	FUZZ_CHECK(!(len >= 3 && strcmp(path + len - 3, "/..") == 0));
	size_t segment = 0, segments = 0;
	for (size_t k = 0; k < len; k++) {
		FUZZ_CHECK(canon_char_ok((unsigned char)path[k]));
		if (path[k] == '%') {
			FUZZ_CHECK(k + 2 < len && is_upper_hex(path[k + 1]) && is_upper_hex(path[k + 2]));
			unsigned v = (unsigned)strtoul((char[]){path[k + 1], path[k + 2], 0}, NULL, 16);
			bool unreserved = (v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') ||
			                  (v >= '0' && v <= '9') || v == '-' || v == '.' || v == '_' ||
			                  v == '~';
			FUZZ_CHECK(!unreserved && v >= 0x20 && v != 0x7f);
		}
		if (path[k] == '/') {
			segment = 0;
		} else if (segment++ == 0) {
			segments++;
		}
		FUZZ_CHECK(segment <= lim->max_segment_length);
	}
	FUZZ_CHECK(segments <= lim->max_segments);

	char *again = malloc(len + 2), *alt = malloc(len + 2);
	size_t again_len = 0;
	bool alt_differs = false;
	const char *why = NULL;
	FUZZ_CHECK(again && alt);
	enum canon_result r = canon_path(path, len, lim, again, &again_len, alt, &alt_differs, &why);
	/* With %2F, %5C or '\\' left in it, the path's other reading ("/.%2F/../" read as
	 * "/./../") may climb or count differently from the request's, so only the form
	 * itself must come back when it is accepted. */
	bool separators = strstr(path, "%2F") || strstr(path, "%5C") || strchr(path, '\\');
	FUZZ_CHECK(r == CANON_OK || separators);
	if (r == CANON_OK)
		FUZZ_CHECK(again_len == len && memcmp(again, path, len) == 0);
	free(again);
	free(alt);
}

/* The daemon's half: what conn_dispatch does with an accepted head. */
static void check_route(const char *buf, const struct http_head *h, const struct fuzz_head_setup *s)
{
	const struct canon_limits cl = CANON_LIMITS_DEFAULT;
	struct dispatch d = {.buf = buf, .h = h, .local = &s->local, .port = s->port, .canon = &cl};
	size_t cap = dispatch_path_cap(h);
	char *path = malloc(cap), *scratch = malloc(cap);

	FUZZ_CHECK(path && scratch);
	int status = dispatch_route(fuzz_routes, &d, path, scratch);
	FUZZ_CHECK(status == d.status);
	if (status != 0) {
		FUZZ_CHECK(status == 400 || status == 404 || status == 414);
		FUZZ_CHECK(d.owner == NULL && d.reason != NULL);
		goto out;
	}
	uintptr_t owner = (uintptr_t)d.owner;
	FUZZ_CHECK(owner >= 1 && owner <= FUZZ_HEAD_DEEP);
	FUZZ_CHECK(d.path_len + 1 <= cap);
	check_canonical(path, d.path_len, &cl);
	FUZZ_CHECK(strnlen(d.host, sizeof(d.host)) < sizeof(d.host));

	/* the prefix found is on the connection's port and a whole-segment prefix of the path */
	struct route_query q = {.host = d.host, .port = s->port, .local = &s->local, .path = path};
	void *again = NULL;
	const struct url_prefix *m = NULL;
	FUZZ_CHECK(route_lookup(fuzz_routes, &q, &again, &m) == ROUTE_FOUND && again == d.owner);
	FUZZ_CHECK(m != NULL && m->port == s->port);
	size_t plen = strlen(m->path);
	FUZZ_CHECK(plen >= 1 && m->path[plen - 1] == '/');
	FUZZ_CHECK(strncmp(path, m->path, plen - 1) == 0);
	FUZZ_CHECK(path[plen - 1] == '/' || path[plen - 1] == '\0');
	if (m->cls == HOST_NAME)
		FUZZ_CHECK(strcmp(m->host, d.host) == 0);
out:
	free(path);
	free(scratch);
}

/* The library's half: it parses the delivered head again (src/lib/request.c) and builds
 * its body decoder from it; both must accept what the daemon accepted, alike. */
static void check_library_agrees(const char *buf, const struct http_head *h)
{
	struct http_limits lim = HTTP_LIMITS_DEFAULT;
	struct http_scan scan;
	struct http_head *again = malloc(sizeof(*again));
	char *head = malloc(h->head_len);

	FUZZ_CHECK(again && head);
	memcpy(head, buf + h->skip, h->head_len);
	if (lim.max_request_bytes < h->head_len)
		lim.max_request_bytes = h->head_len;
	if (lim.max_field_length < h->head_len)
		lim.max_field_length = h->head_len;
	http_scan_init(&scan);
	FUZZ_CHECK(http_head_parse(&scan, head, h->head_len, &lim, again) == HTTP_HEAD_DONE);
	FUZZ_CHECK(again->skip == 0);
	check_same_head(h, buf, again, head);

	struct http_body *body = http_body_new(head, h->head_len, 0);
	FUZZ_CHECK(body != NULL);
	/* a head that declares no body is a whole request (RFC 9112 §6.3 item 7) */
	if (!h->chunked && h->content_length <= 0)
		FUZZ_CHECK(http_body_done(body));
	http_body_free(body);
	free(head);
	free(again);
}

/* Each piece in its own allocation, as a read buffer that grows would be, so a read
 * past the bytes given is caught by AddressSanitizer at every split. */
static enum http_head_result parse_copy(struct http_scan *scan, const uint8_t *data, size_t len,
                                        const struct http_limits *lim, struct http_head *h, char **copy)
{
	*copy = malloc(len ? len : 1);
	FUZZ_CHECK(*copy != NULL);
	memcpy(*copy, data, len);
	return http_head_parse(scan, *copy, len, lim, h);
}

/* One request at the start of data[0, size): parsed in two pieces and at once, checked,
 * routed. Returns the bytes it takes when accepted without a body (the next request
 * starts there, as in conn_process's loop), else 0. */
static size_t fuzz_one_request(const uint8_t *data, size_t size, uint8_t control)
{
	static struct http_head inc, whole; /* large: not on the stack */
	struct fuzz_head_setup s;
	struct http_scan scan;
	char *first = NULL, *all = NULL, *one = NULL;
	size_t next = 0;

	fuzz_head_setup(control, size, &s);
	/* in two pieces, the scan state kept between them */
	http_scan_init(&scan);
	enum http_head_result r = parse_copy(&scan, data, s.split, &s.lim, &inc, &first);
	const char *incbuf = first;
	size_t inclen = s.split;
	if (r == HTTP_HEAD_INCOMPLETE) {
		r = parse_copy(&scan, data, size, &s.lim, &inc, &all);
		incbuf = all;
		inclen = size;
	}
	/* at once: the same verdict, whatever the split */
	http_scan_init(&scan);
	enum http_head_result r1 = parse_copy(&scan, data, size, &s.lim, &whole, &one);
	if (r == HTTP_HEAD_INCOMPLETE) {
		FUZZ_CHECK(r1 == HTTP_HEAD_INCOMPLETE);
	} else {
		FUZZ_CHECK(r1 == r);
		FUZZ_CHECK(inc.status == whole.status && inc.action == whole.action);
		FUZZ_CHECK(inc.skip == whole.skip);
	}
	if (r == HTTP_HEAD_ERROR) {
		FUZZ_CHECK(inc.reason != NULL && whole.reason != NULL &&
		           strcmp(inc.reason, whole.reason) == 0);
		FUZZ_CHECK(inc.status == 400 || inc.status == 405 || inc.status == 414 || inc.status == 431 ||
		           inc.status == 501 || inc.status == 505);
	} else if (r == HTTP_HEAD_DONE) {
		check_accepted(incbuf, inclen, &inc);
		check_same_head(&inc, incbuf, &whole, one);
		check_library_agrees(one, &whole);
		if (!whole.asterisk_form)
			check_route(one, &whole, &s);
		if (!whole.chunked && whole.content_length <= 0)
			next = whole.skip + whole.head_len;
	}
	free(first);
	free(all);
	free(one);
	return next;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t control = data[0];
	data++;
	size--;
	/* pipelined requests: each parsed from where the one before it ended */
	for (int k = 0; k < 4 && size > 0; k++) {
		size_t used = fuzz_one_request(data, size, control);
		if (used == 0)
			break;
		data += used;
		size -= used;
	}
	return 0;
}
