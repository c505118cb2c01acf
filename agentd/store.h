/* Durable state in SQLite (WAL): leases and the hash-chained audit log.
 * A change is acknowledged only after its transaction commits. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "protocol.h"
#include "token.h"

struct lease {
	struct mid_lease_info info;
	uint8_t hash[MID_TOKEN_HASH_BYTES];
	char home[MID_PATH_MAX + 1];
	char shell[MID_PATH_MAX + 1];
	char gecos[MID_TEXT_MAX + 1];
	char group[MID_NAME_MAX + 1];
};

struct store;
struct sqlite3;

typedef int (*store_lease_cb)(const struct lease *l, void *userdata);

/* File in the state directory that records the id of the database created
 * there, so that a lost or replaced state.db is noticed at start. */
#define STORE_MARKER_NAME "state.id"

enum {
	/* Start on a missing, empty or foreign state.db even though the
	 * marker shows that state existed, and adopt the new database. */
	STORE_OPEN_ALLOW_EMPTY = 1u << 0,
};

/* Opens (creating if needed) state.db in state_dir and checks it with
 * PRAGMA quick_check; a corrupt database is -EUCLEAN. While the marker
 * file exists, a missing or empty state.db is -ENOENT and a state.db with
 * another id is -ESTALE, unless flags has STORE_OPEN_ALLOW_EMPTY. Each
 * failure is logged with its fix. */
MID_MUST_CHECK int store_open_flags(const char *state_dir, unsigned flags, struct store **ret);
/* store_open_flags with no flags. */
MID_MUST_CHECK int store_open(const char *state_dir, struct store **ret);
void store_close(struct store *s);

/* The database handle, for modules that keep tables of their own. They
 * create them in their init function and use store_begin/store_commit. */
struct sqlite3 *store_db(struct store *s);
/* Maps an SQLite result code to -errno and logs what failed. A full disk
 * or quota (SQLITE_FULL, or an I/O error with errno ENOSPC or EDQUOT) maps
 * to -ENOSPC. */
int store_error(struct store *s, int rc, const char *what);

MID_MUST_CHECK int store_begin(struct store *s);
MID_MUST_CHECK int store_commit(struct store *s);
void store_rollback(struct store *s);
/* Ends the transaction store_begin opened: commits it when r, the result
 * of the changes made in it, is not negative, else rolls it back and
 * returns r. */
MID_MUST_CHECK int store_end(struct store *s, int r);

/* Group commit. Between store_batch_begin and store_batch_end every
 * store_commit still commits its own transaction, so each request stays
 * atomic, but it does not wait for the disk. store_batch_end then makes all
 * of them durable with one fsync of the WAL. A caller must send no reply
 * for a request that committed inside the batch before store_batch_end
 * returned 0. Outside a batch each commit is durable on its own. */
MID_MUST_CHECK int store_batch_begin(struct store *s);
/* Records an audit event. Inside a batch the record is held and written
 * with the next transaction the batch begins, or at store_batch_end, so
 * that the records of many requests share one transaction. Outside a
 * batch, and inside an open transaction, it is written at once.
 * A durable record makes store_batch_end wait for the disk, as a commit
 * does. One that is not (the record of a successful verification)
 * survives a crash of the agent once written, because it is in the WAL,
 * and a power loss once the next sync ran, which store_sync_due reports
 * as due. Held records that could not be written are logged and kept for
 * the next try. */
struct audit_record;
MID_MUST_CHECK int store_audit_defer(struct store *s, int64_t at, const struct audit_record *a,
				     bool durable);
/* True while light commits wait for an fsync. */
bool store_sync_due(const struct store *s);
/* Syncs the WAL when light commits wait for it: at once, or with a
 * background thread, by asking it to. */
MID_MUST_CHECK int store_sync(struct store *s);
/* Starts a thread with a connection of its own that checkpoints the WAL
 * (copies it into the database, with two fsyncs) and runs store_sync's
 * fsync, so that the store's thread does neither. The store's thread still
 * checkpoints when the WAL grows past a bound because the background never
 * found the writer idle long enough to finish. Without WAL it does
 * nothing. store_close stops the thread after its pending work. */
MID_MUST_CHECK int store_background_start(struct store *s);
/* Returns 0, or -errno when the commits of the batch may not be on disk;
 * the batch is closed either way. */
MID_MUST_CHECK int store_batch_end(struct store *s);
/* Counts successful commits since store_open, so that a caller can tell
 * which requests of a batch changed state. */
uint64_t store_commit_count(const struct store *s);

MID_MUST_CHECK int store_lease_insert(struct store *s, const struct lease *l);
/* Returns 0 or -ENOENT. */
MID_MUST_CHECK int store_lease_get(struct store *s, const char *id, struct lease *ret);
MID_MUST_CHECK int store_lease_set_state(struct store *s, const char *id, uint8_t state,
					 int64_t ended_at);
MID_MUST_CHECK int store_lease_add_use(struct store *s, const char *id);
MID_MUST_CHECK int store_lease_set_expiry(struct store *s, const char *id, int64_t expires_at);
/* Calls cb for each live lease (stopping at its first error). */
MID_MUST_CHECK int store_foreach_live(struct store *s, store_lease_cb cb, void *userdata);
/* The columns the NSS cache needs of a live lease; the strings are valid
 * only during the callback. */
struct live_account {
	const char *account;
	const char *class_name;
	const char *gecos;
	const char *home;
	const char *shell;
	uint32_t uid;
	uint32_t gid;
	int64_t expires_at;
};
typedef int (*store_live_account_cb)(const struct live_account *acct, void *userdata);
/* Streams the live leases' accounts to cb straight from the query, without
 * copying whole lease rows; cb must not use the store. */
MID_MUST_CHECK int store_foreach_live_account(struct store *s, store_live_account_cb cb,
					      void *userdata);

/* Calls cb for each live lease of account. */
MID_MUST_CHECK int store_foreach_live_of(struct store *s, const char *account, store_lease_cb cb,
					 void *userdata);
/* Calls cb for `limit` leases from `offset`, newest first; with
 * requester_uid >= 0 only that requester's. Writes the total count. */
MID_MUST_CHECK int store_list(struct store *s, uint32_t offset, uint32_t limit,
			      long long requester_uid, store_lease_cb cb, void *userdata,
			      uint32_t *ret_total);
/* Live leases whose expiry is at or before now. */
MID_MUST_CHECK int store_foreach_due(struct store *s, int64_t now, store_lease_cb cb,
				     void *userdata);
/* The earliest expiry among live leases, or -ENOENT when none is live. */
MID_MUST_CHECK int store_next_expiry(struct store *s, int64_t *ret);
/* Returns 1 when a live lease holds uid, else 0. */
MID_MUST_CHECK int store_uid_in_use(struct store *s, uint32_t uid);
MID_MUST_CHECK int store_count(struct store *s, uint32_t *ret_live, uint32_t *ret_total);

/* ---- audit log ---- */

#define STORE_AUDIT_HASH_BYTES 32 /* BLAKE2b-256 */
/* Event of the record that pruning appends; its detail is
 * "pruned_through=SEQ last_hash=HEX records=N". */
#define STORE_AUDIT_CHECKPOINT "checkpoint"

struct audit_record {
	const char *event;
	const char *account;
	const char *lease;
	long long peer_uid;
	const char *detail;
};

/* One stored record; the text fields are escaped and capped to the sizes
 * of struct mid_audit_info, so a record always fits a reply unchanged. */
struct audit_row {
	struct mid_audit_info info; /* info.hash: hex of hash */
	uint8_t prev_hash[STORE_AUDIT_HASH_BYTES];
	uint8_t hash[STORE_AUDIT_HASH_BYTES];
};

typedef int (*store_audit_cb)(const struct audit_row *row, void *userdata);

/* Computes a record's hash: BLAKE2b-256 over prev_hash, then seq, at and
 * peer_uid as 8-byte little-endian integers in column order, and each text
 * column as a 4-byte little-endian length and its bytes:
 *   prev_hash || seq || at || len(event) event || len(account) account ||
 *   len(lease) lease || peer_uid || len(detail) detail
 * NOTE: midctl/cmd_audit.c checks exports with its own copy of this
 * function, because midctl does not link the agent's store; keep both equal. */
void store_audit_hash(const uint8_t prev_hash[STORE_AUDIT_HASH_BYTES], int64_t seq, int64_t at,
		      const char *event, const char *account, const char *lease, int64_t peer_uid,
		      const char *detail, uint8_t ret[STORE_AUDIT_HASH_BYTES]);

/* Appends an audit record chained to the previous one. Runs inside the
 * caller's transaction. Text fields are escaped (control characters,
 * quotes, backslashes and bytes >= 0x7f as \xNN) and capped to the sizes
 * of struct mid_audit_info. When a retention is set and due, old records
 * are pruned first (see store_audit_prune); a failed prune is logged and
 * does not fail the append. */
MID_MUST_CHECK int store_audit_append(struct store *s, int64_t at, const struct audit_record *a);

/* Sets where the audit retention (seconds, 0: keep forever) is read from
 * at each due check, so that a reloaded policy takes effect. */
void store_audit_set_retention(struct store *s, uint64_t (*get)(void *userdata), void *userdata);

/* Deletes the records older than now - retention in one transaction of
 * its own. It first appends a checkpoint record with the seq and hash of
 * the last deleted record, so that the rest of the chain still verifies
 * from there. Writes the number of deleted records. */
MID_MUST_CHECK int store_audit_prune(struct store *s, int64_t now, uint64_t retention,
				     uint64_t *ret_pruned);

/* Calls cb for up to `limit` records from `offset`, oldest first, with
 * since <= at < until (0: open) and, when account is non-empty, of that
 * account. Writes the number of matching records. */
MID_MUST_CHECK int store_audit_query(struct store *s, int64_t since, int64_t until,
				     const char *account, uint32_t offset, uint32_t limit,
				     store_audit_cb cb, void *userdata, uint32_t *ret_total);

enum audit_problem {
	AUDIT_INTACT = 0,
	AUDIT_EDITED,    /* the record's columns do not match its hash */
	AUDIT_DELETED,   /* records are missing: a gap in seq or a broken link */
	AUDIT_REORDERED, /* the record links to another record than the one before it */
};

struct audit_check {
	uint64_t checked; /* records whose hash and link were checked */
	int64_t first_seq;
	int64_t last_seq;
	enum audit_problem problem;
	int64_t broken_seq; /* first broken record; for a deletion the first missing seq */
	char what[MID_TEXT_MAX + 1]; /* sentence naming the record and the fault */
};

/* Walks the whole chain in seq order from its start (seq 1, or the record
 * after the one the newest checkpoint names), and compares its end with the
 * newest record this store appended. Stops at the first broken record.
 * Returns 0 with ret filled (intact or not), or -errno when reading failed. */
MID_MUST_CHECK int store_audit_verify(struct store *s, struct audit_check *ret);

/* Describes problem in a few words ("edited", "deleted", ...). */
const char *audit_problem_to_string(enum audit_problem problem);
