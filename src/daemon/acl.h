/* acl.h: who may do what (DESIGN §8): admins, URL reservations, queue grants. */
#ifndef PS_DAEMON_ACL_H
#define PS_DAEMON_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "settings-t.h"
#include "url_prefix.h"

#define ACL_GROUPS_MAX 256

/* Who a session (or a queue's owner) is: its uid and every gid (SO_PEERCRED's primary
 * one and SO_PEERGROUPS's). */
struct ident {
	uid_t uid;
	gid_t gids[ACL_GROUPS_MAX];
	unsigned ngids;
	char user[PRINCIPAL_NAME_MAX + 1];
};

/* Root, the daemon's own user, or a member of AdminGroup. */
bool acl_is_admin(const struct ident *id);
/* id's groups as the system's group database has them (a queue's owner, whose session is
 * gone: a takeover's adopted queues). */
void acl_ident_of_user(uid_t uid, const char *user, struct ident *id);
/* Whether who (n entries) names id's uid or one of its gids. */
bool acl_in(const struct principal *who, unsigned n, const struct ident *id);
/* "user alice, group web" into buf; returns the length. */
size_t acl_principals_text(const struct principal *who, unsigned n, char *buf, size_t len);

/* Whether reservation r covers registration p (docs/DECISIONS.md, the table). */
bool acl_covers(const struct url_prefix *r, const struct url_prefix *p);
/* The reservation that decides p: the most specific covering it, or NULL. */
const struct reservation *acl_reservation_for(const struct url_prefix *p);
/* 0 when id may register p; -1 with the refusal (which reservation applied and whom it
 * allows, or what an admin runs to allow it) in err. */
int acl_may_register(const struct url_prefix *p, const struct ident *id, char *err, size_t errlen);

/* The admins' grant for queue name, or NULL. */
const struct grant *acl_grant_find(const char *queue);
/* 0 when id may create a queue of that name (no admin grant records another owner). */
int acl_may_create(const char *queue, const struct ident *id, char *err, size_t errlen);
/* Whether id may join the queue `queue` of owner: the owner, an admin, someone its owner's
 * grants (own_grants) or an admin's grant name. */
bool acl_may_join(const char *queue, uid_t owner, const struct principal *own_grants, unsigned nown,
                  const struct ident *id);

#endif
