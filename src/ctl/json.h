/* json.h: the little JSON portsharectl needs: reading the daemon's JSON answers into a
 * tree, and writing strings escaped. */
#ifndef PS_CTL_JSON_H
#define PS_CTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	bool boolean;
	double number;
	char *string;        /* JSON_STRING: decoded, NUL-terminated */
	char **keys;         /* JSON_OBJECT: the member names, beside items */
	struct json **items; /* JSON_ARRAY and JSON_OBJECT */
	size_t count;
};

/* Parses text (one value, nothing but white space after it). The tree, freed with
 * json_free, or NULL with why in err. */
struct json *json_parse(const char *text, char *err, size_t errlen);
void json_free(struct json *j);

/* Readers that take NULL or the wrong type and answer "absent", so that a caller can
 * chain them: json_string(json_get(json_at(a, 0), "url"), "?"). */
const struct json *json_get(const struct json *object, const char *key);
const struct json *json_at(const struct json *array, size_t i);
size_t json_count(const struct json *array); /* 0 unless an array */
const char *json_string(const struct json *j, const char *absent);
long long json_int(const struct json *j, long long absent);
bool json_true(const struct json *j); /* true only for the JSON value true */

#endif
