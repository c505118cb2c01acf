/* The lifecycle of ephemeral accounts: a UID free everywhere at issue, a
 * home made for the account, and cleanup once its lease has ended and its
 * sessions are gone: processes killed, home removed, UID quarantined. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "names.h"

/* Seconds a UID rests when the policy dropped its class; the same default
 * as policy.c gives the quarantine setting. */
#define FALLBACK_QUARANTINE (24 * 60 * 60)
#define COPY_DEPTH_MAX 32    /* directory levels copied from a skeleton */
#define REMOVE_DEPTH_MAX 256 /* directory levels removed from a home */
#define KILL_ROUNDS 5
#define KILL_WAIT_MS 500 /* per round, for the killed processes to exit */
#define RETRY_SESSIONS_USEC (1000 * 1000ULL)
#define RETRY_FIRST_USEC (5 * 1000 * 1000ULL)
#define RETRY_MAX_USEC (300 * 1000 * 1000ULL)

enum account_state {
	ACCOUNT_LIVE = 0,
	ACCOUNT_CLEANUP = 1,   /* the lease ended; cleanup is pending */
	ACCOUNT_HOME_LEFT = 2, /* cleaned up, but the home was left in place */
};

/* One row per ephemeral account until its cleanup is done. home is empty
 * when the class has create_home = false; home_dev and home_ino identify
 * the directory the agent made, so cleanup removes only that one. A row in
 * ACCOUNT_HOME_LEFT keeps its UID from reuse while the home is there. */
static const char accounts_schema[] =
	"CREATE TABLE IF NOT EXISTS ephemeral_accounts ("
	"  account TEXT PRIMARY KEY,"
	"  lease TEXT NOT NULL,"
	"  class TEXT NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  gid INTEGER NOT NULL,"
	"  home TEXT NOT NULL DEFAULT '',"
	"  home_dev INTEGER NOT NULL DEFAULT 0,"
	"  home_ino INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS ephemeral_accounts_uid ON ephemeral_accounts(uid);"
	"CREATE INDEX IF NOT EXISTS ephemeral_accounts_uid ON ephemeral_accounts(uid);"
	"CREATE TABLE IF NOT EXISTS uid_quarantine ("
	"  uid INTEGER PRIMARY KEY,"
	"  until INTEGER NOT NULL);";

#define ACCOUNT_COLUMNS "account, lease, class, uid, gid, home, home_dev, home_ino, state, attempts"

struct account_row {
	char account[MID_NAME_MAX + 1];
	char lease[MID_LEASE_ID_MAX + 1];
	char class_name[MID_NAME_MAX + 1];
	uid_t uid;
	gid_t gid;
	char home[MID_PATH_MAX + 1];
	uint64_t home_dev;
	uint64_t home_ino;
	uint8_t state;
	uint32_t attempts;
};

/* event is a reference to the agent's default event loop, taken before
 * main.c creates it (sd_event_default() returns one loop per thread). */
static struct {
	struct agent *agent;
	sd_event *event;
	sd_event_source *retry_timer;
} accounts;

/* ---- The table ---- */

static int sql_prepare(struct agent *a, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(store_db(a->store), sql, -1, ret, NULL);

	return rc == SQLITE_OK ? 0 : store_error(a->store, rc, "prepare an accounts statement");
}

static int sql_step_done(struct agent *a, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_error(a->store, rc, what);
}

static void copy_column(sqlite3_stmt *st, int col, char *out, size_t size)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	snprintf(out, size, "%s", text ? text : "");
}

/* Reads the rows in state. The caller frees *ret. */
static int accounts_select(struct agent *a, enum account_state state, struct account_row **ret,
			   size_t *ret_n)
{
	struct account_row *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, r;

	r = sql_prepare(a, "SELECT " ACCOUNT_COLUMNS " FROM ephemeral_accounts WHERE state = ?1",
			&st);
	if (r < 0)
		return r;
	sqlite3_bind_int(st, 1, state);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct account_row *row;

		if (n == cap) {
			size_t new_cap = cap ? cap * 2 : 8;
			struct account_row *grown = realloc(rows, new_cap * sizeof(*grown));

			if (!grown) {
				r = -ENOMEM;
				break;
			}
			rows = grown;
			cap = new_cap;
		}
		row = &rows[n++];
		copy_column(st, 0, row->account, sizeof(row->account));
		copy_column(st, 1, row->lease, sizeof(row->lease));
		copy_column(st, 2, row->class_name, sizeof(row->class_name));
		row->uid = (uid_t)sqlite3_column_int64(st, 3);
		row->gid = (gid_t)sqlite3_column_int64(st, 4);
		copy_column(st, 5, row->home, sizeof(row->home));
		row->home_dev = (uint64_t)sqlite3_column_int64(st, 6);
		row->home_ino = (uint64_t)sqlite3_column_int64(st, 7);
		row->state = (uint8_t)sqlite3_column_int(st, 8);
		row->attempts = (uint32_t)sqlite3_column_int64(st, 9);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_error(a->store, rc, "read ephemeral accounts");
	sqlite3_finalize(st);
	if (r < 0) {
		free(rows);
		return r;
	}
	*ret = rows;
	*ret_n = n;
	return 0;
}

/* Records row; with or_ignore, an account that already has a row keeps it. */
static int account_insert(struct agent *a, const struct account_row *row, bool or_ignore)
{
	sqlite3_stmt *st;
	int r;

	r = sql_prepare(a,
			or_ignore ? "INSERT OR IGNORE INTO ephemeral_accounts (" ACCOUNT_COLUMNS
				    ", created_at) "
				    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)"
				  : "INSERT INTO ephemeral_accounts (" ACCOUNT_COLUMNS ", created_at) "
				    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
			&st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, row->account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row->lease, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, row->class_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, row->uid);
	sqlite3_bind_int64(st, 5, row->gid);
	sqlite3_bind_text(st, 6, row->home, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)row->home_dev);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)row->home_ino);
	sqlite3_bind_int(st, 9, row->state);
	sqlite3_bind_int64(st, 10, now_realtime());
	return sql_step_done(a, st, "record an ephemeral account");
}

/* Moves account from state `from` to `to`. Returns the rows changed. */
static int account_set_state(struct agent *a, const char *account, enum account_state from,
			     enum account_state to)
{
	sqlite3_stmt *st;
	int r;

	r = sql_prepare(a,
			"UPDATE ephemeral_accounts SET state = ?3 "
			"WHERE account = ?1 AND state = ?2",
			&st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, from);
	sqlite3_bind_int(st, 3, to);
	r = sql_step_done(a, st, "update an ephemeral account");
	return r < 0 ? r : sqlite3_changes(store_db(a->store));
}

static int account_count_attempt(struct agent *a, const char *account)
{
	sqlite3_stmt *st;
	int r;

	r = sql_prepare(a,
			"UPDATE ephemeral_accounts SET attempts = attempts + 1 WHERE account = ?1",
			&st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	return sql_step_done(a, st, "update an ephemeral account");
}

/* Counts the sessions of account that are open or still being terminated.
 * The sessions table and its columns belong to sessions.c. */
static int account_sessions_remaining(struct agent *a, const char *account)
{
	sqlite3_stmt *st;
	int rc, r;

	r = sql_prepare(a,
			"SELECT count(*) FROM sessions WHERE account = ?1 "
			"AND (state = 0 OR kill_at IS NOT NULL)",
			&st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0)
			     : store_error(a->store, rc, "count the sessions of an account");
	sqlite3_finalize(st);
	return r;
}

/* ---- UIDs ---- */

/* Returns 1 when uid is quarantined, belongs to an account whose cleanup
 * has not finished, or owns a home the agent made and left in place. */
static int uid_is_blocked(struct agent *a, sqlite3_stmt *quarantine, sqlite3_stmt *rows, uid_t uid,
			  int64_t now)
{
	int rc, r = 0;

	sqlite3_reset(quarantine);
	sqlite3_bind_int64(quarantine, 1, uid);
	sqlite3_bind_int64(quarantine, 2, now);
	rc = sqlite3_step(quarantine);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return store_error(a->store, rc, "read the UID quarantine");

	sqlite3_reset(rows);
	sqlite3_bind_int64(rows, 1, uid);
	while (r == 0 && (rc = sqlite3_step(rows)) == SQLITE_ROW) {
		const char *home = (const char *)sqlite3_column_text(rows, 1);
		struct stat st;

		if (sqlite3_column_int(rows, 0) != ACCOUNT_HOME_LEFT)
			r = 1;
		else if (home && *home && lstat(home, &st) == 0 && st.st_uid == uid)
			r = 1;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_error(a->store, rc, "read ephemeral accounts");
	return r;
}

/* The UID at which the next search of a class starts: just after
 * the last UID handed out, so a class with many live accounts does not
 * probe every used UID again. The search wraps around to uid_min. */
struct uid_hint {
	char class_name[MID_NAME_MAX + 1];
	uint64_t next;
};
static struct uid_hint uid_hints[64];

static struct uid_hint *uid_hint_of(const struct rule *rule)
{
	struct uid_hint *free_slot = NULL;

	for (size_t i = 0; i < MID_ELEMENTSOF(uid_hints); i++) {
		if (strcmp(uid_hints[i].class_name, rule->name) == 0)
			return &uid_hints[i];
		if (!free_slot && !uid_hints[i].class_name[0])
			free_slot = &uid_hints[i];
	}
	if (free_slot)
		snprintf(free_slot->class_name, sizeof(free_slot->class_name), "%s", rule->name);
	return free_slot;
}

/* The highest UID a live lease of the class holds, or 0. */
static uint64_t class_max_uid(struct agent *a, const struct rule *rule)
{
	sqlite3_stmt *st = NULL;
	uint64_t max = 0;

	if (sql_prepare(a, "SELECT max(uid) FROM leases WHERE state = 0 AND class = ?1", &st) < 0)
		return 0;
	sqlite3_bind_text(st, 1, rule->name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		max = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return max;
}

int accounts_allocate_uid(struct agent *a, const struct rule *rule, uid_t *ret)
{
	sqlite3_stmt *quarantine = NULL, *rows = NULL;
	struct uid_hint *hint = uid_hint_of(rule);
	uint64_t span = (uint64_t)rule->uid_max - rule->uid_min + 1, start = rule->uid_min;
	int64_t now = now_realtime();
	char buf[4096];
	int r;

	if (hint && hint->next == 0)
		hint->next = class_max_uid(a, rule) + 1;
	if (hint && hint->next >= rule->uid_min && hint->next <= rule->uid_max)
		start = hint->next;

	r = sql_prepare(a, "SELECT 1 FROM uid_quarantine WHERE uid = ?1 AND until > ?2",
			&quarantine);
	if (r == 0)
		r = sql_prepare(a, "SELECT state, home FROM ephemeral_accounts WHERE uid = ?1",
				&rows);
	for (uint64_t i = 0; r == 0 && i < span; i++) {
		uint64_t uid = rule->uid_min + (start - rule->uid_min + i) % span;
		struct passwd pw, *found = NULL;
		int e;

		r = store_uid_in_use(a->store, (uint32_t)uid);
		if (r == 0)
			r = uid_is_blocked(a, quarantine, rows, (uid_t)uid, now);
		if (r < 0)
			break;
		if (r > 0) {
			r = 0;
			continue;
		}
		/* Another NSS source (files, LDAP) may know the UID; a lookup
		 * that fails also keeps it, as it cannot be shown to be free. */
		e = getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &found);
		if (found || (e != 0 && e != ENOENT))
			continue;
		sqlite3_finalize(quarantine);
		sqlite3_finalize(rows);
		if (hint)
			hint->next = uid + 1;
		*ret = (uid_t)uid;
		return 0;
	}
	sqlite3_finalize(quarantine);
	sqlite3_finalize(rows);
	return r < 0 ? r : -EUSERS;
}

/* ---- Homes ---- */

/* Splits path into its directory and last component. */
static int path_split(const char *path, char *dir, size_t dir_size, const char **ret_name)
{
	const char *slash = strrchr(path, '/');

	if (!slash || slash == path || !name_is_valid(slash + 1) ||
	    (size_t)(slash - path) >= dir_size)
		return -EINVAL;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	*ret_name = slash + 1;
	return 0;
}

static int copy_data(int in, int out)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(in, buf, sizeof(buf))) > 0)
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));

			if (w < 0)
				return -errno;
			done += w;
		}
	return n < 0 ? -errno : 0;
}

/* Copies one skeleton entry of any type into dst. Files and directories
 * lose setuid, setgid and sticky bits; a symbolic link is copied as a link
 * and never followed. Other types are skipped. */
static int copy_tree(int src, int dst, uid_t uid, gid_t gid, int depth);

static int copy_entry(int src, int dst, const char *name, uid_t uid, gid_t gid, int depth)
{
	_cleanup_close_ int in = -1, out = -1;
	char target[PATH_MAX];
	struct stat st;
	ssize_t len;
	int r;

	if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) {
		len = readlinkat(src, name, target, sizeof(target) - 1);
		if (len < 0)
			return -errno;
		target[len] = '\0';
		if (symlinkat(target, dst, name) < 0 ||
		    fchownat(dst, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(dst, name, 0700) < 0)
			return -errno;
		in = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		out = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0 || out < 0)
			return -errno;
		r = copy_tree(in, out, uid, gid, depth + 1);
	} else if (S_ISREG(st.st_mode)) {
		in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (in < 0)
			return -errno;
		out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0)
			return -errno;
		r = copy_data(in, out);
	} else {
		log_warning("Skipping %s in the skeleton: not a file, directory or symbolic link",
			    name);
		return 0;
	}
	if (r < 0)
		return r;
	if (fchown(out, uid, gid) < 0 || fchmod(out, st.st_mode & 0777) < 0)
		return -errno;
	return 0;
}

static int copy_tree(int src, int dst, uid_t uid, gid_t gid, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	if (depth > COPY_DEPTH_MAX)
		return -ELOOP;
	fd = fcntl(src, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			r = copy_entry(src, dst, de->d_name, uid, gid, depth);
	closedir(d);
	return r;
}

/* Removes everything below dir without following symbolic links or
 * crossing into another file system (a mount point is left, with an
 * error). Returns 0 or the first error. */
static int remove_tree(int dir, dev_t dev, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = fcntl(dir, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct stat st;
		int sub, q = 0;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && r == 0)
				r = -errno;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(dir, de->d_name, 0) < 0 && errno != ENOENT && r == 0)
				r = -errno;
			continue;
		}
		if (st.st_dev != dev)
			q = -EXDEV;
		else if (depth >= REMOVE_DEPTH_MAX)
			q = -ELOOP;
		else {
			sub = openat(dir, de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				q = -errno;
			else {
				q = remove_tree(sub, dev, depth + 1);
				close(sub);
			}
		}
		if (q == 0 && unlinkat(dir, de->d_name, AT_REMOVEDIR) < 0)
			q = -errno;
		if (q < 0 && r == 0)
			r = q;
	}
	closedir(d);
	return r;
}

/* Makes the home of a new ephemeral account: mode 0700, the skeleton's
 * contents, owned by the account. The account name is new, so any entry
 * already at the path was not made by the agent for this lease, and is
 * rejected rather than taken over. Writes the directory's identity. */
static int home_create(const struct rule *rule, const struct lease *l, struct stat *ret)
{
	_cleanup_close_ int base = -1, home = -1, skeleton = -1;
	char base_path[MID_PATH_MAX + 1];
	const char *name;
	struct stat st = {0};
	bool made = false;
	int r;

	r = path_split(l->home, base_path, sizeof(base_path), &name);
	if (r < 0) {
		log_error("Invalid home %s for account %s", l->home, l->info.account);
		return r;
	}
	/* home_base comes from the policy and is trusted; only the
	 * account's own entry is opened without following links. */
	base = open(base_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (base < 0) {
		r = -errno;
		log_error("Failed to open home_base %s of class %s: %s", base_path, rule->name,
			  strerror(-r));
		return r;
	}
	if (mkdirat(base, name, 0700) < 0) {
		r = -errno;
		if (r == -EEXIST)
			log_error("Refusing home %s for account %s: the path already exists, "
				  "and mid did not create it; remove it if it is stale",
				  l->home, l->info.account);
		else
			log_error("Failed to create home %s: %s", l->home, strerror(-r));
		return r;
	}

	home = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (home < 0 || fstat(home, &st) < 0) {
		r = -errno;
		goto fail;
	}
	made = st.st_uid == geteuid();
	if (!made) {
		r = -EPERM;
		goto fail;
	}
	if (fchmod(home, 0700) < 0) {
		r = -errno;
		goto fail;
	}
	if (rule->skeleton) {
		skeleton = open(rule->skeleton, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = skeleton < 0 ? -errno : copy_tree(skeleton, home, l->info.uid, l->info.gid, 0);
		if (r < 0) {
			log_error("Failed to copy skeleton %s into %s: %s", rule->skeleton, l->home,
				  strerror(-r));
			goto fail;
		}
	}
	/* Last, so the account cannot reach the home before it is ready. */
	if (fchown(home, l->info.uid, l->info.gid) < 0) {
		r = -errno;
		goto fail;
	}
	*ret = st;
	return 0;
fail:
	log_error("Failed to set up home %s: %s", l->home, strerror(-r));
	/* Removes only what this call made: a directory that is not the
	 * agent's own was swapped in by someone else and is left alone. */
	if (made && remove_tree(home, st.st_dev, 0) < 0)
		log_error("Failed to remove the partly made home %s", l->home);
	if (made || home < 0)
		(void)unlinkat(base, name, AT_REMOVEDIR);
	return r;
}

/* Removes the home the agent made for row. Returns 0 when it is gone, 1
 * when the path now names something else, which is left alone, or -errno
 * to retry later. */
static int home_remove(const struct account_row *row)
{
	_cleanup_close_ int base = -1, home = -1;
	char base_path[MID_PATH_MAX + 1];
	const char *name;
	struct stat st, again;
	int r;

	if (!row->home[0])
		return 0;
	r = path_split(row->home, base_path, sizeof(base_path), &name);
	if (r < 0)
		return 1;
	base = open(base_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (base < 0)
		return errno == ENOENT ? 0 : -errno;
	home = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (home < 0) {
		if (errno == ENOENT)
			return 0;
		return errno == ELOOP || errno == ENOTDIR ? 1 : -errno;
	}
	if (fstat(home, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_dev != row->home_dev || (uint64_t)st.st_ino != row->home_ino)
		return 1;

	r = remove_tree(home, st.st_dev, 0);
	if (r < 0)
		return r;
	/* The name must still be the same directory when it is removed. */
	if (fstatat(base, name, &again, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (again.st_dev != st.st_dev || again.st_ino != st.st_ino)
		return 1;
	return unlinkat(base, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int accounts_on_issue(struct agent *a, const struct rule *rule, const struct lease *l)
{
	struct account_row row = {
		.uid = l->info.uid,
		.gid = l->info.gid,
		.state = ACCOUNT_LIVE,
	};
	struct stat st = {0};
	int r;

	snprintf(row.account, sizeof(row.account), "%s", l->info.account);
	snprintf(row.lease, sizeof(row.lease), "%s", l->info.lease);
	snprintf(row.class_name, sizeof(row.class_name), "%s", rule->name);
	if (rule->create_home) {
		r = home_create(rule, l, &st);
		if (r < 0)
			return r;
		snprintf(row.home, sizeof(row.home), "%s", l->home);
		row.home_dev = (uint64_t)st.st_dev;
		row.home_ino = (uint64_t)st.st_ino;
	}

	r = store_begin(a->store);
	if (r == 0)
		r = account_insert(a, &row, false);
	r = store_end(a->store, r);
	if (r < 0) {
		log_error("Failed to record ephemeral account %s: %s", row.account, strerror(-r));
		if (row.home[0] && home_remove(&row) != 0)
			log_error("Failed to remove home %s; remove it by hand", row.home);
		return r;
	}
	if (row.home[0])
		log_event(LOG_INFO,
			  &(struct log_fields){.message_id = MID_MESSAGE_ACCOUNT,
					       .account = row.account,
					       .lease = row.lease,
					       .peer_uid = -1},
			  "Created home %s for account %s (UID %u)", row.home, row.account,
			  (unsigned)row.uid);
	return 0;
}

/* ---- Cleanup ---- */

/* Reads the real, effective, saved and file system UIDs and the state of
 * a process from /proc/PID/status. */
static int proc_status_read(pid_t pid, uid_t uids[4], char *ret_state)
{
	char path[64], buf[4096];
	const char *line;
	unsigned u[4];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	line = strstr(buf, "\nState:");
	if (!line || sscanf(line + 7, " %c", ret_state) != 1)
		return -EBADMSG;
	line = strstr(buf, "\nUid:");
	if (!line || sscanf(line + 5, "%u %u %u %u", &u[0], &u[1], &u[2], &u[3]) != 4)
		return -EBADMSG;
	for (int i = 0; i < 4; i++)
		uids[i] = (uid_t)u[i];
	return 0;
}

/* Sends SIGKILL, through a pidfd, to each process with uid among its
 * UIDs, and waits for them to exit. The pidfd is opened before the UIDs
 * are read, so a PID reused in between only wastes a signal. Rounds
 * repeat until a scan finds none. Returns the number killed, or -EBUSY
 * when processes remain. */
static int uid_kill(uid_t uid)
{
	int killed = 0;

	if (uid == 0 || uid == geteuid())
		return -EPERM;
	for (int round = 0; round < KILL_ROUNDS; round++) {
		struct pollfd *fds = NULL;
		size_t n = 0;
		struct dirent *de;
		DIR *d = opendir("/proc");

		if (!d)
			return -errno;
		while ((de = readdir(d))) {
			char *end, state;
			long pid = strtol(de->d_name, &end, 10);
			uid_t uids[4];
			struct pollfd *grown;
			long fd;

			if (*end || pid <= 1)
				continue;
			fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
			if (fd < 0)
				continue;
			bool dead, match;

			if (proc_status_read((pid_t)pid, uids, &state) < 0) {
				close((int)fd);
				continue;
			}
			dead = state == 'Z' || state == 'X';
			match = uids[0] == uid || uids[1] == uid || uids[2] == uid ||
				uids[3] == uid;
			if (dead || !match) {
				close((int)fd);
				continue;
			}
			grown = realloc(fds, (n + 1) * sizeof(*grown));
			if (!grown) {
				close((int)fd);
				continue;
			}
			fds = grown;
			fds[n++] = (struct pollfd){.fd = (int)fd, .events = POLLIN};
			if (syscall(SYS_pidfd_send_signal, (int)fd, SIGKILL, NULL, 0) == 0)
				killed++;
		}
		closedir(d);
		if (n == 0) {
			free(fds);
			return killed;
		}
		/* A pidfd turns readable when its process exits. */
		for (size_t i = 0; i < n; i++) {
			(void)poll(&fds[i], 1, KILL_WAIT_MS);
			close(fds[i].fd);
		}
		free(fds);
	}
	return -EBUSY;
}

/* Describes what cleanup did with the home, for the audit record. */
static const char *home_outcome(const struct account_row *row, int removed)
{
	if (!row->home[0])
		return "none";
	if (removed > 0)
		return "left in place";
	return "removed";
}

/* Finishes one account whose lease ended, unless sessions still run.
 * Returns 0 when done, -EAGAIN while sessions remain, or -errno. */
static int cleanup_run(struct agent *a, const struct account_row *row)
{
	const struct rule *rule = policy_find_class(a->policy, row->class_name);
	uint64_t quarantine = rule ? rule->quarantine : FALLBACK_QUARANTINE;
	char detail[MID_TEXT_MAX + 1];
	int64_t now, until;
	sqlite3_stmt *st;
	int killed, home, r;

	r = account_sessions_remaining(a, row->account);
	if (r != 0)
		return r < 0 ? r : -EAGAIN;
	killed = uid_kill(row->uid);
	if (killed < 0) {
		log_warning("Failed to end every process of UID %u (account %s): %s; "
			    "retrying later",
			    (unsigned)row->uid, row->account, strerror(-killed));
		return killed;
	}
	home = home_remove(row);
	if (home < 0) {
		log_warning("Failed to remove home %s of account %s: %s; retrying later", row->home,
			    row->account, strerror(-home));
		return home;
	}
	if (home > 0)
		log_error("Left %s in place: it is no longer the directory mid created for account "
			  "%s. UID %u is not reused while it is there and owned by that UID",
			  row->home, row->account, (unsigned)row->uid);

	now = now_realtime();
	until = now + (int64_t)quarantine;
	snprintf(detail, sizeof(detail), "uid=%u processes_killed=%d home=%s quarantine_until=%lld",
		 (unsigned)row->uid, killed, home_outcome(row, home), (long long)until);

	r = store_begin(a->store);
	if (r < 0)
		return r;
	r = sql_prepare(a,
			"INSERT INTO uid_quarantine (uid, until) VALUES (?1, ?2) "
			"ON CONFLICT(uid) DO UPDATE SET until = max(until, excluded.until)",
			&st);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, row->uid);
		sqlite3_bind_int64(st, 2, until);
		r = sql_step_done(a, st, "quarantine a UID");
	}
	if (r == 0 && home > 0) {
		r = account_set_state(a, row->account, ACCOUNT_CLEANUP, ACCOUNT_HOME_LEFT);
		r = r < 0 ? r : 0;
	} else if (r == 0) {
		r = sql_prepare(a, "DELETE FROM ephemeral_accounts WHERE account = ?1", &st);
		if (r == 0) {
			sqlite3_bind_text(st, 1, row->account, -1, SQLITE_STATIC);
			r = sql_step_done(a, st, "remove an ephemeral account");
		}
	}
	if (r == 0)
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = "account-cleanup",
							      .account = row->account,
							      .lease = row->lease,
							      .peer_uid = -1,
							      .detail = detail});
	r = store_end(a->store, r);
	if (r < 0)
		return r;
	log_event(LOG_INFO,
		  &(struct log_fields){.message_id = MID_MESSAGE_ACCOUNT,
				       .account = row->account,
				       .lease = row->lease,
				       .peer_uid = -1},
		  "Cleaned up account %s: %d processes killed, home %s, UID %u quarantined for %llus",
		  row->account, killed, home_outcome(row, home), (unsigned)row->uid,
		  (unsigned long long)quarantine);
	return 0;
}

static int on_retry_timer(sd_event_source *source, uint64_t usec, void *userdata);

static void retry_arm(uint64_t delay_usec)
{
	int r;

	if (!accounts.retry_timer) {
		r = sd_event_add_time_relative(accounts.event, &accounts.retry_timer,
					       CLOCK_MONOTONIC, delay_usec, 100000, on_retry_timer,
					       NULL);
	} else {
		uint64_t next = 0, now = 0;
		int enabled = SD_EVENT_OFF;

		/* Keep an earlier retry that is already armed. */
		(void)sd_event_source_get_enabled(accounts.retry_timer, &enabled);
		(void)sd_event_source_get_time(accounts.retry_timer, &next);
		(void)sd_event_now(accounts.event, CLOCK_MONOTONIC, &now);
		if (enabled != SD_EVENT_OFF && next <= now + delay_usec)
			return;
		r = sd_event_source_set_time_relative(accounts.retry_timer, delay_usec);
		if (r >= 0)
			r = sd_event_source_set_enabled(accounts.retry_timer, SD_EVENT_ONESHOT);
	}
	if (r < 0)
		log_error("Failed to arm the account cleanup timer: %s", strerror(-r));
}

/* Runs cleanup for row and plans a retry when it cannot finish: soon
 * while sessions are ending, with a growing delay after a failure. */
static void cleanup_attempt(struct agent *a, const struct account_row *row)
{
	uint64_t delay;
	int r = cleanup_run(a, row);

	if (r == 0)
		return;
	if (r == -EAGAIN) {
		log_debug("Cleanup of account %s waits for its sessions to end", row->account);
		retry_arm(RETRY_SESSIONS_USEC);
		return;
	}
	(void)account_count_attempt(a, row->account);
	delay = RETRY_FIRST_USEC << (row->attempts < 6 ? row->attempts : 6);
	retry_arm(delay < RETRY_MAX_USEC ? delay : RETRY_MAX_USEC);
}

static int on_retry_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	_cleanup_free_ struct account_row *rows = NULL;
	size_t n = 0;
	int r;

	r = accounts_select(accounts.agent, ACCOUNT_CLEANUP, &rows, &n);
	if (r < 0) {
		retry_arm(RETRY_FIRST_USEC);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		cleanup_attempt(accounts.agent, &rows[i]);
	return 0;
}

/* Callers publish the NSS cache without the account before this runs, so
 * no new login can start as the account while it is cleaned up. */
void accounts_on_lease_end(struct agent *a, const struct lease *l)
{
	struct account_row row = {
		.uid = l->info.uid,
		.gid = l->info.gid,
		.state = ACCOUNT_CLEANUP,
	};
	_cleanup_free_ struct account_row *rows = NULL;
	size_t n = 0;
	int r;

	r = account_set_state(a, l->info.account, ACCOUNT_LIVE, ACCOUNT_CLEANUP);
	if (r == 0) {
		/* No live row: a lease issued before the agent recorded
		 * accounts. Its processes and UID are still cleaned up. */
		snprintf(row.account, sizeof(row.account), "%s", l->info.account);
		snprintf(row.lease, sizeof(row.lease), "%s", l->info.lease);
		snprintf(row.class_name, sizeof(row.class_name), "%s", l->info.class_name);
		r = account_insert(a, &row, true);
	}
	if (r < 0) {
		log_error("Failed to start the cleanup of account %s: %s; it runs at the next "
			  "start",
			  l->info.account, strerror(-r));
		return;
	}

	r = accounts_select(a, ACCOUNT_CLEANUP, &rows, &n);
	if (r < 0) {
		retry_arm(RETRY_FIRST_USEC);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].account, l->info.account) == 0)
			cleanup_attempt(a, &rows[i]);
}

static int on_event_exit(sd_event_source *source, void *userdata)
{
	accounts.retry_timer = sd_event_source_disable_unref(accounts.retry_timer);
	accounts.event = sd_event_unref(accounts.event);
	return 0;
}

/* Marks for cleanup the accounts whose lease ended while the agent was
 * stopped before their cleanup started. A lease that is live in the store
 * but due ends through the expiry timer. */
static int accounts_reconcile(struct agent *a)
{
	_cleanup_free_ struct account_row *rows = NULL;
	size_t n = 0;
	int r;

	r = accounts_select(a, ACCOUNT_LIVE, &rows, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct lease l;

		r = store_lease_get(a->store, rows[i].lease, &l);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0 && l.info.state == MID_LEASE_LIVE)
			continue;
		r = account_set_state(a, rows[i].account, ACCOUNT_LIVE, ACCOUNT_CLEANUP);
		if (r < 0)
			return r;
	}
	return 0;
}

int accounts_init(struct agent *a)
{
	_cleanup_free_ struct account_row *rows = NULL;
	char *err = NULL;
	size_t n = 0;
	int r;

	if (sqlite3_exec(store_db(a->store), accounts_schema, NULL, NULL, &err) != SQLITE_OK) {
		log_error("Failed to create the ephemeral account tables: %s", err ? err : "?");
		sqlite3_free(err);
		return -EIO;
	}
	accounts.agent = a;
	r = sd_event_default(&accounts.event);
	if (r >= 0)
		r = sd_event_add_exit(accounts.event, NULL, on_event_exit, NULL);
	if (r < 0) {
		log_error("Failed to set up the event loop for account cleanup: %s", strerror(-r));
		return r;
	}

	r = accounts_reconcile(a);
	if (r == 0)
		r = accounts_select(a, ACCOUNT_CLEANUP, &rows, &n);
	if (r < 0)
		return r;
	/* The first run waits for the event loop, by when the NSS cache is
	 * published without the ended accounts. */
	if (n > 0) {
		log_info("%zu ephemeral accounts wait for cleanup", n);
		retry_arm(0);
	}
	return 0;
}
