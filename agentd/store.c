/* SQLite-backed state for mid-agentd. */
#include "store.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* WAL with synchronous=FULL: a commit is on disk before the agent replies,
 * so an acknowledged credential survives both a process crash and a power
 * loss. NORMAL would lose the last commits on power loss. */
static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"PRAGMA foreign_keys=ON;"
	"CREATE TABLE IF NOT EXISTS leases ("
	"  id TEXT PRIMARY KEY,"
	"  account TEXT NOT NULL,"
	"  class TEXT NOT NULL DEFAULT '',"
	"  uid INTEGER NOT NULL,"
	"  gid INTEGER NOT NULL,"
	"  grp TEXT NOT NULL DEFAULT '',"
	"  home TEXT NOT NULL DEFAULT '',"
	"  shell TEXT NOT NULL DEFAULT '',"
	"  gecos TEXT NOT NULL DEFAULT '',"
	"  hash BLOB NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  max_expires_at INTEGER NOT NULL,"
	"  max_uses INTEGER NOT NULL,"
	"  uses INTEGER NOT NULL DEFAULT 0,"
	"  state INTEGER NOT NULL,"
	"  requester_uid INTEGER NOT NULL,"
	"  reason TEXT NOT NULL DEFAULT '',"
	"  services TEXT NOT NULL DEFAULT '',"
	"  sources TEXT NOT NULL DEFAULT '',"
	"  ended_at INTEGER);"
	"CREATE INDEX IF NOT EXISTS leases_live ON leases(state, expires_at);"
	"CREATE INDEX IF NOT EXISTS leases_account ON leases(account, state);"
	"CREATE TABLE IF NOT EXISTS audit ("
	"  seq INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  event TEXT NOT NULL,"
	"  account TEXT NOT NULL DEFAULT '',"
	"  lease TEXT NOT NULL DEFAULT '',"
	"  peer_uid INTEGER NOT NULL,"
	"  detail TEXT NOT NULL DEFAULT '',"
	"  prev_hash BLOB NOT NULL,"
	"  hash BLOB NOT NULL);";

#define LEASE_COLUMNS                                                                              \
	"id, account, class, uid, gid, grp, home, shell, gecos, hash, created_at, expires_at, "    \
	"max_expires_at, max_uses, uses, state, requester_uid, reason, services, sources"

enum {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_INSERT,
	STMT_GET,
	STMT_SET_STATE,
	STMT_ADD_USE,
	STMT_SET_EXPIRY,
	STMT_LIVE,
	STMT_LIVE_OF,
	STMT_DUE,
	STMT_NEXT_EXPIRY,
	STMT_UID_IN_USE,
	STMT_COUNT,
	STMT_AUDIT_LAST,
	STMT_AUDIT_INSERT,
	_STMT_MAX,
};

static const char *const statements[_STMT_MAX] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_INSERT] = "INSERT INTO leases (" LEASE_COLUMNS
			") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[STMT_GET] = "SELECT " LEASE_COLUMNS " FROM leases WHERE id = ?",
	[STMT_SET_STATE] = "UPDATE leases SET state = ?, ended_at = ? WHERE id = ?",
	[STMT_ADD_USE] = "UPDATE leases SET uses = uses + 1 WHERE id = ?",
	[STMT_SET_EXPIRY] = "UPDATE leases SET expires_at = ? WHERE id = ?",
	[STMT_LIVE] = "SELECT " LEASE_COLUMNS " FROM leases WHERE state = 0",
	[STMT_LIVE_OF] = "SELECT " LEASE_COLUMNS " FROM leases WHERE account = ? AND state = 0",
	[STMT_DUE] = "SELECT " LEASE_COLUMNS " FROM leases WHERE state = 0 AND expires_at <= ?",
	[STMT_NEXT_EXPIRY] = "SELECT min(expires_at) FROM leases WHERE state = 0",
	[STMT_UID_IN_USE] = "SELECT 1 FROM leases WHERE state = 0 AND uid = ? AND class != '' LIMIT 1",
	[STMT_COUNT] = "SELECT (SELECT count(*) FROM leases WHERE state = 0), (SELECT count(*) FROM leases)",
	[STMT_AUDIT_LAST] = "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1",
	[STMT_AUDIT_INSERT] = "INSERT INTO audit (at, event, account, lease, peer_uid, detail, "
			      "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[_STMT_MAX];
	uint8_t audit_last[crypto_generichash_BYTES];
};

/* Maps an SQLite result code to -errno; logs the failure once, here. */
int store_error(struct store *s, int rc, const char *what)
{
	int primary = rc & 0xff;

	log_error("Failed to %s in the state database: %s", what, sqlite3_errmsg(s->db));
	switch (primary) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static sqlite3_stmt *stmt_get(struct store *s, int which)
{
	sqlite3_stmt *st = s->stmt[which];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static int step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_error(s, rc, what);
	return 0;
}

static int quick_check(struct store *s)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(s, rc, "check the database");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *result = (const char *)sqlite3_column_text(st, 0);

		if (!result || strcmp(result, "ok") != 0) {
			log_error("State database failed its integrity check: %s",
				  result ? result : "(no result)");
			r = -EUCLEAN;
		}
	}
	if (rc != SQLITE_DONE && r == 0)
		r = store_error(s, rc, "check the database");
	sqlite3_finalize(st);
	return r;
}

static int load_audit_tail(struct store *s)
{
	sqlite3_stmt *st = stmt_get(s, STMT_AUDIT_LAST);
	int rc = sqlite3_step(st);

	memset(s->audit_last, 0, sizeof(s->audit_last));
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == (int)sizeof(s->audit_last))
		memcpy(s->audit_last, sqlite3_column_blob(st, 0), sizeof(s->audit_last));
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_error(s, rc, "read the audit log");
	return 0;
}

int store_open(const char *state_dir, struct store **ret)
{
	_cleanup_free_ char *path = NULL;
	struct store *s;
	char *err = NULL;
	int rc, r;

	if (asprintf(&path, "%s/state.db", state_dir) < 0)
		return -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;

	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK) {
		r = s->db ? store_error(s, rc, "open the database") : -ENOMEM;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);

	r = quick_check(s);
	if (r < 0)
		goto fail;

	rc = sqlite3_exec(s->db, schema, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		log_error("Failed to set up the state database %s: %s", path, err ? err : "?");
		sqlite3_free(err);
		r = rc == SQLITE_FULL ? -ENOSPC : -EIO;
		goto fail;
	}

	for (int i = 0; i < _STMT_MAX; i++) {
		rc = sqlite3_prepare_v3(s->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT,
					&s->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			r = store_error(s, rc, "prepare a statement");
			goto fail;
		}
	}

	r = load_audit_tail(s);
	if (r < 0)
		goto fail;

	*ret = s;
	return 0;
fail:
	store_close(s);
	return r;
}

struct sqlite3 *store_db(struct store *s)
{
	return s->db;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < _STMT_MAX; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
}

int store_begin(struct store *s)
{
	return step_done(s, stmt_get(s, STMT_BEGIN), "begin a transaction");
}

int store_commit(struct store *s)
{
	int r = step_done(s, stmt_get(s, STMT_COMMIT), "commit a transaction");

	if (r < 0)
		store_rollback(s);
	return r;
}

void store_rollback(struct store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	(void)step_done(s, stmt_get(s, STMT_ROLLBACK), "roll back a transaction");
	/* The audit chain tail may belong to a rolled-back record. */
	(void)load_audit_tail(s);
}

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
	sqlite3_bind_text(st, i, text ? text : "", -1, SQLITE_TRANSIENT);
}

int store_lease_insert(struct store *s, const struct lease *l)
{
	sqlite3_stmt *st = stmt_get(s, STMT_INSERT);
	const struct mid_lease_info *i = &l->info;

	bind_text(st, 1, i->lease);
	bind_text(st, 2, i->account);
	bind_text(st, 3, i->class_name);
	sqlite3_bind_int64(st, 4, i->uid);
	sqlite3_bind_int64(st, 5, i->gid);
	bind_text(st, 6, l->group);
	bind_text(st, 7, l->home);
	bind_text(st, 8, l->shell);
	bind_text(st, 9, l->gecos);
	sqlite3_bind_blob(st, 10, l->hash, sizeof(l->hash), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 11, i->created_at);
	sqlite3_bind_int64(st, 12, i->expires_at);
	sqlite3_bind_int64(st, 13, i->max_expires_at);
	sqlite3_bind_int64(st, 14, i->max_uses);
	sqlite3_bind_int64(st, 15, i->uses);
	sqlite3_bind_int64(st, 16, i->state);
	sqlite3_bind_int64(st, 17, i->requester_uid);
	bind_text(st, 18, i->reason);
	bind_text(st, 19, i->services);
	bind_text(st, 20, i->sources);
	return step_done(s, st, "insert a lease");
}

static void copy_text(sqlite3_stmt *st, int col, char *out, size_t size)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	snprintf(out, size, "%s", text ? text : "");
}

static void lease_from_row(sqlite3_stmt *st, struct lease *l)
{
	struct mid_lease_info *i = &l->info;

	memset(l, 0, sizeof(*l));
	copy_text(st, 0, i->lease, sizeof(i->lease));
	copy_text(st, 1, i->account, sizeof(i->account));
	copy_text(st, 2, i->class_name, sizeof(i->class_name));
	i->uid = (uint32_t)sqlite3_column_int64(st, 3);
	i->gid = (uint32_t)sqlite3_column_int64(st, 4);
	copy_text(st, 5, l->group, sizeof(l->group));
	copy_text(st, 6, l->home, sizeof(l->home));
	copy_text(st, 7, l->shell, sizeof(l->shell));
	copy_text(st, 8, l->gecos, sizeof(l->gecos));
	if (sqlite3_column_bytes(st, 9) == (int)sizeof(l->hash))
		memcpy(l->hash, sqlite3_column_blob(st, 9), sizeof(l->hash));
	i->created_at = sqlite3_column_int64(st, 10);
	i->expires_at = sqlite3_column_int64(st, 11);
	i->max_expires_at = sqlite3_column_int64(st, 12);
	i->max_uses = (uint32_t)sqlite3_column_int64(st, 13);
	i->uses = (uint32_t)sqlite3_column_int64(st, 14);
	i->state = (uint8_t)sqlite3_column_int64(st, 15);
	i->requester_uid = (uint32_t)sqlite3_column_int64(st, 16);
	copy_text(st, 17, i->reason, sizeof(i->reason));
	copy_text(st, 18, i->services, sizeof(i->services));
	copy_text(st, 19, i->sources, sizeof(i->sources));
}

int store_lease_get(struct store *s, const char *id, struct lease *ret)
{
	sqlite3_stmt *st = stmt_get(s, STMT_GET);
	int rc;

	bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		lease_from_row(st, ret);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return store_error(s, rc, "read a lease");
}

int store_lease_set_state(struct store *s, const char *id, uint8_t state, int64_t ended_at)
{
	sqlite3_stmt *st = stmt_get(s, STMT_SET_STATE);

	sqlite3_bind_int64(st, 1, state);
	sqlite3_bind_int64(st, 2, ended_at);
	bind_text(st, 3, id);
	return step_done(s, st, "update a lease");
}

int store_lease_add_use(struct store *s, const char *id)
{
	sqlite3_stmt *st = stmt_get(s, STMT_ADD_USE);

	bind_text(st, 1, id);
	return step_done(s, st, "count a use");
}

int store_lease_set_expiry(struct store *s, const char *id, int64_t expires_at)
{
	sqlite3_stmt *st = stmt_get(s, STMT_SET_EXPIRY);

	sqlite3_bind_int64(st, 1, expires_at);
	bind_text(st, 2, id);
	return step_done(s, st, "renew a lease");
}

/* Rows are copied out before the callback runs, so a callback may use the
 * store itself. */
static int foreach_rows(struct store *s, sqlite3_stmt *st, store_lease_cb cb, void *userdata,
			const char *what)
{
	struct lease *rows = NULL;
	size_t n = 0, cap = 0;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t new_cap = cap ? cap * 2 : 16;
			struct lease *grown = realloc(rows, new_cap * sizeof(*rows));

			if (!grown) {
				r = -ENOMEM;
				break;
			}
			rows = grown;
			cap = new_cap;
		}
		lease_from_row(st, &rows[n++]);
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE)
		r = store_error(s, rc, what);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = cb(&rows[i], userdata);
	if (rows)
		sodium_memzero(rows, n * sizeof(*rows));
	free(rows);
	return r;
}

int store_foreach_live(struct store *s, store_lease_cb cb, void *userdata)
{
	return foreach_rows(s, stmt_get(s, STMT_LIVE), cb, userdata, "read live leases");
}

int store_foreach_live_of(struct store *s, const char *account, store_lease_cb cb, void *userdata)
{
	sqlite3_stmt *st = stmt_get(s, STMT_LIVE_OF);

	bind_text(st, 1, account);
	return foreach_rows(s, st, cb, userdata, "read leases of an account");
}

int store_foreach_due(struct store *s, int64_t now, store_lease_cb cb, void *userdata)
{
	sqlite3_stmt *st = stmt_get(s, STMT_DUE);

	sqlite3_bind_int64(st, 1, now);
	return foreach_rows(s, st, cb, userdata, "read due leases");
}

int store_list(struct store *s, uint32_t offset, uint32_t limit, long long requester_uid,
	       store_lease_cb cb, void *userdata, uint32_t *ret_total)
{
	const char *filter = requester_uid >= 0 ? " WHERE requester_uid = ?1" : "";
	_cleanup_free_ char *sql = NULL, *count_sql = NULL;
	sqlite3_stmt *st = NULL;
	int rc, r;

	if (asprintf(&count_sql, "SELECT count(*) FROM leases%s", filter) < 0 ||
	    asprintf(&sql,
		     "SELECT " LEASE_COLUMNS " FROM leases%s ORDER BY created_at DESC, id "
		     "LIMIT ?2 OFFSET ?3",
		     filter) < 0)
		return -ENOMEM;

	rc = sqlite3_prepare_v2(s->db, count_sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(s, rc, "count leases");
	if (requester_uid >= 0)
		sqlite3_bind_int64(st, 1, requester_uid);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = store_error(s, rc, "count leases");
		sqlite3_finalize(st);
		return r;
	}
	*ret_total = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(s, rc, "list leases");
	if (requester_uid >= 0)
		sqlite3_bind_int64(st, 1, requester_uid);
	sqlite3_bind_int64(st, 2, limit);
	sqlite3_bind_int64(st, 3, offset);
	r = foreach_rows(s, st, cb, userdata, "list leases");
	sqlite3_finalize(st);
	return r;
}

int store_next_expiry(struct store *s, int64_t *ret)
{
	sqlite3_stmt *st = stmt_get(s, STMT_NEXT_EXPIRY);
	int rc = sqlite3_step(st);
	int r = -ENOENT;

	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*ret = sqlite3_column_int64(st, 0);
		r = 0;
	} else if (rc != SQLITE_ROW)
		r = store_error(s, rc, "find the next expiry");
	sqlite3_reset(st);
	return r;
}

int store_uid_in_use(struct store *s, uint32_t uid)
{
	sqlite3_stmt *st = stmt_get(s, STMT_UID_IN_USE);
	int rc;

	sqlite3_bind_int64(st, 1, uid);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_error(s, rc, "look up a UID");
}

int store_count(struct store *s, uint32_t *ret_live, uint32_t *ret_total)
{
	sqlite3_stmt *st = stmt_get(s, STMT_COUNT);
	int rc = sqlite3_step(st);

	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_error(s, rc, "count leases");
	}
	*ret_live = (uint32_t)sqlite3_column_int64(st, 0);
	*ret_total = (uint32_t)sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return 0;
}

static void hash_field(crypto_generichash_state *h, const char *text)
{
	uint32_t len = text ? (uint32_t)strlen(text) : 0;

	/* Length-prefixed, so field boundaries cannot be shifted. */
	crypto_generichash_update(h, (const uint8_t *)&len, sizeof(len));
	if (len)
		crypto_generichash_update(h, (const uint8_t *)text, len);
}

int store_audit_append(struct store *s, int64_t at, const struct audit_record *a)
{
	uint8_t hash[crypto_generichash_BYTES];
	crypto_generichash_state h;
	sqlite3_stmt *st;
	int64_t peer = a->peer_uid;
	int r;

	crypto_generichash_init(&h, NULL, 0, sizeof(hash));
	crypto_generichash_update(&h, s->audit_last, sizeof(s->audit_last));
	crypto_generichash_update(&h, (const uint8_t *)&at, sizeof(at));
	hash_field(&h, a->event);
	hash_field(&h, a->account);
	hash_field(&h, a->lease);
	crypto_generichash_update(&h, (const uint8_t *)&peer, sizeof(peer));
	hash_field(&h, a->detail);
	crypto_generichash_final(&h, hash, sizeof(hash));

	st = stmt_get(s, STMT_AUDIT_INSERT);
	sqlite3_bind_int64(st, 1, at);
	bind_text(st, 2, a->event);
	bind_text(st, 3, a->account);
	bind_text(st, 4, a->lease);
	sqlite3_bind_int64(st, 5, peer);
	bind_text(st, 6, a->detail);
	sqlite3_bind_blob(st, 7, s->audit_last, sizeof(s->audit_last), SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 8, hash, sizeof(hash), SQLITE_TRANSIENT);
	r = step_done(s, st, "append to the audit log");
	if (r == 0)
		memcpy(s->audit_last, hash, sizeof(hash));
	return r;
}
