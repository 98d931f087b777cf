/* admin.h: portsharectl's commands, carried out by the daemon (COMMAND messages). */
#ifndef PS_DAEMON_ADMIN_H
#define PS_DAEMON_ADMIN_H

#include <stddef.h>

#include "protocol.h"
#include "session-t.h"

/* Carries out m (a COMMAND) for s. 0 with the output in *out (malloc'd, *outlen bytes,
 * may be empty), or a PS_E* code with why in err (and nothing in *out). */
int admin_command(const struct session *s, const struct ps_msg *m, char **out, size_t *outlen, char *err,
                  size_t errlen);

/* Reads the state directory's settings into dm->settings (at start, with the directory
 * locked). 0, or -1 after logging why (err has it too). */
int admin_settings_load(char *err, size_t errlen);

#endif
