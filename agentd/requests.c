/* Handlers for each request type. A handler validates its request, checks
 * the peer against the policy, changes state in one transaction and fills
 * in the reply; a refusal is an ordinary reply with a status and a message
 * that names the rule or value and the fix. */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "agent.h"
#include "duration.h"
#include "log.h"
#include "names.h"
#include "token.h"

void reply(struct mid_response *resp, enum mid_status status, const char *fmt, ...)
{
	va_list ap;

	resp->status = (uint8_t)status;
	va_start(ap, fmt);
	vsnprintf(resp->message, sizeof(resp->message), fmt, ap);
	va_end(ap);
}

void reply_store_error(struct mid_response *resp, int r)
{
	if (r == -ENOSPC)
		reply(resp, MID_ERR_NO_SPACE, "the state database is out of space; nothing was changed");
	else
		reply(resp, MID_ERR_INTERNAL, "the state database failed (%s); see the agent's log",
		      strerror(-r));
}

bool peer_may_verify(const struct agent *a, const struct peer *peer, const struct rule *rule)
{
	if (peer_in_principals(peer, &a->policy->verifiers))
		return true;
	return rule && (rule->verifiers.n_users > 0 || rule->verifiers.n_groups > 0) &&
	       peer_in_principals(peer, &rule->verifiers);
}

const struct rule *rule_of_lease(const struct agent *a, const struct mid_lease_info *l)
{
	if (l->class_name[0])
		return policy_find_class(a->policy, l->class_name);
	return policy_find_account(a->policy, l->account);
}

/* The rule that manages an account name: a named account, or the class
 * whose prefix it carries. */
static const struct rule *rule_of_account(const struct agent *a, const char *account)
{
	const struct rule *rule = policy_find_account(a->policy, account);

	return rule ? rule : policy_find_class_of(a->policy, account);
}

/* Records one audit event that must reach the disk before the reply. */
static int audit_now(struct agent *a, const char *event, const char *account, const char *lease,
		     const struct peer *peer, const char *detail)
{
	struct audit_record rec = {
		.event = event,
		.account = account,
		.lease = lease,
		.peer_uid = peer ? (long long)peer->uid : -1,
		.detail = detail,
	};

	return store_audit_defer(a->store, now_realtime(), &rec, true);
}

static int lease_fill_account(const char *account, struct lease *l, struct mid_response *resp)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int r;

	r = getpwnam_r(account, &pw, buf, sizeof(buf), &found);
	if (r != 0 || !found) {
		reply(resp, MID_ERR_NOT_FOUND,
		      "account %s does not exist on this host; create it or remove it from the policy",
		      account);
		return -ENOENT;
	}
	snprintf(l->info.account, sizeof(l->info.account), "%s", account);
	l->info.uid = found->pw_uid;
	l->info.gid = found->pw_gid;
	snprintf(l->home, sizeof(l->home), "%s", found->pw_dir);
	snprintf(l->shell, sizeof(l->shell), "%s", found->pw_shell);
	return 0;
}

static int lease_fill_class(struct agent *a, const struct rule *rule, struct lease *l,
			    struct mid_response *resp)
{
	uid_t uid = 0;
	int r;

	r = accounts_allocate_uid(a, rule, &uid);
	if (r == -EUSERS) {
		reply(resp, MID_ERR_DENIED,
		      "class %s has no free UID in %u-%u; widen uid_min/uid_max or wait for leases to end",
		      rule->name, (unsigned)rule->uid_min, (unsigned)rule->uid_max);
		return r;
	}
	if (r < 0) {
		reply_store_error(resp, r);
		return r;
	}
	/* The name takes the first half of the random lease id, so it is
	 * unique among live leases and does not reveal the issue order. */
	snprintf(l->info.account, sizeof(l->info.account), "%s%.8s", rule->prefix, l->info.lease);
	snprintf(l->info.class_name, sizeof(l->info.class_name), "%s", rule->name);
	l->info.uid = uid;
	l->info.gid = rule->gid;
	snprintf(l->group, sizeof(l->group), "%s", rule->group);
	snprintf(l->home, sizeof(l->home), "%s/%s", rule->home_base, l->info.account);
	snprintf(l->shell, sizeof(l->shell), "%s", rule->shell);
	snprintf(l->gecos, sizeof(l->gecos), "%s", rule->gecos);
	return 0;
}

static const struct rule *issue_find_rule(struct agent *a, const struct mid_request *req,
					  struct mid_response *resp)
{
	const struct rule *rule;

	if (!!req->account[0] == !!req->class_name[0]) {
		reply(resp, MID_ERR_INVALID, "name either an account or a class (--class), not both");
		return NULL;
	}
	if (req->account[0]) {
		if (!name_is_valid(req->account)) {
			reply(resp, MID_ERR_INVALID,
			      "invalid account name: use 1 to %d letters, digits, '_', '-' or '.'",
			      MID_NAME_MAX);
			return NULL;
		}
		rule = policy_find_account(a->policy, req->account);
		if (!rule)
			reply(resp, MID_ERR_DENIED,
			      "no rule in %s allows credentials for account %s; add it under accounts",
			      a->policy->path, req->account);
		return rule;
	}
	if (!name_is_valid(req->class_name)) {
		reply(resp, MID_ERR_INVALID, "invalid class name");
		return NULL;
	}
	rule = policy_find_class(a->policy, req->class_name);
	if (!rule)
		reply(resp, MID_ERR_DENIED, "no class %s in %s; add it under classes", req->class_name,
		      a->policy->path);
	return rule;
}

/* Checks ttl and uses against the rule: a request may narrow the policy,
 * never widen it. */
int issue_check_limits(const struct agent *a, const struct rule *rule,
		       const struct mid_request *req, struct mid_response *resp)
{
	char ttl_text[32], max_text[32];
	uint64_t ttl = req->ttl ? req->ttl : rule->ttl;
	uint32_t uses = (req->flags & MID_ISSUE_USES_SET) ? req->uses : rule->max_uses;

	if (ttl > rule->max_ttl) {
		duration_format(ttl, ttl_text, sizeof(ttl_text));
		duration_format(rule->max_ttl, max_text, sizeof(max_text));
		reply(resp, MID_ERR_DENIED, "ttl %s is above max_ttl %s of %s %s (%s:%d); ask for %s or less",
		      ttl_text, max_text, rule->ephemeral ? "class" : "account", rule->name,
		      a->policy->path, rule->line, max_text);
		return -EPERM;
	}
	if (rule->max_uses > 0 && (uses == 0 || uses > rule->max_uses)) {
		reply(resp, MID_ERR_DENIED,
		      "%s %s (%s:%d) allows at most %u uses per credential; ask for %u or fewer",
		      rule->ephemeral ? "class" : "account", rule->name, a->policy->path, rule->line,
		      rule->max_uses, rule->max_uses);
		return -EPERM;
	}
	return 0;
}

void lease_issue(struct agent *a, uid_t requester_uid, const struct rule *rule,
		 const struct mid_request *req, struct mid_response *resp)
{
	struct lease l = {0};
	char token[MID_TOKEN_LEN + 1];
	int64_t now = now_realtime();
	uint64_t ttl = req->ttl ? req->ttl : rule->ttl;
	uint32_t uses = (req->flags & MID_ISSUE_USES_SET) ? req->uses : rule->max_uses;
	int r;

	token_new_lease_id(l.info.lease);
	r = rule->ephemeral ? lease_fill_class(a, rule, &l, resp)
			    : lease_fill_account(req->account, &l, resp);
	if (r < 0)
		return;

	l.info.created_at = now;
	l.info.expires_at = now + (int64_t)ttl;
	l.info.max_expires_at = now + (int64_t)rule->max_ttl;
	l.info.max_uses = uses;
	l.info.state = MID_LEASE_LIVE;
	l.info.requester_uid = requester_uid;
	snprintf(l.info.reason, sizeof(l.info.reason), "%s", req->reason);
	snprintf(l.info.services, sizeof(l.info.services), "%s", req->services);
	snprintf(l.info.sources, sizeof(l.info.sources), "%s", req->sources);

	r = token_new(l.info.lease, a->host_key, token, l.hash);
	if (r < 0) {
		reply(resp, MID_ERR_INTERNAL, "failed to make a credential");
		return;
	}
	if (rule->ephemeral && accounts_on_issue(a, rule, &l) < 0) {
		sodium_memzero(token, sizeof(token));
		reply(resp, MID_ERR_INTERNAL, "failed to set up account %s; see the agent's log",
		      l.info.account);
		return;
	}

	r = store_begin(a->store);
	if (r == 0)
		r = store_lease_insert(a->store, &l);
	if (r == 0)
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = "issue",
							      .account = l.info.account,
							      .lease = l.info.lease,
							      .peer_uid = requester_uid,
							      .detail = req->reason});
	r = store_end(a->store, r);
	if (r < 0) {
		sodium_memzero(token, sizeof(token));
		if (rule->ephemeral)
			accounts_on_lease_end(a, &l);
		reply_store_error(resp, r);
		return;
	}

	cache_lease_added(a, &l);
	if (rule->ephemeral && cache_publish(a) < 0)
		log_error("Lease %s of account %s was issued, but the NSS cache could not be "
			  "updated; the account may not resolve until the next update",
			  l.info.lease, l.info.account);
	(void)expiry_schedule(a);

	log_event(LOG_INFO,
		  &(struct log_fields){.message_id = MID_MESSAGE_ISSUED,
				       .account = l.info.account,
				       .lease = l.info.lease,
				       .reason = req->reason,
				       .peer_uid = requester_uid,
				       .expires_at = l.info.expires_at},
		  "Issued credential for account %s, lease %s, to UID %u", l.info.account,
		  l.info.lease, (unsigned)requester_uid);

	resp->lease = l.info;
	memcpy(resp->credential, token, sizeof(token));
	sodium_memzero(token, sizeof(token));
	sodium_memzero(&l, sizeof(l));
	reply(resp, MID_OK, "issued");
}

static void handle_issue(struct agent *a, const struct peer *peer, const struct mid_request *req,
			 struct mid_response *resp)
{
	const struct rule *rule;

	rule = issue_find_rule(a, req, resp);
	if (!rule)
		return;
	if (!peer_in_principals(peer, &rule->requesters)) {
		reply(resp, MID_ERR_PERMISSION,
		      "UID %u may not request credentials for %s %s (%s:%d); add the user or one of its groups to its requesters",
		      (unsigned)peer->uid, rule->ephemeral ? "class" : "account", rule->name,
		      a->policy->path, rule->line);
		return;
	}
	if (issue_check_limits(a, rule, req, resp) < 0)
		return;
	if (conditions_check_issue(a, rule, req, now_realtime(), resp) < 0)
		return;
	if (approval_intercept_issue(a, peer, rule, req, resp))
		return;
	lease_issue(a, peer->uid, rule, req, resp);
}

/* Logs and audits a refused verification. A wrong credential counts
 * towards lockout; a valid one refused by a condition does not, since
 * its holder is not guessing. */
static void verify_refused(struct agent *a, const struct peer *peer, const struct mid_request *req,
			   const char *lease, const char *why, bool counts)
{
	const struct rule *rule = rule_of_account(a, req->account);
	int r;

	if (rule && counts)
		lockout_record_failure(a, rule, req->account, req->rhost, now_realtime());

	log_event(LOG_WARNING,
		  &(struct log_fields){.message_id = MID_MESSAGE_VERIFY_FAILED,
				       .account = req->account,
				       .lease = lease,
				       .service = req->service,
				       .rhost = req->rhost,
				       .reason = why,
				       .peer_uid = peer->uid},
		  "Credential verification failed: %s", why);
	r = audit_now(a, "verify-failed", req->account, lease, peer, why);
	if (r < 0)
		log_error("Failed to record a failed verification in the audit log: %s",
			  strerror(-r));
}

/* Known and unknown accounts and leases take the same steps: the token is
 * hashed and a lease looked up whatever the account, and the hash compared
 * even when no lease was found. */
static void handle_verify(struct agent *a, const struct peer *peer, const struct mid_request *req,
			  struct mid_response *resp)
{
	uint8_t hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1] = "";
	const struct rule *rule;
	struct lease l = {0};
	bool found, hash_ok;
	int64_t now = now_realtime();
	struct audit_record rec = {
		.event = "verify",
		.account = req->account,
		.lease = lease_id,
		.peer_uid = peer->uid,
		.detail = req->service,
	};
	int r;

	if (!name_is_valid(req->account)) {
		/* Nothing is logged: people type passwords into the user field. */
		reply(resp, MID_ERR_INVALID, "invalid account name");
		return;
	}
	rule = rule_of_account(a, req->account);
	if (!peer_may_verify(a, peer, rule)) {
		reply(resp, MID_ERR_PERMISSION,
		      "UID %u may not verify credentials; only root and the policy's verifiers may",
		      (unsigned)peer->uid);
		return;
	}
	if (!rule) {
		reply(resp, MID_ERR_UNMANAGED, "account is not managed by mid");
		return;
	}
	if (lockout_check(a, rule, req->account, req->rhost, now, resp) < 0) {
		verify_refused(a, peer, req, NULL, "locked", false);
		return;
	}

	r = token_parse(req->credential, strnlen(req->credential, sizeof(req->credential)),
			a->host_key, lease_id, hash);
	if (r < 0) {
		verify_refused(a, peer, req, NULL,
			      r == -EBADMSG ? "credential checksum mismatch" : "malformed credential", true);
		reply(resp, MID_ERR_BAD_CREDENTIAL, "invalid credential");
		return;
	}

	r = store_lease_get(a->store, lease_id, &l);
	if (r < 0 && r != -ENOENT) {
		reply_store_error(resp, r);
		return;
	}
	found = r == 0;
	hash_ok = token_hash_compare(found ? l.hash : hash, hash) == 0 && found;
	sodium_memzero(hash, sizeof(hash));

	if (!hash_ok || strcmp(l.info.account, req->account) != 0) {
		const char *why = "credential of another account";

		if (!found)
			why = "unknown lease";
		else if (!hash_ok)
			why = "wrong secret";
		verify_refused(a, peer, req, lease_id, why, true);
		reply(resp, MID_ERR_BAD_CREDENTIAL, "invalid credential");
		return;
	}
	if (l.info.state == MID_LEASE_REVOKED) {
		verify_refused(a, peer, req, lease_id, "lease revoked", true);
		reply(resp, MID_ERR_REVOKED, "lease %s was revoked", lease_id);
		return;
	}
	if (l.info.state == MID_LEASE_EXPIRED || l.info.expires_at <= now) {
		verify_refused(a, peer, req, lease_id, "lease expired", true);
		reply(resp, MID_ERR_EXPIRED, "lease %s has expired", lease_id);
		return;
	}
	if (l.info.max_uses > 0 && l.info.uses >= l.info.max_uses) {
		verify_refused(a, peer, req, lease_id, "no uses left", true);
		reply(resp, MID_ERR_EXHAUSTED, "lease %s has no uses left", lease_id);
		return;
	}
	if (conditions_check_login(a, rule, &l, req, now, resp) < 0) {
		verify_refused(a, peer, req, lease_id, resp->message, false);
		return;
	}

	/* A use must be counted, durably, before it is granted. A plain
	 * verification only adds its audit record, and goes on when that
	 * could not be written. */
	if (l.info.max_uses > 0) {
		r = store_begin(a->store);
		if (r == 0)
			r = store_lease_add_use(a->store, lease_id);
		if (r == 0)
			r = store_audit_append(a->store, now, &rec);
		r = store_end(a->store, r);
		if (r < 0) {
			reply_store_error(resp, r);
			return;
		}
	} else {
		r = store_audit_defer(a->store, now, &rec, false);
		if (r < 0)
			log_error("Failed to record verification of lease %s in the audit log: %s",
				  lease_id, strerror(-r));
	}

	log_event(LOG_INFO,
		  &(struct log_fields){.message_id = MID_MESSAGE_VERIFIED,
				       .account = req->account,
				       .lease = lease_id,
				       .service = req->service,
				       .rhost = req->rhost,
				       .peer_uid = peer->uid,
				       .expires_at = l.info.expires_at},
		  "Verified credential for account %s, lease %s", req->account, lease_id);
	if (l.info.max_uses > 0)
		l.info.uses++;
	resp->lease = l.info;
	reply(resp, MID_OK, "verified");
}

struct live_search {
	int64_t now;
	struct lease found;
	bool any;
};

static int on_live_lease(const struct lease *l, void *userdata)
{
	struct live_search *s = userdata;

	/* A used-up credential no longer keeps the account open. */
	if (l->info.max_uses > 0 && l->info.uses >= l->info.max_uses)
		return 0;
	if (l->info.expires_at > s->now && (!s->any || l->info.expires_at > s->found.info.expires_at)) {
		s->found = *l;
		s->any = true;
	}
	return 0;
}

/* Fills resp->lease with the lease that keeps account live: the named one,
 * or else the live lease of the account that ends last. */
int account_live_lease(struct agent *a, const struct mid_request *req,
			      struct mid_response *resp)
{
	struct live_search s = {.now = now_realtime()};
	struct lease l;
	int r;

	if (req->lease[0]) {
		if (!lease_id_is_valid(req->lease)) {
			reply(resp, MID_ERR_INVALID, "invalid lease id");
			return -EINVAL;
		}
		r = store_lease_get(a->store, req->lease, &l);
		if (r == -ENOENT || (r == 0 && strcmp(l.info.account, req->account) != 0)) {
			reply(resp, MID_ERR_NOT_FOUND, "no such lease for this account");
			return -ENOENT;
		}
		if (r < 0) {
			reply_store_error(resp, r);
			return r;
		}
		if (l.info.state == MID_LEASE_REVOKED) {
			reply(resp, MID_ERR_REVOKED, "lease %s was revoked", l.info.lease);
			return -EPERM;
		}
		if (l.info.state != MID_LEASE_LIVE || l.info.expires_at <= s.now) {
			reply(resp, MID_ERR_EXPIRED, "lease %s has expired", l.info.lease);
			return -EPERM;
		}
		resp->lease = l.info;
		sodium_memzero(&l, sizeof(l));
		return 0;
	}

	r = store_foreach_live_of(a->store, req->account, on_live_lease, &s);
	if (r < 0) {
		reply_store_error(resp, r);
		return r;
	}
	if (!s.any) {
		reply(resp, MID_ERR_EXPIRED, "account has no live lease");
		return -EPERM;
	}
	resp->lease = s.found.info;
	sodium_memzero(&s, sizeof(s));
	return 0;
}

static void handle_account(struct agent *a, const struct peer *peer, const struct mid_request *req,
			   struct mid_response *resp)
{
	const struct rule *rule;
	struct lease l = {0};

	if (!name_is_valid(req->account)) {
		reply(resp, MID_ERR_INVALID, "invalid account name");
		return;
	}
	rule = rule_of_account(a, req->account);
	if (!peer_may_verify(a, peer, rule)) {
		reply(resp, MID_ERR_PERMISSION, "UID %u may not check accounts", (unsigned)peer->uid);
		return;
	}
	if (!rule) {
		reply(resp, MID_ERR_UNMANAGED, "account is not managed by mid");
		return;
	}
	/* A locked account stays shut for logins that skipped mid's
	 * authentication too (public keys). */
	if (lockout_check(a, rule, req->account, req->rhost, now_realtime(), resp) < 0)
		return;
	if (account_live_lease(a, req, resp) < 0)
		return;
	/* Hours and sources are checked again here: the account phase may
	 * run long after authentication, or without it (public keys). */
	l.info = resp->lease;
	if (conditions_check_login(a, rule, &l, req, now_realtime(), resp) < 0)
		return;
	reply(resp, MID_OK, "live");
}

/* Loads the lease a revoke or renew names and checks the peer may act on
 * it: root, its requester, or anyone its rule lets request. */
static int lease_for_change(struct agent *a, const struct peer *peer, const char *id,
			    struct lease *ret, const struct rule **ret_rule, struct mid_response *resp)
{
	const struct rule *rule;
	int r;

	if (!lease_id_is_valid(id)) {
		reply(resp, MID_ERR_INVALID, "invalid lease id: expected %d hex digits, as midctl list shows",
		      MID_LEASE_ID_LEN);
		return -EINVAL;
	}
	r = store_lease_get(a->store, id, ret);
	if (r == -ENOENT) {
		reply(resp, MID_ERR_NOT_FOUND, "no lease %s; midctl list shows the leases", id);
		return r;
	}
	if (r < 0) {
		reply_store_error(resp, r);
		return r;
	}
	rule = ret->info.class_name[0] ? policy_find_class(a->policy, ret->info.class_name)
				       : policy_find_account(a->policy, ret->info.account);
	if (peer->uid != 0 && peer->uid != ret->info.requester_uid &&
	    !(rule && peer_in_principals(peer, &rule->requesters))) {
		reply(resp, MID_ERR_PERMISSION, "UID %u may not change lease %s", (unsigned)peer->uid,
		      id);
		return -EPERM;
	}
	*ret_rule = rule;
	return 0;
}

static void handle_revoke(struct agent *a, const struct peer *peer, const struct mid_request *req,
			  struct mid_response *resp)
{
	const struct rule *rule = NULL;
	int64_t now = now_realtime();
	struct lease l;
	int r;

	if (lease_for_change(a, peer, req->lease, &l, &rule, resp) < 0)
		return;
	if (l.info.state != MID_LEASE_LIVE) {
		reply(resp, l.info.state == MID_LEASE_REVOKED ? MID_ERR_REVOKED : MID_ERR_EXPIRED,
		      "lease %s has already ended (%s)", l.info.lease,
		      mid_lease_state_to_string(l.info.state));
		return;
	}

	r = store_begin(a->store);
	if (r == 0)
		r = store_lease_set_state(a->store, l.info.lease, MID_LEASE_REVOKED, now);
	if (r == 0)
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = "revoke",
							      .account = l.info.account,
							      .lease = l.info.lease,
							      .peer_uid = peer->uid,
							      .detail = req->reason});
	r = store_end(a->store, r);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}

	l.info.state = MID_LEASE_REVOKED;
	cache_lease_ended(a, &l);
	if (l.info.class_name[0] && cache_publish(a) < 0)
		log_error("Lease %s was revoked, but the NSS cache could not be updated", l.info.lease);
	(void)expiry_schedule(a);
	sessions_on_lease_end(a, &l, "revoked");
	if (l.info.class_name[0])
		accounts_on_lease_end(a, &l);
	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_REVOKED,
				       .account = l.info.account,
				       .lease = l.info.lease,
				       .reason = req->reason,
				       .peer_uid = peer->uid},
		  "Revoked lease %s of account %s", l.info.lease, l.info.account);

	resp->lease = l.info;
	sodium_memzero(&l, sizeof(l));
	reply(resp, MID_OK, "revoked");
}

static void handle_renew(struct agent *a, const struct peer *peer, const struct mid_request *req,
			 struct mid_response *resp)
{
	const struct rule *rule = NULL;
	int64_t now = now_realtime(), expires_at;
	struct lease l;
	int r;

	if (lease_for_change(a, peer, req->lease, &l, &rule, resp) < 0)
		return;
	if (l.info.state != MID_LEASE_LIVE || l.info.expires_at <= now) {
		reply(resp, l.info.state == MID_LEASE_REVOKED ? MID_ERR_REVOKED : MID_ERR_EXPIRED,
		      "lease %s has ended and cannot be renewed; issue a new credential",
		      l.info.lease);
		return;
	}
	if (!rule) {
		reply(resp, MID_ERR_DENIED, "the policy no longer has a rule for account %s",
		      l.info.account);
		return;
	}
	if (!rule->renew) {
		reply(resp, MID_ERR_DENIED,
		      "%s %s (%s:%d) does not allow renewal (renew = false); issue a new credential",
		      rule->ephemeral ? "class" : "account", rule->name, a->policy->path, rule->line);
		return;
	}

	expires_at = now + (int64_t)(req->ttl ? req->ttl : rule->ttl);
	if (expires_at > l.info.max_expires_at) {
		char max_text[32];

		duration_format(rule->max_ttl, max_text, sizeof(max_text));
		if (l.info.expires_at >= l.info.max_expires_at) {
			reply(resp, MID_ERR_DENIED,
			      "lease %s already runs to max_ttl %s of %s %s (%s:%d) from issue; issue a new credential",
			      l.info.lease, max_text, rule->ephemeral ? "class" : "account",
			      rule->name, a->policy->path, rule->line);
			return;
		}
		expires_at = l.info.max_expires_at;
	}

	r = store_begin(a->store);
	if (r == 0)
		r = store_lease_set_expiry(a->store, l.info.lease, expires_at);
	if (r == 0)
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = "renew",
							      .account = l.info.account,
							      .lease = l.info.lease,
							      .peer_uid = peer->uid});
	r = store_end(a->store, r);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}

	l.info.expires_at = expires_at;
	cache_lease_renewed(a, &l);
	if (l.info.class_name[0] && cache_publish(a) < 0)
		log_error("Lease %s was renewed, but the NSS cache could not be updated", l.info.lease);
	(void)expiry_schedule(a);
	sessions_on_lease_renew(a, &l);
	log_event(LOG_INFO,
		  &(struct log_fields){.message_id = MID_MESSAGE_RENEWED,
				       .account = l.info.account,
				       .lease = l.info.lease,
				       .peer_uid = peer->uid,
				       .expires_at = expires_at},
		  "Renewed lease %s of account %s", l.info.lease, l.info.account);
	resp->lease = l.info;
	sodium_memzero(&l, sizeof(l));
	reply(resp, MID_OK, "renewed");
}

static int on_list_entry(const struct lease *l, void *userdata)
{
	struct mid_response *resp = userdata;

	if (resp->count >= MID_LIST_PAGE)
		return 0;
	resp->entries[resp->count++] = l->info;
	return 0;
}

static void handle_list(struct agent *a, const struct peer *peer, const struct mid_request *req,
			struct mid_response *resp)
{
	long long only = peer->uid == 0 ? -1 : (long long)peer->uid;
	int r;

	r = store_list(a->store, req->offset, MID_LIST_PAGE, only, on_list_entry, resp, &resp->total);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	reply(resp, MID_OK, "%u leases", resp->total);
}

static void handle_status(struct agent *a, struct mid_response *resp)
{
	struct mid_agent_status *s = &resp->agent;
	int r;

	s->pid = (uint32_t)getpid();
	s->started_at = a->started_at;
	r = store_count(a->store, &s->live_leases, &s->total_leases);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	snprintf(s->version, sizeof(s->version), "%s", PACKAGE_VERSION);
	snprintf(s->config_path, sizeof(s->config_path), "%s", a->config_path);
	snprintf(s->state_dir, sizeof(s->state_dir), "%s", a->state_dir);
	snprintf(s->runtime_dir, sizeof(s->runtime_dir), "%s", a->runtime_dir);
	reply(resp, MID_OK, "running");
}

/* Logs and audits a refused request that would have changed state, so a
 * refusal leaves a trace as an acceptance does. */
static void refusal_record(struct agent *a, const struct peer *peer, const struct mid_request *req,
			   const struct mid_response *resp)
{
	const char *account = req->account[0] ? req->account : req->class_name;
	struct audit_record rec = {
		.event = "refused",
		.account = account,
		.lease = req->lease,
		.peer_uid = peer->uid,
		.detail = resp->message,
	};
	int r;

	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_DENIED,
				       .account = account,
				       .lease = req->lease,
				       .reason = resp->message,
				       .peer_uid = peer->uid},
		  "Refused %s request of UID %u: %s",
		  mid_request_type_to_string((enum mid_request_type)req->type), (unsigned)peer->uid,
		  mid_status_to_string((enum mid_status)resp->status));
	r = store_begin(a->store);
	if (r == 0)
		r = store_audit_append(a->store, now_realtime(), &rec);
	r = store_end(a->store, r);
	if (r < 0)
		log_error("Failed to record a refused request in the audit log: %s", strerror(-r));
}

void request_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		    struct mid_response *resp)
{
	resp->type = req->type;
	switch (req->type) {
	case MID_REQ_ISSUE:
		handle_issue(a, peer, req, resp);
		break;
	case MID_REQ_VERIFY:
		handle_verify(a, peer, req, resp);
		break;
	case MID_REQ_ACCOUNT:
		handle_account(a, peer, req, resp);
		break;
	case MID_REQ_REVOKE:
		handle_revoke(a, peer, req, resp);
		break;
	case MID_REQ_RENEW:
		handle_renew(a, peer, req, resp);
		break;
	case MID_REQ_LIST:
		handle_list(a, peer, req, resp);
		break;
	case MID_REQ_STATUS:
		handle_status(a, resp);
		break;
	case MID_REQ_SESSION_OPEN:
	case MID_REQ_SESSION_CLOSE:
	case MID_REQ_SESSIONS:
	case MID_REQ_KILL:
		sessions_handle(a, peer, req, resp);
		break;
	case MID_REQ_APPROVE:
	case MID_REQ_DENY:
	case MID_REQ_COLLECT:
	case MID_REQ_REQUESTS:
		approvals_handle(a, peer, req, resp);
		break;
	case MID_REQ_UNLOCK:
		lockout_handle_unlock(a, peer, req, resp);
		break;
	case MID_REQ_RELOAD:
		(void)agent_reload(a, peer, resp);
		break;
	case MID_REQ_EXPLAIN:
		explain_handle(a, peer, req, resp);
		break;
	case MID_REQ_AUDIT:
	case MID_REQ_AUDIT_VERIFY:
	case MID_REQ_AUDIT_SIGN:
		audit_handle(a, peer, req, resp);
		break;
	default:
		reply(resp, MID_ERR_INVALID, "unknown request type %u", req->type);
		break;
	}

	if ((req->type == MID_REQ_ISSUE || req->type == MID_REQ_RENEW ||
	     req->type == MID_REQ_REVOKE) &&
	    (resp->status == MID_ERR_DENIED || resp->status == MID_ERR_PERMISSION))
		refusal_record(a, peer, req, resp);
}
