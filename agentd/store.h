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

/* Opens (creating if needed) state.db in state_dir and checks it with
 * PRAGMA quick_check; a corrupt database is -EUCLEAN. */
MID_MUST_CHECK int store_open(const char *state_dir, struct store **ret);
void store_close(struct store *s);

/* The database handle, for modules that keep tables of their own. They
 * create them in their init function and use store_begin/store_commit. */
struct sqlite3 *store_db(struct store *s);
/* Maps an SQLite result code to -errno and logs what failed. */
int store_error(struct store *s, int rc, const char *what);

MID_MUST_CHECK int store_begin(struct store *s);
MID_MUST_CHECK int store_commit(struct store *s);
void store_rollback(struct store *s);

MID_MUST_CHECK int store_lease_insert(struct store *s, const struct lease *l);
/* Returns 0 or -ENOENT. */
MID_MUST_CHECK int store_lease_get(struct store *s, const char *id, struct lease *ret);
MID_MUST_CHECK int store_lease_set_state(struct store *s, const char *id, uint8_t state,
					 int64_t ended_at);
MID_MUST_CHECK int store_lease_add_use(struct store *s, const char *id);
MID_MUST_CHECK int store_lease_set_expiry(struct store *s, const char *id, int64_t expires_at);
/* Calls cb for each live lease (stopping at its first error). */
MID_MUST_CHECK int store_foreach_live(struct store *s, store_lease_cb cb, void *userdata);
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

struct audit_record {
	const char *event;
	const char *account;
	const char *lease;
	long long peer_uid;
	const char *detail;
};
/* Appends an audit record chained to the previous one by BLAKE2b. */
MID_MUST_CHECK int store_audit_append(struct store *s, int64_t at, const struct audit_record *a);
