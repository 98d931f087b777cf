/* sslcert.h: portsharectl sslcert, the TLS certificate bindings (as netsh http add
 * sslcert): portsharectl reads the certificate and key files itself (run by an admin, it
 * can read root-only keys the daemon's user cannot) and sends their text to the daemon. */
#ifndef PS_CTL_SSLCERT_H
#define PS_CTL_SSLCERT_H

#include "ctl.h"

const char *sslcert_help(void);
/* argv: what follows "sslcert". The exit status (0, 1 refused or unreachable, 2 usage). */
int sslcert_run(struct ctl *c, int argc, char **argv);

#endif
