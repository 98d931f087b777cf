/* store.h: the admin settings in the state directory: parsed, rendered, loaded, saved
 * atomically; and the lock that makes the directory one daemon's. */
#ifndef PS_DAEMON_STORE_H
#define PS_DAEMON_STORE_H

#include <stddef.h>

#include "settings-t.h"

void store_free(struct settings *s);
/* The file's text into *s (all or nothing). 0, or -1 with the line and what is wrong. */
int store_parse(const char *text, size_t len, struct settings *s, char *err, size_t errlen);
/* The file's text, malloc'd (*len bytes); NULL on no memory. */
char *store_render(const struct settings *s, size_t *len);
/* A deep copy (through the text, so that it is what a load would give). 0 or -1. */
int store_copy(const struct settings *from, struct settings *to);
/* A zeroed slot at index n of *array (n entries of size bytes, grown 16 at a time), not
 * yet counted; NULL past SETTINGS_ENTRIES_MAX or on no memory. */
void *store_slot(void *array, size_t n, size_t size);
/* "u:UID:NAME" or "g:GID:NAME". 0 or -1. */
int store_parse_principal(const char *w, struct principal *p);
/* "ADDR:PORT" ("0.0.0.0:80", "[::1]:80"). 0 or -1. */
int store_parse_endpoint(const char *w, struct ps_addr *a);

/* Loads dir's settings (none yet: empty settings). 0, or -1 with why in err. */
int store_load(const char *dir, struct settings *s, char *err, size_t errlen);
/* Writes s atomically. 0; -1 when the old file is untouched; -2 when the new file is in
 * place but the directory could not be synced (the caller writes the old one back). */
int store_save(const char *dir, const struct settings *s, char *err, size_t errlen);

/* Writes len bytes as dir/name, mode 0600, atomically: dir/name.tmp, fsync, rename, fsync
 * of dir; the same results as store_save. */
int store_write_file(const char *dir, const char *name, const void *data, size_t len, char *err,
                     size_t errlen);

/* Locks dir for this daemon (flock on dir/lock, which records our pid). The lock's fd
 * (kept open for the daemon's life), or -1 with who holds it in err. */
int store_lock(const char *dir, char *err, size_t errlen);
/* Whether fd (a lock passed by the daemon taken over) is dir's lock file. */
int store_lock_is(int fd, const char *dir);

#endif
