/* The policy in mid.conf: which existing accounts may receive credentials,
 * which classes of ephemeral accounts exist, and who may ask. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "netaddr.h"
#include "protocol.h"
#include "timewindow.h"

struct principals {
	char **users;
	size_t n_users;
	char **groups;
	size_t n_groups;
};

enum on_expiry {
	ON_EXPIRY_TERMINATE = 0, /* end the lease's sessions */
	ON_EXPIRY_WARN,          /* only warn the sessions */
	ON_EXPIRY_KEEP,          /* leave the sessions alone */
};

struct approval_rule {
	bool enabled;
	struct principals approvers;
	uint32_t required;    /* approvals needed, default 1 */
	uint64_t request_ttl; /* seconds a pending request waits, default 1h */
};

struct lockout_rule {
	uint32_t failures; /* failures within window that lock; 0: no lockout */
	uint64_t window;   /* seconds */
	uint64_t duration; /* seconds a lock lasts */
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
	bool renew;        /* midctl renew allowed, up to max_ttl from issue */
	struct principals requesters;
	struct principals verifiers; /* beyond root and the top-level verifiers */

	/* Conditions; an empty list allows everything. */
	char **services; /* PAM service names */
	size_t n_services;
	struct netaddr *sources; /* PAM_RHOST networks, or "local" */
	size_t n_sources;
	char **source_texts; /* as written, for messages */
	struct time_window *hours;
	size_t n_hours;
	char **hours_texts;
	char *timezone; /* IANA zone for hours; NULL: the policy's or the host's */

	struct approval_rule approval;
	struct lockout_rule lockout; /* the policy's unless set here */

	/* Sessions */
	uint32_t max_sessions; /* 0: unlimited */
	enum on_expiry on_expiry;
	uint64_t *warn_before; /* seconds before the end, descending */
	size_t n_warn_before;
	uint64_t grace; /* seconds between SIGTERM and SIGKILL */

	/* classes only */
	char *skeleton;    /* copied into a new home; NULL: none */
	bool create_home;  /* default true */
	uint64_t quarantine; /* seconds a UID rests after its lease ends */

	int line; /* where the rule starts in the file, for messages */
};

struct policy {
	char *path;
	struct rule *accounts;
	size_t n_accounts;
	struct rule *classes;
	size_t n_classes;
	struct principals verifiers; /* beyond root */
	struct lockout_rule lockout;
	char *timezone;            /* default zone for hours; NULL: the host's */
	uint64_t audit_retention;  /* seconds of audit records kept; 0: forever */
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
