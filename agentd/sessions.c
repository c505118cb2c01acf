/* Sessions opened with a lease: registration by pam_mid, the max_sessions
 * limit, warnings on the session's terminal before the lease ends, and the
 * session's end when the lease ends, through logind or by signals. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "duration.h"
#include "log.h"
#include "names.h"

#define SESSION_ID_BYTES 8 /* shown as 16 hex digits */
#define SESSION_ID_LEN (2 * SESSION_ID_BYTES)
/* Seconds between SIGTERM and SIGKILL for a lease whose rule the policy
 * dropped; the same default as policy.c gives the grace setting. */
#define FALLBACK_GRACE 10
#define LOGIND_TIMEOUT_USEC (1000 * 1000)
#define BOOT_ID_LEN 36
#define PTS_MAJOR_FIRST 136 /* UNIX98 pseudo-terminal slaves: majors 136-143 */
#define PTS_MAJOR_LAST 143
#define VT_MAJOR 4 /* /dev/tty1 to /dev/tty63 */

/* Sessions are kept after they end, for the audit trail and for midctl.
 * pid_start is the process start time from /proc/PID/stat (clock ticks
 * after boot) and boot_id the boot it counts from: together with pid they
 * name one process, so a reused PID never matches. kill_at is the Unix
 * time of the SIGKILL while a termination runs, and NULL otherwise.
 * accounts.c reads state and kill_at to wait for sessions to end. */
static const char sessions_schema[] =
	"CREATE TABLE IF NOT EXISTS sessions ("
	"  id TEXT PRIMARY KEY,"
	"  account TEXT NOT NULL,"
	"  lease TEXT NOT NULL,"
	"  service TEXT NOT NULL DEFAULT '',"
	"  rhost TEXT NOT NULL DEFAULT '',"
	"  tty TEXT NOT NULL DEFAULT '',"
	"  logind_id TEXT NOT NULL DEFAULT '',"
	"  boot_id TEXT NOT NULL,"
	"  requester_uid INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  pid_start INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  ended_at INTEGER,"
	"  kill_at INTEGER);"
	"CREATE INDEX IF NOT EXISTS sessions_lease ON sessions(lease, state);"
	"CREATE INDEX IF NOT EXISTS sessions_account ON sessions(account, state);";

#define SESSION_COLUMNS                                                                            \
	"id, account, lease, service, rhost, tty, logind_id, boot_id, requester_uid, uid, pid, "   \
	"pid_start, started_at, state, kill_at"

struct session {
	char id[MID_ID_MAX + 1];
	char account[MID_NAME_MAX + 1];
	char lease[MID_LEASE_ID_MAX + 1];
	char service[MID_SERVICE_MAX + 1];
	char rhost[MID_HOST_MAX + 1];
	char tty[MID_TTY_MAX + 1];
	char logind_id[MID_NAME_MAX + 1];
	char boot_id[BOOT_ID_LEN + 1];
	uint32_t requester_uid;
	uint32_t uid; /* the account's, for checking the terminal's owner */
	pid_t pid;
	uint64_t pid_start;
	int64_t started_at;
	uint8_t state; /* enum mid_session_state */
	int64_t kill_at;
};

/* One process from /proc/PID/stat. */
struct proc_info {
	pid_t pid;
	pid_t ppid;
	pid_t pgrp;
	pid_t sid;
	unsigned tty_nr;
	uint64_t start_time;
	char state;
};

/* Processes held by pidfd, each checked against its start time when it
 * was opened. */
struct proc_member {
	pid_t pid;
	uint64_t start_time;
	int fd;
};

struct proc_set {
	struct proc_member *members;
	size_t n;
};

/* The event sources of an open session: a watch on its process's pidfd
 * that notices the process exit, and the timer of its next warning. */
struct tracked {
	struct tracked *next;
	char id[MID_ID_MAX + 1];
	sd_event_source *exit_source;
	sd_event_source *warn_timer;
	int64_t deadline;
	enum on_expiry on_expiry;
	uint64_t *warn_before; /* seconds before deadline, descending */
	size_t n_warn_before;
	size_t next_warning;
};

/* A termination waiting for its grace period to end in SIGKILL. */
struct termination {
	struct termination *next;
	char id[MID_ID_MAX + 1];
	struct proc_set procs;
	sd_event_source *timer;
};

/* The module's state. event is a reference to the agent's default event
 * loop, taken in sessions_init before main.c creates the loop: the same
 * object, because sd_event_default() returns one loop per thread. */
static struct {
	struct agent *agent;
	sd_event *event;
	struct tracked *tracked;
	struct termination *terminations;
	char boot_id[BOOT_ID_LEN + 1];
} registry;

static bool session_id_is_valid(const char *id)
{
	size_t len = strlen(id);

	if (len != SESSION_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

/* XDG_SESSION_ID as logind makes it: letters and digits. */
static bool logind_id_is_valid(const char *id)
{
	for (const char *p = id; *p; p++) {
		bool alnum = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
			     (*p >= 'A' && *p <= 'Z');

		if (!alnum)
			return false;
	}
	return true;
}

/* ---- Processes ---- */

static int pidfd_open_raw(pid_t pid)
{
	long fd = syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -errno : (int)fd;
}

static int pidfd_signal(int fd, int sig)
{
	return syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0 ? -errno : 0;
}

static int read_small_file(int dir_fd, const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

/* Parses /proc/PID/stat. The command name in field 2 may hold spaces and
 * parentheses, so the fields after it are found from its last ')'. */
static int proc_info_read(pid_t pid, struct proc_info *ret)
{
	char path[64], buf[1024];
	unsigned long long start_time;
	struct proc_info info = {.pid = pid};
	const char *p;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = read_small_file(AT_FDCWD, path, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	p = strrchr(buf, ')');
	if (!p)
		return -EBADMSG;
	/* Fields 3 to 8, then 9 to 21 skipped, then starttime (22). */
	if (sscanf(p + 1,
		   " %c %d %d %d %u %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &info.state, &info.ppid, &info.pgrp, &info.sid, &info.tty_nr, &start_time) != 6)
		return -EBADMSG;
	info.start_time = start_time;
	*ret = info;
	return 0;
}

/* Reads the real UID of a process from /proc/PID/status. */
static int proc_uid_read(pid_t pid, uid_t *ret)
{
	char path[64], buf[4096];
	unsigned uid;
	const char *line;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	r = read_small_file(AT_FDCWD, path, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	line = strstr(buf, "\nUid:");
	if (!line || sscanf(line + 5, "%u", &uid) != 1)
		return -EBADMSG;
	*ret = (uid_t)uid;
	return 0;
}

static const char *boot_id_get(void)
{
	char buf[64];

	if (registry.boot_id[0])
		return registry.boot_id;
	if (read_small_file(AT_FDCWD, "/proc/sys/kernel/random/boot_id", buf, sizeof(buf)) > 0)
		snprintf(registry.boot_id, sizeof(registry.boot_id), "%.*s", BOOT_ID_LEN, buf);
	return registry.boot_id;
}

static bool proc_is_dead(const struct proc_info *info)
{
	return info->state == 'Z' || info->state == 'X' || info->state == 'x';
}

/* Opens a pidfd for pid when it still is the process that started at
 * start_time. Opening first and checking after means the pidfd cannot
 * refer to a process that took the PID over later. Returns the fd, or
 * -ESRCH when that process is gone. */
static int pidfd_open_checked(pid_t pid, uint64_t start_time)
{
	struct proc_info info;
	int fd = pidfd_open_raw(pid);

	if (fd < 0)
		return fd == -ESRCH ? -ESRCH : fd;
	if (proc_info_read(pid, &info) < 0 || info.start_time != start_time ||
	    proc_is_dead(&info)) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

static int session_pidfd_open(const struct session *s)
{
	if (strcmp(s->boot_id, boot_id_get()) != 0)
		return -ESRCH;
	return pidfd_open_checked(s->pid, s->pid_start);
}

static bool proc_set_contains(const struct proc_set *set, pid_t pid)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->members[i].pid == pid)
			return true;
	return false;
}

/* Adds a member and takes over fd, also when adding fails. */
static int proc_set_add(struct proc_set *set, pid_t pid, uint64_t start_time, int fd)
{
	struct proc_member *grown = realloc(set->members, (set->n + 1) * sizeof(*grown));

	if (!grown) {
		close(fd);
		return -ENOMEM;
	}
	set->members = grown;
	set->members[set->n++] =
		(struct proc_member){.pid = pid, .start_time = start_time, .fd = fd};
	return 0;
}

static void proc_set_free(struct proc_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		close(set->members[i].fd);
	free(set->members);
	*set = (struct proc_set){0};
}

static void proc_set_signal(const struct proc_set *set, int sig)
{
	for (size_t i = 0; i < set->n; i++)
		(void)pidfd_signal(set->members[i].fd, sig);
}

/* Reads every process in /proc. The caller frees *ret. */
static int proc_scan(struct proc_info **ret, size_t *ret_n)
{
	struct proc_info *all = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		if (n == cap) {
			size_t new_cap = cap ? cap * 2 : 256;
			struct proc_info *grown = realloc(all, new_cap * sizeof(*grown));

			if (!grown) {
				free(all);
				closedir(d);
				return -ENOMEM;
			}
			all = grown;
			cap = new_cap;
		}
		if (proc_info_read((pid_t)pid, &all[n]) == 0 && !proc_is_dead(&all[n]))
			n++;
	}
	closedir(d);
	*ret = all;
	*ret_n = n;
	return 0;
}

static const struct proc_info *proc_find(const struct proc_info *all, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (all[i].pid == pid)
			return &all[i];
	return NULL;
}

/* The agent and its ancestors are never signalled, whatever a session
 * registered: the agent's parent may be a test or a service manager. */
static bool proc_is_protected(const struct proc_info *all, size_t n, pid_t pid)
{
	const struct proc_info *p;

	if (pid <= 1)
		return true;
	for (pid_t cur = getpid(); cur > 1; cur = p->ppid) {
		if (cur == pid)
			return true;
		p = proc_find(all, n, cur);
		if (!p)
			break;
	}
	return false;
}

/* Adds to set every live descendant of its members and, when root leads
 * its process group or session, the other members of that group or
 * session. root may be NULL. sshd's privileged child, which runs PAM,
 * leads a session whose members keep the network connection open, and
 * the user's command runs below it in a session of its own. */
static int proc_set_expand(struct proc_set *set, const struct proc_info *root)
{
	struct proc_info *all = NULL;
	size_t n = 0;
	bool changed = true;
	int r;

	r = proc_scan(&all, &n);
	if (r < 0)
		return r;
	while (changed) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			const struct proc_info *p = &all[i];
			bool in_group = root && root->pgrp == root->pid && p->pgrp == root->pid;
			bool in_session = root && root->sid == root->pid && p->sid == root->pid;
			int fd;

			if (proc_set_contains(set, p->pid) || proc_is_protected(all, n, p->pid))
				continue;
			if (!in_group && !in_session && !proc_set_contains(set, p->ppid))
				continue;
			fd = pidfd_open_checked(p->pid, p->start_time);
			if (fd < 0)
				continue;
			r = proc_set_add(set, p->pid, p->start_time, fd);
			if (r < 0)
				goto out;
			changed = true;
		}
	}
	r = 0;
out:
	free(all);
	return r;
}

/* ---- The sessions table ---- */

static void copy_column(sqlite3_stmt *st, int col, char *out, size_t size)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	snprintf(out, size, "%s", text ? text : "");
}

static void session_from_row(sqlite3_stmt *st, struct session *s)
{
	memset(s, 0, sizeof(*s));
	copy_column(st, 0, s->id, sizeof(s->id));
	copy_column(st, 1, s->account, sizeof(s->account));
	copy_column(st, 2, s->lease, sizeof(s->lease));
	copy_column(st, 3, s->service, sizeof(s->service));
	copy_column(st, 4, s->rhost, sizeof(s->rhost));
	copy_column(st, 5, s->tty, sizeof(s->tty));
	copy_column(st, 6, s->logind_id, sizeof(s->logind_id));
	copy_column(st, 7, s->boot_id, sizeof(s->boot_id));
	s->requester_uid = (uint32_t)sqlite3_column_int64(st, 8);
	s->uid = (uint32_t)sqlite3_column_int64(st, 9);
	s->pid = (pid_t)sqlite3_column_int64(st, 10);
	s->pid_start = (uint64_t)sqlite3_column_int64(st, 11);
	s->started_at = sqlite3_column_int64(st, 12);
	s->state = (uint8_t)sqlite3_column_int64(st, 13);
	s->kill_at = sqlite3_column_int64(st, 14);
}

/* Reads the sessions matching `where`, an SQL condition in which ?1 is
 * bound to text (when set) and ?2 to number. The caller frees *ret. */
static int sessions_select(struct agent *a, const char *where, const char *text, int64_t number,
			   struct session **ret, size_t *ret_n)
{
	_cleanup_free_ char *sql = NULL;
	struct session *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, r = 0;

	if (asprintf(&sql, "SELECT " SESSION_COLUMNS " FROM sessions WHERE %s", where) < 0)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(store_db(a->store), sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "read sessions");
	if (text)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, number);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t new_cap = cap ? cap * 2 : 8;
			struct session *grown = realloc(rows, new_cap * sizeof(*grown));

			if (!grown) {
				r = -ENOMEM;
				break;
			}
			rows = grown;
			cap = new_cap;
		}
		session_from_row(st, &rows[n++]);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_error(a->store, rc, "read sessions");
	sqlite3_finalize(st);
	if (r < 0) {
		free(rows);
		return r;
	}
	*ret = rows;
	*ret_n = n;
	return 0;
}

/* Returns 0 with the session in *ret, or -ENOENT. */
static int session_get(struct agent *a, const char *id, struct session *ret)
{
	_cleanup_free_ struct session *rows = NULL;
	size_t n = 0;
	int r;

	r = sessions_select(a, "id = ?1", id, 0, &rows, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return -ENOENT;
	*ret = rows[0];
	return 0;
}

static int session_insert(struct agent *a, const struct session *s)
{
	static const char sql[] =
		"INSERT INTO sessions (" SESSION_COLUMNS ") "
		"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)";
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(store_db(a->store), sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "record a session");
	sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s->lease, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, s->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, s->rhost, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, s->tty, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, s->logind_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, s->boot_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, s->requester_uid);
	sqlite3_bind_int64(st, 10, s->uid);
	sqlite3_bind_int64(st, 11, s->pid);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)s->pid_start);
	sqlite3_bind_int64(st, 13, s->started_at);
	sqlite3_bind_int64(st, 14, s->state);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_error(a->store, rc, "record a session");
}

/* Sets state, ended_at and kill_at (0 stores NULL) of session id. */
static int session_update(struct agent *a, const char *id, uint8_t state, int64_t ended_at,
			  int64_t kill_at)
{
	static const char sql[] =
		"UPDATE sessions SET state = ?2, ended_at = ?3, kill_at = ?4 WHERE id = ?1";
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(store_db(a->store), sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "update a session");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, state);
	if (ended_at)
		sqlite3_bind_int64(st, 3, ended_at);
	if (kill_at)
		sqlite3_bind_int64(st, 4, kill_at);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_error(a->store, rc, "update a session");
}

static int session_clear_kill(struct agent *a, const char *id)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(store_db(a->store),
				"UPDATE sessions SET kill_at = NULL WHERE id = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_error(a->store, rc, "update a session");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_error(a->store, rc, "update a session");
}

/* Inserts s (insert) or sets its state and kill_at, and appends one audit
 * record about it, in one transaction. */
static int session_commit(struct agent *a, const struct session *s, uint8_t state,
			  int64_t kill_at, bool insert, const char *event, long long peer_uid,
			  const char *detail)
{
	int64_t now = now_realtime();
	int r;

	r = store_begin(a->store);
	if (r < 0)
		return r;
	if (insert)
		r = session_insert(a, s);
	else
		r = session_update(a, s->id, state, state == MID_SESSION_OPEN ? 0 : now, kill_at);
	if (r == 0)
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = event,
							      .account = s->account,
							      .lease = s->lease,
							      .peer_uid = peer_uid,
							      .detail = detail});
	return store_end(a->store, r);
}

/* ---- Event sources of open sessions ---- */

static struct tracked *tracked_find(const char *id)
{
	for (struct tracked *t = registry.tracked; t; t = t->next)
		if (strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

static void tracked_free(struct tracked *t)
{
	sd_event_source_disable_unref(t->exit_source);
	sd_event_source_disable_unref(t->warn_timer);
	free(t->warn_before);
	free(t);
}

static void untrack(const char *id)
{
	for (struct tracked **p = &registry.tracked; *p; p = &(*p)->next)
		if (strcmp((*p)->id, id) == 0) {
			struct tracked *t = *p;

			*p = t->next;
			tracked_free(t);
			return;
		}
}

static void session_mark_closed(struct agent *a, const struct session *s, const char *why)
{
	char detail[MID_TEXT_MAX + 1];
	int r;

	untrack(s->id);
	snprintf(detail, sizeof(detail), "session=%s pid=%d %s", s->id, (int)s->pid, why);
	r = session_commit(a, s, MID_SESSION_CLOSED, 0, false, "session-close", -1, detail);
	if (r < 0)
		log_error("Failed to record the end of session %s: %s", s->id, strerror(-r));
	log_event(LOG_INFO,
		  &(struct log_fields){.message_id = MID_MESSAGE_SESSION,
				       .account = s->account,
				       .lease = s->lease,
				       .service = s->service,
				       .rhost = s->rhost,
				       .reason = why,
				       .peer_uid = -1},
		  "Session %s of account %s closed: %s", s->id, s->account, why);
}

static int on_session_exit(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct tracked *t = userdata;
	struct session s;

	if (session_get(registry.agent, t->id, &s) < 0 || s.state != MID_SESSION_OPEN) {
		untrack(t->id);
		return 0;
	}
	/* Frees t. */
	session_mark_closed(registry.agent, &s, "process exited without closing the session");
	return 0;
}

/* Returns the device path of the session's terminal in path, and in
 * *ret_rdev the device number it must have (0: any). PAM_TTY names the
 * terminal for a login on a console, but sshd opens the PAM session before
 * it allocates a pty and passes "ssh", so then the terminal is the
 * controlling terminal of a process below the session's process. */
static int session_tty_find(const struct session *s, char *path, size_t size, dev_t *ret_rdev)
{
	static const char *const prefixes[] = {"/dev/pts/", "pts/", "/dev/tty", "tty"};
	struct proc_set set = {0};
	int fd, r;

	for (size_t i = 0; i < MID_ELEMENTSOF(prefixes); i++) {
		size_t len = strlen(prefixes[i]);
		const char *rest = s->tty + len;
		bool digits_only = i < 2, ok = strncmp(s->tty, prefixes[i], len) == 0 && *rest;

		for (const char *p = rest; ok && *p; p++) {
			bool letter = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');

			ok = (*p >= '0' && *p <= '9') || (!digits_only && letter);
		}
		if (!ok)
			continue;
		snprintf(path, size, "%s%s", s->tty[0] == '/' ? "" : "/dev/", s->tty);
		*ret_rdev = 0;
		return 0;
	}

	fd = session_pidfd_open(s);
	if (fd < 0)
		return fd;
	r = proc_set_add(&set, s->pid, s->pid_start, fd);
	if (r == 0)
		r = proc_set_expand(&set, NULL);
	for (size_t i = 0; r == 0 && i < set.n; i++) {
		struct proc_info p;
		unsigned major, minor;

		if (proc_info_read(set.members[i].pid, &p) < 0 || p.tty_nr == 0)
			continue;
		major = (p.tty_nr >> 8) & 0xfff;
		minor = (p.tty_nr & 0xff) | ((p.tty_nr >> 12) & 0xfff00);
		if (major >= PTS_MAJOR_FIRST && major <= PTS_MAJOR_LAST)
			snprintf(path, size, "/dev/pts/%u",
				 (major - PTS_MAJOR_FIRST) * 256 + minor);
		else if (major == VT_MAJOR && minor >= 1 && minor <= 63)
			snprintf(path, size, "/dev/tty%u", minor);
		else
			continue;
		*ret_rdev = makedev(major, minor);
		proc_set_free(&set);
		return 0;
	}
	proc_set_free(&set);
	return r < 0 ? r : -ENOTTY;
}

/* Writes text to the session's terminal, which must be a character device
 * owned by the session's account. Never blocks: a full terminal loses the
 * message. */
static int session_tty_write(const struct session *s, const char *text)
{
	char path[MID_TTY_MAX + sizeof("/dev/")];
	_cleanup_close_ int fd = -1;
	dev_t rdev = 0;
	struct stat st;
	ssize_t n;
	int r;

	r = session_tty_find(s, path, sizeof(path), &rdev);
	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode) || st.st_uid != s->uid || (rdev && st.st_rdev != rdev))
		return -EPERM;
	n = write(fd, text, strlen(text));
	if (n < 0)
		return -errno;
	return n == (ssize_t)strlen(text) ? 0 : -EAGAIN;
}

static void session_notify(const struct session *s, const char *text)
{
	int r = session_tty_write(s, text);

	if (r == -ENOTTY)
		log_debug("Session %s has no terminal to warn", s->id);
	else if (r < 0)
		log_warning("Failed to write a warning to the terminal of session %s: %s", s->id,
			    strerror(-r));
}

static void warning_send(const struct session *s, int64_t deadline, enum on_expiry on_expiry)
{
	char text[512], left[32], when[32];
	int64_t now = now_realtime();
	time_t t = (time_t)deadline;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%H:%M:%S UTC", &tm);
	duration_format(deadline > now ? (uint64_t)(deadline - now) : 0, left, sizeof(left));
	snprintf(text, sizeof(text),
		 "\r\n[mid] Lease %s of account %s ends in %s, at %s. %s\r\n", s->lease, s->account,
		 left, when,
		 on_expiry == ON_EXPIRY_TERMINATE
			 ? "This session will be terminated then; renew the lease to keep it."
			 : "This session keeps running, but without a lease.");
	session_notify(s, text);
	log_info("Warned session %s of account %s: lease %s ends in %s", s->id, s->account,
		 s->lease, left);
}

static int warning_arm_next(struct tracked *t);

static int on_warn_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct tracked *t = userdata;
	struct session s;

	if (session_get(registry.agent, t->id, &s) == 0 && s.state == MID_SESSION_OPEN)
		warning_send(&s, t->deadline, t->on_expiry);
	t->next_warning++;
	(void)warning_arm_next(t);
	return 0;
}

/* Arms the timer for the first warning still ahead, or stops it. */
static int warning_arm_next(struct tracked *t)
{
	int64_t now = now_realtime();
	uint64_t usec;
	int r;

	while (t->next_warning < t->n_warn_before &&
	       t->deadline - (int64_t)t->warn_before[t->next_warning] <= now)
		t->next_warning++;
	if (t->next_warning >= t->n_warn_before) {
		if (t->warn_timer)
			(void)sd_event_source_set_enabled(t->warn_timer, SD_EVENT_OFF);
		return 0;
	}

	usec = (uint64_t)(t->deadline - (int64_t)t->warn_before[t->next_warning]) * 1000000u;
	if (!t->warn_timer)
		r = sd_event_add_time(registry.event, &t->warn_timer, CLOCK_REALTIME, usec, 1000,
				      on_warn_timer, t);
	else {
		r = sd_event_source_set_time(t->warn_timer, usec);
		if (r >= 0)
			r = sd_event_source_set_enabled(t->warn_timer, SD_EVENT_ONESHOT);
	}
	if (r < 0)
		log_error("Failed to arm the warning timer of session %s: %s", t->id, strerror(-r));
	return r;
}

/* (Re)plans the warnings of t for a lease ending at deadline under rule,
 * which may be NULL. on_expiry = keep sends none. */
static int warning_plan(struct tracked *t, int64_t deadline, const struct rule *rule)
{
	t->deadline = deadline;
	t->on_expiry = rule ? rule->on_expiry : ON_EXPIRY_TERMINATE;
	t->next_warning = 0;
	free(t->warn_before);
	t->warn_before = NULL;
	t->n_warn_before = 0;
	if (rule && rule->on_expiry != ON_EXPIRY_KEEP && rule->n_warn_before > 0) {
		t->warn_before = calloc(rule->n_warn_before, sizeof(uint64_t));
		if (!t->warn_before)
			return -ENOMEM;
		memcpy(t->warn_before, rule->warn_before, rule->n_warn_before * sizeof(uint64_t));
		t->n_warn_before = rule->n_warn_before;
	}
	return warning_arm_next(t);
}

/* Watches the process of an open session and plans its warnings. A
 * session whose process cannot be watched (for example at the open file
 * limit) is still listed and ended, but its exit is only noticed when the
 * sessions are next pruned. */
static void session_track(const struct session *s, int64_t deadline, const struct rule *rule)
{
	struct tracked *t;
	int fd, r;

	untrack(s->id);
	t = calloc(1, sizeof(*t));
	if (!t) {
		log_error("Out of memory: session %s is not watched", s->id);
		return;
	}
	snprintf(t->id, sizeof(t->id), "%s", s->id);
	t->next = registry.tracked;
	registry.tracked = t;

	fd = session_pidfd_open(s);
	r = fd;
	if (fd >= 0) {
		r = sd_event_add_io(registry.event, &t->exit_source, fd, EPOLLIN, on_session_exit,
				    t);
		if (r >= 0)
			r = sd_event_source_set_io_fd_own(t->exit_source, true);
		if (r < 0) {
			t->exit_source = sd_event_source_disable_unref(t->exit_source);
			close(fd);
		}
	}
	if (r < 0)
		log_warning("Failed to watch the process of session %s: %s", s->id, strerror(-r));
	(void)warning_plan(t, deadline, rule);
}

/* Closes the open sessions whose process is gone; account NULL: all. */
static int sessions_prune(struct agent *a, const char *account)
{
	_cleanup_free_ struct session *rows = NULL;
	size_t n = 0;
	int r;

	r = sessions_select(a, account ? "state = 0 AND account = ?1" : "state = 0", account, 0,
			    &rows, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		int fd = session_pidfd_open(&rows[i]);

		if (fd >= 0)
			close(fd);
		else if (fd == -ESRCH)
			session_mark_closed(a, &rows[i],
					    "process exited without closing the session");
	}
	return 0;
}

/* ---- Termination ---- */

static void termination_free(struct termination *t)
{
	sd_event_source_disable_unref(t->timer);
	proc_set_free(&t->procs);
	free(t);
}

static void termination_remove(struct termination *t)
{
	for (struct termination **p = &registry.terminations; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	termination_free(t);
}

static int on_kill_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
	struct termination *t = userdata;
	int r;

	/* Children forked since the SIGTERM are caught too. */
	(void)proc_set_expand(&t->procs, NULL);
	proc_set_signal(&t->procs, SIGKILL);
	log_debug("Sent SIGKILL to %zu processes of session %s", t->procs.n, t->id);

	r = session_clear_kill(registry.agent, t->id);
	if (r < 0)
		log_error("Failed to record the end of termination of session %s: %s", t->id,
			  strerror(-r));
	termination_remove(t);
	return 0;
}

/* Keeps set and arms its SIGKILL after delay_usec. */
static int termination_start(const char *id, struct proc_set *set, uint64_t delay_usec)
{
	struct termination *t = calloc(1, sizeof(*t));
	uint64_t now;
	int r;

	if (!t) {
		proc_set_signal(set, SIGKILL);
		proc_set_free(set);
		return -ENOMEM;
	}
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->procs = *set;
	*set = (struct proc_set){0};

	r = sd_event_now(registry.event, CLOCK_MONOTONIC, &now);
	if (r >= 0)
		r = sd_event_add_time(registry.event, &t->timer, CLOCK_MONOTONIC, now + delay_usec,
				      10000, on_kill_timer, t);
	if (r < 0) {
		log_error("Failed to arm the SIGKILL timer of session %s, sending SIGKILL now: %s",
			  id, strerror(-r));
		proc_set_signal(&t->procs, SIGKILL);
		termination_free(t);
		return r;
	}
	t->next = registry.terminations;
	registry.terminations = t;
	return 0;
}

/* Connects to the bus logind is on: the system bus, or the bus at
 * $MID_LOGIND_BUS_ADDRESS. Tests set that variable to reach a fake logind;
 * it is not meant for production. */
static int logind_connect(sd_bus **ret)
{
	const char *address = getenv("MID_LOGIND_BUS_ADDRESS");
	sd_bus *bus = NULL;
	int r;

	if (address && *address) {
		r = sd_bus_new(&bus);
		if (r >= 0)
			r = sd_bus_set_address(bus, address);
		if (r >= 0)
			r = sd_bus_set_bus_client(bus, true);
		if (r >= 0)
			r = sd_bus_start(bus);
	} else
		r = sd_bus_open_system_with_description(&bus, "mid-agentd-logind");
	if (r >= 0)
		r = sd_bus_set_method_call_timeout(bus, LOGIND_TIMEOUT_USEC);
	if (r < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*ret = bus;
	return 0;
}

/* Asks logind to terminate the session: the one pam_systemd registered
 * (XDG_SESSION_ID), or else the one logind has for the session's process.
 * Writes the logind session id used. The call blocks the agent for at
 * most LOGIND_TIMEOUT_USEC per method call. */
static int logind_terminate(const struct session *s, char *ret_id, size_t size)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	_cleanup_free_ char *id = NULL;
	sd_bus *bus = NULL;
	const char *path;
	int r;

	r = logind_connect(&bus);
	if (r < 0) {
		log_debug("logind is not reachable (%s); ending session %s by signals",
			  strerror(-r), s->id);
		return r;
	}

	if (s->logind_id[0]) {
		id = strdup(s->logind_id);
		r = id ? 0 : -ENOMEM;
	} else {
		r = sd_bus_call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1",
				       "org.freedesktop.login1.Manager", "GetSessionByPID", &error,
				       &reply, "u", (uint32_t)s->pid);
		if (r >= 0)
			r = sd_bus_message_read(reply, "o", &path);
		if (r >= 0)
			r = sd_bus_get_property_string(bus, "org.freedesktop.login1", path,
						       "org.freedesktop.login1.Session", "Id",
						       &error, &id);
	}
	if (r >= 0)
		r = sd_bus_call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1",
				       "org.freedesktop.login1.Manager", "TerminateSession",
				       &error, NULL, "s", id);
	if (r < 0)
		log_info("logind did not terminate session %s (%s); ending it by signals", s->id,
			 error.message ? error.message : strerror(-r));
	else
		snprintf(ret_id, size, "%s", id);

	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
	return r < 0 ? r : 0;
}

/* Ends an open session: through logind when it is reachable, else by
 * SIGHUP, SIGTERM and SIGCONT to the session's process, its descendants and
 * the group or session it leads. Either way the processes found now get
 * SIGKILL after grace seconds. reason names the cause in the audit record. */
static void session_terminate(struct agent *a, const struct session *s, uint64_t grace,
			      const char *reason, long long peer_uid)
{
	char logind_id[MID_NAME_MAX + 1] = "", detail[MID_TEXT_MAX + 1];
	struct proc_set set = {0};
	struct proc_info root;
	const char *method;
	int fd, r;

	untrack(s->id);
	fd = session_pidfd_open(s);
	if (fd == -ESRCH || (fd >= 0 && proc_info_read(s->pid, &root) < 0)) {
		if (fd >= 0)
			close(fd);
		session_mark_closed(a, s, "process exited before the session was terminated");
		return;
	}
	if (fd < 0) {
		log_error("Failed to open process %d of session %s, which cannot be terminated: %s",
			  (int)s->pid, s->id, strerror(-fd));
		return;
	}
	r = proc_set_add(&set, s->pid, s->pid_start, fd);
	if (r == 0)
		r = proc_set_expand(&set, &root);
	if (r < 0)
		log_warning("Failed to find every process of session %s: %s", s->id, strerror(-r));

	if (logind_terminate(s, logind_id, sizeof(logind_id)) == 0)
		method = "logind";
	else {
		method = "signals";
		proc_set_signal(&set, SIGHUP);
		proc_set_signal(&set, SIGTERM);
		proc_set_signal(&set, SIGCONT);
	}

	snprintf(detail, sizeof(detail),
		 "session=%s pid=%d reason=%s method=%s%s%s processes=%zu grace=%llus", s->id,
		 (int)s->pid, reason, method, logind_id[0] ? " logind_session=" : "", logind_id,
		 set.n, (unsigned long long)grace);
	r = session_commit(a, s, MID_SESSION_TERMINATED, now_realtime() + (int64_t)grace, false,
			   "session-terminate", peer_uid, detail);
	if (r < 0)
		log_error("Failed to record the termination of session %s: %s", s->id,
			  strerror(-r));
	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_SESSION_TERMINATED,
				       .account = s->account,
				       .lease = s->lease,
				       .service = s->service,
				       .rhost = s->rhost,
				       .reason = reason,
				       .peer_uid = peer_uid},
		  "Terminated session %s of account %s (%s, by %s); SIGKILL follows in %llus",
		  s->id, s->account, reason, method, (unsigned long long)grace);
	(void)termination_start(s->id, &set, grace * 1000000u);
}

static uint64_t grace_of(const struct rule *rule)
{
	return rule ? rule->grace : FALLBACK_GRACE;
}

/* ---- Requests ---- */

/* The session's process is the peer itself unless the request names one.
 * The agent signals that process when the lease ends, so a peer other than
 * root may only name a process of its own UID. */
static int session_process_check(const struct peer *peer, const struct mid_request *req,
				 struct proc_info *ret, struct mid_response *resp)
{
	pid_t pid = req->pid ? (pid_t)req->pid : peer->pid;
	uid_t uid;

	if (req->pid > INT_MAX || pid <= 1 || pid == getpid()) {
		reply(resp, MID_ERR_INVALID, "process %u cannot hold a session",
		      (unsigned)(req->pid ? req->pid : (uint32_t)peer->pid));
		return -EINVAL;
	}
	if (proc_info_read(pid, ret) < 0 || proc_is_dead(ret)) {
		reply(resp, MID_ERR_INVALID, "process %d does not exist", (int)pid);
		return -ESRCH;
	}
	if (peer->uid != 0 && pid != peer->pid &&
	    (proc_uid_read(pid, &uid) < 0 || uid != peer->uid)) {
		reply(resp, MID_ERR_PERMISSION,
		      "UID %u may only register its own processes, and process %d is not one",
		      (unsigned)peer->uid, (int)pid);
		return -EPERM;
	}
	return 0;
}

/* max_sessions counts the open sessions of one account name. Each
 * ephemeral account has its own name, so for a class the limit applies to
 * each ephemeral account, not to the class as a whole. */
static int session_check_limit(struct agent *a, const struct rule *rule, const char *account,
			       struct mid_response *resp)
{
	_cleanup_free_ struct session *rows = NULL;
	size_t n = 0;
	int r;

	if (rule->max_sessions == 0)
		return 0;
	r = sessions_prune(a, account);
	if (r == 0)
		r = sessions_select(a, "state = 0 AND account = ?1", account, 0, &rows, &n);
	if (r < 0) {
		reply_store_error(resp, r);
		return r;
	}
	if (n >= rule->max_sessions) {
		reply(resp, MID_ERR_LIMIT,
		      "account %s already has %zu open session%s, the max_sessions of %s %s; close one first",
		      account, n, n == 1 ? "" : "s", rule->ephemeral ? "class" : "account",
		      rule->name);
		return -EUSERS;
	}
	return 0;
}

static void session_open(struct agent *a, const struct peer *peer, const struct mid_request *req,
			 const struct rule *rule, struct mid_response *resp)
{
	uint8_t raw[SESSION_ID_BYTES];
	char detail[MID_TEXT_MAX + 1];
	struct session s = {0};
	struct proc_info proc;
	int r;

	if (!logind_id_is_valid(req->session_id)) {
		reply(resp, MID_ERR_INVALID, "invalid XDG_SESSION_ID: expected letters and digits");
		return;
	}
	if (session_process_check(peer, req, &proc, resp) < 0)
		return;
	if (account_live_lease(a, req, resp) < 0)
		return;
	if (session_check_limit(a, rule, req->account, resp) < 0)
		return;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(s.id, sizeof(s.id), raw, sizeof(raw));
	snprintf(s.account, sizeof(s.account), "%s", req->account);
	snprintf(s.lease, sizeof(s.lease), "%s", resp->lease.lease);
	snprintf(s.service, sizeof(s.service), "%s", req->service);
	snprintf(s.rhost, sizeof(s.rhost), "%s", req->rhost);
	snprintf(s.tty, sizeof(s.tty), "%s", req->tty);
	snprintf(s.logind_id, sizeof(s.logind_id), "%s", req->session_id);
	snprintf(s.boot_id, sizeof(s.boot_id), "%s", boot_id_get());
	s.requester_uid = resp->lease.requester_uid;
	s.uid = resp->lease.uid;
	s.pid = proc.pid;
	s.pid_start = proc.start_time;
	s.started_at = now_realtime();
	s.state = MID_SESSION_OPEN;

	snprintf(detail, sizeof(detail), "session=%s service=%s tty=%s pid=%d%s%s", s.id,
		 s.service, s.tty, (int)s.pid, s.logind_id[0] ? " logind_session=" : "",
		 s.logind_id);
	r = session_commit(a, &s, MID_SESSION_OPEN, 0, true, "session-open", peer->uid, detail);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	session_track(&s, resp->lease.expires_at, rule);

	log_event(LOG_INFO,
		  &(struct log_fields){.message_id = MID_MESSAGE_SESSION,
				       .account = s.account,
				       .lease = s.lease,
				       .service = s.service,
				       .rhost = s.rhost,
				       .peer_uid = peer->uid,
				       .expires_at = resp->lease.expires_at},
		  "Session %s opened for account %s, process %d", s.id, s.account, (int)s.pid);
	snprintf(resp->id, sizeof(resp->id), "%s", s.id);
	reply(resp, MID_OK, "session %s opened", s.id);
}

/* pam_mid closes a session from the process that opened it. A closed
 * session is no longer ended with its lease, so a peer other than root
 * may only close the session of a process of its own UID. */
static void session_close(struct agent *a, const struct peer *peer, const struct mid_request *req,
			  const struct rule *rule, struct mid_response *resp)
{
	_cleanup_free_ struct session *rows = NULL;
	pid_t pid = req->pid ? (pid_t)req->pid : peer->pid;
	char detail[MID_TEXT_MAX + 1];
	size_t n = 0;
	uid_t uid;
	int r;

	if (peer->uid != 0 && pid != peer->pid && proc_uid_read(pid, &uid) == 0 &&
	    uid != peer->uid) {
		reply(resp, MID_ERR_PERMISSION,
		      "UID %u may only close the sessions of its own processes, and process %d is not one",
		      (unsigned)peer->uid, (int)pid);
		return;
	}

	r = sessions_select(a, "state = 0 AND account = ?1 AND pid = ?2", req->account, pid, &rows,
			    &n);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct session *s = &rows[i];

		if (req->lease[0] && strcmp(req->lease, s->lease) != 0)
			continue;
		untrack(s->id);
		snprintf(detail, sizeof(detail), "session=%s service=%s tty=%s pid=%d", s->id,
			 s->service, s->tty, (int)s->pid);
		r = session_commit(a, s, MID_SESSION_CLOSED, 0, false, "session-close", peer->uid,
				   detail);
		if (r < 0) {
			reply_store_error(resp, r);
			return;
		}
		log_event(LOG_INFO,
			  &(struct log_fields){.message_id = MID_MESSAGE_SESSION,
					       .account = s->account,
					       .lease = s->lease,
					       .service = s->service,
					       .rhost = s->rhost,
					       .peer_uid = peer->uid},
			  "Session %s of account %s closed", s->id, s->account);
		snprintf(resp->id, sizeof(resp->id), "%s", s->id);
		reply(resp, MID_OK, "session %s closed", s->id);
		return;
	}
	if (!rule)
		reply(resp, MID_ERR_UNMANAGED, "account is not managed by mid");
	else
		reply(resp, MID_ERR_NOT_FOUND, "no open session of account %s for process %d",
		      req->account, (int)pid);
}

static void session_change(struct agent *a, const struct peer *peer, const struct mid_request *req,
			   struct mid_response *resp)
{
	bool open = req->type == MID_REQ_SESSION_OPEN;
	const struct rule *rule;

	if (!name_is_valid(req->account)) {
		reply(resp, MID_ERR_INVALID, "invalid account name");
		return;
	}
	rule = policy_find_account(a->policy, req->account);
	if (!rule)
		rule = policy_find_class_of(a->policy, req->account);
	if (!peer_may_verify(a, peer, rule)) {
		reply(resp, MID_ERR_PERMISSION, "UID %u may not register sessions",
		      (unsigned)peer->uid);
		return;
	}
	if (open && !rule) {
		reply(resp, MID_ERR_UNMANAGED, "account is not managed by mid");
		return;
	}
	if (open)
		session_open(a, peer, req, rule, resp);
	else
		session_close(a, peer, req, rule, resp);
}

static void session_info_fill(struct agent *a, const struct session *s,
			      struct mid_session_info *info)
{
	struct lease l;

	*info = (struct mid_session_info){
		.pid = (uint32_t)s->pid,
		.started_at = s->started_at,
		.state = s->state,
	};
	snprintf(info->id, sizeof(info->id), "%s", s->id);
	snprintf(info->account, sizeof(info->account), "%s", s->account);
	snprintf(info->lease, sizeof(info->lease), "%s", s->lease);
	snprintf(info->service, sizeof(info->service), "%s", s->service);
	snprintf(info->rhost, sizeof(info->rhost), "%s", s->rhost);
	snprintf(info->tty, sizeof(info->tty), "%s", s->tty);
	snprintf(info->logind_id, sizeof(info->logind_id), "%s", s->logind_id);
	if (store_lease_get(a->store, s->lease, &l) == 0) {
		info->deadline = l.info.expires_at;
		sodium_memzero(&l, sizeof(l));
	}
}

/* Lists open sessions: all of them for root and the policy's verifiers,
 * else those of the leases the peer requested. */
static void sessions_list(struct agent *a, const struct peer *peer, const struct mid_request *req,
			  struct mid_response *resp)
{
	bool all = peer->uid == 0 || peer_in_principals(peer, &a->policy->verifiers);
	const char *where = all ? "state = 0 ORDER BY started_at, id"
				: "state = 0 AND requester_uid = ?2 ORDER BY started_at, id";
	_cleanup_free_ struct session *rows = NULL;
	_cleanup_free_ char *sql = NULL;
	size_t n = 0;
	int r;

	r = sessions_prune(a, NULL);
	if (r == 0)
		r = sessions_select(a, where, NULL, (int64_t)peer->uid, &rows, &n);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	resp->total = (uint32_t)n;
	for (size_t i = req->offset; i < n && resp->count < MID_SESSION_PAGE; i++)
		session_info_fill(a, &rows[i], &resp->sessions[resp->count++]);
	reply(resp, MID_OK, "%zu open session%s", n, n == 1 ? "" : "s");
}

static void session_kill(struct agent *a, const struct peer *peer, const struct mid_request *req,
			 struct mid_response *resp)
{
	char reason[MID_TEXT_MAX + 1];
	struct session s;
	struct lease l;
	const struct rule *rule = NULL;
	int r;

	if (peer->uid != 0) {
		reply(resp, MID_ERR_PERMISSION, "only root may end a session");
		return;
	}
	if (!session_id_is_valid(req->id)) {
		reply(resp, MID_ERR_INVALID,
		      "invalid session id: expected %d hex digits, as midctl sessions shows",
		      SESSION_ID_LEN);
		return;
	}
	r = session_get(a, req->id, &s);
	if (r == -ENOENT) {
		reply(resp, MID_ERR_NOT_FOUND, "no session %s; midctl sessions lists the open ones",
		      req->id);
		return;
	}
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	if (s.state != MID_SESSION_OPEN) {
		reply(resp, MID_ERR_NOT_FOUND, "session %s is no longer open (%s)", s.id,
		      mid_session_state_to_string(s.state));
		return;
	}
	if (store_lease_get(a->store, s.lease, &l) == 0) {
		rule = rule_of_lease(a, &l.info);
		sodium_memzero(&l, sizeof(l));
	}
	snprintf(reason, sizeof(reason), "killed by UID %u%s%.200s", (unsigned)peer->uid,
		 req->reason[0] ? ": " : "", req->reason);
	session_terminate(a, &s, grace_of(rule), reason, peer->uid);
	snprintf(resp->id, sizeof(resp->id), "%s", s.id);
	reply(resp, MID_OK, "session %s terminated", s.id);
}

void sessions_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		     struct mid_response *resp)
{
	switch (req->type) {
	case MID_REQ_SESSION_OPEN:
	case MID_REQ_SESSION_CLOSE:
		session_change(a, peer, req, resp);
		break;
	case MID_REQ_SESSIONS:
		sessions_list(a, peer, req, resp);
		break;
	case MID_REQ_KILL:
		session_kill(a, peer, req, resp);
		break;
	default:
		reply(resp, MID_ERR_INVALID, "unknown session request %u", req->type);
		break;
	}
}

/* ---- Lease events ---- */

void sessions_on_lease_end(struct agent *a, const struct lease *l, const char *why)
{
	_cleanup_free_ struct session *rows = NULL;
	const struct rule *rule = rule_of_lease(a, &l->info);
	bool revoked = strcmp(why, "revoked") == 0;
	enum on_expiry mode = revoked || !rule ? ON_EXPIRY_TERMINATE : rule->on_expiry;
	size_t n = 0;
	int r;

	r = sessions_select(a, "state = 0 AND lease = ?1", l->info.lease, 0, &rows, &n);
	if (r < 0) {
		log_error("Failed to find the sessions of lease %s, which keep running: %s",
			  l->info.lease, strerror(-r));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct tracked *t = tracked_find(rows[i].id);
		char text[256];

		switch (mode) {
		case ON_EXPIRY_TERMINATE:
			session_terminate(a, &rows[i], grace_of(rule), why, -1);
			break;
		case ON_EXPIRY_WARN:
			snprintf(text, sizeof(text),
				 "\r\n[mid] Lease %s of account %s has ended; this session keeps running without a lease.\r\n",
				 l->info.lease, l->info.account);
			session_notify(&rows[i], text);
			/* fall through */
		case ON_EXPIRY_KEEP:
			if (t && t->warn_timer)
				(void)sd_event_source_set_enabled(t->warn_timer, SD_EVENT_OFF);
			break;
		}
	}
}

void sessions_on_lease_renew(struct agent *a, const struct lease *l)
{
	_cleanup_free_ struct session *rows = NULL;
	const struct rule *rule = rule_of_lease(a, &l->info);
	size_t n = 0;

	if (sessions_select(a, "state = 0 AND lease = ?1", l->info.lease, 0, &rows, &n) < 0) {
		log_error("Failed to find the sessions of lease %s; their warnings keep the "
			  "old expiry",
			  l->info.lease);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct tracked *t = tracked_find(rows[i].id);

		if (t)
			(void)warning_plan(t, l->info.expires_at, rule);
		else
			session_track(&rows[i], l->info.expires_at, rule);
	}
}

/* ---- Start and stop ---- */

/* Resumes a termination that a restart interrupted: the processes got
 * SIGHUP and SIGTERM, and SIGKILL is due at kill_at. */
static void termination_resume(struct agent *a, const struct session *s)
{
	struct proc_set set = {0};
	int64_t left = s->kill_at - now_realtime();
	int fd = session_pidfd_open(s);

	if (fd < 0) {
		if (session_clear_kill(a, s->id) < 0)
			log_error("Failed to record the end of termination of session %s", s->id);
		return;
	}
	if (proc_set_add(&set, s->pid, s->pid_start, fd) == 0)
		(void)proc_set_expand(&set, NULL);
	log_info("Resuming the termination of session %s: SIGKILL in %llds", s->id,
		 (long long)(left > 0 ? left : 0));
	(void)termination_start(s->id, &set, left > 0 ? (uint64_t)left * 1000000u : 0);
}

/* Picks up an open session after a restart: closes it when its process is
 * gone, ends it when its lease ended while the agent was stopped and
 * on_expiry is terminate, and otherwise watches it again. */
static void session_resume(struct agent *a, const struct session *s)
{
	const struct rule *rule = NULL;
	struct lease l;
	int fd, r;

	fd = session_pidfd_open(s);
	if (fd == -ESRCH) {
		session_mark_closed(a, s, "process exited while the agent was stopped");
		return;
	}
	if (fd >= 0)
		close(fd);

	r = store_lease_get(a->store, s->lease, &l);
	if (r < 0 && r != -ENOENT) {
		log_error("Failed to read lease %s of session %s: %s", s->lease, s->id,
			  strerror(-r));
		return;
	}
	if (r == -ENOENT) {
		session_terminate(a, s, FALLBACK_GRACE, "lease not found after restart", -1);
		return;
	}
	rule = rule_of_lease(a, &l.info);
	if (l.info.state == MID_LEASE_REVOKED)
		session_terminate(a, s, grace_of(rule), "revoked", -1);
	else if (l.info.state == MID_LEASE_EXPIRED &&
		 (!rule || rule->on_expiry == ON_EXPIRY_TERMINATE))
		session_terminate(a, s, grace_of(rule), "expired", -1);
	else
		/* A live lease that is already due ends through the expiry
		 * timer, which calls sessions_on_lease_end. */
		session_track(s, l.info.expires_at,
			      l.info.state == MID_LEASE_LIVE ? rule : NULL);
	sodium_memzero(&l, sizeof(l));
}

static int on_event_exit(sd_event_source *source, void *userdata)
{
	while (registry.tracked) {
		struct tracked *t = registry.tracked;

		registry.tracked = t->next;
		tracked_free(t);
	}
	/* Pending SIGKILLs resume from kill_at at the next start. */
	while (registry.terminations) {
		struct termination *t = registry.terminations;

		registry.terminations = t->next;
		termination_free(t);
	}
	registry.event = sd_event_unref(registry.event);
	return 0;
}

int sessions_init(struct agent *a)
{
	_cleanup_free_ struct session *rows = NULL;
	char *err = NULL;
	size_t n = 0;
	int r;

	if (sqlite3_exec(store_db(a->store), sessions_schema, NULL, NULL, &err) != SQLITE_OK) {
		log_error("Failed to create the sessions table: %s", err ? err : "?");
		sqlite3_free(err);
		return -EIO;
	}
	registry.agent = a;
	r = sd_event_default(&registry.event);
	if (r >= 0)
		r = sd_event_add_exit(registry.event, NULL, on_event_exit, NULL);
	if (r < 0) {
		log_error("Failed to set up the event loop for sessions: %s", strerror(-r));
		return r;
	}
	if (!boot_id_get()[0])
		log_warning("Failed to read the boot id; registered sessions will not be "
			    "recognised after a restart");

	r = sessions_select(a, "state = 0 OR kill_at IS NOT NULL", NULL, 0, &rows, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].state != MID_SESSION_OPEN)
			termination_resume(a, &rows[i]);
		else
			session_resume(a, &rows[i]);
	}
	if (n > 0)
		log_info("Resumed %zu sessions from the state database", n);
	return 0;
}
