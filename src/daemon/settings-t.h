/* settings-t.h: what admins change with portsharectl and the state directory keeps (DESIGN
 * §7, §8): URL reservations, queue grants, the listen list and exclusions (functions in
 * store.h and acl.h). */
#ifndef PS_DAEMON_SETTINGS_T_H
#define PS_DAEMON_SETTINGS_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "protocol.h"
#include "url_prefix.h"

#define SETTINGS_PRINCIPALS_MAX 32 /* users and groups one reservation or grant names */
#define SETTINGS_ENTRIES_MAX 4096  /* reservations, grants */
#define SETTINGS_EXCLUSIONS_MAX 256
#define SETTINGS_REDIRECTS_MAX 256
#define PRINCIPAL_NAME_MAX 32

/* A user or a group, by id; the name as it was when added, for people. */
struct principal {
	char kind; /* 'u' or 'g' */
	uint32_t id;
	char name[PRINCIPAL_NAME_MAX + 1];
};

/* A URL reservation (netsh http add urlacl): who may register prefix and below. */
struct reservation {
	struct url_prefix prefix;
	struct principal who[SETTINGS_PRINCIPALS_MAX];
	unsigned nwho;
};

/* A grant an admin made: who may join the queue `queue` owned by `owner`. */
struct grant {
	char queue[PS_QUEUE_NAME_MAX + 1];
	struct principal owner; /* kind 'u' */
	struct principal who[SETTINGS_PRINCIPALS_MAX];
	unsigned nwho;
};

/* An HTTP -> HTTPS redirect the daemon answers (portsharectl redirect): a request under
 * `from` (an http:// prefix) that no app's prefix takes gets 308 to the same host and
 * target on https, port `to_port`. */
struct redirect {
	struct url_prefix from;
	uint16_t to_port;
};

struct settings {
	struct reservation *reservations;
	size_t nreservations;
	struct grant *grants;
	size_t ngrants;
	/* the listen list: managed here once an admin changed it with portsharectl; until
	 * then the config file's listen lines apply (docs/CONFIG.md) */
	bool listen_managed;
	struct ps_addr listen[CONFIG_LISTEN_MAX]; /* port 0; none: the wildcards */
	unsigned nlisten;
	struct ps_addr exclusions[SETTINGS_EXCLUSIONS_MAX]; /* with the port; the address may be a wildcard */
	unsigned nexclusions;
	struct redirect redirects[SETTINGS_REDIRECTS_MAX];
	unsigned nredirects;
};

#endif
