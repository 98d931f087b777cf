/* config.h: the daemon's settings: command line, config file (listen list, limits). */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

#define CONFIG_LISTEN_MAX 32

struct limits {
	uint32_t header_wait_ms;       /* HeaderWait */
	uint32_t idle_connection_ms;   /* IdleConnection */
	uint32_t request_queue_ms;     /* RequestQueue: how long a request may wait in a queue */
	uint32_t entity_body_ms;       /* EntityBody (enforced by the library) */
	uint32_t drain_entity_body_ms; /* DrainEntityBody (enforced by the library) */
	uint32_t min_send_rate;        /* MinSendRate, bytes/s */
	uint32_t max_request_bytes;    /* MaxRequestBytes */
	uint32_t max_field_length;     /* MaxFieldLength */
	uint32_t url_segment_max_length;
	uint32_t url_segment_max_count;
	uint32_t shutdown_grace_ms; /* SIGTERM: how long in-flight requests may finish */
	uint32_t linger_ms;         /* lingering close: how long to drain a closing connection */
	uint32_t reattach_grace_ms; /* --upgrade: how long requests wait for their queue's workers */
};

struct config {
	const char *path; /* NULL: no file */
	struct limits limits;
	struct ps_addr listen[CONFIG_LISTEN_MAX]; /* port 0 */
	unsigned nlisten;                         /* 0: the wildcard addresses */
	/* AdminGroup: its members are admins too (resolved when the file is read) */
	bool admin_group_set;
	gid_t admin_gid;
	char admin_group[33];
	int log_level; /* enum log_level (log.h): error 0, warning 1, info 2 (default), debug 3 */
	/* MetricsListen ADDR:PORT: the daemon serves /metrics there (read at start only) */
	bool metrics_listen_set;
	struct ps_addr metrics_listen;
	/* AccessLog PATH: one line per request (accesslog.c); "" off */
	char access_log[1024];
	/* AccessLogFormat combined (default) or json: one JSON object per line */
	bool access_log_json;
};

void config_defaults(struct config *c);
/* Reads c->path into c (starting from defaults). 0, or -1 with one line in err naming
 * FILE:LINE and what is wrong. c is left untouched on error. */
int config_load(struct config *c, char *err, size_t errlen);
/* Parses an address literal ("127.0.0.1", "::1", "[::1]"); 0 or -1 */
int config_parse_addr(const char *s, struct ps_addr *a);

#endif
