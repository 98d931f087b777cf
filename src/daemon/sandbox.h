/* sandbox.h: least privilege for portshared (DESIGN §8): the user it runs as, the
 * capability drop, the seccomp allow list. */
#ifndef PS_SANDBOX_H
#define PS_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SANDBOX_DEFAULT_USER "portshare"
#define SANDBOX_GROUPS_MAX 64

/* Who the daemon runs as, resolved while names can still be looked up. */
struct sandbox_user {
	char name[64];
	uid_t uid;
	gid_t gid;
	gid_t groups[SANDBOX_GROUPS_MAX]; /* supplementary groups, set only when switching */
	int ngroups;
	bool change; /* started as root for another user: setgroups, setresgid, setresuid */
};

/* Resolves --user NAME; NULL means the portshare user if it exists, else the user we were
 * started as (no switch). 0, or -1 with one line in err ("no such user 'NAME'", or what
 * switching needs). */
int sandbox_user_resolve(const char *name, struct sandbox_user *u, char *err, size_t errlen);

/* Gives u the paths it must write once switched (owned: NULL-terminated, may be NULL; a
 * directory's direct entries too), switches to u, keeps only CAP_NET_BIND_SERVICE, sets
 * no_new_privs, and installs the seccomp allow list (built but not loaded in sanitizer
 * builds). Call before any thread starts: capabilities belong to a thread, not the
 * process. 0, or -1 with one line in err. */
int sandbox_apply(const struct sandbox_user *u, const char *const *owned, char *err, size_t errlen);

/* portshared --no-seccomp: sandbox_apply switches user and drops capabilities but loads
 * no filter (for valgrind, which cannot run one; never for production). */
void sandbox_skip_filter(void);

/* portshared --check-sandbox: applies the sandbox in a child, prints the ids and
 * capabilities it ended with, and tries a forbidden call (execve). The exit status:
 * 0 when the call was refused. */
int sandbox_check(const struct sandbox_user *u);

#endif
