/* Approval of credential requests: an issue under a rule with an approval
 * block becomes a stored request that approvers vote on and that its
 * requester collects, once, after enough distinct approvers agreed. */
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "duration.h"
#include "log.h"
#include "names.h"

/* Open (pending or approved, not yet expired) requests one UID may hold,
 * so that a requester cannot grow the state database without bound. */
#define OPEN_REQUESTS_MAX 100

/* Request ids have the lease id format (MID_LEASE_ID_LEN lowercase hex
 * digits), so lease_id_is_valid checks them too. */
#define REQUEST_ID_LEN MID_LEASE_ID_LEN

/* States as struct mid_approval_info carries them. The database stores
 * pending, denied and collected; approved and expired follow from the
 * votes, the current rule and the clock whenever a request is read. */
enum {
	REQUEST_PENDING = 0,
	REQUEST_APPROVED = 1,
	REQUEST_DENIED = 2,
	REQUEST_EXPIRED = 3,
	REQUEST_COLLECTED = 4,
};

static const char approvals_schema[] =
	"CREATE TABLE IF NOT EXISTS approval_requests ("
	"  id TEXT PRIMARY KEY,"
	"  account TEXT NOT NULL,"
	"  class TEXT NOT NULL,"
	"  ttl INTEGER NOT NULL,"
	"  uses INTEGER NOT NULL,"
	"  flags INTEGER NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  services TEXT NOT NULL,"
	"  sources TEXT NOT NULL,"
	"  requester_uid INTEGER NOT NULL,"
	"  required INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  decided_by INTEGER NOT NULL DEFAULT -1,"
	"  decided_at INTEGER NOT NULL DEFAULT 0,"
	"  denial_reason TEXT NOT NULL DEFAULT '',"
	"  lease TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX IF NOT EXISTS approval_requests_requester"
	"  ON approval_requests(requester_uid, state, expires_at);"
	"CREATE INDEX IF NOT EXISTS approval_requests_created ON approval_requests(created_at);"
	"CREATE TABLE IF NOT EXISTS approval_votes ("
	"  request TEXT NOT NULL REFERENCES approval_requests(id) ON DELETE CASCADE,"
	"  approver_uid INTEGER NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  PRIMARY KEY (request, approver_uid));";

#define REQUEST_COLUMNS                                                                            \
	"id, account, class, ttl, uses, flags, reason, services, sources, requester_uid, "        \
	"required, created_at, expires_at, state, decided_by, denial_reason, lease, "             \
	"(SELECT count(*) FROM approval_votes WHERE request = approval_requests.id)"

/* One stored request. issue is the ISSUE request as it arrived, replayed
 * through lease_issue() at collect. */
struct approval_request {
	char id[REQUEST_ID_LEN + 1];
	struct mid_request issue;
	uid_t requester_uid;
	uint32_t required; /* at creation; the current rule's value wins while it exists */
	int64_t created_at;
	int64_t expires_at;
	uint8_t state; /* REQUEST_PENDING, REQUEST_DENIED or REQUEST_COLLECTED */
	long long decided_by; /* UID that denied; -1: none */
	char denial_reason[MID_TEXT_MAX + 1];
	char lease[MID_LEASE_ID_MAX + 1]; /* the collected lease */
	uint32_t approvals; /* distinct approvers so far */
};

int approvals_init(struct agent *a)
{
	char *err = NULL;

	if (sqlite3_exec(store_db(a->store), approvals_schema, NULL, NULL, &err) != SQLITE_OK) {
		log_error("Failed to create the approval tables: %s", err ? err : "?");
		sqlite3_free(err);
		return -EIO;
	}
	return 0;
}

static void format_utc(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void column_copy(sqlite3_stmt *st, int column, char *buf, size_t size)
{
	const unsigned char *text = sqlite3_column_text(st, column);

	snprintf(buf, size, "%s", text ? (const char *)text : "");
}

static void request_from_row(sqlite3_stmt *st, struct approval_request *ret)
{
	struct mid_request *issue = &ret->issue;

	*ret = (struct approval_request){0};
	issue->type = MID_REQ_ISSUE;
	column_copy(st, 0, ret->id, sizeof(ret->id));
	column_copy(st, 1, issue->account, sizeof(issue->account));
	column_copy(st, 2, issue->class_name, sizeof(issue->class_name));
	issue->ttl = (uint32_t)sqlite3_column_int64(st, 3);
	issue->uses = (uint32_t)sqlite3_column_int64(st, 4);
	issue->flags = (uint32_t)sqlite3_column_int64(st, 5);
	column_copy(st, 6, issue->reason, sizeof(issue->reason));
	column_copy(st, 7, issue->services, sizeof(issue->services));
	column_copy(st, 8, issue->sources, sizeof(issue->sources));
	ret->requester_uid = (uid_t)sqlite3_column_int64(st, 9);
	ret->required = (uint32_t)sqlite3_column_int64(st, 10);
	ret->created_at = sqlite3_column_int64(st, 11);
	ret->expires_at = sqlite3_column_int64(st, 12);
	ret->state = (uint8_t)sqlite3_column_int(st, 13);
	ret->decided_by = sqlite3_column_int64(st, 14);
	column_copy(st, 15, ret->denial_reason, sizeof(ret->denial_reason));
	column_copy(st, 16, ret->lease, sizeof(ret->lease));
	ret->approvals = (uint32_t)sqlite3_column_int64(st, 17);
}

/* Returns 0, -ENOENT or another -errno, and writes ret only on success. */
static int request_get(struct agent *a, const char *id, struct approval_request *ret)
{
	sqlite3_stmt *st;
	int rc, r;

	rc = sqlite3_prepare_v2(store_db(a->store),
				"SELECT " REQUEST_COLUMNS " FROM approval_requests WHERE id = ?",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "read an approval request");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		request_from_row(st, ret);
		r = 0;
	} else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = store_error(a->store, rc, "read an approval request");
	sqlite3_finalize(st);
	return r;
}

/* Counts the requests of uid that are still open at now. */
static int request_count_open(struct agent *a, uid_t uid, int64_t now, uint32_t *ret)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(store_db(a->store),
				"SELECT count(*) FROM approval_requests "
				"WHERE requester_uid = ? AND state = ? AND expires_at > ?",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "count approval requests");
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int(st, 2, REQUEST_PENDING);
	sqlite3_bind_int64(st, 3, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = (uint32_t)sqlite3_column_int64(st, 0);
	else
		r = store_error(a->store, rc, "count approval requests");
	sqlite3_finalize(st);
	return r;
}

/* Runs inside the caller's transaction. */
static int request_insert(struct agent *a, const struct approval_request *ar)
{
	const struct mid_request *issue = &ar->issue;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(store_db(a->store),
				"INSERT INTO approval_requests (id, account, class, ttl, uses, "
				"flags, reason, services, sources, requester_uid, required, "
				"created_at, expires_at, state) "
				"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "store an approval request");
	sqlite3_bind_text(st, 1, ar->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, issue->account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, issue->class_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, issue->ttl);
	sqlite3_bind_int64(st, 5, issue->uses);
	sqlite3_bind_int64(st, 6, issue->flags);
	sqlite3_bind_text(st, 7, issue->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, issue->services, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, issue->sources, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, ar->requester_uid);
	sqlite3_bind_int64(st, 11, ar->required);
	sqlite3_bind_int64(st, 12, ar->created_at);
	sqlite3_bind_int64(st, 13, ar->expires_at);
	sqlite3_bind_int(st, 14, ar->state);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_error(a->store, rc, "store an approval request");
	return 0;
}

/* Returns 1 when uid has approved request id, 0 when not, or -errno. */
static int vote_exists(struct agent *a, const char *id, uid_t uid)
{
	sqlite3_stmt *st;
	int rc, r;

	rc = sqlite3_prepare_v2(store_db(a->store),
				"SELECT 1 FROM approval_votes "
				"WHERE request = ? AND approver_uid = ?",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "read an approval");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = 1;
	else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = store_error(a->store, rc, "read an approval");
	sqlite3_finalize(st);
	return r;
}

/* Runs inside the caller's transaction. */
static int vote_insert(struct agent *a, const char *id, uid_t uid, int64_t at, const char *reason)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(store_db(a->store),
				"INSERT INTO approval_votes (request, approver_uid, at, reason) "
				"VALUES (?, ?, ?, ?)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "store an approval");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, at);
	sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_error(a->store, rc, "store an approval");
	return 0;
}

/* Moves request id from state `from` to `to`, recording who decided and
 * why. Runs inside the caller's transaction. Returns 0, or -ESTALE when
 * the request was no longer in state `from`. */
static int request_set_state(struct agent *a, const char *id, uint8_t from, uint8_t to,
			     long long decided_by, int64_t at, const char *denial_reason)
{
	sqlite3 *db = store_db(a->store);
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db,
				"UPDATE approval_requests SET state = ?, decided_by = ?, "
				"decided_at = ?, denial_reason = ? WHERE id = ? AND state = ?",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "change an approval request");
	sqlite3_bind_int(st, 1, to);
	sqlite3_bind_int64(st, 2, decided_by);
	sqlite3_bind_int64(st, 3, at);
	sqlite3_bind_text(st, 4, denial_reason ? denial_reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, from);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_error(a->store, rc, "change an approval request");
	return sqlite3_changes(db) == 1 ? 0 : -ESTALE;
}

/* Runs inside the caller's transaction. */
static int request_set_lease(struct agent *a, const char *id, const char *lease)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(store_db(a->store),
				"UPDATE approval_requests SET lease = ? WHERE id = ?", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "record a collected lease");
	sqlite3_bind_text(st, 1, lease, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_error(a->store, rc, "record a collected lease");
	return 0;
}

typedef int (*request_cb)(const struct approval_request *ar, void *userdata);

/* Calls cb for every stored request, newest first, stopping at its first
 * nonzero return. */
static int request_foreach(struct agent *a, request_cb cb, void *userdata)
{
	struct approval_request ar;
	sqlite3_stmt *st;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(store_db(a->store),
				"SELECT " REQUEST_COLUMNS " FROM approval_requests "
				"ORDER BY created_at DESC, rowid DESC",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "list approval requests");
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		request_from_row(st, &ar);
		r = cb(&ar, userdata);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_error(a->store, rc, "list approval requests");
	sqlite3_finalize(st);
	return r;
}

/* Appends one audit record inside the caller's transaction. */
static int request_audit(struct agent *a, const char *event, const struct approval_request *ar,
			 const char *lease, long long peer_uid, int64_t now, const char *detail)
{
	return store_audit_append(a->store, now,
				  &(struct audit_record){.event = event,
							 .account = ar->issue.account[0]
									    ? ar->issue.account
									    : NULL,
							 .lease = lease,
							 .peer_uid = peer_uid,
							 .detail = detail});
}

static const char *request_kind(const struct approval_request *ar)
{
	return ar->issue.account[0] ? "account" : "class";
}

static const char *request_target(const struct approval_request *ar)
{
	return ar->issue.account[0] ? ar->issue.account : ar->issue.class_name;
}

/* The rule the request was made under, looked up in the current policy,
 * or NULL when a reload removed it. */
static const struct rule *request_rule(const struct agent *a, const struct approval_request *ar)
{
	if (ar->issue.account[0])
		return policy_find_account(a->policy, ar->issue.account);
	return policy_find_class(a->policy, ar->issue.class_name);
}

/* Approvals needed now: the current rule's, 0 when a reload dropped its
 * approval block, or the count stored at creation when the rule is gone. */
static uint32_t request_required(const struct approval_request *ar, const struct rule *rule)
{
	if (!rule)
		return ar->required;
	return rule->approval.enabled ? rule->approval.required : 0;
}

/* NOTE: approvals count even when their approver has since been removed
 * from approval.approvers by a reload. */
static uint8_t request_state(const struct approval_request *ar, const struct rule *rule,
			     int64_t now)
{
	if (ar->state != REQUEST_PENDING)
		return ar->state;
	if (ar->expires_at <= now)
		return REQUEST_EXPIRED;
	return ar->approvals >= request_required(ar, rule) ? REQUEST_APPROVED : REQUEST_PENDING;
}

/* Loads the request req->id names and sets the reply's id. Returns 0, or
 * -errno with the reply filled. */
static int request_for(struct agent *a, const struct mid_request *req,
		       struct approval_request *ret, struct mid_response *resp)
{
	int r;

	if (!lease_id_is_valid(req->id)) {
		reply(resp, MID_ERR_INVALID,
		      "invalid request id: expected %d lowercase hex digits, as midctl issue and "
		      "midctl requests print",
		      REQUEST_ID_LEN);
		return -EINVAL;
	}
	r = request_get(a, req->id, ret);
	if (r == -ENOENT) {
		reply(resp, MID_ERR_NOT_FOUND, "no approval request %s; midctl requests lists them",
		      req->id);
		return r;
	}
	if (r < 0) {
		reply_store_error(resp, r);
		return r;
	}
	snprintf(resp->id, sizeof(resp->id), "%s", ret->id);
	return 0;
}

/* Returns 0 for a pending or approved request. For one in a final state
 * (denied, collected or expired) it fills the refusal and returns -EPERM. */
static int request_check_not_final(const struct approval_request *ar, uint8_t state,
				   struct mid_response *resp)
{
	char when[32];

	switch (state) {
	case REQUEST_DENIED:
		reply(resp, MID_ERR_DENIED, "request %s was denied by UID %lld: %s", ar->id,
		      ar->decided_by, ar->denial_reason);
		return -EPERM;
	case REQUEST_COLLECTED:
		reply(resp, MID_ERR_DENIED,
		      "request %s was already collected (lease %s); run midctl issue for a new "
		      "credential",
		      ar->id, ar->lease[0] ? ar->lease : "not recorded");
		return -EPERM;
	case REQUEST_EXPIRED:
		format_utc(ar->expires_at, when, sizeof(when));
		reply(resp, MID_ERR_EXPIRED,
		      "request %s expired at %s without being collected; run midctl issue to "
		      "ask again",
		      ar->id, when);
		return -EPERM;
	default:
		return 0;
	}
}

/* Appends ": reason" to an audit detail, cut to fit size, because an
 * AUDIT reply carries at most MID_TEXT_MAX bytes of a record's detail. */
static void detail_append_reason(char *detail, size_t size, const char *reason)
{
	size_t len = strlen(detail), n;

	if (!reason[0] || len + 3 > size)
		return;
	memcpy(detail + len, ": ", 2);
	len += 2;
	n = strnlen(reason, size - len - 1);
	memcpy(detail + len, reason, n);
	detail[len + n] = '\0';
}

static void reply_rule_gone(const struct agent *a, const struct approval_request *ar,
			    const char *action, struct mid_response *resp)
{
	reply(resp, MID_ERR_DENIED, "%s has no rule for %s %s any more, so request %s cannot be %s",
	      a->policy->path, request_kind(ar), request_target(ar), ar->id, action);
}

int approval_intercept_issue(struct agent *a, const struct peer *peer, const struct rule *rule,
			     const struct mid_request *req, struct mid_response *resp)
{
	struct approval_request ar = {0};
	uint8_t raw[REQUEST_ID_LEN / 2];
	char detail[MID_TEXT_MAX + 1], until[32];
	int64_t now = now_realtime();
	uint32_t open = 0;
	int r;

	if (!rule->approval.enabled)
		return 0;

	r = request_count_open(a, peer->uid, now, &open);
	if (r < 0) {
		reply_store_error(resp, r);
		return 1;
	}
	if (open >= OPEN_REQUESTS_MAX) {
		reply(resp, MID_ERR_LIMIT,
		      "UID %u already has %u open approval requests, the maximum; wait until "
		      "they are decided or expire (midctl requests lists them)",
		      (unsigned)peer->uid, open);
		return 1;
	}

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(ar.id, sizeof(ar.id), raw, sizeof(raw));
	/* Only the fields an issue carries, so a stored request never
	 * contains a credential. */
	ar.issue.type = MID_REQ_ISSUE;
	memcpy(ar.issue.account, req->account, sizeof(ar.issue.account));
	memcpy(ar.issue.class_name, req->class_name, sizeof(ar.issue.class_name));
	ar.issue.ttl = req->ttl;
	ar.issue.uses = req->uses;
	ar.issue.flags = req->flags;
	memcpy(ar.issue.reason, req->reason, sizeof(ar.issue.reason));
	memcpy(ar.issue.services, req->services, sizeof(ar.issue.services));
	memcpy(ar.issue.sources, req->sources, sizeof(ar.issue.sources));
	ar.requester_uid = peer->uid;
	ar.required = rule->approval.required;
	ar.created_at = now;
	ar.expires_at = now + (int64_t)rule->approval.request_ttl;
	ar.state = REQUEST_PENDING;
	ar.decided_by = -1;

	snprintf(detail, sizeof(detail), "request %s for %s %s, %u approval(s) needed", ar.id,
		 request_kind(&ar), request_target(&ar), ar.required);
	detail_append_reason(detail, sizeof(detail), req->reason);
	r = store_begin(a->store);
	if (r == 0)
		r = request_insert(a, &ar);
	if (r == 0)
		r = request_audit(a, "request", &ar, NULL, peer->uid, now, detail);
	r = store_end(a->store, r);
	if (r < 0) {
		reply_store_error(resp, r);
		return 1;
	}

	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_APPROVAL,
				       .account = req->account[0] ? req->account : NULL,
				       .reason = req->reason,
				       .peer_uid = peer->uid,
				       .expires_at = ar.expires_at},
		  "UID %u requested a credential for %s %s; request %s waits for %u approval(s)",
		  (unsigned)peer->uid, request_kind(&ar), request_target(&ar), ar.id, ar.required);

	format_utc(ar.expires_at, until, sizeof(until));
	snprintf(resp->id, sizeof(resp->id), "%s", ar.id);
	reply(resp, MID_PENDING,
	      "request %s for %s %s needs %u approval(s) before %s: an approver runs "
	      "midctl approve %s, then you run midctl collect %s",
	      ar.id, request_kind(&ar), request_target(&ar), ar.required, until, ar.id, ar.id);
	return 1;
}

static void handle_approve(struct agent *a, const struct peer *peer, const struct mid_request *req,
			   struct mid_response *resp)
{
	struct approval_request ar;
	const struct rule *rule;
	char detail[MID_TEXT_MAX + 1], until[32];
	int64_t now = now_realtime();
	uint32_t approvals, required;
	uint8_t state;
	int r;

	if (request_for(a, req, &ar, resp) < 0)
		return;
	/* No peer, root included, approves its own request, whatever the
	 * approvers list says. */
	if (peer->uid == ar.requester_uid) {
		reply(resp, MID_ERR_PERMISSION,
		      "UID %u made request %s and may not approve it; another approver must",
		      (unsigned)peer->uid, ar.id);
		return;
	}
	rule = request_rule(a, &ar);
	if (!rule) {
		reply_rule_gone(a, &ar, "approved", resp);
		return;
	}
	if (!rule->approval.enabled || !peer_in_principals(peer, &rule->approval.approvers)) {
		reply(resp, MID_ERR_PERMISSION,
		      "UID %u is not an approver of %s %s; approval.approvers in %s lists who "
		      "may approve",
		      (unsigned)peer->uid, request_kind(&ar), request_target(&ar), a->policy->path);
		return;
	}

	state = request_state(&ar, rule, now);
	if (request_check_not_final(&ar, state, resp) < 0)
		return;
	required = request_required(&ar, rule);
	if (state == REQUEST_APPROVED) {
		reply(resp, MID_ERR_DENIED,
		      "request %s is already approved (%u of %u approvals); nothing to do", ar.id,
		      ar.approvals, required);
		return;
	}
	r = vote_exists(a, ar.id, peer->uid);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	if (r > 0) {
		reply(resp, MID_ERR_DENIED,
		      "UID %u has already approved request %s, and each approver counts once; it "
		      "needs %u more from other approvers",
		      (unsigned)peer->uid, ar.id, required - ar.approvals);
		return;
	}

	approvals = ar.approvals + 1;
	snprintf(detail, sizeof(detail), "request %s, approval %u of %u", ar.id, approvals,
		 required);
	detail_append_reason(detail, sizeof(detail), req->reason);
	r = store_begin(a->store);
	if (r == 0)
		r = vote_insert(a, ar.id, peer->uid, now, req->reason);
	if (r == 0)
		r = request_audit(a, "approve", &ar, NULL, peer->uid, now, detail);
	r = store_end(a->store, r);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}

	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_APPROVAL,
				       .account = ar.issue.account[0] ? ar.issue.account : NULL,
				       .reason = req->reason,
				       .peer_uid = peer->uid,
				       .expires_at = ar.expires_at},
		  "UID %u approved request %s for %s %s (%u of %u approvals)", (unsigned)peer->uid,
		  ar.id, request_kind(&ar), request_target(&ar), approvals, required);

	format_utc(ar.expires_at, until, sizeof(until));
	if (approvals >= required)
		reply(resp, MID_OK,
		      "request %s is approved (%u of %u approvals); UID %u can run "
		      "midctl collect %s until %s",
		      ar.id, approvals, required, (unsigned)ar.requester_uid, ar.id, until);
	else
		reply(resp, MID_PENDING,
		      "approval %u of %u recorded for request %s; %u more approver(s) must run "
		      "midctl approve %s before %s",
		      approvals, required, ar.id, required - approvals, ar.id, until);
}

static void handle_deny(struct agent *a, const struct peer *peer, const struct mid_request *req,
			struct mid_response *resp)
{
	struct approval_request ar;
	const struct rule *rule;
	char detail[MID_TEXT_MAX + 1];
	int64_t now = now_realtime();
	bool may_deny;
	int r;

	if (!req->reason[0]) {
		reply(resp, MID_ERR_INVALID,
		      "a denial needs a reason (midctl deny ID --reason TEXT); the requester "
		      "sees it");
		return;
	}
	if (request_for(a, req, &ar, resp) < 0)
		return;
	rule = request_rule(a, &ar);
	/* Any approver may deny, even after enough approvals, until the
	 * credential is collected. The requester may deny to withdraw. */
	may_deny = peer->uid == 0 || peer->uid == ar.requester_uid ||
		   (rule && rule->approval.enabled &&
		    peer_in_principals(peer, &rule->approval.approvers));
	if (!may_deny) {
		reply(resp, MID_ERR_PERMISSION,
		      "UID %u is not an approver of %s %s; approval.approvers in %s lists who "
		      "may deny",
		      (unsigned)peer->uid, request_kind(&ar), request_target(&ar), a->policy->path);
		return;
	}
	if (request_check_not_final(&ar, request_state(&ar, rule, now), resp) < 0)
		return;

	snprintf(detail, sizeof(detail), "request %s", ar.id);
	detail_append_reason(detail, sizeof(detail), req->reason);
	r = store_begin(a->store);
	if (r == 0)
		r = request_set_state(a, ar.id, REQUEST_PENDING, REQUEST_DENIED, peer->uid, now,
				      req->reason);
	if (r == 0)
		r = request_audit(a, "deny", &ar, NULL, peer->uid, now, detail);
	r = store_end(a->store, r);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}

	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_APPROVAL,
				       .account = ar.issue.account[0] ? ar.issue.account : NULL,
				       .reason = req->reason,
				       .peer_uid = peer->uid},
		  "UID %u denied request %s for %s %s", (unsigned)peer->uid, ar.id,
		  request_kind(&ar), request_target(&ar));
	reply(resp, MID_OK,
	      "request %s is denied; its requester, UID %u, sees the reason at collect", ar.id,
	      (unsigned)ar.requester_uid);
}

/* Puts a claimed request back to pending after lease_issue() failed, so
 * that its requester can try to collect again. */
static void collect_release(struct agent *a, const struct approval_request *ar)
{
	int r;

	r = store_begin(a->store);
	if (r == 0)
		r = request_set_state(a, ar->id, REQUEST_COLLECTED, REQUEST_PENDING, -1, 0, NULL);
	r = store_end(a->store, r);
	if (r < 0)
		log_error("Failed to reopen approval request %s after its credential could not be "
			  "issued (%s); the requester must run midctl issue again",
			  ar->id, strerror(-r));
}

static void handle_collect(struct agent *a, const struct peer *peer, const struct mid_request *req,
			   struct mid_response *resp)
{
	struct approval_request ar;
	const struct rule *rule;
	char detail[MID_TEXT_MAX + 1], until[32];
	int64_t now = now_realtime();
	uint32_t required;
	uint8_t state;
	int r;

	if (request_for(a, req, &ar, resp) < 0)
		return;
	if (peer->uid != ar.requester_uid) {
		reply(resp, MID_ERR_PERMISSION,
		      "request %s was made by UID %u; only that user may collect it", ar.id,
		      (unsigned)ar.requester_uid);
		return;
	}
	rule = request_rule(a, &ar);
	state = request_state(&ar, rule, now);
	if (request_check_not_final(&ar, state, resp) < 0)
		return;
	if (!rule) {
		reply_rule_gone(a, &ar, "collected", resp);
		return;
	}
	if (state == REQUEST_PENDING) {
		required = request_required(&ar, rule);
		format_utc(ar.expires_at, until, sizeof(until));
		reply(resp, MID_PENDING,
		      "request %s has %u of %u approvals; it needs %u more before %s", ar.id,
		      ar.approvals, required, required - ar.approvals, until);
		return;
	}

	/* The requester, limits and conditions as handle_issue checks them,
	 * against the current policy and the time of collection. */
	if (!peer_in_principals(peer, &rule->requesters)) {
		reply(resp, MID_ERR_PERMISSION,
		      "UID %u may no longer request credentials for %s %s; request %s cannot be "
		      "collected",
		      (unsigned)peer->uid, request_kind(&ar), request_target(&ar), ar.id);
		return;
	}
	if (issue_check_limits(a, rule, &ar.issue, resp) < 0)
		return;
	if (conditions_check_issue(a, rule, &ar.issue, now, resp) < 0)
		return;

	/* lease_issue() commits its own transaction, so the request is claimed
	 * first. A crash in between loses the credential but never issues a
	 * second one, and a failed issue reopens the request. */
	r = store_begin(a->store);
	if (r == 0)
		r = request_set_state(a, ar.id, REQUEST_PENDING, REQUEST_COLLECTED, -1, now, NULL);
	r = store_end(a->store, r);
	if (r == -ESTALE) {
		reply(resp, MID_ERR_DENIED, "request %s was decided while it was being collected",
		      ar.id);
		return;
	}
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}

	lease_issue(a, ar.requester_uid, rule, &ar.issue, resp);
	if (resp->status != MID_OK) {
		collect_release(a, &ar);
		return;
	}

	snprintf(detail, sizeof(detail), "request %s", ar.id);
	r = store_begin(a->store);
	if (r == 0)
		r = request_set_lease(a, ar.id, resp->lease.lease);
	if (r == 0)
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = "collect",
							      .account = resp->lease.account,
							      .lease = resp->lease.lease,
							      .peer_uid = peer->uid,
							      .detail = detail});
	r = store_end(a->store, r);
	/* The credential exists and its "issue" audit record is committed, so
	 * it is handed out even though the link to the request is missing. */
	if (r < 0)
		log_error("Failed to record that request %s was collected as lease %s: %s", ar.id,
			  resp->lease.lease, strerror(-r));

	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_APPROVAL,
				       .account = resp->lease.account,
				       .lease = resp->lease.lease,
				       .peer_uid = peer->uid,
				       .expires_at = resp->lease.expires_at},
		  "UID %u collected request %s as lease %s", (unsigned)peer->uid, ar.id,
		  resp->lease.lease);
	snprintf(resp->id, sizeof(resp->id), "%s", ar.id);
}

struct request_page {
	struct agent *a;
	const struct peer *peer;
	int64_t now;
	uint32_t offset;
	struct mid_response *resp;
};

/* Root sees every request, a requester its own, and an approver those
 * made under the rules it approves for, in any state. */
static bool request_visible(const struct request_page *p, const struct approval_request *ar,
			    const struct rule *rule)
{
	if (p->peer->uid == 0 || p->peer->uid == ar->requester_uid)
		return true;
	return rule && rule->approval.enabled &&
	       peer_in_principals(p->peer, &rule->approval.approvers);
}

static int on_request(const struct approval_request *ar, void *userdata)
{
	struct request_page *p = userdata;
	struct mid_response *resp = p->resp;
	const struct rule *rule = request_rule(p->a, ar);
	struct mid_approval_info *info;

	if (!request_visible(p, ar, rule))
		return 0;
	if (resp->total++ < p->offset || resp->count >= MID_LIST_PAGE)
		return 0;

	info = &resp->approvals[resp->count++];
	*info = (struct mid_approval_info){0};
	snprintf(info->id, sizeof(info->id), "%s", ar->id);
	snprintf(info->account, sizeof(info->account), "%s", ar->issue.account);
	snprintf(info->class_name, sizeof(info->class_name), "%s", ar->issue.class_name);
	info->requester_uid = ar->requester_uid;
	info->approvals = ar->approvals;
	info->required = request_required(ar, rule);
	info->created_at = ar->created_at;
	info->expires_at = ar->expires_at;
	info->state = request_state(ar, rule, p->now);
	snprintf(info->reason, sizeof(info->reason), "%s", ar->issue.reason);
	return 0;
}

/* NOTE: every page reads all stored requests and filters them here,
 * because visibility depends on the policy, which SQL cannot see. */
static void handle_requests(struct agent *a, const struct peer *peer,
			    const struct mid_request *req, struct mid_response *resp)
{
	struct request_page p = {
		.a = a,
		.peer = peer,
		.now = now_realtime(),
		.offset = req->offset,
		.resp = resp,
	};
	int r;

	resp->total = 0;
	resp->count = 0;
	r = request_foreach(a, on_request, &p);
	if (r < 0) {
		resp->total = 0;
		resp->count = 0;
		reply_store_error(resp, r);
		return;
	}
	reply(resp, MID_OK, "%u requests", resp->total);
}

void approvals_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		      struct mid_response *resp)
{
	switch (req->type) {
	case MID_REQ_APPROVE:
		handle_approve(a, peer, req, resp);
		break;
	case MID_REQ_DENY:
		handle_deny(a, peer, req, resp);
		break;
	case MID_REQ_COLLECT:
		handle_collect(a, peer, req, resp);
		break;
	case MID_REQ_REQUESTS:
		handle_requests(a, peer, req, resp);
		break;
	default:
		reply(resp, MID_ERR_INVALID, "request type %u is not an approval request",
		      req->type);
		break;
	}
}
