/* Unit tests of agentd/store.c: the audit chain and what its verification
 * names, pruning with checkpoints, group commit, and the checks at open. */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

/* Calls to fsync and fdatasync from this process, SQLite's included: the
 * exported definitions here take precedence over libc's for every shared
 * library. Those made by other threads than the first are also counted
 * apart. */
static unsigned syncs;
static unsigned thread_syncs;
static pthread_t main_thread;

static void sync_count(void)
{
	__atomic_add_fetch(&syncs, 1, __ATOMIC_RELAXED);
	if (!pthread_equal(pthread_self(), main_thread))
		__atomic_add_fetch(&thread_syncs, 1, __ATOMIC_RELAXED);
}

MID_EXPORT int fsync(int fd);
MID_EXPORT int fdatasync(int fd);

int fsync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	sync_count();
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	sync_count();
	return real(fd);
}

struct fixture {
	char dir[64];
	struct store *store;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mid-store-test.XXXXXX");
	if (!mkdtemp(f->dir) || store_open(f->dir, &f->store) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(f->store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void append(struct store *s, int64_t at, const char *event, const char *detail)
{
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_audit_append(s, at, &(struct audit_record){.event = event,
									   .account = "deploy",
									   .lease = "0123456789abcdef",
									   .peer_uid = 1000,
									   .detail = detail}),
			 0);
	assert_int_equal(store_commit(s), 0);
}

static void append_n(struct store *s, int n)
{
	for (int i = 0; i < n; i++)
		append(s, 1000000 + i, "issue", "reason");
}

static void exec_sql(struct store *s, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(store_db(s), sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
	assert_int_equal(sqlite3_changes(store_db(s)) > 0, 1);
}

static struct audit_check verify(struct store *s)
{
	struct audit_check c;

	assert_int_equal(store_audit_verify(s, &c), 0);
	return c;
}

static void chain_intact(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	append_n(f->store, 5);
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_INTACT);
	assert_int_equal(c.checked, 5);
	assert_int_equal(c.first_seq, 1);
	assert_int_equal(c.last_seq, 5);
}

static void chain_empty_intact(void **state)
{
	struct fixture *f = *state;
	struct audit_check c = verify(f->store);

	assert_int_equal(c.problem, AUDIT_INTACT);
	assert_int_equal(c.checked, 0);
}

/* Each column edited alone must break record 3's hash. */
static void check_column_edit(const char *sql)
{
	struct fixture *f;
	struct audit_check c;

	assert_int_equal(setup((void **)&f), 0);
	append_n(f->store, 5);
	exec_sql(f->store, sql);
	c = verify(f->store);
	if (c.problem != AUDIT_EDITED || c.broken_seq != 3)
		fail_msg("after \"%s\": problem %s at seq %lld, expected edited at 3", sql,
			 audit_problem_to_string(c.problem), (long long)c.broken_seq);
	assert_int_equal(c.checked, 2);
	assert_non_null(strstr(c.what, "record 3 was edited"));
	assert_int_equal(teardown((void **)&f), 0);
}

static void edit_at_detected(void **state)
{
	check_column_edit("UPDATE audit SET at = at + 1 WHERE seq = 3");
}

static void edit_event_detected(void **state)
{
	check_column_edit("UPDATE audit SET event = 'revoke' WHERE seq = 3");
}

static void edit_account_detected(void **state)
{
	check_column_edit("UPDATE audit SET account = 'root' WHERE seq = 3");
}

static void edit_lease_detected(void **state)
{
	check_column_edit("UPDATE audit SET lease = 'fedcba9876543210' WHERE seq = 3");
}

static void edit_peer_uid_detected(void **state)
{
	check_column_edit("UPDATE audit SET peer_uid = 0 WHERE seq = 3");
}

static void edit_detail_detected(void **state)
{
	check_column_edit("UPDATE audit SET detail = 'reasoN' WHERE seq = 3");
}

static void edit_hash_detected(void **state)
{
	check_column_edit("UPDATE audit SET hash = zeroblob(32) WHERE seq = 3");
}

static void edit_prev_hash_detected(void **state)
{
	check_column_edit("UPDATE audit SET prev_hash = zeroblob(32) WHERE seq = 3");
}

/* Moving the fields between columns keeps the bytes but not the record. */
static void field_boundary_shift_detected(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	append_n(f->store, 2);
	exec_sql(f->store, "UPDATE audit SET account = 'deployreason', detail = '' WHERE seq = 2");
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_EDITED);
	assert_int_equal(c.broken_seq, 2);
}

static void delete_middle_detected(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	append_n(f->store, 5);
	exec_sql(f->store, "DELETE FROM audit WHERE seq = 3");
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_DELETED);
	assert_int_equal(c.broken_seq, 3);
	assert_int_equal(c.checked, 2);
	assert_non_null(strstr(c.what, "record 3 is missing"));
}

static void delete_first_detected(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	append_n(f->store, 3);
	exec_sql(f->store, "DELETE FROM audit WHERE seq = 1");
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_DELETED);
	assert_int_equal(c.broken_seq, 1);
	assert_non_null(strstr(c.what, "no checkpoint record explains it"));
}

static void delete_last_detected(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	append_n(f->store, 4);
	exec_sql(f->store, "DELETE FROM audit WHERE seq = 4");
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_DELETED);
	assert_int_equal(c.broken_seq, 4);
	assert_int_equal(c.checked, 3);
}

/* Deleting a record and renumbering the rest to close the gap. */
static void delete_renumbered_detected(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	append_n(f->store, 4);
	exec_sql(f->store, "DELETE FROM audit WHERE seq = 2");
	exec_sql(f->store, "UPDATE audit SET seq = seq - 1 WHERE seq > 2");
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_DELETED);
	assert_int_equal(c.broken_seq, 2);
	assert_non_null(strstr(c.what, "written as record 3"));
}

static void swap_detected_as_reordered(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	append_n(f->store, 5);
	exec_sql(f->store, "UPDATE audit SET seq = -1 WHERE seq = 2");
	exec_sql(f->store, "UPDATE audit SET seq = 2 WHERE seq = 3");
	exec_sql(f->store, "UPDATE audit SET seq = 3 WHERE seq = -1");
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_REORDERED);
	assert_int_equal(c.broken_seq, 2);
	assert_int_equal(c.checked, 1);
}

static int count_rows(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int n = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int on_row(const struct audit_row *row, void *userdata)
{
	struct audit_row *out = userdata;

	*out = *row;
	return 0;
}

/* A newline or terminal escape in a request stays inside one record and
 * one printable line, and a long field is cut to the protocol's size. */
static void append_escapes_and_caps(void **state)
{
	struct fixture *f = *state;
	char detail[1000];
	struct audit_row row;
	uint32_t total = 0;

	memset(detail, 'x', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';
	memcpy(detail, "a\nb\x1b[31m\"", 9);
	assert_int_equal(store_begin(f->store), 0);
	assert_int_equal(store_audit_append(f->store, 5,
					    &(struct audit_record){.event = "verify-failed",
								   .account = "bad\nname",
								   .peer_uid = 0,
								   .detail = detail}),
			 0);
	assert_int_equal(store_commit(f->store), 0);

	assert_int_equal(store_audit_query(f->store, 0, 0, "", 0, 16, on_row, &row, &total), 0);
	assert_int_equal(total, 1);
	assert_string_equal(row.info.account, "bad\\x0aname");
	assert_memory_equal(row.info.detail, "a\\x0ab\\x1b[31m\\x22", 18);
	assert_int_equal(strlen(row.info.detail), MID_TEXT_MAX);
	assert_string_equal(row.info.detail + MID_TEXT_MAX - 3, "...");
	assert_null(strpbrk(row.info.detail, "\n\r\x1b"));
	assert_int_equal(verify(f->store).problem, AUDIT_INTACT);
}

static void query_filters_and_pages(void **state)
{
	struct fixture *f = *state;
	struct audit_row row;
	uint32_t total = 0;

	append_n(f->store, 20);
	assert_int_equal(store_audit_query(f->store, 1000005, 1000010, "", 0, 16, on_row, &row,
					   &total),
			 0);
	assert_int_equal(total, 5);
	assert_int_equal(row.info.seq, 10);
	assert_int_equal(store_audit_query(f->store, 0, 0, "nobody", 0, 16, on_row, &row, &total),
			 0);
	assert_int_equal(total, 0);
	assert_int_equal(store_audit_query(f->store, 0, 0, "deploy", 19, 16, on_row, &row, &total),
			 0);
	assert_int_equal(total, 20);
	assert_int_equal(row.info.seq, 20);
}

static void prune_keeps_chain_verifiable(void **state)
{
	struct fixture *f = *state;
	uint64_t pruned = 0;
	struct audit_check c;

	append_n(f->store, 10); /* at 1000000 .. 1000009 */
	assert_int_equal(store_audit_prune(f->store, 1000009, 4, &pruned), 0);
	assert_int_equal(pruned, 5);
	assert_int_equal(count_rows(f->store, "SELECT min(seq) FROM audit"), 6);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM audit WHERE event = 'checkpoint' "
					      "AND detail LIKE 'pruned_through=5 last_hash=%'"),
			 1);
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_INTACT);
	assert_int_equal(c.first_seq, 6);
	assert_int_equal(c.last_seq, 11);

	append(f->store, 1000010, "verify", "");
	assert_int_equal(verify(f->store).problem, AUDIT_INTACT);
}

static void prune_then_delete_detected(void **state)
{
	struct fixture *f = *state;
	uint64_t pruned = 0;
	struct audit_check c;

	append_n(f->store, 10);
	assert_int_equal(store_audit_prune(f->store, 1000009, 4, &pruned), 0);
	exec_sql(f->store, "DELETE FROM audit WHERE seq = 6");
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_DELETED);
	assert_int_equal(c.broken_seq, 6);
	assert_non_null(strstr(c.what, "checkpoint record 11"));
}

static void prune_everything_old(void **state)
{
	struct fixture *f = *state;
	uint64_t pruned = 0;
	struct audit_check c;

	append_n(f->store, 3);
	assert_int_equal(store_audit_prune(f->store, 2000000, 60, &pruned), 0);
	assert_int_equal(pruned, 3);
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_INTACT);
	assert_int_equal(c.checked, 1);
	assert_int_equal(c.first_seq, 4);
}

static void prune_nothing_old(void **state)
{
	struct fixture *f = *state;
	uint64_t pruned = 7;

	append_n(f->store, 3);
	assert_int_equal(store_audit_prune(f->store, 1000002, 3600, &pruned), 0);
	assert_int_equal(pruned, 0);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM audit"), 3);
}

static uint64_t retention_value;

static uint64_t get_retention(void *userdata)
{
	return retention_value;
}

static void append_prunes_when_due(void **state)
{
	struct fixture *f = *state;

	append_n(f->store, 5);
	retention_value = 10;
	store_audit_set_retention(f->store, get_retention, NULL);
	append(f->store, 1000100, "verify", "");
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM audit"), 2);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM audit WHERE event = 'checkpoint'"),
			 1);
	assert_int_equal(verify(f->store).problem, AUDIT_INTACT);

	/* Not due again within the retention: no second checkpoint. */
	append(f->store, 1000105, "verify", "");
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM audit WHERE event = 'checkpoint'"),
			 1);
}

static void commit_without_batch_syncs_each(void **state)
{
	struct fixture *f = *state;
	unsigned before = syncs;

	append_n(f->store, 10);
	assert_true(syncs - before >= 10);
}

static void batch_syncs_once(void **state)
{
	struct fixture *f = *state;
	uint64_t commits = store_commit_count(f->store);
	unsigned before;

	append_n(f->store, 1); /* the WAL file exists from here on */
	assert_int_equal(store_batch_begin(f->store), 0);
	before = syncs;
	append_n(f->store, 20);
	assert_int_equal(syncs - before, 0);
	assert_int_equal(store_batch_end(f->store), 0);
	assert_int_equal(syncs - before, 1);
	assert_int_equal(store_commit_count(f->store) - commits, 21);
}

static void batch_without_commit_does_not_sync(void **state)
{
	struct fixture *f = *state;
	unsigned before = syncs;

	assert_int_equal(store_batch_begin(f->store), 0);
	assert_int_equal(store_batch_end(f->store), 0);
	assert_int_equal(syncs - before, 0);
}

static void batch_rejects_nesting(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(store_batch_begin(f->store), 0);
	assert_int_equal(store_batch_begin(f->store), -EBUSY);
	assert_int_equal(store_batch_end(f->store), 0);
	assert_int_equal(store_batch_end(f->store), -EINVAL);
}

static void batch_commits_persist(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	assert_int_equal(store_batch_begin(f->store), 0);
	append_n(f->store, 7);
	assert_int_equal(store_batch_end(f->store), 0);
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(store_open(f->dir, &f->store), 0);
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_INTACT);
	assert_int_equal(c.checked, 7);
}

static void path_in(const struct fixture *f, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", f->dir, name);
}

static void remove_db(const struct fixture *f)
{
	static const char *const names[] = {"state.db", "state.db-wal", "state.db-shm"};
	char path[128];

	for (size_t i = 0; i < 3; i++) {
		path_in(f, names[i], path, sizeof(path));
		(void)unlink(path);
	}
}

static void open_rejects_missing_db(void **state)
{
	struct fixture *f = *state;
	struct store *s = NULL;

	store_close(f->store);
	f->store = NULL;
	remove_db(f);
	assert_int_equal(store_open(f->dir, &s), -ENOENT);
	assert_null(s);
}

static void open_rejects_empty_db(void **state)
{
	struct fixture *f = *state;
	struct store *s = NULL;
	char path[128];
	int fd;

	store_close(f->store);
	f->store = NULL;
	remove_db(f);
	path_in(f, "state.db", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(f->dir, &s), -ENOENT);
}

static void open_allows_empty_with_flag(void **state)
{
	struct fixture *f = *state;
	char before[64] = "", after[64] = "", path[128];
	FILE *m;

	path_in(f, STORE_MARKER_NAME, path, sizeof(path));
	m = fopen(path, "r");
	assert_non_null(m);
	assert_non_null(fgets(before, sizeof(before), m));
	fclose(m);

	store_close(f->store);
	f->store = NULL;
	remove_db(f);
	assert_int_equal(store_open_flags(f->dir, STORE_OPEN_ALLOW_EMPTY, &f->store), 0);
	m = fopen(path, "r");
	assert_non_null(m);
	assert_non_null(fgets(after, sizeof(after), m));
	fclose(m);
	assert_string_not_equal(before, after);
}

static void open_without_marker_starts_fresh(void **state)
{
	struct fixture *f = *state;
	char path[128];

	store_close(f->store);
	f->store = NULL;
	remove_db(f);
	path_in(f, STORE_MARKER_NAME, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_open(f->dir, &f->store), 0);
	assert_int_equal(access(path, F_OK), 0);
}

static void open_rejects_foreign_db(void **state)
{
	struct fixture *f = *state;
	struct store *s = NULL;
	char other[64], cmd[256];

	snprintf(other, sizeof(other), "/tmp/mid-store-other.XXXXXX");
	assert_non_null(mkdtemp(other));
	assert_int_equal(store_open(other, &s), 0);
	append_n(s, 1);
	store_close(s);
	s = NULL;

	store_close(f->store);
	f->store = NULL;
	remove_db(f);
	snprintf(cmd, sizeof(cmd), "cp '%s'/state.db* '%s'/ && rm -rf '%s'", other, f->dir, other);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(store_open(f->dir, &s), -ESTALE);
	assert_null(s);
}

static void open_rejects_damaged_marker(void **state)
{
	struct fixture *f = *state;
	struct store *s = NULL;
	char path[128];
	FILE *m;

	store_close(f->store);
	f->store = NULL;
	path_in(f, STORE_MARKER_NAME, path, sizeof(path));
	m = fopen(path, "w");
	assert_non_null(m);
	fputs("not an id\n", m);
	fclose(m);
	assert_int_equal(store_open(f->dir, &s), -EBADMSG);
}

static void open_rejects_corrupt_db(void **state)
{
	struct fixture *f = *state;
	struct store *s = NULL;
	char path[128], junk[4096];
	int fd;

	append_n(f->store, 200);
	store_close(f->store); /* checkpoints the WAL into state.db */
	f->store = NULL;
	path_in(f, "state.db", path, sizeof(path));
	memset(junk, 0xa5, sizeof(junk));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 4096), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(store_open(f->dir, &s), -EUCLEAN);
	assert_null(s);
}

static void reopen_continues_chain(void **state)
{
	struct fixture *f = *state;
	struct audit_check c;

	append_n(f->store, 3);
	store_close(f->store);
	f->store = NULL;
	assert_int_equal(store_open(f->dir, &f->store), 0);
	append_n(f->store, 2);
	c = verify(f->store);
	assert_int_equal(c.problem, AUDIT_INTACT);
	assert_int_equal(c.checked, 5);
}

static void rollback_restores_tail(void **state)
{
	struct fixture *f = *state;

	append_n(f->store, 2);
	assert_int_equal(store_begin(f->store), 0);
	assert_int_equal(store_audit_append(f->store, 7, &(struct audit_record){.event = "issue"}),
			 0);
	store_rollback(f->store);
	append_n(f->store, 1);
	assert_int_equal(verify(f->store).problem, AUDIT_INTACT);
	assert_int_equal(count_rows(f->store, "SELECT max(seq) FROM audit"), 3);
}

/* ---- held audit records ---- */

static void defer(struct store *s, const char *event, bool durable)
{
	assert_int_equal(store_audit_defer(s, 2000000, &(struct audit_record){.event = event,
									      .account = "deploy",
									      .peer_uid = 0},
					   durable),
			 0);
}

/* Within a batch, records wait and are written together at its end. One
 * that need not be durable leaves the sync to the timer. */
static void held_records_written_at_end(void **state)
{
	struct fixture *f = *state;
	unsigned before;

	append_n(f->store, 1);
	assert_int_equal(store_batch_begin(f->store), 0);
	before = syncs;
	for (int i = 0; i < 5; i++)
		defer(f->store, "verify", false);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM audit"), 1);
	assert_int_equal(store_batch_end(f->store), 0);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM audit"), 6);
	assert_int_equal(syncs - before, 0);
	assert_true(store_sync_due(f->store));
	assert_int_equal(verify(f->store).problem, AUDIT_INTACT);
}

static void durable_held_record_syncs(void **state)
{
	struct fixture *f = *state;
	unsigned before;

	append_n(f->store, 1);
	assert_int_equal(store_batch_begin(f->store), 0);
	before = syncs;
	defer(f->store, "verify", false);
	defer(f->store, "verify-failed", true);
	assert_int_equal(store_batch_end(f->store), 0);
	assert_int_equal(syncs - before, 1);
	assert_false(store_sync_due(f->store));
}

/* A held record goes into the chain before the records of the next
 * transaction, so the chain keeps the order of events. */
static void held_records_keep_order(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(store_batch_begin(f->store), 0);
	defer(f->store, "verify", false);
	append(f->store, 2000001, "revoke", "reason");
	assert_int_equal(store_batch_end(f->store), 0);
	assert_int_equal(count_rows(f->store, "SELECT seq FROM audit WHERE event = 'verify'"), 1);
	assert_int_equal(count_rows(f->store, "SELECT seq FROM audit WHERE event = 'revoke'"), 2);
	assert_int_equal(verify(f->store).problem, AUDIT_INTACT);
}

/* Outside a batch a record is written at once. */
static void unbatched_record_written(void **state)
{
	struct fixture *f = *state;

	defer(f->store, "verify", false);
	assert_int_equal(count_rows(f->store, "SELECT count(*) FROM audit"), 1);
}

/* ---- lease reads ---- */

static void lease_insert(struct store *s, const char *id)
{
	struct lease l = {0};

	snprintf(l.info.lease, sizeof(l.info.lease), "%s", id);
	snprintf(l.info.account, sizeof(l.info.account), "deploy");
	l.info.expires_at = 5000;
	l.info.max_expires_at = 9000;
	l.info.max_uses = 10;
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_lease_insert(s, &l), 0);
	assert_int_equal(store_commit(s), 0);
}

static struct lease lease_read(struct store *s, const char *id)
{
	struct lease l;

	assert_int_equal(store_lease_get(s, id, &l), 0);
	return l;
}

/* Reads of a lease see each change at once, and a rolled-back change no
 * longer, however often the lease was read before. */
static void lease_reads_see_changes(void **state)
{
	struct fixture *f = *state;
	const char *id = "00112233445566aa";

	lease_insert(f->store, id);
	assert_int_equal(lease_read(f->store, id).info.uses, 0);
	assert_int_equal(lease_read(f->store, id).info.uses, 0);

	assert_int_equal(store_begin(f->store), 0);
	assert_int_equal(store_lease_add_use(f->store, id), 0);
	assert_int_equal(store_commit(f->store), 0);
	assert_int_equal(lease_read(f->store, id).info.uses, 1);

	assert_int_equal(store_begin(f->store), 0);
	assert_int_equal(store_lease_set_expiry(f->store, id, 7000), 0);
	assert_int_equal(store_commit(f->store), 0);
	assert_int_equal(lease_read(f->store, id).info.expires_at, 7000);

	assert_int_equal(store_begin(f->store), 0);
	assert_int_equal(store_lease_add_use(f->store, id), 0);
	assert_int_equal(lease_read(f->store, id).info.uses, 2);
	store_rollback(f->store);
	assert_int_equal(lease_read(f->store, id).info.uses, 1);

	assert_int_equal(store_begin(f->store), 0);
	assert_int_equal(store_lease_set_state(f->store, id, MID_LEASE_REVOKED, 6000), 0);
	assert_int_equal(store_commit(f->store), 0);
	assert_int_equal(lease_read(f->store, id).info.state, MID_LEASE_REVOKED);
}

/* Two leases whose reads may share a place in the cache each read as
 * themselves. */
static void lease_reads_keep_ids_apart(void **state)
{
	struct fixture *f = *state;
	char id[MID_LEASE_ID_LEN + 1];
	unsigned wrong = 0;

	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "%016x", i);
		lease_insert(f->store, id);
	}
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 200; i++) {
			snprintf(id, sizeof(id), "%016x", i);
			wrong += strcmp(lease_read(f->store, id).info.lease, id) != 0;
		}
	assert_int_equal(wrong, 0);
	assert_int_equal(store_lease_get(f->store, "ffffffffffffffff", &(struct lease){0}),
			 -ENOENT);
}

/* ---- background checkpoints ---- */

/* Waits up to two seconds for the background thread to sync more than
 * `than` times. */
static unsigned thread_syncs_after(unsigned than)
{
	for (int i = 0; i < 200 && __atomic_load_n(&thread_syncs, __ATOMIC_RELAXED) <= than; i++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	return __atomic_load_n(&thread_syncs, __ATOMIC_RELAXED);
}

static off_t file_size(const struct fixture *f, const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Commits past the checkpoint threshold make the thread, not the caller,
 * copy the WAL into the database and sync it, and the WAL stays bounded. */
static void background_checkpoints(void **state)
{
	struct fixture *f = *state;
	unsigned before = __atomic_load_n(&thread_syncs, __ATOMIC_RELAXED);

	assert_int_equal(store_background_start(f->store), 0);
	for (int round = 0; round < 4; round++) {
		assert_int_equal(store_batch_begin(f->store), 0);
		append_n(f->store, 3000);
		assert_int_equal(store_batch_end(f->store), 0);
	}
	assert_true(thread_syncs_after(before) > before);
	/* The WAL starts over near 4,000 pages, plus what these commits
	 * wrote while a checkpoint of the thread ran. Without checkpoints it
	 * would keep a page for each of the 12,000 commits and more. */
	assert_true(file_size(f, "state.db-wal") <= 8000 * (4096 + 24));
	assert_true(file_size(f, "state.db") > 1024 * 1024);
	assert_int_equal(verify(f->store).problem, AUDIT_INTACT);
}

/* With the thread, store_sync hands the fsync of light commits to it. */
static void background_syncs(void **state)
{
	struct fixture *f = *state;
	unsigned before;

	assert_int_equal(store_background_start(f->store), 0);
	assert_int_equal(store_batch_begin(f->store), 0);
	assert_int_equal(store_audit_defer(f->store, 2000000,
					   &(struct audit_record){.event = "verify", .peer_uid = 0},
					   false),
			 0);
	assert_int_equal(store_batch_end(f->store), 0);
	assert_true(store_sync_due(f->store));
	before = __atomic_load_n(&thread_syncs, __ATOMIC_RELAXED);
	assert_int_equal(store_sync(f->store), 0);
	assert_false(store_sync_due(f->store));
	assert_true(thread_syncs_after(before) > before);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(chain_intact),
		T(chain_empty_intact),
		cmocka_unit_test(edit_at_detected),
		cmocka_unit_test(edit_event_detected),
		cmocka_unit_test(edit_account_detected),
		cmocka_unit_test(edit_lease_detected),
		cmocka_unit_test(edit_peer_uid_detected),
		cmocka_unit_test(edit_detail_detected),
		cmocka_unit_test(edit_hash_detected),
		cmocka_unit_test(edit_prev_hash_detected),
		T(field_boundary_shift_detected),
		T(delete_middle_detected),
		T(delete_first_detected),
		T(delete_last_detected),
		T(delete_renumbered_detected),
		T(swap_detected_as_reordered),
		T(append_escapes_and_caps),
		T(query_filters_and_pages),
		T(prune_keeps_chain_verifiable),
		T(prune_then_delete_detected),
		T(prune_everything_old),
		T(prune_nothing_old),
		T(append_prunes_when_due),
		T(commit_without_batch_syncs_each),
		T(batch_syncs_once),
		T(batch_without_commit_does_not_sync),
		T(batch_rejects_nesting),
		T(batch_commits_persist),
		T(open_rejects_missing_db),
		T(open_rejects_empty_db),
		T(open_allows_empty_with_flag),
		T(open_without_marker_starts_fresh),
		T(open_rejects_foreign_db),
		T(open_rejects_damaged_marker),
		T(open_rejects_corrupt_db),
		T(reopen_continues_chain),
		T(rollback_restores_tail),
		T(held_records_written_at_end),
		T(durable_held_record_syncs),
		T(held_records_keep_order),
		T(unbatched_record_written),
		T(lease_reads_see_changes),
		T(lease_reads_keep_ids_apart),
		T(background_checkpoints),
		T(background_syncs),
	};

	main_thread = pthread_self();
	setenv("MID_LOG_STDERR", "1", 1);
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
