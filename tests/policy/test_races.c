/* Concurrent logins and lockout through a real PAM stack (pam_wrapper,
 * libpamtest) against a real mid-agentd: one-time credentials under
 * parallel use, failures that arrive together, lockout per account and
 * per source address, its survival across a restart, and midctl unlock. */
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpamtest.h>
#include <security/pam_appl.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "harness.h"
#include "token.h"

#define SET_ITEMS "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_set_items.so"
#define PARALLEL_MAX 64
#define ONE_TIME_CLIENTS 32
#define ONE_TIME_ROUNDS 3
#define UID_NOBODY 65534
#define GID_NOGROUP 65534

/* Every rule inherits the top-level lockout unless it sets its own; the
 * per-source tests rely on four failures locking an address. */
#define POLICY                                                                             \
	"lockout = { failures = 4; window = \"1h\"; duration = \"1h\"; };\n"                \
	"accounts = (\n"                                                                   \
	"  { name = \"daemon\"; max_uses = 1; lockout = { failures = 0; }; },\n"           \
	"  { name = \"bin\"; lockout = { failures = 20; }; },\n"                           \
	"  { name = \"sys\"; lockout = { failures = 3; }; },\n"                            \
	"  { name = \"sync\"; lockout = { failures = 3; }; },\n"                           \
	"  { name = \"games\"; },\n"                                                       \
	"  { name = \"man\"; },\n"                                                         \
	"  { name = \"lp\"; },\n"                                                          \
	"  { name = \"mail\"; },\n"                                                        \
	"  { name = \"news\"; lockout = { failures = 0; }; },\n"                           \
	"  { name = \"uucp\"; lockout = { failures = 2; duration = \"2s\"; }; },\n"        \
	"  { name = \"proxy\"; lockout = { failures = 2; window = \"2s\"; }; },\n"         \
	"  { name = \"www-data\"; },\n"                                                    \
	"  { name = \"backup\"; },\n"                                                      \
	"  { name = \"list\"; },\n"                                                        \
	"  { name = \"irc\"; }\n"                                                          \
	");\n"

static struct harness agent;
static char test_dir[256];

/* ---- PAM ---- */

struct pam_result {
	int rc;
	char error[PAM_MAX_MSG_SIZE + 1]; /* the first PAM_ERROR_MSG, or "" */
};

/* Authenticates user through the "sshd" service with PAM_RHOST set to
 * rhost (NULL leaves it unset). Returns the PAM result, or -1 when PAM
 * could not run; safe in a forked child, because it asserts nothing. */
static int pam_auth(const char *user, const char *rhost, const char *credential, char *error,
		    size_t error_size)
{
	static char errors[4][PAM_MAX_MSG_SIZE + 1];
	char *out_err[4] = {errors[0], errors[1], errors[2], errors[3]};
	const char *tokens[] = {credential, NULL};
	struct pamtest_conv_data conv = {.in_echo_off = tokens, .out_err = out_err};
	struct pam_testcase tests[] = {pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS)};
	enum pamtest_err perr;

	memset(errors, 0, sizeof(errors));
	if (rhost)
		setenv("PAM_RHOST", rhost, 1);
	else
		unsetenv("PAM_RHOST");
	perr = _pamtest("sshd", user, &conv, tests, 1, NULL);
	unsetenv("PAM_RHOST");
	if (error)
		snprintf(error, error_size, "%s", errors[0]);
	if (perr != PAMTEST_ERR_OK && perr != PAMTEST_ERR_CASE)
		return -1;
	return tests[0].op_rv;
}

static void login_try(const char *user, const char *rhost, const char *credential,
		      struct pam_result *ret)
{
	ret->rc = pam_auth(user, rhost, credential, ret->error, sizeof(ret->error));
	if (ret->rc < 0)
		fail_msg("PAM failed to run for %s", user);
}

#define assert_pam_rc(result, expected)                                                    \
	do {                                                                               \
		if ((result)->rc != (expected))                                            \
			fail_msg("expected %s, got %s (message \"%s\")",                    \
				 pam_strerror(NULL, expected),                             \
				 pam_strerror(NULL, (result)->rc), (result)->error);       \
	} while (0)

#define assert_contains(text, part)                                                        \
	do {                                                                               \
		if (!strstr(text, part))                                                   \
			fail_msg("expected \"%s\" in \"%s\"", part, text);                  \
	} while (0)

static void issue(const char *account, char *credential, struct mid_lease_info *ret_lease)
{
	int r = harness_issue(&agent, account, NULL, 0, credential, ret_lease);

	if (r != MID_OK)
		fail_msg("issue for %s failed with status %d", account, r);
}

/* A well-formed credential for a live lease, with a secret the agent
 * never issued: what a guessing attacker sends. */
static void forged_credential(const struct mid_lease_info *lease, char *ret)
{
	uint8_t key[MID_HOST_KEY_BYTES], hash[MID_TOKEN_HASH_BYTES];

	randombytes_buf(key, sizeof(key));
	assert_int_equal(token_new(lease->lease, key, ret, hash), 0);
}

/* Logs in n times with wrong credentials; each must fail with expected. */
static void fail_logins(const char *account, const char *rhost, const char *wrong, int n,
			int expected)
{
	for (int i = 0; i < n; i++) {
		struct pam_result res;

		login_try(account, rhost, wrong, &res);
		assert_pam_rc(&res, expected);
	}
}

/* ---- parallel clients ---- */

struct tally {
	int success;
	int auth_err;
	int maxtries;
	int other;
	int other_status; /* the exit status of the last client counted in other */
};

/* pam_wrapper (1.1.4 in Debian 12) makes a forked process set up again on
 * its first PAM call, with its own copy of the service files in /tmp/pam.X
 * named in PAM_WRAPPER_RUNTIME_DIR. It picks X by testing which names are
 * free, so clients that set up at the same moment collide. They take turns
 * under a lock here. Returns the client's copy, or NULL. */
static const char *child_pam_wrapper_setup(void)
{
	const char *inherited = getenv("PAM_WRAPPER_RUNTIME_DIR");
	char path[400], *parent_dir = inherited ? strdup(inherited) : NULL;
	const char *own;
	int fd;

	snprintf(path, sizeof(path), "%s/pam_wrapper.lock", test_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0)
		_exit(254);
	(void)pam_strerror(NULL, PAM_SUCCESS);
	close(fd);

	own = getenv("PAM_WRAPPER_RUNTIME_DIR");
	if (own && parent_dir && strcmp(own, parent_dir) == 0)
		own = NULL; /* the parent's copy: never remove it */
	free(parent_dir);
	return own;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

/* A client leaves with _exit, so neither the pam_wrapper destructor nor
 * LeakSanitizer runs in it; it removes its own copy itself. */
static void child_exit(const char *pam_wrapper_dir, int status)
{
	if (pam_wrapper_dir && strncmp(pam_wrapper_dir, "/tmp/pam.", 9) == 0)
		(void)nftw(pam_wrapper_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	_exit(status);
}

/* Forks n clients that each authenticate user once with credential; they
 * wait on a pipe, so all start together when the parent closes it. */
static void logins_parallel(const char *user, const char *credential, int n, struct tally *ret)
{
	pid_t pids[PARALLEL_MAX];
	int barrier[2];

	assert_true(n <= PARALLEL_MAX);
	assert_int_equal(pipe(barrier), 0);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			const char *pam_wrapper_dir;
			char byte;
			int rc;

			close(barrier[1]);
			pam_wrapper_dir = child_pam_wrapper_setup();
			(void)!read(barrier[0], &byte, 1);
			rc = pam_auth(user, NULL, credential, NULL, 0);
			child_exit(pam_wrapper_dir, rc < 0 ? 255 : rc);
		}
	}
	close(barrier[0]);
	close(barrier[1]);

	*ret = (struct tally){0};
	for (int i = 0; i < n; i++) {
		int status, rc;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (rc == PAM_SUCCESS)
			ret->success++;
		else if (rc == PAM_AUTH_ERR)
			ret->auth_err++;
		else if (rc == PAM_MAXTRIES)
			ret->maxtries++;
		else {
			ret->other++;
			ret->other_status = rc;
		}
	}
}

/* ---- the agent's state ---- */

/* Runs a query that returns one integer, with one text parameter. The
 * agent keeps the lockout in these tables; no request reads them yet. */
static long long db_query(const char *sql, const char *text)
{
	char path[400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long value = -1;

	snprintf(path, sizeof(path), "%s/state/state.db", agent.dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		fail_msg("failed to open %s: %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("failed to prepare \"%s\": %s", sql, sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		value = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return value;
}

static long long failures_recorded(const char *key)
{
	return db_query("SELECT count(*) FROM lockout_failures WHERE key = ?", key);
}

/* The failure count stored with the lock on key, or -1 without a lock. */
static long long lock_failures(const char *key)
{
	return db_query("SELECT failures FROM lockout_locks WHERE key = ?", key);
}

static long long lock_until(const char *key)
{
	return db_query("SELECT until FROM lockout_locks WHERE key = ?", key);
}

static long long audit_count(const char *event, const char *account)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE event = '%s' AND account = ?",
		 event);
	return db_query(sql, account);
}

/* ---- midctl ---- */

/* Runs midctl --socket AGENT_SOCKET ARGS... (ending with NULL), as UID
 * nobody when as_nobody is set. */
static void midctl_run(struct harness_command *c, bool as_nobody, ...)
{
	static const struct harness_identity nobody = {.uid = UID_NOBODY, .gid = GID_NOGROUP};
	va_list ap;
	int r;

	va_start(ap, as_nobody);
	r = harness_midctl(c, &agent, test_dir, as_nobody ? &nobody : NULL, NULL, ap);
	va_end(ap);
	assert_int_equal(r, 0);
}

#define midctl(c, ...) midctl_run(c, false, __VA_ARGS__, (char *)NULL)

#define assert_exit_status(c, expected)                                                    \
	do {                                                                               \
		if ((c)->status != (expected))                                             \
			fail_msg("midctl exited with %d, expected %d; stderr: %s",          \
				 (c)->status, expected, (c)->err);                         \
	} while (0)

/* ---- one-time credentials ---- */

static int lease_uses(const char *lease)
{
	struct mid_request req = {.type = MID_REQ_LIST};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int uses = -1;

	assert_non_null(resp);
	for (;;) {
		assert_int_equal(harness_call(&agent, &req, resp), MID_OK);
		for (unsigned i = 0; i < resp->count && uses < 0; i++)
			if (strcmp(resp->entries[i].lease, lease) == 0)
				uses = (int)resp->entries[i].uses;
		req.offset += resp->count;
		if (uses >= 0 || resp->count == 0 || req.offset >= resp->total)
			break;
	}
	free(resp);
	return uses;
}

static void one_time_parallel_race(void **state)
{
	for (int round = 0; round < ONE_TIME_ROUNDS; round++) {
		char cred[MID_CREDENTIAL_MAX + 1];
		struct mid_lease_info lease;
		struct tally t;

		issue("daemon", cred, &lease);
		logins_parallel("daemon", cred, ONE_TIME_CLIENTS, &t);
		print_message("# round %d: %d succeeded, %d failed, %d locked, %d other "
			      "(status %d)\n",
			      round, t.success, t.auth_err, t.maxtries, t.other, t.other_status);
		assert_int_equal(t.success, 1);
		assert_int_equal(t.auth_err, ONE_TIME_CLIENTS - 1);
		assert_int_equal(t.maxtries, 0);
		assert_int_equal(t.other, 0);
		assert_int_equal(lease_uses(lease.lease), 1);
	}
	assert_int_equal(audit_count("verify", "daemon"), ONE_TIME_ROUNDS);
}

/* ---- lockout ---- */

static void lockout_parallel_failures_counted(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	struct tally t;

	issue("bin", cred, &lease);
	forged_credential(&lease, wrong);

	/* Below failures = 20: every failure counts, none locks. */
	logins_parallel("bin", wrong, 16, &t);
	assert_int_equal(t.auth_err, 16);
	assert_int_equal(t.maxtries, 0);
	assert_int_equal(t.success + t.other, 0);
	assert_int_equal(failures_recorded("account:bin"), 16);
	assert_int_equal(lock_failures("account:bin"), -1);

	/* The 20th failure locks; the ones after it meet the lock. */
	logins_parallel("bin", wrong, 8, &t);
	assert_int_equal(t.auth_err, 4);
	assert_int_equal(t.maxtries, 4);
	assert_int_equal(t.success + t.other, 0);
	assert_int_equal(lock_failures("account:bin"), 20);
	assert_int_equal(failures_recorded("account:bin"), 20);
	assert_int_equal(audit_count("lockout", "bin"), 1);

	login_try("bin", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);
	assert_contains(res.error, "mid: locked after 20 failures");
	assert_contains(res.error, "midctl unlock");
}

/* A lock engages at the policy's failures and lasts its duration. */
static void lockout_top_level_inherited(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	long long until;
	int64_t now;

	issue("mail", cred, &lease);
	forged_credential(&lease, wrong);
	fail_logins("mail", NULL, wrong, 3, PAM_AUTH_ERR);
	login_try("mail", NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);

	now = (int64_t)time(NULL);
	fail_logins("mail", NULL, wrong, 1, PAM_AUTH_ERR);
	fail_logins("mail", NULL, wrong, 2, PAM_MAXTRIES);
	login_try("mail", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);
	assert_contains(res.error, "locked after 4 failures");
	until = lock_until("account:mail");
	assert_in_range(until, now + 3600, (int64_t)time(NULL) + 3600);
}

static void lockout_rule_overrides(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;

	/* failures = 3 in the rule, below the policy's 4. */
	issue("sys", cred, &lease);
	forged_credential(&lease, wrong);
	fail_logins("sys", NULL, wrong, 3, PAM_AUTH_ERR);
	login_try("sys", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);
	assert_contains(res.error, "locked after 3 failures");

	/* failures = 0: no lockout at all. */
	issue("news", cred, &lease);
	forged_credential(&lease, wrong);
	fail_logins("news", NULL, wrong, 10, PAM_AUTH_ERR);
	login_try("news", NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
	assert_int_equal(failures_recorded("account:news"), 0);
	assert_int_equal(lock_failures("account:news"), -1);
}

/* Failures of one account from many addresses lock the account, not the
 * addresses. */
static void lockout_per_account(void **state)
{
	static const char *const sources[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	char other_cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_result res;

	issue("sync", cred, &lease);
	forged_credential(&lease, wrong);
	for (size_t i = 0; i < MID_ELEMENTSOF(sources); i++)
		fail_logins("sync", sources[i], wrong, 1, PAM_AUTH_ERR);

	login_try("sync", "192.0.2.200", cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);
	assert_int_equal(lock_failures("account:sync"), 3);
	for (size_t i = 0; i < MID_ELEMENTSOF(sources); i++) {
		char key[64];

		snprintf(key, sizeof(key), "source:%s", sources[i]);
		assert_int_equal(lock_failures(key), -1);
	}

	issue("news", other_cred, NULL);
	login_try("news", sources[0], other_cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
}

/* Failures from one address against many accounts lock the address for
 * every account, and no account. */
static void lockout_per_source(void **state)
{
	static const char *const accounts[] = {"www-data", "backup", "list", "irc"};
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	struct harness_command c;

	for (size_t i = 0; i < MID_ELEMENTSOF(accounts); i++) {
		issue(accounts[i], NULL, &lease);
		forged_credential(&lease, wrong);
		fail_logins(accounts[i], "198.51.100.7", wrong, 1, PAM_AUTH_ERR);
	}
	assert_int_equal(lock_failures("source:198.51.100.7"), 4);
	for (size_t i = 0; i < MID_ELEMENTSOF(accounts); i++) {
		char key[64];

		snprintf(key, sizeof(key), "account:%s", accounts[i]);
		assert_int_equal(lock_failures(key), -1);
	}

	issue("irc", cred, NULL);
	login_try("irc", "198.51.100.7", cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);
	assert_contains(res.error, "locked after 4 failures");
	login_try("irc", "198.51.100.8", cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
	login_try("irc", NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);

	midctl(&c, "unlock", "--source", "198.51.100.7");
	assert_exit_status(&c, 0);
	assert_string_equal(c.out, "lockout cleared\n");
	login_try("irc", "198.51.100.7", cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
	assert_int_equal(lock_failures("source:198.51.100.7"), -1);
	assert_int_equal(failures_recorded("source:198.51.100.7"), 0);
}

/* PAM_RHOST may be a host name (sshd with UseDNS yes); a lock on one
 * must be clearable too. */
static void unlock_host_name_source(void **state)
{
	static const char *const accounts[] = {"www-data", "backup", "list", "irc"};
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	struct harness_command c;

	for (size_t i = 0; i < MID_ELEMENTSOF(accounts); i++) {
		issue(accounts[i], NULL, &lease);
		forged_credential(&lease, wrong);
		fail_logins(accounts[i], "attacker.example", wrong, 1, PAM_AUTH_ERR);
	}
	issue("irc", cred, NULL);
	login_try("irc", "attacker.example", cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);

	midctl(&c, "unlock", "--source", "attacker.example");
	assert_exit_status(&c, 0);
	login_try("irc", "attacker.example", cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
}

static void lockout_success_never_counts(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;

	issue("man", cred, &lease);
	forged_credential(&lease, wrong);
	fail_logins("man", NULL, wrong, 2, PAM_AUTH_ERR);
	for (int i = 0; i < 10; i++) {
		login_try("man", NULL, cred, &res);
		assert_pam_rc(&res, PAM_SUCCESS);
	}
	assert_int_equal(failures_recorded("account:man"), 2);
	assert_int_equal(lock_failures("account:man"), -1);
	assert_int_equal(audit_count("lockout", "man"), 0);
}

static void lockout_survives_restart(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;

	issue("games", cred, &lease);
	forged_credential(&lease, wrong);
	fail_logins("games", NULL, wrong, 4, PAM_AUTH_ERR);
	login_try("games", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);

	assert_int_equal(harness_stop_agent(&agent), 0);
	assert_int_equal(harness_restart_agent(&agent), 0);

	login_try("games", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);
	assert_contains(res.error, "locked after 4 failures");
	assert_int_equal(lock_failures("account:games"), 4);
}

static void sleep_until(int64_t t)
{
	while ((int64_t)time(NULL) < t)
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
}

static void lockout_ends_after_duration(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	long long until;

	issue("uucp", cred, &lease);
	forged_credential(&lease, wrong);
	fail_logins("uucp", NULL, wrong, 2, PAM_AUTH_ERR);
	login_try("uucp", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);

	/* duration = "2s"; the lock holds while now < until. */
	until = lock_until("account:uucp");
	assert_true(until > 0);
	sleep_until(until);
	login_try("uucp", NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
}

static void lockout_window_forgets(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	int64_t first;

	/* failures = 2 within window = "2s". */
	issue("proxy", cred, &lease);
	forged_credential(&lease, wrong);
	first = (int64_t)time(NULL);
	fail_logins("proxy", NULL, wrong, 1, PAM_AUTH_ERR);
	sleep_until(first + 3);
	fail_logins("proxy", NULL, wrong, 1, PAM_AUTH_ERR);
	login_try("proxy", NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);

	fail_logins("proxy", NULL, wrong, 1, PAM_AUTH_ERR);
	login_try("proxy", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);
}

static void unlock_clears_lockout(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	struct harness_command c;

	issue("lp", cred, &lease);
	forged_credential(&lease, wrong);
	fail_logins("lp", NULL, wrong, 4, PAM_AUTH_ERR);
	login_try("lp", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);

	midctl(&c, "unlock", "lp");
	assert_exit_status(&c, 0);
	assert_string_equal(c.out, "lockout cleared\n");
	assert_string_equal(c.err, "");
	assert_int_equal(lock_failures("account:lp"), -1);
	assert_int_equal(failures_recorded("account:lp"), 0);
	assert_int_equal(audit_count("unlock", "lp"), 1);

	login_try("lp", NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);

	midctl(&c, "unlock", "lp");
	assert_exit_status(&c, 0);
	assert_string_equal(c.out, "nothing was locked\n");

	midctl(&c, "--json", "unlock", "lp", "--source", "192.0.2.99");
	assert_exit_status(&c, 0);
	assert_string_equal(c.out, "{\"message\":\"nothing was locked\"}\n");
}

static void unlock_rejects_bad_input(void **state)
{
	static const struct {
		const char *args[4];
		int status;
		const char *message;
	} cases[] = {
		{{"unlock"}, 2, "unlock needs an ACCOUNT, a --source address or both"},
		{{"unlock", "bad/name"}, 2, "invalid account name \"bad/name\""},
		{{"unlock", "lp", "mail"}, 2, "unexpected argument \"mail\""},
		{{"unlock", "--source", ""}, 2, "--source needs the address"},
		{{"unlock", "--source", "no address"}, 1, "invalid source"},
		{{"unlock", "--bogus"}, 2, "invalid option for unlock"},
	};
	struct harness_command c;

	for (size_t i = 0; i < MID_ELEMENTSOF(cases); i++) {
		print_message("# midctl %s %s %s\n", cases[i].args[0],
			      cases[i].args[1] ? cases[i].args[1] : "",
			      cases[i].args[2] ? cases[i].args[2] : "");
		midctl_run(&c, false, cases[i].args[0], cases[i].args[1], cases[i].args[2],
			   cases[i].args[3], (char *)NULL);
		assert_exit_status(&c, cases[i].status);
		assert_string_equal(c.out, "");
		assert_contains(c.err, cases[i].message);
	}

	midctl(&c, "--field", "lease", "unlock", "lp");
	assert_exit_status(&c, 2);
	assert_contains(c.err, "--field works with issue, renew and revoke");
}

static void unlock_needs_root(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], wrong[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	struct harness_command c;

	issue("lp", cred, &lease);
	forged_credential(&lease, wrong);
	fail_logins("lp", NULL, wrong, 4, PAM_AUTH_ERR);

	assert_int_equal(chmod(test_dir, 0755), 0);
	midctl_run(&c, true, "unlock", "lp", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_string_equal(c.out, "");
	assert_contains(c.err, "only root may clear a lockout");

	login_try("lp", NULL, cred, &res);
	assert_pam_rc(&res, PAM_MAXTRIES);
	midctl(&c, "unlock", "lp");
	assert_exit_status(&c, 0);
}

/* ---- setup ---- */

static void services_write(const char *dir)
{
	char opts[700];

	snprintf(opts, sizeof(opts), "socket=%s/agent.sock cache=%s/run/%s", test_dir, test_dir,
		 MID_CACHE_FILE_NAME);
	harness_service_write(dir, "other",
			      "auth required pam_deny.so\naccount required pam_deny.so\n");
	harness_service_write(dir, "sshd", "auth required %s\nauth required %s %s\n", SET_ITEMS,
			      harness_module_path(), opts);
}

static int group_setup(void **state)
{
	int r;

	if (sodium_init() < 0)
		return -1;
	r = harness_start(&agent, test_dir, POLICY);
	if (r < 0)
		fprintf(stderr, "# failed to start mid-agentd: %s\n", strerror(-r));
	return r < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	return harness_finish(&agent) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_time_parallel_race),
		cmocka_unit_test(lockout_parallel_failures_counted),
		cmocka_unit_test(lockout_top_level_inherited),
		cmocka_unit_test(lockout_rule_overrides),
		cmocka_unit_test(lockout_per_account),
		cmocka_unit_test(lockout_per_source),
		cmocka_unit_test(unlock_host_name_source),
		cmocka_unit_test(lockout_success_never_counts),
		cmocka_unit_test(lockout_survives_restart),
		cmocka_unit_test(lockout_ends_after_duration),
		cmocka_unit_test(lockout_window_forgets),
		cmocka_unit_test(unlock_clears_lockout),
		cmocka_unit_test(unlock_rejects_bad_input),
		cmocka_unit_test(unlock_needs_root),
	};
	int failed;

	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_races: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	if (geteuid() != 0) {
		/* unlock_needs_root runs midctl as another user. */
		printf("1..0 # SKIP needs root to run clients as other users\n");
		return 0;
	}
	harness_pam_wrapper(argv, "/tmp/mid-races-test.XXXXXX", "MID_RACES_TEST_DIR", test_dir,
			    sizeof(test_dir), services_write);

	failed = cmocka_run_group_tests_name("policy races and lockout", tests, group_setup,
					     group_teardown);

	harness_dir_remove(test_dir);
	return failed;
}
