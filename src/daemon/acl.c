/* acl.c: who may do what (DESIGN §8). Admins: root, the daemon's own user, members of
 * AdminGroup. URL reservations (netsh http add urlacl): a non-admin registers a prefix
 * only where the most specific reservation covering it names its uid or one of its gids.
 * Queue grants: a queue is its creator's; others join it only by a grant (its owner's,
 * living with the queue, or an admin's, kept in the state directory). docs/DECISIONS.md
 * has the table of which reservation covers which registration. */
#include "acl.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon-t.h"

bool acl_in(const struct principal *who, unsigned n, const struct ident *id)
{
	for (unsigned i = 0; i < n; i++) {
		if (who[i].kind == 'u' && who[i].id == id->uid)
			return true;
		if (who[i].kind != 'g')
			continue;
		for (unsigned k = 0; k < id->ngids; k++)
			if (who[i].id == id->gids[k])
				return true;
	}
	return false;
}

bool acl_is_admin(const struct ident *id)
{
	if (id->uid == 0 || id->uid == geteuid())
		return true;
	if (!dm->cfg.admin_group_set)
		return false;
	for (unsigned k = 0; k < id->ngids; k++)
		if (id->gids[k] == dm->cfg.admin_gid)
			return true;
	return false;
}

void acl_ident_of_user(uid_t uid, const char *user, struct ident *id)
{
	memset(id, 0, sizeof(*id));
	id->uid = uid;
	snprintf(id->user, sizeof(id->user), "%s", user);
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return;
	int n = ACL_GROUPS_MAX;
	gid_t gids[ACL_GROUPS_MAX];
	if (getgrouplist(res->pw_name, res->pw_gid, gids, &n) < 0)
		n = ACL_GROUPS_MAX;
	for (int i = 0; i < n && i < ACL_GROUPS_MAX; i++)
		id->gids[id->ngids++] = gids[i];
}

/* ---------------------------------------------------------------- reservations */

bool acl_covers(const struct url_prefix *r, const struct url_prefix *p)
{
	if (r->https != p->https || r->port != p->port)
		return false;
	/* both paths end with '/': a prefix of segments is a prefix of the string */
	size_t rl = strlen(r->path);
	if (strncmp(r->path, p->path, rl))
		return false;
	switch (r->cls) {
	case HOST_STRONG: /* "+" covers every host on its port */
		return true;
	case HOST_NAME:
		return p->cls == HOST_NAME && !strcasecmp(r->host, p->host);
	case HOST_IP:
		return p->cls == HOST_IP && r->ip.family == p->ip.family &&
		       !memcmp(r->ip.addr, p->ip.addr, 16);
	case HOST_WEAK:
		return p->cls == HOST_WEAK;
	default:
		return false;
	}
}

/* How much a reservation says about the host: a name or an address over "*" over "+". */
static int host_rank(enum host_class c)
{
	return c == HOST_NAME || c == HOST_IP ? 2 : c == HOST_WEAK ? 1 : 0;
}

const struct reservation *acl_reservation_for(const struct url_prefix *p)
{
	const struct reservation *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < dm->settings.nreservations; i++) {
		const struct reservation *r = &dm->settings.reservations[i];
		if (!acl_covers(&r->prefix, p))
			continue;
		size_t len = strlen(r->prefix.path);
		if (!best || len > best_len ||
		    (len == best_len && host_rank(r->prefix.cls) > host_rank(best->prefix.cls))) {
			best = r;
			best_len = len;
		}
	}
	return best;
}

size_t acl_principals_text(const struct principal *who, unsigned n, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < n && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s %s", i ? ", " : "",
		                 who[i].kind == 'u' ? "user" : "group", who[i].name);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return off < len ? off : len - 1;
}

int acl_may_register(const struct url_prefix *p, const struct ident *id, char *err, size_t errlen)
{
	if (acl_is_admin(id))
		return 0;
	char text[PS_PREFIX_MAX + 300], rtext[PS_PREFIX_MAX + 300], whom[1024];
	url_prefix_format(p, text, sizeof(text));
	const struct reservation *r = acl_reservation_for(p);
	if (!r) {
		snprintf(
		    err, errlen,
		    "%s: no URL reservation covers it, and user %s (uid %u) is not an admin; an admin can "
		    "allow it with: portsharectl urlacl add %s --user %s",
		    text, id->user, (unsigned)id->uid, text, id->user);
		return -1;
	}
	if (acl_in(r->who, r->nwho, id))
		return 0;
	url_prefix_format(&r->prefix, rtext, sizeof(rtext));
	acl_principals_text(r->who, r->nwho, whom, sizeof(whom));
	snprintf(err, errlen, "%s: the URL reservation %s allows only %s, not user %s (uid %u)", text, rtext,
	         whom, id->user, (unsigned)id->uid);
	return -1;
}

/* ---------------------------------------------------------------- grants */

const struct grant *acl_grant_find(const char *queue)
{
	for (size_t i = 0; i < dm->settings.ngrants; i++)
		if (!strcmp(dm->settings.grants[i].queue, queue))
			return &dm->settings.grants[i];
	return NULL;
}

int acl_may_create(const char *queue, const struct ident *id, char *err, size_t errlen)
{
	const struct grant *g = acl_grant_find(queue);
	if (!g || g->owner.id == id->uid || acl_is_admin(id))
		return 0;
	snprintf(err, errlen,
	         "queue name %s belongs to user %s (uid %u) in portshared's settings; choose another name",
	         queue, g->owner.name, (unsigned)g->owner.id);
	return -1;
}

bool acl_may_join(const char *queue, uid_t owner, const struct principal *own_grants, unsigned nown,
                  const struct ident *id)
{
	if (id->uid == owner || acl_is_admin(id) || acl_in(own_grants, nown, id))
		return true;
	const struct grant *g = acl_grant_find(queue);
	return g && g->owner.id == owner && acl_in(g->who, g->nwho, id);
}
