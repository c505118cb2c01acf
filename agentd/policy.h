/* The policy in mid.conf: which existing accounts may receive credentials,
 * which classes of ephemeral accounts exist, and who may ask. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "protocol.h"

struct principals {
	char **users;
	size_t n_users;
	char **groups;
	size_t n_groups;
};

struct rule {
	char *name;     /* account name, or class name */
	bool ephemeral; /* a class of ephemeral accounts */
	/* classes only */
	char *prefix;
	uid_t uid_min;
	uid_t uid_max;
	char *group;
	gid_t gid;
	char *shell;
	char *home_base;
	char *gecos;
	/* both */
	uint64_t ttl; /* seconds */
	uint64_t max_ttl;
	uint32_t max_uses; /* 0: unlimited until expiry */
	struct principals requesters;
	int line; /* where the rule starts in the file, for messages */
};

struct policy {
	char *path;
	struct rule *accounts;
	size_t n_accounts;
	struct rule *classes;
	size_t n_classes;
	struct principals verifiers; /* beyond root */
};

/* Error messages gathered while loading, each "FILE:LINE: text". */
struct policy_errors {
	char **lines;
	size_t n;
};

/* Loads and checks the policy at path. On failure returns -EINVAL (or
 * another -errno) and every problem found in errors. */
MID_MUST_CHECK int policy_load(const char *path, struct policy **ret, struct policy_errors *errors);
void policy_free(struct policy *p);
void policy_errors_clear(struct policy_errors *errors);

const struct rule *policy_find_account(const struct policy *p, const char *account);
const struct rule *policy_find_class(const struct policy *p, const char *class_name);
/* The class whose prefix and UID range contain an ephemeral account. */
const struct rule *policy_find_class_of(const struct policy *p, const char *account);
