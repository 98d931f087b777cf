/* json_write.h: JSON output shared by the daemon's status and command answers and by
 * portsharectl. */
#ifndef PS_JSON_WRITE_H
#define PS_JSON_WRITE_H

#include <stdio.h>

/* Writes s as a JSON string, quoted and escaped; bytes outside printable ASCII become
 * \u00XX escapes, so the output is valid JSON whatever bytes a name holds. */
void json_write_string(FILE *f, const char *s);

#endif
