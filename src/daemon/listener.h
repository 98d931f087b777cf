/* listener.h: listening sockets, bound lazily (DESIGN §7). */
#ifndef PS_DAEMON_LISTENER_H
#define PS_DAEMON_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "protocol.h"

/* Binds what a port needs (every listen address, or the wildcards) if not bound yet.
 * 0; -1 with err naming who holds the port; -2 when every address of it is excluded,
 * err naming the rules. */
int listener_need(uint16_t port, char *err, size_t errlen);
/* Closes a port's listeners if no prefix needs it any more. */
void listener_release(uint16_t port);
/* Whether connections to port begin with a TLS handshake (its prefixes are https://): set
 * by thread 0 when a prefix is added, read by every thread at accept. */
void listener_set_tls(uint16_t port, bool tls);
bool listener_port_tls(uint16_t port);
/* The listen list changed: rebind every port in use. */
/* Rebinds every port in use to the listen list less the exclusions. Returns how many
 * ports could not be bound as wanted, with why in report (may be NULL). */
unsigned listener_resync(char *report, size_t len);
void listener_close_all(void);
/* The new daemon of an upgrade: listens on a socket the old one bound (fd is taken,
 * and closed on failure). 0, or -1 with err. */
int listener_adopt(const struct ps_addr *a, int fd, char *err, size_t errlen);
#define LISTENER_PLAN_MAX (CONFIG_LISTEN_MAX + 2)
/* An address the listen list names for a port, and the exclusion that rules it out. */
struct listener_plan {
	struct ps_addr addr;               /* with the port */
	const struct ps_addr *excluded_by; /* or NULL */
};
/* Every address the listen list names for port (out: LISTENER_PLAN_MAX entries). */
unsigned listener_plan(uint16_t port, struct listener_plan *out);
/* Why plan's address is not bound ("" when it is): excluded by a rule, no prefix needs
 * its port (needed false), or the bind failed. Returns buf. */
const char *listener_why_unbound(const struct listener_plan *plan, bool needed, char *buf, size_t len);
/* The addresses port is bound on: listener_plan's, less the excluded ones. */
unsigned listener_wanted(uint16_t port, struct ps_addr *out);
/* Where the listen list comes from: "state" (portsharectl iplisten), "config" (the
 * config file's listen lines) or "default" (none: the wildcards). */
const char *listener_listen_source(void);
/* Says so in the log when the config file has listen lines the state directory overrides. */
void listener_warn_ignored(void);
bool listener_is_bound(const struct ps_addr *a);
/* Sets bit p of the 65536-bit map for every port some prefix needs. */
void listener_port_map(uint8_t ports[65536 / 8]);

#endif
