/* http_head.c: finds, parses and checks HTTP/1.x request heads with the strict llhttp
 * build, adding the checks llhttp 8.1 does not make (DESIGN §5, §5a). */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "llhttp.h"

#include "http_head.h"

static const struct http_limits default_limits = HTTP_LIMITS_DEFAULT;

/* "BadRequest: HPE_..." for every llhttp error, so the error log names what llhttp refused. */
static const char *const llhttp_reasons[] = {
#define HTTP_HEAD_REASON(code, name, string) [code] = "BadRequest: HPE_" #name,
    HTTP_ERRNO_MAP(HTTP_HEAD_REASON)
#undef HTTP_HEAD_REASON
};

const char *http_llhttp_reason(int err)
{
	if ((size_t)err < sizeof(llhttp_reasons) / sizeof(llhttp_reasons[0]) && llhttp_reasons[err])
		return llhttp_reasons[err];
	return "BadRequest: llhttp";
}

/* RFC 9110 §5.6.2 */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 §3.2.2 reg-name: unreserved or sub-delims ('%' escapes are checked apart) */
static bool is_regname_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
		return true;
	return c != 0 && strchr("-._~!$&'()*+,;=", c) != NULL;
}

static char to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool span_equals_nocase(const char *p, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

static void head_reset(const struct http_scan *s, struct http_head *h)
{
	memset(h, 0, offsetof(struct http_head, fields)); /* the fields are written as they come */
	h->skip = s->skip;
	h->host_port = -1;
	h->content_length = -1;
}

static enum http_head_result refuse(struct http_head *h, int status, enum http_action action,
                                    const char *reason)
{
	h->status = status;
	h->action = action;
	h->reason = reason;
	return HTTP_HEAD_ERROR;
}

void http_scan_init(struct http_scan *s)
{
	memset(s, 0, sizeof(*s));
}

/* llhttp's fixed method list for HTTP (RTSP methods are refused with HTTP/1.x), plus PRI,
 * which llhttp itself refuses on anything but the HTTP/2 preface. */
static bool method_known(const char *p, size_t n)
{
	for (int m = HTTP_DELETE; m <= HTTP_PRI; m++) {
		const char *name = llhttp_method_name((llhttp_method_t)m);
		if (strlen(name) == n && memcmp(name, p, n) == 0)
			return true;
	}
	return false;
}

/* The request line [b, e) (without CRLF). Everything decided here must not wait for
 * the rest of the head: an HTTP/0.9 client or an HTTP/2 client never sends one. Sets
 * method_s and target; returns HTTP_HEAD_INCOMPLETE when the line is acceptable. */
static enum http_head_result check_request_line(const char *buf, uint32_t b, uint32_t e, struct http_head *h)
{
	const char *line = buf + b;
	size_t n = e - b;

	/* RFC 9113 §3.4: prior knowledge; DESIGN §11 answers GOAWAY(HTTP_1_1_REQUIRED). */
	if (n == 14 && memcmp(line, "PRI * HTTP/2.0", 14) == 0)
		return refuse(h, 505, HTTP_GOAWAY, "Version_N/S: HTTP/2 preface");
	const char *sp1 = memchr(line, ' ', n);
	if (sp1 == NULL || sp1 == line)
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: request line");
	const char *sp2 = memrchr(line, ' ', n);
	if (sp2 == sp1) {
		/* "GET /": an HTTP/0.9 simple request expects a bare body back, never a status line.
		 * Only a target of visible characters makes one: "GET /\tHTTP/1.1" is an HTTP/1.1
		 * request line to a parser that reads any whitespace as SP (RFC 9112 §3 allows
		 * it), so it is refused with an answer, not dropped as if it were HTTP/0.9. */
		for (size_t k = (size_t)(sp1 + 1 - line); k < n; k++)
			if ((unsigned char)line[k] <= ' ' || (unsigned char)line[k] >= 0x7f)
				return refuse(h, 400, HTTP_RESPOND, "BadRequest: request line");
		/* Only an origin-form target is taken for HTTP/0.9 (DESIGN §5). Any other two
		 * tokens ("GET HTTP/1.1" lost its target; "GET *", "GET http://h/") are a
		 * request-line without its HTTP-version (RFC 9112 §3): malformed, so answered. */
		if (sp1 + 1 == line + n || sp1[1] != '/')
			return refuse(h, 400, HTTP_RESPOND, "BadRequest: request line");
		return refuse(h, 400, HTTP_DROP, "BadRequest: HTTP/0.9");
	}
	/* Exactly one SP each side of the target (RFC 9112 §3): llhttp tolerates more, and a
	 * lenient split is how request lines get read two ways. */
	const char *target = sp1 + 1;
	size_t target_len = (size_t)(sp2 - target);
	if (target_len == 0 || memchr(target, ' ', target_len) != NULL)
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: request line");
	const char *v = sp2 + 1;
	size_t vlen = (size_t)(line + n - v);
	if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit(v[5]) || v[6] != '.' || !is_digit(v[7]))
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: version");
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return refuse(h, 505, HTTP_RESPOND, "Version_N/S");

	size_t mlen = (size_t)(sp1 - line);
	h->method_s = (struct http_span){b, (uint32_t)mlen};
	h->target = (struct http_span){(uint32_t)(target - buf), (uint32_t)target_len};
	if (mlen == 7 && memcmp(line, "CONNECT", 7) == 0)
		return refuse(h, 405, HTTP_RESPOND, "Verb CONNECT");
	/* HTTP.sys hands unknown verbs to the app; llhttp's list is fixed, so 501 (DESIGN §5a). */
	if (!method_known(line, mlen))
		return refuse(h, 501, HTTP_RESPOND, "Verb");
	return HTTP_HEAD_INCOMPLETE;
}

/* Transfer-Encoding, read from the raw header lines [from, to) so the verdict is the
 * same whether llhttp accepted the head or stopped at the field. 0: no field; 1: a
 * single "chunked"; else the status to refuse with (RFC 9112 §6.1, §6.3). */
static int te_check(const char *buf, uint32_t from, uint32_t to, const char **reason)
{
	static const char *const known[] = {"chunked",  "gzip",   "deflate",   "compress",
	                                    "identity", "x-gzip", "x-compress"};
	int fields = 0, codings = 0, chunked = 0;
	bool params = false, empty = false;

	for (uint32_t ls = from; ls < to;) {
		const char *line = buf + ls;
		const char *eol = memchr(line, '\r', to - ls);
		size_t llen = eol ? (size_t)(eol - line) : to - ls;
		ls += (uint32_t)llen + 2;
		const char *colon = memchr(line, ':', llen);
		if (colon == NULL || !span_equals_nocase(line, (size_t)(colon - line), "transfer-encoding"))
			continue;
		fields++;
		const char *p = colon + 1, *end = line + llen;
		while (p <= end) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *stop = comma ? comma : end;
			const char *a = p, *z = stop;
			while (a < z && (*a == ' ' || *a == '\t'))
				a++;
			while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
				z--;
			const char *semi = memchr(a, ';', (size_t)(z - a));
			const char *name_end = semi ? semi : z;
			while (name_end > a && (name_end[-1] == ' ' || name_end[-1] == '\t'))
				name_end--;
			if (a == z) {
				empty = true;
			} else {
				bool ok = false;
				for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
					ok = ok || span_equals_nocase(a, (size_t)(name_end - a), known[k]);
				if (!ok) {
					*reason = "TransferEncoding unknown";
					return 501;
				}
				codings++;
				if (span_equals_nocase(a, (size_t)(name_end - a), "chunked"))
					chunked++;
				params = params || semi != NULL;
			}
			p = stop + 1;
		}
	}
	if (fields == 0)
		return 0;
	if (codings != 1 || chunked != 1 || params || empty) {
		*reason = "TransferEncoding not chunked";
		return 400;
	}
	return 1;
}

/* host [":" port] as in a Host field or an authority: reg-name or [IPv6] (RFC 3986
 * §3.2.2), lower-cased into host, port into *port (-1 if absent or empty). Neither is
 * written when the text is not a valid host. */
static bool parse_host(const char *p, size_t n, char host[HTTP_HOST_MAX + 1], int *port_out)
{
	size_t hostlen;

	if (n > 0 && p[0] == '[') {
		const char *close = memchr(p, ']', n);
		char tmp[64];
		struct in6_addr a6;
		if (close == NULL || (size_t)(close - p - 1) >= sizeof(tmp))
			return false;
		memcpy(tmp, p + 1, (size_t)(close - p - 1));
		tmp[close - p - 1] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return false;
		hostlen = (size_t)(close - p) + 1;
	} else {
		for (hostlen = 0; hostlen < n && p[hostlen] != ':'; hostlen++) {
			unsigned char c = (unsigned char)p[hostlen];
			if (c == '%') {
				if (hostlen + 2 >= n || !is_hex(p[hostlen + 1]) || !is_hex(p[hostlen + 2]))
					return false;
				hostlen += 2;
			} else if (!is_regname_char(c)) {
				return false;
			}
		}
	}
	if (hostlen > HTTP_HOST_MAX)
		return false;
	long port = -1;
	if (hostlen < n) {
		if (p[hostlen] != ':' || n - hostlen - 1 > 5)
			return false;
		if (n - hostlen - 1 > 0)
			port = 0;
		for (size_t k = hostlen + 1; k < n; k++) {
			if (!is_digit(p[k]))
				return false;
			port = port * 10 + (p[k] - '0');
		}
		if (port > 65535)
			return false;
	}
	*port_out = (int)port;
	for (size_t k = 0; k < hostlen; k++)
		host[k] = to_lower(p[k]);
	host[hostlen] = '\0';
	return true;
}

/* Request-target forms, RFC 9112 §3.2. */
static enum http_head_result parse_target(const char *buf, const struct http_field *host_field,
                                          struct http_head *h)
{
	const char *t = buf + h->target.off;
	uint32_t tlen = h->target.len, end = h->target.off + h->target.len;
	uint32_t path_off;

	if (t[0] == '/') {
		path_off = h->target.off;
	} else if (tlen == 1 && t[0] == '*') {
		if (h->method != HTTP_OPTIONS)
			return refuse(h, 400, HTTP_RESPOND, "BadRequest: asterisk-form");
		h->asterisk_form = true;
		path_off = h->target.off;
	} else {
		size_t scheme;
		if (tlen >= 7 && strncasecmp(t, "http://", 7) == 0)
			scheme = 7;
		else if (tlen >= 8 && strncasecmp(t, "https://", 8) == 0)
			scheme = 8;
		else
			return refuse(h, 400, HTTP_RESPOND, "BadRequest: request-target");
		const char *a = t + scheme, *z = a;
		while (z < t + tlen && *z != '/' && *z != '?')
			z++;
		if (memchr(a, '@', (size_t)(z - a)) != NULL)
			return refuse(h, 400, HTTP_RESPOND, "BadRequest: userinfo in target");
		/* RFC 9112 §3.2.2: the authority is the host, whatever Host says. */
		if (!parse_host(a, (size_t)(z - a), h->host, &h->host_port) || h->host[0] == '\0')
			return refuse(h, 400, HTTP_RESPOND, "BadRequest: target host");
		h->absolute_form = true;
		path_off = (uint32_t)(z - buf);
	}
	const char *q = memchr(buf + path_off, '?', end - path_off);
	uint32_t path_end = q ? (uint32_t)(q - buf) : end;
	h->path = (struct http_span){path_off, path_end - path_off};
	h->query = q ? (struct http_span){path_end + 1, end - path_end - 1} : (struct http_span){end, 0};
	if (host_field == NULL)
		return HTTP_HEAD_DONE;
	/* RFC 9112 §3.2: a Host with an invalid value is 400 for any request, also one whose
	 * absolute-form authority names the host instead (§3.2.2). */
	char host[HTTP_HOST_MAX + 1];
	int port;
	if (!parse_host(buf + host_field->value.off, host_field->value.len, host, &port))
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: Host");
	if (!h->absolute_form) {
		memcpy(h->host, host, sizeof(h->host));
		h->host_port = port;
	}
	return HTTP_HEAD_DONE;
}

/* Plain digits only (RFC 9110 §8.6): no sign, no hex, no list, no overflow. */
static bool parse_content_length(const char *p, size_t n, int64_t *out)
{
	int64_t v = 0;

	if (n == 0)
		return false;
	for (size_t k = 0; k < n; k++) {
		if (!is_digit(p[k]) || v > (INT64_MAX - (p[k] - '0')) / 10)
			return false;
		v = v * 10 + (p[k] - '0');
	}
	*out = v;
	return true;
}

struct head_ctx {
	const char *buf;
	struct http_head *h;
	bool in_name, in_value, headers_done;
};

static int head_on_field(llhttp_t *p, const char *at, size_t n)
{
	struct head_ctx *c = p->data;
	struct http_head *h = c->h;

	if (!c->in_name) {
		if (h->nfields == HTTP_MAX_FIELDS)
			return -1;
		struct http_field *f = &h->fields[h->nfields++];
		f->name = (struct http_span){(uint32_t)(at - c->buf), 0};
		f->value = (struct http_span){(uint32_t)(at - c->buf), 0};
		c->in_name = true;
		c->in_value = false;
	}
	h->fields[h->nfields - 1].name.len += (uint32_t)n;
	return 0;
}

static int head_on_field_complete(llhttp_t *p)
{
	struct head_ctx *c = p->data;
	struct http_field *f = &c->h->fields[c->h->nfields - 1];

	c->in_name = false;
	f->value.off = f->name.off + f->name.len;
	return 0;
}

static int head_on_value(llhttp_t *p, const char *at, size_t n)
{
	struct head_ctx *c = p->data;
	struct http_head *h = c->h;

	if (h->nfields == 0)
		return -1;
	struct http_field *f = &h->fields[h->nfields - 1];
	if (!c->in_value) {
		f->value = (struct http_span){(uint32_t)(at - c->buf), 0};
		c->in_value = true;
	}
	f->value.len += (uint32_t)n;
	return 0;
}

static int head_on_value_complete(llhttp_t *p)
{
	struct head_ctx *c = p->data;

	c->in_value = false;
	return 0;
}

/* Pausing here stops llhttp at the exact end of the head (DESIGN §5a). */
static int head_on_headers_complete(llhttp_t *p)
{
	struct head_ctx *c = p->data;

	c->headers_done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t head_settings = {
    .on_header_field = head_on_field,
    .on_header_field_complete = head_on_field_complete,
    .on_header_value = head_on_value,
    .on_header_value_complete = head_on_value_complete,
    .on_headers_complete = head_on_headers_complete,
};

static void trim_value(const char *buf, struct http_span *v)
{
	while (v->len > 0 && (buf[v->off] == ' ' || buf[v->off] == '\t')) {
		v->off++;
		v->len--;
	}
	while (v->len > 0 && (buf[v->off + v->len - 1] == ' ' || buf[v->off + v->len - 1] == '\t'))
		v->len--;
}

/* What llhttp 8.1 does not check, once it has accepted the head (DESIGN §5, §5a). */
static enum http_head_result check_fields(const char *buf, uint32_t fields_from, uint32_t fields_to,
                                          const llhttp_t *p, struct http_head *h)
{
	const struct http_field *host = NULL, *cl = NULL;
	unsigned hosts = 0, cls = 0;
	const char *why = NULL;

	for (uint32_t k = 0; k < h->nfields; k++) {
		struct http_field *f = &h->fields[k];
		const char *name = buf + f->name.off;
		trim_value(buf, &f->value);
		if (f->name.len == 0)
			return refuse(h, 400, HTTP_RESPOND, "BadRequest: empty header name");
		if (span_equals_nocase(name, f->name.len, "host")) {
			hosts++;
			host = f;
		} else if (span_equals_nocase(name, f->name.len, "content-length")) {
			cls++;
			cl = f;
		} else if (span_equals_nocase(name, f->name.len, "expect")) {
			h->expect_continue =
			    span_equals_nocase(buf + f->value.off, f->value.len, "100-continue");
		}
	}
	if (hosts > 1)
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: duplicate Host");
	if (hosts == 0 && h->version_minor == 1)
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: missing Host");
	if (cls > 1)
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: duplicate Content-Length");
	int te = te_check(buf, fields_from, fields_to, &why);
	if (cl != NULL && te != 0)
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: Content-Length with Transfer-Encoding");
	if (cl != NULL && !parse_content_length(buf + cl->value.off, cl->value.len, &h->content_length))
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: Content-Length");
	if (te > 1)
		return refuse(h, te, HTTP_RESPOND, why);
	/* llhttp's own "chunked is not last" check runs after the pause, so it never ran. */
	if ((p->flags & F_TRANSFER_ENCODING) && !(p->flags & F_CHUNKED))
		return refuse(h, 400, HTTP_RESPOND, "TransferEncoding not chunked");
	h->chunked = (p->flags & F_CHUNKED) != 0;
	if (h->chunked != (te == 1))
		return refuse(h, 400, HTTP_RESPOND, "TransferEncoding not chunked");
	/* RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing: close after. */
	if (te != 0 && h->version_minor == 0)
		h->keep_alive = false;
	return parse_target(buf, host, h);
}

static size_t count_byte(const char *p, size_t n, char c)
{
	size_t k = 0;

	for (const char *e = p + n; (p = memchr(p, c, (size_t)(e - p))) != NULL; p++)
		k++;
	return k;
}

/* The head is [s->skip, head_end), its lines already checked by the scan. */
static enum http_head_result head_complete(const struct http_scan *s, const char *buf, uint32_t head_end,
                                           struct http_head *h)
{
	head_reset(s, h);
	h->head_len = head_end - s->skip;
	/* the header lines end with the LFs in [first_line_end, head_end - 1) */
	if (count_byte(buf + s->first_line_end, head_end - 1 - s->first_line_end, '\n') > HTTP_MAX_FIELDS)
		return refuse(h, 431, HTTP_RESPOND, "Header");
	if (check_request_line(buf, s->skip, s->first_line_end - 2, h) != HTTP_HEAD_INCOMPLETE)
		return HTTP_HEAD_ERROR;

	struct head_ctx ctx = {.buf = buf, .h = h};
	llhttp_t p;
	llhttp_init(&p, HTTP_REQUEST, &head_settings);
	p.data = &ctx;
	llhttp_errno_t err = llhttp_execute(&p, buf + s->skip, h->head_len);
	if (err != HPE_PAUSED || !ctx.headers_done) {
		const char *why = NULL;
		if (err == HPE_INVALID_TRANSFER_ENCODING) {
			int te = te_check(buf, s->first_line_end, head_end - 2, &why);
			return refuse(h, te == 501 ? 501 : 400, HTTP_RESPOND,
			              why ? why : http_llhttp_reason(err));
		}
		/* the scan let through only a token followed by SP: well formed, unknown */
		if (err == HPE_INVALID_METHOD)
			return refuse(h, 501, HTTP_RESPOND, "Verb");
		return refuse(h, 400, HTTP_RESPOND,
		              err == HPE_OK ? "BadRequest: head end" : http_llhttp_reason(err));
	}
	if (llhttp_get_error_pos(&p) != buf + head_end)
		return refuse(h, 400, HTTP_RESPOND, "BadRequest: head end");
	h->method = p.method;
	h->version_major = p.http_major;
	h->version_minor = p.http_minor;
	h->keep_alive = llhttp_should_keep_alive(&p) != 0;
	h->upgrade = p.upgrade != 0;
	return check_fields(buf, s->first_line_end, head_end - 2, &p, h);
}

static enum http_head_result scan_refuse(const struct http_scan *s, struct http_head *h, int status,
                                         const char *reason)
{
	head_reset(s, h);
	return refuse(h, status, HTTP_RESPOND, reason);
}

enum http_head_result http_head_parse(struct http_scan *s, const char *buf, size_t len,
                                      const struct http_limits *lim, struct http_head *h)
{
	if (lim == NULL)
		lim = &default_limits;
	/* Only the method's bytes are checked as they come (a TLS hello or a response sent
	 * to us fails at its first byte); the rest of the request line is checked whole. */
	bool in_method =
	    s->first_line_end == 0 && (s->scanned == s->line_start ||
	                               memchr(buf + s->line_start, ' ', s->scanned - s->line_start) == NULL);
	size_t i;

	for (i = s->scanned; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (i >= lim->max_request_bytes) {
			s->scanned = (uint32_t)i;
			return s->first_line_end ? scan_refuse(s, h, 431, "Header")
			                         : scan_refuse(s, h, 414, "URL");
		}
		if (c == '\r') {
			if (i + 1 == len)
				break; /* a CR is judged by the byte after it */
			if (buf[i + 1] != '\n') {
				s->scanned = (uint32_t)i;
				return scan_refuse(s, h, 400, "BadRequest: lone CR");
			}
			continue;
		}
		if (c == '\n') {
			if (i == 0 || buf[i - 1] != '\r') {
				s->scanned = (uint32_t)i;
				return scan_refuse(s, h, 400, "BadRequest: bare LF");
			}
			uint32_t cr = (uint32_t)i - 1;
			if (s->first_line_end == 0 && cr == s->line_start) {
				/* RFC 9112 §2.2: empty lines before the request line are ignored. */
				s->skip = (uint32_t)i + 1;
			} else if (s->first_line_end == 0) {
				head_reset(s, h);
				if (check_request_line(buf, s->line_start, cr, h) != HTTP_HEAD_INCOMPLETE) {
					s->scanned = (uint32_t)i;
					return HTTP_HEAD_ERROR;
				}
				s->first_line_end = (uint32_t)i + 1;
			} else if (cr == s->line_start) {
				s->scanned = (uint32_t)i; /* a repeated call finds the same end */
				return head_complete(s, buf, (uint32_t)i + 1, h);
			}
			s->line_start = (uint32_t)i + 1;
			continue;
		}
		if (s->first_line_end == 0) {
			if (in_method && c == ' ') {
				in_method = false;
			} else if (in_method && !is_tchar(c)) {
				s->scanned = (uint32_t)i;
				return scan_refuse(s, h, 400, "BadRequest: HPE_INVALID_METHOD");
			}
			continue;
		}
		/* RFC 9112 §5.2: obs-fold; llhttp 8.1 accepts it (CVE-2024-27982). */
		if (i == s->line_start && (c == ' ' || c == '\t')) {
			s->scanned = (uint32_t)i;
			return scan_refuse(s, h, 400, "BadRequest: obs-fold");
		}
		if (i - s->line_start >= lim->max_field_length) {
			s->scanned = (uint32_t)i;
			return scan_refuse(s, h, 431, "Header");
		}
	}
	s->scanned = (uint32_t)i;
	return HTTP_HEAD_INCOMPLETE;
}

const struct http_field *http_head_field(const struct http_head *h, const char *buf, const char *name)
{
	for (uint32_t k = 0; k < h->nfields; k++) {
		const struct http_field *f = &h->fields[k];
		if (span_equals_nocase(buf + f->name.off, f->name.len, name))
			return f;
	}
	return NULL;
}

bool http_method_idempotent(uint8_t method)
{
	switch (method) {
	case HTTP_GET:
	case HTTP_HEAD:
	case HTTP_OPTIONS:
	case HTTP_TRACE:
	case HTTP_PUT:
	case HTTP_DELETE:
		return true;
	default:
		return false;
	}
}

const char *http_method_name(uint8_t method)
{
	/* llhttp_method_name() aborts on a number it does not know */
	if (method > HTTP_FLUSH)
		return "UNKNOWN";
	return llhttp_method_name((llhttp_method_t)method);
}

static const struct {
	int status;
	const char *text;
} status_texts[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *http_status_text(int status)
{
	for (size_t k = 0; k < sizeof(status_texts) / sizeof(status_texts[0]); k++)
		if (status_texts[k].status == status)
			return status_texts[k].text;
	return "Unknown";
}
