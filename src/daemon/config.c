/* config.c: reads the config file: `listen ADDR` lines and named limits, one per line. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

void config_defaults(struct config *c)
{
	const char *path = c->path;
	memset(c, 0, sizeof(*c));
	c->path = path;
	c->log_level = 2; /* info */
	c->limits = (struct limits){
	    .header_wait_ms = 120000,
	    .idle_connection_ms = 120000,
	    .request_queue_ms = 120000,
	    .entity_body_ms = 120000,
	    .drain_entity_body_ms = 120000,
	    .min_send_rate = 150,
	    .max_request_bytes = 16384,
	    .max_field_length = 16384,
	    .url_segment_max_length = 260,
	    .url_segment_max_count = 255,
	    .shutdown_grace_ms = 10000,
	    .linger_ms = 2000,
	    .reattach_grace_ms = 5000,
	};
}

int config_parse_addr(const char *s, struct ps_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(s);
	memset(a, 0, sizeof(*a));
	if (n >= sizeof(buf))
		return -1;
	if (s[0] == '[' && n > 2 && s[n - 1] == ']') {
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = 0;
	} else {
		memcpy(buf, s, n + 1);
	}
	if (inet_pton(AF_INET, buf, a->addr) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, a->addr) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	return -1;
}

enum limit_kind { SECONDS, COUNT };
static const struct {
	const char *name;
	enum limit_kind kind;
	size_t offset;
	uint32_t min, max; /* COUNT bounds; SECONDS are in ms, 1 ms .. 1 day */
} limit_names[] = {
    {"HeaderWait", SECONDS, offsetof(struct limits, header_wait_ms), 0, 0},
    {"IdleConnection", SECONDS, offsetof(struct limits, idle_connection_ms), 0, 0},
    {"RequestQueue", SECONDS, offsetof(struct limits, request_queue_ms), 0, 0},
    {"EntityBody", SECONDS, offsetof(struct limits, entity_body_ms), 0, 0},
    {"DrainEntityBody", SECONDS, offsetof(struct limits, drain_entity_body_ms), 0, 0},
    {"ShutdownGrace", SECONDS, offsetof(struct limits, shutdown_grace_ms), 0, 0},
    {"Linger", SECONDS, offsetof(struct limits, linger_ms), 0, 0},
    {"ReattachGrace", SECONDS, offsetof(struct limits, reattach_grace_ms), 0, 0},
    {"MinSendRate", COUNT, offsetof(struct limits, min_send_rate), 0, 1u << 30},
    /* a DELIVER carries the head, the canonical path (no longer than the head) and the
     * bytes after it in one message (< PS_MSG_MAX): see PS_RETURN_TAIL_MAX */
    {"MaxRequestBytes", COUNT, offsetof(struct limits, max_request_bytes), 256, 24576},
    {"MaxFieldLength", COUNT, offsetof(struct limits, max_field_length), 64, 24576},
    {"UrlSegmentMaxLength", COUNT, offsetof(struct limits, url_segment_max_length), 1, 32766},
    {"UrlSegmentMaxCount", COUNT, offsetof(struct limits, url_segment_max_count), 1, 16383},
};

static int parse_limit(struct limits *l, const char *name, const char *value, char *why, size_t whylen)
{
	for (size_t i = 0; i < sizeof(limit_names) / sizeof(limit_names[0]); i++) {
		if (strcasecmp(name, limit_names[i].name))
			continue;
		uint32_t *field = (uint32_t *)((char *)l + limit_names[i].offset);
		char *end;
		errno = 0;
		if (limit_names[i].kind == SECONDS) {
			double s = strtod(value, &end);
			if (errno || *end || end == value || !isfinite(s) || s < 0.001 || s > 86400) {
				snprintf(why, whylen, "%s takes seconds between 0.001 and 86400, not '%s'",
				         name, value);
				return -1;
			}
			*field = (uint32_t)(s * 1000 + 0.5);
			return 0;
		}
		unsigned long long v = strtoull(value, &end, 10);
		if (errno || *end || end == value || !isdigit((unsigned char)value[0]) ||
		    v < limit_names[i].min || v > limit_names[i].max) {
			snprintf(why, whylen, "%s takes a whole number from %u to %u, not '%s'", name,
			         limit_names[i].min, limit_names[i].max, value);
			return -1;
		}
		*field = (uint32_t)v;
		return 0;
	}
	snprintf(why, whylen,
	         "unknown setting '%s' (known: listen, AdminGroup, LogLevel, AccessLog, AccessLogFormat, MetricsListen, "
	         "HeaderWait, "
	         "IdleConnection, RequestQueue, "
	         "EntityBody, DrainEntityBody, ShutdownGrace, Linger, ReattachGrace, MinSendRate, "
	         "MaxRequestBytes, MaxFieldLength, UrlSegmentMaxLength, UrlSegmentMaxCount)",
	         name);
	return -1;
}

static int parse_line(struct config *c, char *line, char *why, size_t whylen)
{
	char *words[3];
	int n = 0;
	for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w;
	     w = strtok_r(NULL, " \t\r\n", &save)) {
		if (w[0] == '#')
			break;
		if (n == 3) {
			snprintf(why, whylen, "too many words (a line is: NAME VALUE)");
			return -1;
		}
		words[n++] = w;
	}
	if (n == 0)
		return 0;
	if (n != 2) {
		snprintf(why, whylen, "'%s' needs exactly one value", words[0]);
		return -1;
	}
	if (!strcasecmp(words[0], "AdminGroup")) {
		struct group gr, *res = NULL;
		char buf[4096];
		if (strlen(words[1]) >= sizeof(c->admin_group) ||
		    getgrnam_r(words[1], &gr, buf, sizeof(buf), &res) != 0 || !res) {
			snprintf(why, whylen, "AdminGroup: no such group '%s' (see getent group)", words[1]);
			return -1;
		}
		snprintf(c->admin_group, sizeof(c->admin_group), "%s", words[1]);
		c->admin_gid = res->gr_gid;
		c->admin_group_set = true;
		return 0;
	}
	if (!strcasecmp(words[0], "LogLevel")) {
		static const char *const levels[] = {"error", "warning", "info", "debug"};
		for (int i = 0; i < 4; i++)
			if (!strcasecmp(words[1], levels[i])) {
				c->log_level = i;
				return 0;
			}
		snprintf(why, whylen, "LogLevel is error, warning, info or debug, not '%s'", words[1]);
		return -1;
	}
	if (!strcasecmp(words[0], "AccessLog")) {
		if (words[1][0] != '/' || strlen(words[1]) >= sizeof(c->access_log)) {
			snprintf(
			    why, whylen,
			    "AccessLog takes an absolute file path (/var/log/portshare/access.log), not '%s'",
			    words[1]);
			return -1;
		}
		snprintf(c->access_log, sizeof(c->access_log), "%s", words[1]);
		return 0;
	}
	if (!strcasecmp(words[0], "AccessLogFormat")) {
		if (strcasecmp(words[1], "combined") && strcasecmp(words[1], "json")) {
			snprintf(why, whylen, "AccessLogFormat is combined or json, not '%s'", words[1]);
			return -1;
		}
		c->access_log_json = !strcasecmp(words[1], "json");
		return 0;
	}
	if (!strcasecmp(words[0], "MetricsListen")) {
		char *colon = strrchr(words[1], ':');
		char *end = NULL;
		unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
		if (colon)
			*colon = '\0';
		if (!colon || !*(colon + 1) || *end || port < 1 || port > 65535 ||
		    (strchr(words[1], ':') && words[1][0] != '[') ||
		    config_parse_addr(words[1], &c->metrics_listen) < 0) {
			if (colon)
				*colon = ':';
			snprintf(why, whylen,
			         "MetricsListen takes ADDRESS:PORT (127.0.0.1:9464, [::1]:9464), not '%s'",
			         words[1]);
			return -1;
		}
		c->metrics_listen.port = (uint16_t)port;
		c->metrics_listen_set = true;
		return 0;
	}
	if (!strcasecmp(words[0], "listen")) {
		if (c->nlisten == CONFIG_LISTEN_MAX) {
			snprintf(why, whylen, "at most %d listen lines", CONFIG_LISTEN_MAX);
			return -1;
		}
		if (config_parse_addr(words[1], &c->listen[c->nlisten]) < 0) {
			snprintf(why, whylen, "listen takes an IP address (127.0.0.1, ::1, [::1]), not '%s'",
			         words[1]);
			return -1;
		}
		c->nlisten++;
		return 0;
	}
	return parse_limit(&c->limits, words[0], words[1], why, whylen);
}

int config_load(struct config *c, char *err, size_t errlen)
{
	struct config next = {.path = c->path};
	config_defaults(&next);
	if (!c->path) {
		*c = next;
		return 0;
	}
	FILE *f = fopen(c->path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: cannot read the config file: %s", c->path, strerror(errno));
		return -1;
	}
	char line[1024], why[512];
	unsigned lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line too long (at most %zu bytes)", c->path, lineno,
			         sizeof(line) - 2);
			fclose(f);
			return -1;
		}
		if (parse_line(&next, line, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", c->path, lineno, why);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	*c = next;
	return 0;
}
