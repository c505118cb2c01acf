/* Lockout after repeated failures, per account and per source address,
 * kept in the state database so it survives restarts. Each failure is
 * its own committed row, so failures that arrive together all count. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "names.h"

static const char lockout_schema[] =
	"CREATE TABLE IF NOT EXISTS lockout_failures ("
	"  key TEXT NOT NULL,"
	"  at INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS lockout_failures_key ON lockout_failures(key, at);"
	"CREATE TABLE IF NOT EXISTS lockout_locks ("
	"  key TEXT PRIMARY KEY,"
	"  until INTEGER NOT NULL,"
	"  failures INTEGER NOT NULL);";

/* Every verification asks for a lock, so that query stays prepared. */
static sqlite3_stmt *lock_query;

int lockout_init(struct agent *a)
{
	char *err = NULL;
	int rc;

	if (sqlite3_exec(store_db(a->store), lockout_schema, NULL, NULL, &err) != SQLITE_OK) {
		log_error("Failed to create the lockout tables: %s", err ? err : "?");
		sqlite3_free(err);
		return -EIO;
	}
	rc = sqlite3_prepare_v3(store_db(a->store),
				"SELECT until FROM lockout_locks WHERE key = ? AND until > ?", -1,
				SQLITE_PREPARE_PERSISTENT, &lock_query, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "prepare the lockout query");
	return 0;
}

void lockout_free(struct agent *a)
{
	sqlite3_finalize(lock_query);
	lock_query = NULL;
}

static void key_for(char *buf, size_t size, const char *kind, const char *value)
{
	snprintf(buf, size, "%s:%s", kind, value);
}

/* Returns the end of the lock on key, 0 when there is none, or -errno. */
static int64_t lock_until(struct agent *a, const char *key, int64_t now)
{
	int64_t until = 0;
	int rc;

	sqlite3_reset(lock_query);
	sqlite3_bind_text(lock_query, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(lock_query, 2, now);
	rc = sqlite3_step(lock_query);
	if (rc == SQLITE_ROW)
		until = sqlite3_column_int64(lock_query, 0);
	else if (rc != SQLITE_DONE)
		until = store_error(a->store, rc, "read a lockout");
	sqlite3_reset(lock_query);
	sqlite3_clear_bindings(lock_query);
	return until;
}

int lockout_check(struct agent *a, const struct rule *rule, const char *account, const char *rhost,
		  int64_t now, struct mid_response *resp)
{
	char key[MID_HOST_MAX + 16], when[32];
	int64_t until;
	time_t t;
	struct tm tm;

	if (rule->lockout.failures == 0)
		return 0;

	key_for(key, sizeof(key), "account", account);
	until = lock_until(a, key, now);
	if (until == 0 && rhost && *rhost) {
		key_for(key, sizeof(key), "source", rhost);
		until = lock_until(a, key, now);
	}
	if (until == 0)
		return 0;
	if (until < 0) {
		/* Fail closed: a lock that cannot be read is a lock. */
		reply_store_error(resp, (int)until);
		return -EPERM;
	}

	t = (time_t)until;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	reply(resp, MID_ERR_LOCKED,
	      "locked after %u failures within the lockout window, until %s; midctl unlock clears it",
	      rule->lockout.failures, when);
	return -EPERM;
}

/* Records one failure for key and locks it once the window holds enough.
 * Runs inside the caller's transaction. Returns 1 when it locked. */
static int record(struct agent *a, const struct rule *rule, const char *key, int64_t now)
{
	sqlite3 *db = store_db(a->store);
	sqlite3_stmt *st = NULL;
	int64_t count = 0;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, "DELETE FROM lockout_failures WHERE key = ? AND at <= ?", -1,
				&st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now - (int64_t)rule->lockout.window);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT INTO lockout_failures (key, at) VALUES (?, ?)",
					-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM lockout_failures WHERE key = ?", -1,
					&st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			count = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_OK && count >= rule->lockout.failures) {
		rc = sqlite3_prepare_v2(db,
					"INSERT OR REPLACE INTO lockout_locks (key, until, failures) "
					"VALUES (?, ?, ?)",
					-1, &st, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, now + (int64_t)rule->lockout.duration);
			sqlite3_bind_int64(st, 3, count);
			rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
			sqlite3_finalize(st);
			r = 1;
		}
	}
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "record a failure");
	return r;
}

void lockout_record_failure(struct agent *a, const struct rule *rule, const char *account,
			    const char *rhost, int64_t now)
{
	char account_key[MID_NAME_MAX + 16], source_key[MID_HOST_MAX + 16];
	int locked_account = 0, locked_source = 0, r;

	if (rule->lockout.failures == 0)
		return;
	key_for(account_key, sizeof(account_key), "account", account);
	key_for(source_key, sizeof(source_key), "source", rhost ? rhost : "");

	r = store_begin(a->store);
	if (r == 0) {
		locked_account = record(a, rule, account_key, now);
		if (locked_account >= 0 && rhost && *rhost)
			locked_source = record(a, rule, source_key, now);
		if (locked_account < 0)
			r = locked_account;
		else if (locked_source < 0)
			r = locked_source;
	}
	if (r == 0 && (locked_account > 0 || locked_source > 0))
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = "lockout",
							      .account = account,
							      .peer_uid = -1,
							      .detail = locked_account ? account_key
										       : source_key});
	r = store_end(a->store, r);
	if (r < 0) {
		log_error("Failed to record a failed login for lockout: %s", strerror(-r));
		return;
	}
	if (locked_account > 0 || locked_source > 0)
		log_event(LOG_WARNING,
			  &(struct log_fields){.message_id = MID_MESSAGE_LOCKOUT,
					       .account = account,
					       .rhost = rhost,
					       .peer_uid = -1},
			  "Locked %s after %u failures",
			  locked_account > 0 ? "the account" : "the source address",
			  rule->lockout.failures);
}

static int delete_key(struct agent *a, const char *key)
{
	static const char *const sql[] = {
		"DELETE FROM lockout_locks WHERE key = ?",
		"DELETE FROM lockout_failures WHERE key = ?",
	};
	sqlite3 *db = store_db(a->store);
	int changed = 0;

	for (size_t i = 0; i < MID_ELEMENTSOF(sql); i++) {
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(db, sql[i], -1, &st, NULL);

		if (rc != SQLITE_OK)
			return store_error(a->store, rc, "clear a lockout");
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return store_error(a->store, rc, "clear a lockout");
		if (i == 0)
			changed += sqlite3_changes(db);
	}
	return changed;
}

static bool rhost_is_valid(const char *rhost)
{
	for (const unsigned char *p = (const unsigned char *)rhost; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}

void lockout_handle_unlock(struct agent *a, const struct peer *peer,
			   const struct mid_request *req, struct mid_response *resp)
{
	char key[MID_HOST_MAX + 16];
	int r, cleared = 0;

	if (peer->uid != 0) {
		reply(resp, MID_ERR_PERMISSION, "only root may clear a lockout");
		return;
	}
	if (!req->account[0] && !req->rhost[0]) {
		reply(resp, MID_ERR_INVALID, "unlock needs an ACCOUNT, a --source address or both");
		return;
	}
	if (req->account[0] && !name_is_valid(req->account)) {
		reply(resp, MID_ERR_INVALID, "invalid account name");
		return;
	}
	/* A lock is keyed by PAM_RHOST as given, which may be a host name. */
	if (req->rhost[0] && !rhost_is_valid(req->rhost)) {
		reply(resp, MID_ERR_INVALID,
		      "invalid source: give the address or host name that was locked");
		return;
	}

	r = store_begin(a->store);
	if (r == 0 && req->account[0]) {
		key_for(key, sizeof(key), "account", req->account);
		r = delete_key(a, key);
		cleared += r > 0 ? r : 0;
	}
	if (r >= 0 && req->rhost[0]) {
		key_for(key, sizeof(key), "source", req->rhost);
		r = delete_key(a, key);
		cleared += r > 0 ? r : 0;
	}
	if (r >= 0)
		r = store_audit_append(a->store, now_realtime(),
				       &(struct audit_record){.event = "unlock",
							      .account = req->account,
							      .peer_uid = peer->uid,
							      .detail = req->rhost});
	r = store_end(a->store, r);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_LOCKOUT,
				       .account = req->account[0] ? req->account : NULL,
				       .rhost = req->rhost,
				       .peer_uid = peer->uid},
		  "Cleared %d lockout(s)", cleared);
	reply(resp, MID_OK, cleared ? "lockout cleared" : "nothing was locked");
}
