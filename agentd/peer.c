/* Deciding whether a connected peer is one of the users and groups a
 * policy names. Root is always allowed. */
#include <grp.h>
#include <pwd.h>
#include <string.h>

#include "agent.h"

static bool peer_has_gid(const struct peer *peer, gid_t gid)
{
	if (peer->gid == gid)
		return true;
	for (int i = 0; i < peer->n_groups; i++)
		if (peer->groups[i] == gid)
			return true;
	return false;
}

bool peer_in_principals(const struct peer *peer, const struct principals *p)
{
	char buf[4096];

	if (peer->uid == 0)
		return true;

	if (p->n_users > 0) {
		struct passwd pw, *found = NULL;

		if (getpwuid_r(peer->uid, &pw, buf, sizeof(buf), &found) == 0 && found)
			for (size_t i = 0; i < p->n_users; i++)
				if (strcmp(p->users[i], found->pw_name) == 0)
					return true;
	}
	for (size_t i = 0; i < p->n_groups; i++) {
		struct group gr, *found = NULL;

		if (getgrnam_r(p->groups[i], &gr, buf, sizeof(buf), &found) == 0 && found &&
		    peer_has_gid(peer, found->gr_gid))
			return true;
	}
	return false;
}
