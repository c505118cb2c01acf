/* State of a running mid-agentd, shared by its event handlers. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "policy.h"
#include "protocol.h"
#include "store.h"

struct mid_cache_builder;

struct connection;

struct agent {
	sd_event *event;
	struct policy *policy;
	struct store *store;
	uint8_t *host_key; /* sodium_malloc'd, MID_HOST_KEY_BYTES */

	char *config_path;
	char *state_dir;
	char *runtime_dir;
	char *socket_path;
	char *cache_path;

	int listen_fd;
	bool socket_bound; /* bound by the agent, so removed at exit */
	sd_event_source *listen_source;
	sd_event_source *expiry_timer;

	uint64_t cache_generation;
	/* The content of the last cache published, kept so that one lease
	 * change updates it instead of a rebuild from the store. NULL when
	 * the next publish rebuilds. */
	struct mid_cache_builder *cache_builder;
	uint32_t cache_removals; /* since the build; each leaves strings behind */
	int64_t started_at;
	struct connection *connections;
	unsigned n_connections;
};

/* Peer of one connection, from SO_PEERCRED and SO_PEERGROUPS. */
struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int n_groups;
};

int64_t now_realtime(void);

/* server.c */
MID_MUST_CHECK int server_listen(struct agent *a);
void server_stop(struct agent *a);

/* requests.c */
void request_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		    struct mid_response *resp);

/* publish.c */
/* Writes the NSS cache: the kept content with the changes noted since,
 * or else a rebuild from the live leases and the policy. */
int cache_publish(struct agent *a);
/* Notes one change of an ephemeral account's lease for the next publish.
 * A change the kept content cannot take makes that publish a rebuild. */
void cache_lease_added(struct agent *a, const struct lease *l);
void cache_lease_renewed(struct agent *a, const struct lease *l);
void cache_lease_ended(struct agent *a, const struct lease *l);
/* Makes the next publish a rebuild, as after a policy change. */
void cache_drop(struct agent *a);
/* Expires due leases and arms the timer for the next expiry. */
int expiry_schedule(struct agent *a);

/* peer.c */
bool peer_in_principals(const struct peer *peer, const struct principals *p);

/* requests.c, for the other handlers */
MID_PRINTF(3, 4)
void reply(struct mid_response *resp, enum mid_status status, const char *fmt, ...);
void reply_store_error(struct mid_response *resp, int r);
/* Checks ttl and uses of an issue request against rule: a request may
 * narrow the policy, never widen it. Returns 0, or -EPERM with a reply. */
MID_MUST_CHECK int issue_check_limits(const struct agent *a, const struct rule *rule,
				      const struct mid_request *req, struct mid_response *resp);
/* Issues a lease and credential under rule, after every check passed;
 * approvals call it when a request is collected. */
void lease_issue(struct agent *a, uid_t requester_uid, const struct rule *rule,
		 const struct mid_request *req, struct mid_response *resp);
/* Fills resp->lease with the live lease named in req->lease, or else the
 * live lease of req->account that ends last. Returns 0, or -errno with
 * the reply filled. */
int account_live_lease(struct agent *a, const struct mid_request *req, struct mid_response *resp);
/* The rule a lease was issued under, or NULL when the policy dropped it. */
const struct rule *rule_of_lease(const struct agent *a, const struct mid_lease_info *l);
/* Whether peer may verify credentials for rule (root, the policy's
 * verifiers, the rule's verifiers); rule may be NULL. */
bool peer_may_verify(const struct agent *a, const struct peer *peer, const struct rule *rule);

/* conditions.c: services, sources and hours. Each check returns 0, or
 * -EPERM with a reply that names the rule. */
MID_MUST_CHECK int conditions_check_issue(struct agent *a, const struct rule *rule,
					  const struct mid_request *req, int64_t now,
					  struct mid_response *resp);
MID_MUST_CHECK int conditions_check_login(struct agent *a, const struct rule *rule,
					  const struct lease *l, const struct mid_request *req,
					  int64_t now, struct mid_response *resp);
void explain_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		    struct mid_response *resp);

/* lockout.c: failures per account and per source address. */
MID_MUST_CHECK int lockout_init(struct agent *a);
void lockout_free(struct agent *a);
/* Returns 0, or -EPERM with a MID_ERR_LOCKED reply. */
MID_MUST_CHECK int lockout_check(struct agent *a, const struct rule *rule, const char *account,
				 const char *rhost, int64_t now, struct mid_response *resp);
void lockout_record_failure(struct agent *a, const struct rule *rule, const char *account,
			    const char *rhost, int64_t now);
void lockout_handle_unlock(struct agent *a, const struct peer *peer,
			   const struct mid_request *req, struct mid_response *resp);

/* approvals.c */
MID_MUST_CHECK int approvals_init(struct agent *a);
/* For a rule that needs approval, records a pending request, fills a
 * MID_PENDING reply and returns 1; returns 0 when the rule needs none. */
int approval_intercept_issue(struct agent *a, const struct peer *peer, const struct rule *rule,
			     const struct mid_request *req, struct mid_response *resp);
/* APPROVE, DENY, COLLECT and REQUESTS. */
void approvals_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		      struct mid_response *resp);

/* accounts.c: ephemeral account lifecycle. */
MID_MUST_CHECK int accounts_init(struct agent *a);
/* Picks a UID of the class that is free everywhere and not quarantined. */
MID_MUST_CHECK int accounts_allocate_uid(struct agent *a, const struct rule *rule, uid_t *ret);
/* Creates the home of a new ephemeral account. */
MID_MUST_CHECK int accounts_on_issue(struct agent *a, const struct rule *rule,
				     const struct lease *l);
/* Called once a lease has ended (revoked or expired), after its commit. */
void accounts_on_lease_end(struct agent *a, const struct lease *l);

/* sessions.c */
MID_MUST_CHECK int sessions_init(struct agent *a);
/* SESSION_OPEN, SESSION_CLOSE, SESSIONS and KILL. */
void sessions_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		     struct mid_response *resp);
/* Called once a lease has ended, after its commit; why is "revoked" or "expired". */
void sessions_on_lease_end(struct agent *a, const struct lease *l, const char *why);
/* Called after a renewal moved the lease's expiry. */
void sessions_on_lease_renew(struct agent *a, const struct lease *l);

/* audit.c */
MID_MUST_CHECK int audit_init(struct agent *a);
/* Wipes and frees the audit signing key, if one was loaded. */
void audit_free(struct agent *a);
/* AUDIT, AUDIT_VERIFY and AUDIT_SIGN. */
void audit_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		  struct mid_response *resp);

/* main.c */
/* Refuses (with a logged reason) a path not owned by the agent's user or
 * writable by group or others, like sshd's StrictModes. */
MID_MUST_CHECK int check_ownership(const char *path, bool want_dir);
/* Re-reads the policy; on failure the running policy stays. Fills resp
 * when given. */
int agent_reload(struct agent *a, const struct peer *peer, struct mid_response *resp);
