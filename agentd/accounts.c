/* The lifecycle of ephemeral accounts: UIDs, homes and cleanup. */
#include <pwd.h>

#include "agent.h"

int accounts_init(struct agent *a)
{
	return 0;
}

int accounts_allocate_uid(struct agent *a, const struct rule *rule, uid_t *ret)
{
	char buf[4096];

	for (uint64_t uid = rule->uid_min; uid <= rule->uid_max; uid++) {
		struct passwd pw, *found = NULL;
		int r = store_uid_in_use(a->store, (uint32_t)uid);

		if (r < 0)
			return r;
		if (r > 0)
			continue;
		if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &found) == 0 && found)
			continue;
		*ret = (uid_t)uid;
		return 0;
	}
	return -EUSERS;
}

int accounts_on_issue(struct agent *a, const struct rule *rule, const struct lease *l)
{
	return 0;
}

void accounts_on_lease_end(struct agent *a, const struct lease *l)
{
}
