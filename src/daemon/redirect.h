/* redirect.h: the HTTP -> HTTPS redirects the daemon answers itself (DESIGN §11; a port is
 * TLS or plain, so port 80 needs one): admins add them with `portsharectl redirect`, they
 * live in the settings (settings-t.h), and a request on a plain port that no app's prefix
 * takes, under a redirect's prefix, gets 308 to https on the redirect's port, same host
 * and target. Apps' own prefixes always come first: an ACME client's
 * /.well-known/acme-challenge/ on port 80 keeps working. */
#ifndef PS_DAEMON_REDIRECT_H
#define PS_DAEMON_REDIRECT_H

#include <stdbool.h>
#include <stdint.h>

#include "conn-t.h"
#include "settings-t.h"

/* Makes the redirects of s the ones in force (after a load or a change). 0, or -1 (no
 * memory: the old ones stay). */
int redirect_apply(const struct settings *s);
void redirect_free(void);
/* Whether a redirect is on port (which must then be listened on even without prefixes). */
bool redirect_on_port(uint16_t port);
/* A request on plain connection c that no prefix took: when a redirect covers it (host
 * lower case, no port; path canonical; h the head in c->buf), the Location header line of
 * its 308 (malloc'd, ending CRLF), else NULL. */
char *redirect_location(const struct conn *c, const struct http_head *h, const char *host, const char *path);

#endif
