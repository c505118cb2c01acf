/* SQLite-backed state for mid-agentd: leases, the hash-chained audit log,
 * the database's identity marker and group commit. */
#include "store.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "names.h"

static int set_synchronous(struct store *s, const char *level);
static int wal_sync(struct store *s);

/* Durability: every commit is on disk before the agent replies, so an
 * acknowledged credential survives both a process crash and a power loss.
 * With WAL the connection runs with synchronous=NORMAL and the store syncs
 * the WAL itself: after each commit outside a batch (as FULL would), and
 * once per batch in store_batch_end, before any reply of the batch goes
 * out. Without WAL, synchronous=FULL syncs every commit. */
static const char schema[] =
		"PRAGMA foreign_keys=ON;"
	"CREATE TABLE IF NOT EXISTS meta ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL);"
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
	"CREATE INDEX IF NOT EXISTS leases_live_uid ON leases(uid) WHERE state = 0;"
	"CREATE TABLE IF NOT EXISTS audit ("
	"  seq INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  event TEXT NOT NULL,"
	"  account TEXT NOT NULL DEFAULT '',"
	"  lease TEXT NOT NULL DEFAULT '',"
	"  peer_uid INTEGER NOT NULL,"
	"  detail TEXT NOT NULL DEFAULT '',"
	"  prev_hash BLOB NOT NULL,"
	"  hash BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS audit_at ON audit(at);";

#define LEASE_COLUMNS                                                                              \
	"id, account, class, uid, gid, grp, home, shell, gecos, hash, created_at, expires_at, "    \
	"max_expires_at, max_uses, uses, state, requester_uid, reason, services, sources"

#define AUDIT_COLUMNS "seq, at, event, account, lease, peer_uid, detail, prev_hash, hash"
#define AUDIT_FILTER                                                                               \
	" WHERE (?1 = 0 OR at >= ?1) AND (?2 = 0 OR at < ?2) AND (?3 = '' OR account = ?3)"

/* The id is 16 random bytes as hex. */
#define STORE_ID_LEN 32

/* A prune is tried at most this often, and at least once per retention. */
#define PRUNE_INTERVAL_MAX 3600

/* Seqs around a record whose hash fails that are tried, to tell a record
 * moved to another seq from an edited one. */
#define REORDER_WINDOW 1024

/* Repeats of a full-disk error are logged at most once per this many
 * seconds, with the number left out. */
#define FULL_LOG_INTERVAL 60

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
	STMT_META_GET,
	STMT_META_SET,
	STMT_AUDIT_LAST,
	STMT_AUDIT_INSERT,
	STMT_AUDIT_COUNT,
	STMT_AUDIT_PAGE,
	STMT_AUDIT_ALL,
	STMT_AUDIT_BY_HASH,
	STMT_AUDIT_ANCHOR,
	STMT_AUDIT_PRUNE_LAST,
	STMT_AUDIT_PRUNE_COUNT,
	STMT_AUDIT_PRUNE,
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
	[STMT_META_GET] = "SELECT value FROM meta WHERE key = ?",
	[STMT_META_SET] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
	[STMT_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	[STMT_AUDIT_INSERT] = "INSERT INTO audit (" AUDIT_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?)",
	[STMT_AUDIT_COUNT] = "SELECT count(*) FROM audit" AUDIT_FILTER,
	[STMT_AUDIT_PAGE] = "SELECT " AUDIT_COLUMNS " FROM audit" AUDIT_FILTER
			    " ORDER BY seq LIMIT ?4 OFFSET ?5",
	[STMT_AUDIT_ALL] = "SELECT " AUDIT_COLUMNS " FROM audit ORDER BY seq",
	[STMT_AUDIT_BY_HASH] = "SELECT seq FROM audit WHERE hash = ? LIMIT 1",
	[STMT_AUDIT_ANCHOR] = "SELECT seq, detail FROM audit WHERE event = '" STORE_AUDIT_CHECKPOINT
			      "' ORDER BY seq DESC LIMIT 1",
	[STMT_AUDIT_PRUNE_LAST] = "SELECT seq, hash FROM audit WHERE at < ? ORDER BY seq DESC LIMIT 1",
	[STMT_AUDIT_PRUNE_COUNT] = "SELECT count(*) FROM audit WHERE seq <= ?",
	[STMT_AUDIT_PRUNE] = "DELETE FROM audit WHERE seq <= ?",
};

/* An audit record whose text is escaped and capped, as it is stored. */
struct held_record {
	int64_t at;
	int64_t peer_uid;
	char event[MID_NAME_MAX + 1];
	char account[MID_NAME_MAX + 1];
	char lease[MID_LEASE_ID_MAX + 1];
	char detail[MID_TEXT_MAX + 1];
};

/* The maximum of held records. One more writes those held first. */
#define HELD_MAX 64

/* A thread with a connection of its own that copies the WAL into the
 * database and syncs the WAL, so that neither fsync stalls the agent's
 * requests. The fields under lock are requests from the store's thread. */
struct background {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool checkpoint;
	bool sync;
	bool stop;
	bool busy; /* atomic: a checkpoint is running */
	int error; /* -errno of the last failure, read with an atomic exchange */
	sqlite3 *db;
	int wal_fd;
};

/* WAL frames (pages) after which the thread checkpoints. A checkpoint
 * beside the writer leaves out the frames written meanwhile, so the WAL
 * starts over only once the store's thread copies the last ones itself,
 * with two fsyncs, which it does at CHECKPOINT_FRAMES_MAX frames. */
#define CHECKPOINT_FRAMES 300
#define CHECKPOINT_FRAMES_MAX 4000

/* Leases read recently, so that a credential verified again and again
 * costs no query. Any change to any lease empties the cache. */
#define LEASE_CACHE_SLOTS 64

struct lease_cache_slot {
	uint64_t generation; /* valid while it equals the store's */
	struct lease lease;
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[_STMT_MAX];
	bool wal; /* journal_mode is WAL; batches need it */

	/* Tail of the audit chain: the seq and hash the next record links to. */
	int64_t audit_seq;
	uint8_t audit_last[STORE_AUDIT_HASH_BYTES];

	uint64_t (*retention_get)(void *userdata);
	void *retention_userdata;
	int64_t prune_due;
	bool pruning;

	bool in_batch;
	bool unsynced; /* light commits that no fsync has covered yet */
	struct lease_cache_slot *lease_cache;
	uint64_t lease_generation; /* starts at 1, so a zeroed slot is invalid */

	char *path;
	struct background *background; /* see store_background_start */

	/* Audit records held within a batch; see store_audit_defer. */
	struct held_record *held;
	size_t n_held;
	bool held_durable;
	uint64_t commits;
	uint64_t batch_first_commit;

	int64_t full_logged_at;
	unsigned full_suppressed;
};

/* Empties the lease cache. Every change to a lease comes through here. */
static void lease_cache_forget(struct store *s)
{
	s->lease_generation++;
}

static bool error_is_no_space(struct store *s, int rc)
{
	int sys;

	if ((rc & 0xff) == SQLITE_FULL)
		return true;
	if ((rc & 0xff) != SQLITE_IOERR)
		return false;
	sys = sqlite3_system_errno(s->db);
	return sys == ENOSPC || sys == EDQUOT;
}

/* Maps an SQLite result code to -errno; logs the failure once, here. On a
 * full disk every request fails the same way, so those repeats are
 * counted and logged once a minute. */
int store_error(struct store *s, int rc, const char *what)
{
	int primary = rc & 0xff;

	if (error_is_no_space(s, rc)) {
		int64_t now = (int64_t)time(NULL);

		if (now - s->full_logged_at >= FULL_LOG_INTERVAL) {
			log_error("Failed to %s in the state database: %s; the file system of the "
				  "state directory is full, so state-changing requests fail until "
				  "space is freed (%u similar errors not logged)",
				  what, sqlite3_errmsg(s->db), s->full_suppressed);
			s->full_logged_at = now;
			s->full_suppressed = 0;
		} else
			s->full_suppressed++;
		return -ENOSPC;
	}

	log_error("Failed to %s in the state database: %s", what, sqlite3_errmsg(s->db));
	switch (primary) {
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

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
	sqlite3_bind_text(st, i, text ? text : "", -1, SQLITE_TRANSIENT);
}

static void copy_text(sqlite3_stmt *st, int col, char *out, size_t size)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	snprintf(out, size, "%s", text ? text : "");
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
			char escaped[512];

			/* SQLite's report spans lines; the log gets one line. */
			log_error("State database failed its integrity check: %s",
				  text_escape(result ? result : "(no result)", escaped,
					      sizeof(escaped)));
			r = -EUCLEAN;
		}
	}
	if (rc != SQLITE_DONE && r == 0)
		r = store_error(s, rc, "check the database");
	sqlite3_finalize(st);
	return r;
}

/* Switches to WAL and records whether the file system allowed it. */
static int enable_wal(struct store *s)
{
	sqlite3_stmt *st;
	const char *mode;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(s, rc, "enable the write-ahead log");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int r = store_error(s, rc, "enable the write-ahead log");
		sqlite3_finalize(st);
		return r;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	s->wal = mode && strcmp(mode, "wal") == 0;
	if (!s->wal)
		log_warning("The state database runs in journal mode %s, not WAL; every commit "
			    "waits for its own fsync",
			    mode ? mode : "?");
	sqlite3_finalize(st);
	/* The store syncs the WAL itself (see the top of this file), so no
	 * statement needs re-preparing to change the level. */
	return set_synchronous(s, s->wal ? "NORMAL" : "FULL");
}

static int load_audit_tail(struct store *s)
{
	sqlite3_stmt *st = stmt_get(s, STMT_AUDIT_LAST);
	int rc = sqlite3_step(st);

	s->audit_seq = 0;
	memset(s->audit_last, 0, sizeof(s->audit_last));
	if (rc == SQLITE_ROW) {
		s->audit_seq = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == (int)sizeof(s->audit_last))
			memcpy(s->audit_last, sqlite3_column_blob(st, 1), sizeof(s->audit_last));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_error(s, rc, "read the audit log");
	return 0;
}

/* ---- identity marker ---- */

static bool store_id_is_valid(const char *id)
{
	if (strlen(id) != STORE_ID_LEN)
		return false;
	for (size_t i = 0; i < STORE_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

/* Reads the marker into id. Returns 0, -ENOENT or another -errno. */
static int marker_read(const char *path, char id[STORE_ID_LEN + 1])
{
	_cleanup_close_ int fd = -1;
	char buf[STORE_ID_LEN + 2];
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if (n != STORE_ID_LEN + 1 || buf[STORE_ID_LEN] != '\n')
		return -EBADMSG;
	buf[STORE_ID_LEN] = '\0';
	if (!store_id_is_valid(buf))
		return -EBADMSG;
	memcpy(id, buf, STORE_ID_LEN + 1);
	return 0;
}

/* Replaces the marker atomically and durably: a new file, fsync, rename,
 * then fsync of the directory so that the rename itself survives. */
static int marker_write(const char *state_dir, const char *path, const char *id)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int dir_fd = -1;
	char line[STORE_ID_LEN + 2];
	int fd, r = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	snprintf(line, sizeof(line), "%s\n", id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, line, STORE_ID_LEN + 1) != STORE_ID_LEN + 1 || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		return r;
	}
	dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0 || fsync(dir_fd) < 0)
		return -errno;
	return 0;
}

static int meta_get(struct store *s, const char *key, char *out, size_t size)
{
	sqlite3_stmt *st = stmt_get(s, STMT_META_GET);
	int rc;

	bind_text(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		copy_text(st, 0, out, size);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return store_error(s, rc, "read the database id");
}

static int meta_set(struct store *s, const char *key, const char *value)
{
	sqlite3_stmt *st = stmt_get(s, STMT_META_SET);
	int r;

	r = store_begin(s);
	if (r < 0)
		return r;
	bind_text(st, 1, key);
	bind_text(st, 2, value);
	r = step_done(s, st, "store the database id");
	if (r == 0)
		return store_commit(s);
	store_rollback(s);
	return r;
}

static int count_rows(struct store *s, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(s, rc, "count rows");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* Ties the database to the marker file in its directory. A database that
 * has no id yet is new (or from a version without ids) and gets one. A
 * marker without a matching database means state was lost or replaced. */
static int store_check_identity(struct store *s, const char *state_dir, const char *db_path,
				const char *marker_path, const char *marker_id, unsigned flags)
{
	bool allow_empty = flags & STORE_OPEN_ALLOW_EMPTY;
	char db_id[STORE_ID_LEN + 1] = "";
	uint8_t raw[STORE_ID_LEN / 2];
	int64_t leases = 0, records = 0;
	int r;

	r = meta_get(s, "id", db_id, sizeof(db_id));
	if (r < 0 && r != -ENOENT)
		return r;

	if (r == -ENOENT) {
		if (marker_id && !allow_empty) {
			if (count_rows(s, "SELECT count(*) FROM leases", &leases) < 0 ||
			    count_rows(s, "SELECT count(*) FROM audit", &records) < 0)
				return -EIO;
			log_error("%s contains %s, but %s shows that the database with id %s was "
				  "there. Restore state.db (with state.db-wal, if any) from a backup, "
				  "or remove %s to start with this database: every credential it "
				  "lacks stops working and the audit log starts over",
				  db_path, leases + records > 0 ? "no database id" : "no state",
				  marker_path, marker_id, marker_path);
			return leases + records > 0 ? -ESTALE : -ENOENT;
		}
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2hex(db_id, sizeof(db_id), raw, sizeof(raw));
		r = meta_set(s, "id", db_id);
		if (r < 0)
			return r;
		if (marker_id)
			log_warning("Started with empty state in %s as allowed; the previous database "
				    "(id %s) is no longer used",
				    state_dir, marker_id);
		else
			log_info("Created state database %s with id %s", db_path, db_id);
	} else if (marker_id && strcmp(marker_id, db_id) != 0) {
		if (!allow_empty) {
			log_error("%s has id %s, but %s names id %s: the database was replaced. "
				  "Restore the matching state.db, or remove %s to adopt this one",
				  db_path, db_id, marker_path, marker_id, marker_path);
			return -ESTALE;
		}
		log_warning("Adopting state database %s (id %s) in place of id %s as allowed",
			    db_path, db_id, marker_id);
	} else if (marker_id)
		return 0;

	r = marker_write(state_dir, marker_path, db_id);
	if (r < 0)
		log_error("Failed to write %s: %s", marker_path, strerror(-r));
	return r;
}

int store_open_flags(const char *state_dir, unsigned flags, struct store **ret)
{
	_cleanup_free_ char *path = NULL, *marker_path = NULL;
	char marker_id[STORE_ID_LEN + 1];
	bool have_marker;
	struct store *s;
	char *err = NULL;
	int rc, r;

	if (asprintf(&path, "%s/state.db", state_dir) < 0 ||
	    asprintf(&marker_path, "%s/" STORE_MARKER_NAME, state_dir) < 0)
		return -ENOMEM;

	r = marker_read(marker_path, marker_id);
	if (r < 0 && r != -ENOENT) {
		log_error("Failed to read %s: %s; it must contain one line of %d hex digits, the id "
			  "of state.db. Remove it only to start with empty state",
			  marker_path, r == -EBADMSG ? "damaged" : strerror(-r), STORE_ID_LEN);
		return r;
	}
	have_marker = r == 0;
	if (have_marker && !(flags & STORE_OPEN_ALLOW_EMPTY) && access(path, F_OK) < 0 &&
	    errno == ENOENT) {
		log_error("%s is missing, but %s shows that a state database (id %s) existed. "
			  "Restore state.db (with state.db-wal, if any) from a backup, or remove "
			  "%s to start with empty state: every issued credential then stops "
			  "working and the audit log starts over",
			  path, marker_path, marker_id, marker_path);
		return -ENOENT;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->lease_generation = 1;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}

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
	r = enable_wal(s);
	if (r < 0)
		goto fail;

	rc = sqlite3_exec(s->db, schema, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		log_error("Failed to set up the state database %s: %s", path, err ? err : "?");
		sqlite3_free(err);
		r = error_is_no_space(s, rc) ? -ENOSPC : -EIO;
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
	r = store_check_identity(s, state_dir, path, marker_path, have_marker ? marker_id : NULL,
				 flags);
	if (r < 0)
		goto fail;

	*ret = s;
	return 0;
fail:
	store_close(s);
	return r;
}

int store_open(const char *state_dir, struct store **ret)
{
	return store_open_flags(state_dir, 0, ret);
}

struct sqlite3 *store_db(struct store *s)
{
	return s->db;
}

static void background_stop(struct store *s);

void store_close(struct store *s)
{
	if (!s)
		return;
	background_stop(s);
	for (int i = 0; i < _STMT_MAX; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s->held);
	if (s->lease_cache)
		sodium_memzero(s->lease_cache, LEASE_CACHE_SLOTS * sizeof(*s->lease_cache));
	free(s->lease_cache);
	free(s->path);
	free(s);
}

static int held_record_insert(struct store *s, const struct held_record *h);
static int held_write(struct store *s);

int store_begin(struct store *s)
{
	int r = step_done(s, stmt_get(s, STMT_BEGIN), "begin a transaction");

	/* Held records are older than anything this transaction writes. */
	for (size_t i = 0; r == 0 && i < s->n_held; i++)
		r = held_record_insert(s, &s->held[i]);
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		store_rollback(s);
	return r;
}

/* Commits the open transaction. A commit that is not durable waits for the
 * next sync, unless it carries a held record that is. */
static int commit(struct store *s, bool durable)
{
	int r = step_done(s, stmt_get(s, STMT_COMMIT), "commit a transaction");

	if (r < 0) {
		store_rollback(s);
		return r;
	}
	if (s->n_held > 0) {
		durable = durable || s->held_durable;
		s->n_held = 0;
		s->held_durable = false;
	}
	if (!durable) {
		if (s->wal)
			s->unsynced = true;
		return 0;
	}
	s->commits++;
	if (s->wal && !s->in_batch) {
		r = wal_sync(s);
		if (r == 0)
			s->unsynced = false;
	}
	return r;
}

int store_commit(struct store *s)
{
	return commit(s, true);
}

static int end(struct store *s, int r, bool durable)
{
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	return commit(s, durable);
}

int store_end(struct store *s, int r)
{
	return end(s, r, true);
}

bool store_sync_due(const struct store *s)
{
	return s->unsynced;
}

static void background_request(struct background *b, bool checkpoint, bool sync)
{
	if (checkpoint)
		__atomic_store_n(&b->busy, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&b->lock);
	b->checkpoint = b->checkpoint || checkpoint;
	b->sync = b->sync || sync;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
}

/* Logs what the background thread failed to do. The thread cannot log
 * itself, because the log is not thread-safe. */
static int background_error(struct store *s)
{
	int r = __atomic_exchange_n(&s->background->error, 0, __ATOMIC_ACQ_REL);

	if (r < 0)
		log_error("Failed to checkpoint or sync the write-ahead log of the state database "
			  "in the background: %s",
			  strerror(-r));
	return r;
}

int store_sync(struct store *s)
{
	int r;

	if (!s->unsynced || !s->wal)
		return 0;
	if (s->background) {
		/* A failure shows at the next call. The records stay in the
		 * WAL either way, and the next sync covers them. */
		r = background_error(s);
		background_request(s->background, false, true);
		s->unsynced = false;
		return r;
	}
	r = wal_sync(s);
	if (r == 0)
		s->unsynced = false;
	return r;
}

static void *background_run(void *userdata)
{
	struct background *b = userdata;

	for (;;) {
		bool checkpoint, sync, stop;
		int rc;

		pthread_mutex_lock(&b->lock);
		while (!b->checkpoint && !b->sync && !b->stop)
			pthread_cond_wait(&b->wake, &b->lock);
		checkpoint = b->checkpoint;
		sync = b->sync;
		stop = b->stop;
		b->checkpoint = b->sync = false;
		pthread_mutex_unlock(&b->lock);

		/* A passive checkpoint takes no lock the writer needs, so the
		 * writer goes on appending meanwhile. */
		if (checkpoint) {
			rc = sqlite3_wal_checkpoint_v2(b->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL,
						       NULL);
			if (rc != SQLITE_OK && rc != SQLITE_BUSY)
				__atomic_store_n(&b->error,
						 (rc & 0xff) == SQLITE_FULL ? -ENOSPC : -EIO,
						 __ATOMIC_RELEASE);
			__atomic_store_n(&b->busy, false, __ATOMIC_RELEASE);
		}
		if (sync && fdatasync(b->wal_fd) < 0)
			__atomic_store_n(&b->error, -errno, __ATOMIC_RELEASE);
		if (stop && !checkpoint && !sync)
			return NULL;
	}
}

/* Called by SQLite after each commit with the frames in the WAL. */
static int on_wal_commit(void *userdata, sqlite3 *db, const char *name, int frames)
{
	struct background *b = ((struct store *)userdata)->background;

	if (frames < CHECKPOINT_FRAMES)
		return SQLITE_OK;
	if (frames < CHECKPOINT_FRAMES_MAX) {
		if (!__atomic_load_n(&b->busy, __ATOMIC_ACQUIRE))
			background_request(b, true, false);
		return SQLITE_OK;
	}
	/* The rest is copied here, so the next write starts the WAL over. A
	 * checkpoint of the thread still running makes this one wait for the
	 * next commit. */
	(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

int store_background_start(struct store *s)
{
	_cleanup_free_ char *wal_path = NULL;
	sigset_t all, old_mask;
	struct background *b;
	int rc, r;

	if (!s->wal || s->background)
		return 0;
	if (asprintf(&wal_path, "%s-wal", s->path) < 0)
		return -ENOMEM;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->wal_fd = open(wal_path, O_RDONLY | O_CLOEXEC);
	if (b->wal_fd < 0) {
		r = -errno;
		free(b);
		log_error("Failed to open %s: %s", wal_path, strerror(-r));
		return r;
	}
	rc = sqlite3_open_v2(s->path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	/* A first read makes the connection find the WAL. Until then it
	 * cannot checkpoint. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(b->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = store_error(s, rc, "open a second connection for checkpoints");
		sqlite3_close(b->db);
		close(b->wal_fd);
		free(b);
		return r;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	/* The thread takes no signal: SIGHUP and SIGTERM must reach the
	 * event loop, whatever mask the process has now. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old_mask);
	r = -pthread_create(&b->thread, NULL, background_run, b);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (r < 0) {
		log_error("Failed to start the checkpoint thread: %s", strerror(-r));
		sqlite3_close(b->db);
		close(b->wal_fd);
		free(b);
		return r;
	}
	s->background = b;
	sqlite3_wal_hook(s->db, on_wal_commit, s);
	return 0;
}

/* Lets the thread finish its pending work, then ends it. The database's
 * own checkpoints take over again. */
static void background_stop(struct store *s)
{
	struct background *b = s->background;

	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stop = true;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	(void)background_error(s);
	s->background = NULL;
	(void)sqlite3_wal_autocheckpoint(s->db, 1000);
	sqlite3_close(b->db);
	close(b->wal_fd);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->wake);
	free(b);
}

void store_rollback(struct store *s)
{
	/* A lease read inside the transaction may show its own changes. */
	lease_cache_forget(s);
	if (!sqlite3_get_autocommit(s->db))
		(void)step_done(s, stmt_get(s, STMT_ROLLBACK), "roll back a transaction");
	/* The audit chain tail may belong to a rolled-back record, even when
	 * SQLite already rolled back by itself (as after SQLITE_FULL). */
	(void)load_audit_tail(s);
}

/* ---- group commit ---- */

/* PRAGMA synchronous takes effect when the statement is prepared, so a
 * kept prepared statement would not change it again. */
static int set_synchronous(struct store *s, const char *level)
{
	char sql[48];
	int rc;

	snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s", level);
	rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_error(s, rc, "change the sync level");
	return 0;
}

int store_batch_begin(struct store *s)
{
	if (s->in_batch || !sqlite3_get_autocommit(s->db))
		return -EBUSY;
	/* Without WAL each commit syncs itself (synchronous=FULL), and the
	 * batch only groups the replies. */
	s->batch_first_commit = s->commits;
	s->in_batch = true;
	return 0;
}

/* Makes every commit written to the WAL so far durable: the commits of a
 * batch are in the WAL file, so one fsync of it covers them all (and the
 * first sync of a new WAL also syncs its directory). */
static int wal_sync(struct store *s)
{
	sqlite3_file *wal = NULL;
	int rc;

	rc = sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
	if (rc != SQLITE_OK || !wal || !wal->pMethods) {
		log_error("Failed to find the write-ahead log of the state database to sync it");
		return -EIO;
	}
	rc = wal->pMethods->xSync(wal, SQLITE_SYNC_FULL);
	if (rc != SQLITE_OK) {
		log_error("Failed to sync the write-ahead log of the state database: %s",
			  sqlite3_errstr(rc));
		return error_is_no_space(s, rc) ? -ENOSPC : -EIO;
	}
	return 0;
}

int store_batch_end(struct store *s)
{
	int r = 0;

	if (!s->in_batch)
		return -EINVAL;
	if (!sqlite3_get_autocommit(s->db)) {
		log_error("A transaction was still open at the end of a batch; rolling it back");
		store_rollback(s);
	}
	if (s->n_held > 0)
		(void)held_write(s);
	s->in_batch = false;
	if (!s->wal)
		return 0;
	if (s->commits != s->batch_first_commit) {
		r = wal_sync(s);
		if (r == 0)
			s->unsynced = false;
	}
	return r;
}

uint64_t store_commit_count(const struct store *s)
{
	return s->commits;
}

/* ---- leases ---- */

int store_lease_insert(struct store *s, const struct lease *l)
{
	sqlite3_stmt *st = stmt_get(s, STMT_INSERT);
	const struct mid_lease_info *i = &l->info;

	lease_cache_forget(s);
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

static struct lease_cache_slot *lease_cache_slot(struct store *s, const char *id)
{
	if (!s->lease_cache) {
		s->lease_cache = calloc(LEASE_CACHE_SLOTS, sizeof(*s->lease_cache));
		if (!s->lease_cache)
			return NULL;
	}
	return &s->lease_cache[mid_cache_hash_name(id) % LEASE_CACHE_SLOTS];
}

int store_lease_get(struct store *s, const char *id, struct lease *ret)
{
	struct lease_cache_slot *slot = lease_cache_slot(s, id);
	sqlite3_stmt *st;
	int rc;

	if (slot && slot->generation == s->lease_generation &&
	    strcmp(slot->lease.info.lease, id) == 0) {
		*ret = slot->lease;
		return 0;
	}

	st = stmt_get(s, STMT_GET);
	bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		lease_from_row(st, ret);
		sqlite3_reset(st);
		if (slot) {
			slot->lease = *ret;
			slot->generation = s->lease_generation;
		}
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

	lease_cache_forget(s);
	sqlite3_bind_int64(st, 1, state);
	sqlite3_bind_int64(st, 2, ended_at);
	bind_text(st, 3, id);
	return step_done(s, st, "update a lease");
}

int store_lease_add_use(struct store *s, const char *id)
{
	sqlite3_stmt *st = stmt_get(s, STMT_ADD_USE);

	lease_cache_forget(s);
	bind_text(st, 1, id);
	return step_done(s, st, "count a use");
}

int store_lease_set_expiry(struct store *s, const char *id, int64_t expires_at)
{
	sqlite3_stmt *st = stmt_get(s, STMT_SET_EXPIRY);

	lease_cache_forget(s);
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

int store_foreach_live_account(struct store *s, store_live_account_cb cb, void *userdata)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db,
				"SELECT account, class, gecos, home, shell, uid, gid, expires_at "
				"FROM leases WHERE state = 0",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(s, rc, "read live accounts");
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct live_account acct = {
			.account = (const char *)sqlite3_column_text(st, 0),
			.class_name = (const char *)sqlite3_column_text(st, 1),
			.gecos = (const char *)sqlite3_column_text(st, 2),
			.home = (const char *)sqlite3_column_text(st, 3),
			.shell = (const char *)sqlite3_column_text(st, 4),
			.uid = (uint32_t)sqlite3_column_int64(st, 5),
			.gid = (uint32_t)sqlite3_column_int64(st, 6),
			.expires_at = sqlite3_column_int64(st, 7),
		};

		if (!acct.account || !acct.class_name || !acct.gecos || !acct.home || !acct.shell)
			continue;
		r = cb(&acct, userdata);
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_error(s, rc, "read live accounts");
	sqlite3_finalize(st);
	return r;
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

/* ---- audit log ---- */

static void hash_u32(crypto_generichash_state *h, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	crypto_generichash_update(h, b, sizeof(b));
}

static void hash_i64(crypto_generichash_state *h, int64_t v)
{
	uint64_t u = (uint64_t)v;
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(u >> (8 * i));
	crypto_generichash_update(h, b, sizeof(b));
}

/* Length-prefixed, so no text can move bytes across a field boundary. */
static void hash_text(crypto_generichash_state *h, const char *text)
{
	size_t len = text ? strlen(text) : 0;

	hash_u32(h, (uint32_t)len);
	if (len)
		crypto_generichash_update(h, (const uint8_t *)text, len);
}

void store_audit_hash(const uint8_t prev_hash[STORE_AUDIT_HASH_BYTES], int64_t seq, int64_t at,
		      const char *event, const char *account, const char *lease, int64_t peer_uid,
		      const char *detail, uint8_t ret[STORE_AUDIT_HASH_BYTES])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, NULL, 0, STORE_AUDIT_HASH_BYTES);
	crypto_generichash_update(&h, prev_hash, STORE_AUDIT_HASH_BYTES);
	hash_i64(&h, seq);
	hash_i64(&h, at);
	hash_text(&h, event);
	hash_text(&h, account);
	hash_text(&h, lease);
	hash_i64(&h, peer_uid);
	hash_text(&h, detail);
	crypto_generichash_final(&h, ret, STORE_AUDIT_HASH_BYTES);
}

/* Inserts one record whose text is already escaped and capped. */
static int audit_insert(struct store *s, int64_t at, const char *event, const char *account,
			const char *lease, int64_t peer_uid, const char *detail)
{
	uint8_t hash[STORE_AUDIT_HASH_BYTES];
	int64_t seq = s->audit_seq + 1;
	sqlite3_stmt *st;
	int r;

	store_audit_hash(s->audit_last, seq, at, event, account, lease, peer_uid, detail, hash);

	st = stmt_get(s, STMT_AUDIT_INSERT);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, at);
	bind_text(st, 3, event);
	bind_text(st, 4, account);
	bind_text(st, 5, lease);
	sqlite3_bind_int64(st, 6, peer_uid);
	bind_text(st, 7, detail);
	sqlite3_bind_blob(st, 8, s->audit_last, sizeof(s->audit_last), SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 9, hash, sizeof(hash), SQLITE_TRANSIENT);
	r = step_done(s, st, "append to the audit log");
	if (r < 0)
		return r;
	s->audit_seq = seq;
	memcpy(s->audit_last, hash, sizeof(hash));
	return 0;
}

/* Deletes the records older than now - retention, inside the caller's
 * transaction. Records go as a prefix of the chain: everything up to the
 * newest record that is old enough, so the rest stays contiguous. */
static int prune_locked(struct store *s, int64_t now, uint64_t retention, uint64_t *ret_pruned)
{
	char hex[STORE_AUDIT_HASH_BYTES * 2 + 1], detail[MID_TEXT_MAX + 1];
	uint8_t last_hash[STORE_AUDIT_HASH_BYTES];
	int64_t through, count = 0;
	sqlite3_stmt *st;
	int rc, r;

	*ret_pruned = 0;
	st = stmt_get(s, STMT_AUDIT_PRUNE_LAST);
	sqlite3_bind_int64(st, 1, now - (int64_t)retention);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW || sqlite3_column_bytes(st, 1) != (int)sizeof(last_hash)) {
		sqlite3_reset(st);
		return rc == SQLITE_ROW ? -EBADMSG : store_error(s, rc, "find old audit records");
	}
	through = sqlite3_column_int64(st, 0);
	memcpy(last_hash, sqlite3_column_blob(st, 1), sizeof(last_hash));
	sqlite3_reset(st);

	st = stmt_get(s, STMT_AUDIT_PRUNE_COUNT);
	sqlite3_bind_int64(st, 1, through);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_error(s, rc, "count old audit records");

	/* The checkpoint goes in first, chained like any record, so the hash
	 * it carries is itself covered by the chain. */
	sodium_bin2hex(hex, sizeof(hex), last_hash, sizeof(last_hash));
	snprintf(detail, sizeof(detail), "pruned_through=%lld last_hash=%s records=%lld",
		 (long long)through, hex, (long long)count);
	r = audit_insert(s, now, STORE_AUDIT_CHECKPOINT, "", "", -1, detail);
	if (r < 0)
		return r;

	st = stmt_get(s, STMT_AUDIT_PRUNE);
	sqlite3_bind_int64(st, 1, through);
	r = step_done(s, st, "delete old audit records");
	if (r < 0)
		return r;
	*ret_pruned = (uint64_t)count;
	return 0;
}

int store_audit_prune(struct store *s, int64_t now, uint64_t retention, uint64_t *ret_pruned)
{
	uint64_t pruned = 0;
	int r;

	if (retention == 0) {
		*ret_pruned = 0;
		return 0;
	}
	r = store_begin(s);
	if (r < 0)
		return r;
	r = prune_locked(s, now, retention, &pruned);
	r = store_end(s, r);
	if (r < 0)
		return r;
	*ret_pruned = pruned;
	return 0;
}

void store_audit_set_retention(struct store *s, uint64_t (*get)(void *userdata), void *userdata)
{
	s->retention_get = get;
	s->retention_userdata = userdata;
	s->prune_due = 0;
}

/* Prunes inside the caller's transaction under a savepoint, so that a
 * failed prune leaves the caller's own record to be written. */
static void audit_prune_if_due(struct store *s, int64_t now)
{
	int64_t saved_seq = s->audit_seq;
	uint8_t saved_last[STORE_AUDIT_HASH_BYTES];
	uint64_t retention, pruned = 0;
	int r;

	if (!s->retention_get || sqlite3_get_autocommit(s->db))
		return;
	retention = s->retention_get(s->retention_userdata);
	if (retention == 0 || now < s->prune_due)
		return;
	s->prune_due = now + (int64_t)(retention < PRUNE_INTERVAL_MAX ? retention
								 : PRUNE_INTERVAL_MAX);

	memcpy(saved_last, s->audit_last, sizeof(saved_last));
	if (sqlite3_exec(s->db, "SAVEPOINT audit_prune", NULL, NULL, NULL) != SQLITE_OK)
		return;
	r = prune_locked(s, now, retention, &pruned);
	if (r < 0) {
		(void)sqlite3_exec(s->db, "ROLLBACK TO audit_prune", NULL, NULL, NULL);
		s->audit_seq = saved_seq;
		memcpy(s->audit_last, saved_last, sizeof(saved_last));
		log_error("Failed to prune audit records older than %llu s: %s; retrying later",
			  (unsigned long long)retention, strerror(-r));
	}
	(void)sqlite3_exec(s->db, "RELEASE audit_prune", NULL, NULL, NULL);
	if (r == 0 && pruned > 0)
		log_info("Pruned %llu audit records older than %llu s; a checkpoint record keeps "
			 "the chain verifiable",
			 (unsigned long long)pruned, (unsigned long long)retention);
}

static void held_record_fill(struct held_record *h, int64_t at, const struct audit_record *a)
{
	/* Requests supply most of these strings; escaped, a record is one
	 * printable line wherever it is shown and always fits a reply. */
	h->at = at;
	h->peer_uid = a->peer_uid;
	text_escape(a->event, h->event, sizeof(h->event));
	text_escape(a->account, h->account, sizeof(h->account));
	text_escape(a->lease, h->lease, sizeof(h->lease));
	text_escape(a->detail, h->detail, sizeof(h->detail));
}

static int held_record_insert(struct store *s, const struct held_record *h)
{
	audit_prune_if_due(s, h->at);
	return audit_insert(s, h->at, h->event, h->account, h->lease, h->peer_uid, h->detail);
}

int store_audit_append(struct store *s, int64_t at, const struct audit_record *a)
{
	struct held_record h;

	held_record_fill(&h, at, a);
	return held_record_insert(s, &h);
}

/* Writes the held records in a transaction of their own, which commit
 * makes durable when one of them needs it. */
static int held_write(struct store *s)
{
	int r = store_begin(s);

	if (r == 0)
		r = commit(s, false);
	if (r < 0)
		log_error("Failed to write %zu audit records: %s; they are kept for the next try",
			  s->n_held, strerror(-r));
	return r;
}

int store_audit_defer(struct store *s, int64_t at, const struct audit_record *a, bool durable)
{
	int r;

	/* Inside an open transaction the record joins it. */
	if (!sqlite3_get_autocommit(s->db))
		return store_audit_append(s, at, a);
	if (!s->in_batch) {
		r = store_begin(s);
		if (r == 0)
			r = store_audit_append(s, at, a);
		return end(s, r, durable);
	}

	if (!s->held) {
		s->held = calloc(HELD_MAX, sizeof(*s->held));
		if (!s->held)
			return -ENOMEM;
	}
	if (s->n_held == HELD_MAX) {
		r = held_write(s);
		if (r < 0)
			return r;
	}
	held_record_fill(&s->held[s->n_held++], at, a);
	s->held_durable = s->held_durable || durable;
	return 0;
}

static void audit_row_read(sqlite3_stmt *st, struct audit_row *row)
{
	struct mid_audit_info *i = &row->info;

	memset(row, 0, sizeof(*row));
	i->seq = sqlite3_column_int64(st, 0);
	i->at = sqlite3_column_int64(st, 1);
	copy_text(st, 2, i->event, sizeof(i->event));
	copy_text(st, 3, i->account, sizeof(i->account));
	copy_text(st, 4, i->lease, sizeof(i->lease));
	i->peer_uid = sqlite3_column_int64(st, 5);
	copy_text(st, 6, i->detail, sizeof(i->detail));
	if (sqlite3_column_bytes(st, 7) == STORE_AUDIT_HASH_BYTES)
		memcpy(row->prev_hash, sqlite3_column_blob(st, 7), STORE_AUDIT_HASH_BYTES);
	if (sqlite3_column_bytes(st, 8) == STORE_AUDIT_HASH_BYTES)
		memcpy(row->hash, sqlite3_column_blob(st, 8), STORE_AUDIT_HASH_BYTES);
	sodium_bin2hex(i->hash, sizeof(i->hash), row->hash, sizeof(row->hash));
}

static void audit_bind_filter(sqlite3_stmt *st, int64_t since, int64_t until, const char *account)
{
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, until);
	bind_text(st, 3, account);
}

int store_audit_query(struct store *s, int64_t since, int64_t until, const char *account,
		      uint32_t offset, uint32_t limit, store_audit_cb cb, void *userdata,
		      uint32_t *ret_total)
{
	struct audit_row *rows;
	uint32_t total, n = 0;
	sqlite3_stmt *st;
	int rc, r = 0;

	st = stmt_get(s, STMT_AUDIT_COUNT);
	audit_bind_filter(st, since, until, account);
	rc = sqlite3_step(st);
	total = rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_error(s, rc, "count audit records");

	rows = calloc(limit ? limit : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	st = stmt_get(s, STMT_AUDIT_PAGE);
	audit_bind_filter(st, since, until, account);
	sqlite3_bind_int64(st, 4, limit);
	sqlite3_bind_int64(st, 5, offset);
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
		audit_row_read(st, &rows[n++]);
	sqlite3_reset(st);
	if (n < limit && rc != SQLITE_DONE)
		r = store_error(s, rc, "read audit records");
	/* Rows are copied out first, so a callback may use the store. */
	for (uint32_t i = 0; r == 0 && i < n; i++)
		r = cb(&rows[i], userdata);
	free(rows);
	if (r < 0)
		return r;
	*ret_total = total;
	return 0;
}

const char *audit_problem_to_string(enum audit_problem problem)
{
	switch (problem) {
	case AUDIT_INTACT:
		return "intact";
	case AUDIT_EDITED:
		return "edited";
	case AUDIT_DELETED:
		return "deleted";
	case AUDIT_REORDERED:
		return "reordered";
	}
	return "unknown";
}

static bool row_hash_ok(const struct audit_row *row, int64_t seq)
{
	const struct mid_audit_info *i = &row->info;
	uint8_t hash[STORE_AUDIT_HASH_BYTES];

	store_audit_hash(row->prev_hash, seq, i->at, i->event, i->account, i->lease, i->peer_uid,
			 i->detail, hash);
	return sodium_memcmp(hash, row->hash, sizeof(hash)) == 0;
}

/* The seq a record with a failing hash was written with, when its columns
 * hash correctly under a nearby seq; 0 when none does. */
static int64_t row_original_seq(const struct audit_row *row)
{
	for (int64_t d = 1; d <= REORDER_WINDOW; d++) {
		if (row_hash_ok(row, row->info.seq + d))
			return row->info.seq + d;
		if (row->info.seq - d > 0 && row_hash_ok(row, row->info.seq - d))
			return row->info.seq - d;
	}
	return 0;
}

/* The seq of the record whose hash is hash, or 0. */
static int64_t seq_of_hash(struct store *s, const uint8_t hash[STORE_AUDIT_HASH_BYTES])
{
	sqlite3_stmt *st = stmt_get(s, STMT_AUDIT_BY_HASH);
	int64_t seq = 0;

	sqlite3_bind_blob(st, 1, hash, STORE_AUDIT_HASH_BYTES, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW)
		seq = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return seq;
}

/* Reads where the chain starts: after the record the newest checkpoint
 * names, or at seq 1 with an all-zero previous hash. */
static int audit_anchor(struct store *s, int64_t *ret_first, uint8_t prev[STORE_AUDIT_HASH_BYTES],
			int64_t *ret_checkpoint)
{
	char detail[MID_TEXT_MAX + 1], hex[STORE_AUDIT_HASH_BYTES * 2 + 1];
	sqlite3_stmt *st = stmt_get(s, STMT_AUDIT_ANCHOR);
	long long through;
	int rc;

	*ret_first = 1;
	*ret_checkpoint = 0;
	memset(prev, 0, STORE_AUDIT_HASH_BYTES);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret_checkpoint = sqlite3_column_int64(st, 0);
		copy_text(st, 1, detail, sizeof(detail));
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_error(s, rc, "read the audit checkpoint");

	/* A checkpoint that does not parse anchors nothing; the walk then
	 * reports the missing start. */
	if (sscanf(detail, "pruned_through=%lld last_hash=%64s", &through, hex) != 2 ||
	    through < 0 ||
	    sodium_hex2bin(prev, STORE_AUDIT_HASH_BYTES, hex, strlen(hex), NULL, NULL, NULL) != 0) {
		memset(prev, 0, STORE_AUDIT_HASH_BYTES);
		return 0;
	}
	*ret_first = through + 1;
	return 0;
}

static void check_fail(struct audit_check *c, enum audit_problem problem, int64_t seq,
		       const char *fmt, ...) MID_PRINTF(4, 5);

static void check_fail(struct audit_check *c, enum audit_problem problem, int64_t seq,
		       const char *fmt, ...)
{
	va_list ap;

	c->problem = problem;
	c->broken_seq = seq;
	va_start(ap, fmt);
	vsnprintf(c->what, sizeof(c->what), fmt, ap);
	va_end(ap);
}

static void check_gap(struct audit_check *c, int64_t from, int64_t to, bool at_start,
		      int64_t checkpoint)
{
	char because[128] = "";

	if (at_start && checkpoint)
		snprintf(because, sizeof(because),
			 ", though checkpoint record %lld starts the chain there",
			 (long long)checkpoint);
	else if (at_start)
		snprintf(because, sizeof(because), ", and no checkpoint record explains it");
	if (from == to)
		check_fail(c, AUDIT_DELETED, from, "record %lld is missing (deleted)%s",
			   (long long)from, because);
	else
		check_fail(c, AUDIT_DELETED, from, "records %lld to %lld are missing (deleted)%s",
			   (long long)from, (long long)to, because);
}

/* Checks one row against the one before it; returns false at a fault. */
static bool check_row(struct store *s, struct audit_check *c, const struct audit_row *row,
		      int64_t prev_seq, const uint8_t prev_hash[STORE_AUDIT_HASH_BYTES],
		      bool first, int64_t checkpoint)
{
	int64_t seq = row->info.seq, other;

	if (!row_hash_ok(row, seq)) {
		other = row_original_seq(row);
		/* A moved record still links to its old predecessor; when that
		 * one is gone, records were deleted and the rest renumbered. */
		if (other && other > 1 && !seq_of_hash(s, row->prev_hash))
			check_fail(c, AUDIT_DELETED, seq,
				   "record %lld was written as record %lld, and the record before "
				   "it is missing: records were deleted and the rest renumbered",
				   (long long)seq, (long long)other);
		else if (other)
			check_fail(c, AUDIT_REORDERED, seq,
				   "record %lld was written as record %lld: the records were "
				   "reordered",
				   (long long)seq, (long long)other);
		else
			check_fail(c, AUDIT_EDITED, seq,
				   "record %lld was edited: its columns do not match its hash",
				   (long long)seq);
		return false;
	}
	if (seq > prev_seq + 1) {
		check_gap(c, prev_seq + 1, seq - 1, first, checkpoint);
		return false;
	}
	if (seq <= prev_seq) {
		check_fail(c, AUDIT_REORDERED, seq,
			   "record %lld lies before the start of the chain at record %lld that "
			   "checkpoint record %lld names",
			   (long long)seq, (long long)prev_seq + 1, (long long)checkpoint);
		return false;
	}
	if (sodium_memcmp(row->prev_hash, prev_hash, STORE_AUDIT_HASH_BYTES) != 0) {
		other = seq_of_hash(s, row->prev_hash);
		if (other)
			check_fail(c, AUDIT_REORDERED, seq,
				   "record %lld links to record %lld, not to record %lld before it: "
				   "the records were reordered",
				   (long long)seq, (long long)other, (long long)prev_seq);
		else if (first)
			check_fail(c, AUDIT_DELETED, seq,
				   "record %lld does not link to the start of the chain: the "
				   "record before it was deleted or replaced",
				   (long long)seq);
		else
			check_fail(c, AUDIT_DELETED, seq,
				   "record %lld does not link to record %lld before it: a record "
				   "between them was deleted or replaced",
				   (long long)seq, (long long)prev_seq);
		return false;
	}
	return true;
}

int store_audit_verify(struct store *s, struct audit_check *ret)
{
	uint8_t prev_hash[STORE_AUDIT_HASH_BYTES];
	struct audit_check c = {0};
	int64_t prev_seq, first_seq, checkpoint;
	struct audit_row row;
	sqlite3_stmt *st;
	int rc, r;

	r = audit_anchor(s, &first_seq, prev_hash, &checkpoint);
	if (r < 0)
		return r;
	prev_seq = first_seq - 1;

	st = stmt_get(s, STMT_AUDIT_ALL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		audit_row_read(st, &row);
		if (!check_row(s, &c, &row, prev_seq, prev_hash, c.checked == 0, checkpoint))
			break;
		if (c.checked == 0)
			c.first_seq = row.info.seq;
		c.checked++;
		c.last_seq = row.info.seq;
		prev_seq = row.info.seq;
		memcpy(prev_hash, row.hash, sizeof(prev_hash));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_error(s, rc, "read the audit log");

	/* The end of the chain must be the record this store appended last;
	 * a chain alone cannot show records cut from its end. */
	if (c.problem == AUDIT_INTACT && prev_seq < s->audit_seq)
		check_gap(&c, prev_seq + 1, s->audit_seq, false, checkpoint);
	else if (c.problem == AUDIT_INTACT &&
		 (prev_seq > s->audit_seq ||
		  sodium_memcmp(prev_hash, s->audit_last, sizeof(prev_hash)) != 0) &&
		 s->audit_seq > 0)
		check_fail(&c, AUDIT_EDITED, prev_seq,
			   "record %lld is not the record this agent appended last (record %lld)",
			   (long long)prev_seq, (long long)s->audit_seq);

	*ret = c;
	return 0;
}
