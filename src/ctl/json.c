/* json.c: a small recursive-descent JSON reader (RFC 8259) building a tree, and a string
 * writer; enough for the daemon's answers to portsharectl, with a depth limit. */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH_MAX 32

struct parser {
	const char *p;
	const char *why; /* the first error */
	const char *at;  /* where it was found */
};

static struct json *parse_value(struct parser *ps, int depth);

static void skip_space(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static void *failed(struct parser *ps, const char *why)
{
	if (!ps->why) {
		ps->why = why;
		ps->at = ps->p;
	}
	return NULL;
}

static struct json *node(struct parser *ps, enum json_type type)
{
	struct json *j = calloc(1, sizeof(*j));
	if (!j)
		return failed(ps, "out of memory");
	j->type = type;
	return j;
}

/* Appends item (and key, for objects) to j; frees them on failure. 0 or -1. */
static int add(struct parser *ps, struct json *j, char *key, struct json *item)
{
	struct json **items = realloc(j->items, (j->count + 1) * sizeof(*items));
	if (items)
		j->items = items;
	char **keys = key && items ? realloc(j->keys, (j->count + 1) * sizeof(*keys)) : NULL;
	if (keys)
		j->keys = keys;
	if (!items || (key && !keys)) {
		free(key);
		json_free(item);
		failed(ps, "out of memory");
		return -1;
	}
	if (key)
		j->keys[j->count] = key;
	j->items[j->count++] = item;
	return 0;
}

static int hex4(const char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
		             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
		             : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
		                                    : 16;
		if (d == 16)
			return -1;
		*v = *v * 16 + d;
	}
	return 0;
}

/* Writes code point cp as UTF-8 at out; returns the bytes written. */
static size_t utf8_put(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at ps->p (at its opening quote), decoded into a malloc'd text. */
static char *parse_string(struct parser *ps)
{
	const char *p = ps->p + 1;
	size_t len = 0;
	while (p[len] && p[len] != '"') /* the decoded text is never longer than the source */
		len += p[len] == '\\' && p[len + 1] ? 2 : 1;
	char *s = malloc(len + 1);
	if (!s)
		return failed(ps, "out of memory");
	size_t n = 0;
	for (;;) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c < 0x20) {
			free(s);
			ps->p = p;
			return failed(ps, c ? "control character in a string" : "unterminated string");
		}
		if (c != '\\') {
			s[n++] = (char)c;
			p++;
			continue;
		}
		char e = p[1];
		const char *simple = strchr("\"\\/bfnrt", e);
		if (e && simple) {
			s[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
			p += 2;
			continue;
		}
		unsigned cp, lo;
		if (e != 'u' || hex4(p + 2, &cp) < 0) {
			free(s);
			ps->p = p;
			return failed(ps, "bad escape in a string");
		}
		p += 6;
		if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, &lo) == 0 &&
		    lo >= 0xdc00 && lo < 0xe000) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			p += 6;
		} else if (cp >= 0xd800 && cp < 0xe000) {
			cp = 0xfffd; /* a lone surrogate */
		}
		n += utf8_put(s + n, cp);
	}
	s[n] = 0;
	ps->p = p + 1;
	return s;
}

static struct json *parse_container(struct parser *ps, int depth, bool object)
{
	struct json *j = node(ps, object ? JSON_OBJECT : JSON_ARRAY);
	if (!j)
		return NULL;
	char close = object ? '}' : ']';
	ps->p++;
	skip_space(ps);
	if (*ps->p == close) {
		ps->p++;
		return j;
	}
	for (;;) {
		char *key = NULL;
		skip_space(ps);
		if (object) {
			if (*ps->p != '"' || !(key = parse_string(ps))) {
				json_free(j);
				return failed(ps, "expected a member name");
			}
			skip_space(ps);
			if (*ps->p != ':') {
				free(key);
				json_free(j);
				return failed(ps, "expected ':'");
			}
			ps->p++;
		}
		struct json *item = parse_value(ps, depth + 1);
		if (!item) {
			free(key);
			json_free(j);
			return NULL;
		}
		if (add(ps, j, key, item) < 0) {
			json_free(j);
			return NULL;
		}
		skip_space(ps);
		if (*ps->p == close) {
			ps->p++;
			return j;
		}
		if (*ps->p != ',') {
			json_free(j);
			return failed(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
		}
		ps->p++;
	}
}

static struct json *parse_value(struct parser *ps, int depth)
{
	if (depth > JSON_DEPTH_MAX)
		return failed(ps, "nested too deeply");
	skip_space(ps);
	static const struct {
		const char *word;
		enum json_type type;
		bool value;
	} words[] = {{"null", JSON_NULL, false}, {"true", JSON_BOOL, true}, {"false", JSON_BOOL, false}};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i].word);
		if (!strncmp(ps->p, words[i].word, n)) {
			struct json *j = node(ps, words[i].type);
			if (j) {
				j->boolean = words[i].value;
				ps->p += n;
			}
			return j;
		}
	}
	if (*ps->p == '{' || *ps->p == '[')
		return parse_container(ps, depth, *ps->p == '{');
	if (*ps->p == '"') {
		char *s = parse_string(ps);
		struct json *j = s ? node(ps, JSON_STRING) : NULL;
		if (!j) {
			free(s);
			return NULL;
		}
		j->string = s;
		return j;
	}
	if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
		char *end;
		double v = strtod(ps->p, &end);
		struct json *j = node(ps, JSON_NUMBER);
		if (j) {
			j->number = v;
			ps->p = end;
		}
		return j;
	}
	return failed(ps, *ps->p ? "unexpected character" : "unexpected end");
}

struct json *json_parse(const char *text, char *err, size_t errlen)
{
	struct parser ps = {.p = text};
	struct json *j = parse_value(&ps, 0);
	skip_space(&ps);
	if (j && *ps.p) {
		json_free(j);
		j = failed(&ps, "text after the value");
	}
	if (!j)
		snprintf(err, errlen, "%s at byte %zu", ps.why, (size_t)(ps.at - text));
	return j;
}

void json_free(struct json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->count; i++) {
		json_free(j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->string);
	free(j);
}

const struct json *json_get(const struct json *object, const char *key)
{
	if (!object || object->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < object->count; i++)
		if (!strcmp(object->keys[i], key))
			return object->items[i];
	return NULL;
}

const struct json *json_at(const struct json *array, size_t i)
{
	return array && array->type == JSON_ARRAY && i < array->count ? array->items[i] : NULL;
}

size_t json_count(const struct json *array)
{
	return array && array->type == JSON_ARRAY ? array->count : 0;
}

const char *json_string(const struct json *j, const char *absent)
{
	return j && j->type == JSON_STRING ? j->string : absent;
}

long long json_int(const struct json *j, long long absent)
{
	return j && j->type == JSON_NUMBER ? (long long)j->number : absent;
}

bool json_true(const struct json *j)
{
	return j && j->type == JSON_BOOL && j->boolean;
}
