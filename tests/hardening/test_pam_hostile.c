/* pam_mid under hostile input and failing parts, through a real Linux-PAM
 * stack under pam_wrapper, against a real mid-agentd. Invalid user names
 * and credentials are rejected without touching the agent's state and
 * without raw bytes in any log. Unknown options are logged and ignored. A
 * stopped, hung or restarting agent gives PAM_AUTHINFO_UNAVAIL within the
 * timeout, and an account mid does not manage is not slowed by it. The
 * program re-executes itself under pam_wrapper, as tests/pam/test_pam
 * does.
 *
 * pam_wrapper 1.1 prints pam_syslog(3) messages to stderr with the prefix
 * "SYSLOG(priority)" when PAM_WRAPPER_DEBUGLEVEL admits their priority, so
 * the test reads the module's log from its own stderr. */
#include <fcntl.h>
#include <security/pam_appl.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "hardening.h"
#include "harness.h"

/* Has the form of a credential, so pam_mid sends it to the agent; no
 * agent ever issued it. */
#define WELL_FORMED_TOKEN                                                                          \
	"mid1_0000000000000000_"                                                                   \
	"0000000000000000000000000000000000000000000000000000000000000000_00000000"
#include "token.h"

#define POLICY                                                                                     \
	HARDENING_NO_LOCKOUT                                                                       \
	"accounts = (\n"                                                                           \
	"  { name = \"nobody\"; ttl = \"5m\"; max_ttl = \"1h\"; },\n"                              \
	"  { name = \"daemon\"; ttl = \"5m\"; }\n"                                                 \
	");\n"                                                                                     \
	"classes = (\n"                                                                            \
	"  { name = \"ci\"; prefix = \"ci-\"; uid_min = 61000; uid_max = 61999;\n"                 \
	"    group = \"mid-ci\"; gid = 61000; ttl = \"5m\"; }\n"                                   \
	");\n"

/* timeout= of the "mid_short" stack, and the slack allowed past it. */
#define SHORT_TIMEOUT_MS 500
#define TIMEOUT_SLACK_MS 1500
/* An unmanaged login must finish well under the timeout. */
#define UNMANAGED_MAX_MS 100

static struct harness agent;
static char test_dir[256];

struct name_case {
	const char *label;
	const char *name;
};

static char name_256[257];
static char name_4096[4097];

static struct name_case name_cases[] = {
    {"empty", ""},
    {"256 bytes", name_256},
    {"4096 bytes", name_4096},
    {"slash", "a/b"},
    {"dot-dot", ".."},
    {"dot-dot path", "../../etc/passwd"},
    {"colon", "nobody:x"},
    {"trailing newline", "nobody\n"},
    {"inner newline", "nobody\nroot"},
    {"control bytes", "\x1b[31mred\x07\x7f"},
    {"non-UTF-8", "\xff\xfe\xc3("},
    {"all digits", "12345"},
    {"zero", "0"},
    {"leading dash", "-rf"},
    {"format directives", "%s%n%x"},
    {"space", "no body"},
};

/* Writes the service files. "mid" is the plain stack with debug logging,
 * and "mid_short" has a short timeout. "mid_permit" lets a login through
 * when pam_mid ignores it, and "mid_opts" adds hostile options after the
 * valid ones. */
static void write_services(const char *dir)
{
	const char *m = harness_module_path();
	char opts[700];

	snprintf(opts, sizeof(opts), "socket=%s/agent.sock cache=%s/run/%s", test_dir, test_dir,
		 MID_CACHE_FILE_NAME);
	harness_service_write(dir, "other",
			      "auth required pam_deny.so\naccount required pam_deny.so\n");
	harness_service_write(dir, "mid",
			      "auth required %s debug %s\naccount required %s debug %s\n"
			      "session required %s debug %s\n",
			      m, opts, m, opts, m, opts);
	harness_service_write(dir, "mid_short", "auth required %s %s timeout=%d\n", m, opts,
			      SHORT_TIMEOUT_MS);
	harness_service_write(dir, "mid_permit",
			      "auth required %s %s timeout=%d\nauth required pam_permit.so\n"
			      "account required %s %s timeout=%d\naccount required pam_permit.so\n",
			      m, opts, SHORT_TIMEOUT_MS, m, opts, SHORT_TIMEOUT_MS);
	harness_service_write(dir, "mid_opts",
			      "auth required %s %s no_such_option timeout=abc timeout=0 "
			      "timeout=99999999999 socket=relative.sock cache= %%s%%n DEBUG\n",
			      m, opts);
}

/* ---- stderr capture: pam_wrapper's copy of pam_syslog ---- */

static int saved_stderr = -1;

static void capture_begin(void)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/pam-stderr.log", test_dir);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_true(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	close(fd);
	/* NOTICE and DEBUG messages need level 2. */
	setenv("PAM_WRAPPER_DEBUGLEVEL", "2", 1);
}

/* Returns the pam_syslog lines written since capture_begin. */
static char *capture_end(void)
{
	char path[300];
	char *text, *out, *line, *save = NULL;
	size_t o = 0;

	fflush(stderr);
	unsetenv("PAM_WRAPPER_DEBUGLEVEL");
	assert_true(dup2(saved_stderr, STDERR_FILENO) == STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;

	snprintf(path, sizeof(path), "%s/pam-stderr.log", test_dir);
	text = file_read_all(path, NULL);
	assert_non_null(text);
	out = calloc(1, strlen(text) + 1);
	assert_non_null(out);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, "SYSLOG(")) {
			o += (size_t)sprintf(out + o, "%s\n", line);
		}
	free(text);
	return out;
}

/* ---- PAM calls ---- */

static int conv_reply(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = strdup(data);
	*resp = r;
	return PAM_SUCCESS;
}

enum pam_step_kind {
	PAM_STEP_AUTHENTICATE,
	PAM_STEP_ACCOUNT,
	PAM_STEP_OPEN_SESSION,
};

/* Runs one PAM step for user in service and returns its result. */
static int pam_step(const char *service, const char *user, const char *credential,
		    enum pam_step_kind op)
{
	struct pam_conv conv = {.conv = conv_reply, .appdata_ptr = (void *)credential};
	pam_handle_t *pamh = NULL;
	int r;

	assert_int_equal(pam_start(service, user, &conv, &pamh), PAM_SUCCESS);
	switch (op) {
	case PAM_STEP_AUTHENTICATE:
		r = pam_authenticate(pamh, 0);
		break;
	case PAM_STEP_ACCOUNT:
		r = pam_acct_mgmt(pamh, 0);
		break;
	case PAM_STEP_OPEN_SESSION:
		r = pam_open_session(pamh, 0);
		break;
	default:
		fail_msg("unexpected PAM step %d", (int)op);
		return -1;
	}
	pam_end(pamh, r);
	return r;
}

static void assert_pam(const char *step, int expected, int actual)
{
	if (expected != actual)
		fail_msg("%s: expected %s, got %s", step, pam_strerror(NULL, expected),
			 pam_strerror(NULL, actual));
}

static void issue(const char *account, const char *class_name, char *credential,
		  struct mid_lease_info *lease)
{
	assert_int_equal(harness_issue(&agent, account, class_name, 0, credential, lease), MID_OK);
}

/* Runs a shell command without pam_wrapper, whose copy in the shell
 * would set up its own service directory. */
static int system_unwrapped(const char *command)
{
	char *preload = getenv("LD_PRELOAD") ? strdup(getenv("LD_PRELOAD")) : NULL;
	int r;

	unsetenv("LD_PRELOAD");
	r = system(command);
	if (preload) {
		setenv("LD_PRELOAD", preload, 1);
		free(preload);
	}
	return r;
}

static int64_t elapsed_ms(int64_t start_usec)
{
	return (monotonic_usec() - start_usec) / 1000;
}

/* ---- agent state ---- */

static char *agent_dirs_snapshot(void)
{
	char path[300], *state, *run, *both;

	snprintf(path, sizeof(path), "%s/state", test_dir);
	state = dir_snapshot(path);
	snprintf(path, sizeof(path), "%s/run", test_dir);
	run = dir_snapshot(path);
	assert_non_null(state);
	assert_non_null(run);
	assert_true(asprintf(&both, "state:\n%srun:\n%s", state, run) > 0);
	free(state);
	free(run);
	return both;
}

static char *agent_log_path(void)
{
	static char path[300];

	snprintf(path, sizeof(path), "%s/agent.log", test_dir);
	return path;
}

/* The part of the agent's log past offset. */
static char *agent_log_since(long offset)
{
	size_t size = 0;
	char *text = file_read_all(agent_log_path(), &size);
	char *tail;

	assert_non_null(text);
	assert_true(offset >= 0 && (size_t)offset <= size);
	tail = strdup(text + offset);
	free(text);
	assert_non_null(tail);
	return tail;
}

static size_t line_count(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

#define LEASES_QUERY                                                                               \
	"SELECT id, account, class, uid, gid, grp, home, shell, gecos, hex(hash), created_at, "    \
	"expires_at, max_expires_at, max_uses, uses, state, requester_uid, reason, services, "     \
	"sources, ended_at FROM leases ORDER BY id"
#define AUDIT_QUERY   "SELECT seq, event, account, lease, detail FROM audit ORDER BY seq"
#define LOCKOUT_QUERY "SELECT key, at FROM lockout_failures ORDER BY key, at"

struct database_dump {
	char *leases;  /* one line per lease with every column */
	char *audit;   /* one line per audit record */
	char *lockout; /* one line per recorded failure */
};

static char *query_dump(sqlite3 *db, const char *query)
{
	sqlite3_stmt *st = NULL;
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);

	assert_non_null(f);
	assert_int_equal(sqlite3_prepare_v2(db, query, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const unsigned char *v = sqlite3_column_text(st, i);

			fprintf(f, "%s%s", i ? "|" : "", v ? (const char *)v : "NULL");
		}
		fputc('\n', f);
	}
	sqlite3_finalize(st);
	fclose(f);
	return out;
}

/* Stops the agent, copies its database, restarts it and reads the copy,
 * so that the reading cannot change the agent's files. */
static void database_dump(struct database_dump *ret)
{
	char copy_dir[300], cmd[1400], copy[400];
	sqlite3 *db = NULL;

	assert_int_equal(harness_stop_agent(&agent), 0);
	snprintf(copy_dir, sizeof(copy_dir), "%s/db-copy", test_dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir '%s' && cp '%s'/state/state.db* '%s'/",
		 copy_dir, copy_dir, test_dir, copy_dir);
	assert_int_equal(system_unwrapped(cmd), 0);
	assert_int_equal(harness_restart_agent(&agent), 0);

	snprintf(copy, sizeof(copy), "%s/state.db", copy_dir);
	assert_int_equal(sqlite3_open_v2(copy, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ret->leases = query_dump(db, LEASES_QUERY);
	ret->audit = query_dump(db, AUDIT_QUERY);
	ret->lockout = query_dump(db, LOCKOUT_QUERY);
	sqlite3_close(db);
}

static void database_dump_free(struct database_dump *d)
{
	free(d->leases);
	free(d->audit);
	free(d->lockout);
}

/* ---- invalid user names ---- */

static void pam_bad_name(void **state)
{
	const struct name_case *c = *state;
	char *before = agent_dirs_snapshot(), *after, *pam_log, *agent_log;
	long log_offset = file_size(agent_log_path());
	size_t name_len = strlen(c->name);
	int auth, account, session;

	assert_true(log_offset >= 0);
	capture_begin();
	auth = pam_step("mid", c->name, "mid1_whatever", PAM_STEP_AUTHENTICATE);
	account = pam_step("mid", c->name, NULL, PAM_STEP_ACCOUNT);
	session = pam_step("mid", c->name, NULL, PAM_STEP_OPEN_SESSION);
	pam_log = capture_end();

	assert_pam("authenticate", PAM_USER_UNKNOWN, auth);
	assert_pam("account", PAM_USER_UNKNOWN, account);
	/* pam_mid ignores the session of a name it cannot use, and a stack
	 * in which every module ignored the call fails with PAM_PERM_DENIED. */
	assert_pam("open session", PAM_PERM_DENIED, session);

	/* The module logs that the name is invalid, never the name. */
	assert_non_null(strstr(pam_log, "user name is not a valid account name"));
	if (name_len >= 2 && strstr(pam_log, c->name))
		fail_msg("the PAM log contains the raw name: %s", pam_log);

	after = agent_dirs_snapshot();
	assert_string_equal(before, after);
	agent_log = agent_log_since(log_offset);
	assert_true(line_count(agent_log) <= 1);
	if (name_len >= 2 && strstr(agent_log, c->name))
		fail_msg("the agent's log contains the raw name: %s", agent_log);

	free(before);
	free(after);
	free(pam_log);
	free(agent_log);
}

/* The agent itself, asked directly, rejects the same names as invalid
 * without touching its state. Names longer than the protocol's field
 * cannot be sent and are covered by test_frames. */
static void agent_bad_names_rejected(void **state)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));
	char *before = agent_dirs_snapshot(), *after, *agent_log;
	long log_offset = file_size(agent_log_path());
	size_t sent = 0;

	assert_non_null(resp);
	for (size_t i = 0; i < MID_ELEMENTSOF(name_cases); i++) {
		const struct name_case *c = &name_cases[i];
		const uint8_t types[] = {MID_REQ_VERIFY, MID_REQ_ACCOUNT};

		if (strlen(c->name) > MID_NAME_MAX)
			continue;
		for (size_t t = 0; t < MID_ELEMENTSOF(types); t++) {
			struct mid_request req = {.type = types[t]};
			int r;

			snprintf(req.account, sizeof(req.account), "%s", c->name);
			snprintf(req.credential, sizeof(req.credential), "mid1_whatever");
			r = harness_call(&agent, &req, resp);
			if (r != MID_ERR_INVALID)
				fail_msg("%s request for the %s name: expected invalid, got %s",
					 mid_request_type_to_string(types[t]), c->label,
					 r < 0 ? strerror(-r) : mid_status_to_name(r));
			sent++;
		}
	}
	assert_true(sent > 0);

	after = agent_dirs_snapshot();
	assert_string_equal(before, after);
	agent_log = agent_log_since(log_offset);
	assert_true(line_count(agent_log) <= sent);
	for (size_t i = 0; i < MID_ELEMENTSOF(name_cases); i++)
		if (strlen(name_cases[i].name) >= 2 && strstr(agent_log, name_cases[i].name))
			fail_msg("the agent's log contains the raw %s name", name_cases[i].label);
	free(before);
	free(after);
	free(agent_log);
	free(resp);
}

/* ---- invalid credentials ---- */

struct credential_case {
	const char *label;
	char credential[5000];
	bool reaches_agent; /* false: pam_mid rejects it on its own */
};

static void credential_cases_fill(struct credential_case *cases, size_t *n, const char *valid,
				  const char *foreign, const char *forged)
{
	size_t len = strlen(valid), i = 0;

	cases[i] = (struct credential_case){.label = "empty"};
	i++;

	cases[i] = (struct credential_case){.label = "over MID_CREDENTIAL_MAX"};
	memset(cases[i].credential, 'a', MID_CREDENTIAL_MAX + 1);
	i++;

	cases[i] = (struct credential_case){.label = "over PAM_MAX_RESP_SIZE"};
	memset(cases[i].credential, 'a', PAM_MAX_RESP_SIZE + 1);
	i++;

	cases[i] = (struct credential_case){.label = "4096 bytes"};
	memcpy(cases[i].credential, valid, len);
	memset(cases[i].credential + len, 'f', 4096 - len);
	i++;

	cases[i] = (struct credential_case){.label = "truncated by one", .reaches_agent = true};
	memcpy(cases[i].credential, valid, len - 1);
	i++;

	cases[i] = (struct credential_case){.label = "truncated by half", .reaches_agent = true};
	memcpy(cases[i].credential, valid, len / 2);
	i++;

	cases[i] = (struct credential_case){.label = "bad checksum", .reaches_agent = true};
	memcpy(cases[i].credential, valid, len);
	cases[i].credential[len - 1] = valid[len - 1] == '0' ? '1' : '0';
	i++;

	cases[i] = (struct credential_case){.label = "flipped secret", .reaches_agent = true};
	memcpy(cases[i].credential, valid, len);
	cases[i].credential[30] = valid[30] == '0' ? '1' : '0';
	i++;

	cases[i] = (struct credential_case){.label = "upper case", .reaches_agent = true};
	for (size_t j = 0; j < len; j++)
		cases[i].credential[j] =
		    (valid[j] >= 'a' && valid[j] <= 'f') ? (char)(valid[j] - 32) : valid[j];
	i++;

	cases[i] = (struct credential_case){.label = "trailing space", .reaches_agent = true};
	snprintf(cases[i].credential, sizeof(cases[i].credential), "%s ", valid);
	i++;

	cases[i] = (struct credential_case){.label = "trailing newline", .reaches_agent = true};
	snprintf(cases[i].credential, sizeof(cases[i].credential), "%s\n", valid);
	i++;

	cases[i] = (struct credential_case){.label = "control bytes", .reaches_agent = true};
	snprintf(cases[i].credential, sizeof(cases[i].credential), "mid1_\x1b[2J\x07\xff");
	i++;

	cases[i] = (struct credential_case){.label = "another account", .reaches_agent = true};
	snprintf(cases[i].credential, sizeof(cases[i].credential), "%s", foreign);
	i++;

	cases[i] = (struct credential_case){.label = "forged secret", .reaches_agent = true};
	snprintf(cases[i].credential, sizeof(cases[i].credential), "%s", forged);
	i++;

	*n = i;
}

static void pam_bad_credentials_rejected(void **state)
{
	struct credential_case *cases = calloc(16, sizeof(*cases));
	char valid[MID_CREDENTIAL_MAX + 1], foreign[MID_CREDENTIAL_MAX + 1];
	char forged[MID_TOKEN_LEN + 1], label[64];
	uint8_t other_key[MID_HOST_KEY_BYTES], hash[MID_TOKEN_HASH_BYTES];
	struct mid_lease_info lease;
	struct database_dump before, after;
	size_t n = 0, reaching = 0;
	const char *added;
	char *agent_log;
	long log_offset;

	assert_non_null(cases);
	issue("nobody", NULL, valid, &lease);
	issue("daemon", NULL, foreign, NULL);
	randombytes_buf(other_key, sizeof(other_key));
	assert_int_equal(token_new(lease.lease, other_key, forged, hash), 0);
	credential_cases_fill(cases, &n, valid, foreign, forged);
	/* pam_mid sends nothing without the credential prefix (the upper
	 * case variant loses it), so such text never reaches the agent. */
	for (size_t i = 0; i < n; i++)
		if (strncmp(cases[i].credential, "mid1_", 5) != 0)
			cases[i].reaches_agent = false;

	database_dump(&before);
	log_offset = file_size(agent_log_path());
	for (size_t i = 0; i < n; i++) {
		int r = pam_step("mid", "nobody", cases[i].credential, PAM_STEP_AUTHENTICATE);

		snprintf(label, sizeof(label), "%s credential", cases[i].label);
		assert_pam(label, PAM_AUTH_ERR, r);
		reaching += cases[i].reaches_agent;
	}
	agent_log = agent_log_since(log_offset);
	database_dump(&after);

	/* One escaped line per failure, and no credential in it. */
	assert_true(line_count(agent_log) <= reaching);
	for (size_t i = 0; i < n; i++)
		if (strlen(cases[i].credential) >= 8 && strstr(agent_log, cases[i].credential))
			fail_msg("the agent's log contains the %s credential", cases[i].label);
	assert_null(memchr(agent_log, '\x1b', strlen(agent_log)));
	assert_null(memchr(agent_log, '\xff', strlen(agent_log)));

	/* Only the failure audit may change: one verify-failed per request
	 * that reached the agent, and nothing else. */
	assert_string_equal(before.leases, after.leases);
	assert_string_equal(before.lockout, after.lockout);
	assert_int_equal(strncmp(before.audit, after.audit, strlen(before.audit)), 0);
	added = after.audit + strlen(before.audit);
	assert_int_equal(line_count(added), reaching);
	for (const char *line = added; *line; line = strchr(line, '\n') + 1) {
		const char *event = strstr(line, "|verify-failed|");

		if (!event || event > strchr(line, '\n'))
			fail_msg("unexpected audit record after bad credentials: %.*s",
				 (int)(strchr(line, '\n') - line), line);
	}

	/* The real credential still works afterwards. */
	assert_pam("valid credential", PAM_SUCCESS,
		   pam_step("mid", "nobody", valid, PAM_STEP_AUTHENTICATE));
	database_dump_free(&before);
	database_dump_free(&after);
	free(agent_log);
	free(cases);
}

static void pam_bad_credentials_not_logged(void **state)
{
	char valid[MID_CREDENTIAL_MAX + 1], broken[MID_CREDENTIAL_MAX + 1];
	long log_offset = file_size(agent_log_path());
	char *pam_log, *agent_log;
	size_t len;

	issue("nobody", NULL, valid, NULL);
	len = strlen(valid);
	memcpy(broken, valid, len + 1);
	broken[len - 1] = valid[len - 1] == '0' ? '1' : '0';

	capture_begin();
	assert_pam("bad checksum", PAM_AUTH_ERR,
		   pam_step("mid", "nobody", broken, PAM_STEP_AUTHENTICATE));
	pam_log = capture_end();
	agent_log = agent_log_since(log_offset);

	/* A credential one character off is nearly the secret: never log it. */
	assert_null(strstr(pam_log, broken + 22));
	assert_null(strstr(agent_log, broken + 22));
	assert_non_null(strstr(pam_log, "authentication failure"));
	free(pam_log);
	free(agent_log);
}

/* ---- options ---- */

static void pam_unknown_options_ignored(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	char *pam_log;
	int r;

	issue("nobody", NULL, cred, NULL);
	capture_begin();
	r = pam_step("mid_opts", "nobody", cred, PAM_STEP_AUTHENTICATE);
	pam_log = capture_end();

	assert_pam("authenticate with unknown options", PAM_SUCCESS, r);
	assert_non_null(strstr(pam_log, "unknown option no_such_option"));
	assert_non_null(strstr(pam_log, "invalid option timeout=abc"));
	assert_non_null(strstr(pam_log, "invalid option timeout=0"));
	assert_non_null(strstr(pam_log, "invalid option timeout=99999999999"));
	assert_non_null(strstr(pam_log, "unknown option socket=relative.sock"));
	assert_non_null(strstr(pam_log, "unknown option cache="));
	assert_non_null(strstr(pam_log, "unknown option %s%n"));
	assert_non_null(strstr(pam_log, "unknown option DEBUG"));
	free(pam_log);
}

/* ---- failing parts ---- */

static void pam_agent_stopped_unavailable(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	issue("nobody", NULL, cred, NULL);
	assert_int_equal(harness_stop_agent(&agent), 0);

	assert_pam("authenticate", PAM_AUTHINFO_UNAVAIL,
		   pam_step("mid", "nobody", cred, PAM_STEP_AUTHENTICATE));
	assert_pam("account", PAM_AUTHINFO_UNAVAIL,
		   pam_step("mid", "nobody", NULL, PAM_STEP_ACCOUNT));
	assert_pam("open session", PAM_SESSION_ERR,
		   pam_step("mid", "nobody", NULL, PAM_STEP_OPEN_SESSION));

	assert_int_equal(harness_restart_agent(&agent), 0);
	assert_pam("authenticate after restart", PAM_SUCCESS,
		   pam_step("mid", "nobody", cred, PAM_STEP_AUTHENTICATE));
}

static void pam_agent_hung_times_out(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	int64_t start, ms;
	int r;

	issue("nobody", NULL, cred, NULL);
	assert_int_equal(kill(agent.pid, SIGSTOP), 0);
	start = monotonic_usec();
	r = pam_step("mid_short", "nobody", cred, PAM_STEP_AUTHENTICATE);
	ms = elapsed_ms(start);
	assert_int_equal(kill(agent.pid, SIGCONT), 0);

	printf("# managed login with the agent stopped by SIGSTOP: %lld ms (timeout=%d)\n",
	       (long long)ms, SHORT_TIMEOUT_MS);
	assert_pam("authenticate", PAM_AUTHINFO_UNAVAIL, r);
	assert_true(ms >= SHORT_TIMEOUT_MS - 10);
	assert_true(ms < SHORT_TIMEOUT_MS + TIMEOUT_SLACK_MS);
	assert_pam("authenticate after SIGCONT", PAM_SUCCESS,
		   pam_step("mid_short", "nobody", cred, PAM_STEP_AUTHENTICATE));
}

/* A stale socket file with no listener: the agent between its stop and
 * its next bind. */
static void pam_agent_restarting_unavailable(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char cred[MID_CREDENTIAL_MAX + 1];
	int64_t start, ms;
	int fd, r;

	issue("nobody", NULL, cred, NULL);
	assert_int_equal(harness_stop_agent(&agent), 0);
	assert_true(strlen(agent.socket_path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, agent.socket_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	start = monotonic_usec();
	r = pam_step("mid_short", "nobody", cred, PAM_STEP_AUTHENTICATE);
	ms = elapsed_ms(start);
	assert_pam("authenticate on a stale socket", PAM_AUTHINFO_UNAVAIL, r);
	assert_true(ms < SHORT_TIMEOUT_MS + TIMEOUT_SLACK_MS);

	/* The restarted agent replaces the stale socket and keeps the lease. */
	assert_int_equal(harness_restart_agent(&agent), 0);
	assert_pam("authenticate after restart", PAM_SUCCESS,
		   pam_step("mid_short", "nobody", cred, PAM_STEP_AUTHENTICATE));
}

static void pam_unmanaged_not_slowed(void **state)
{
	int64_t start, auth_ms, account_ms;
	int auth, account;

	/* root is in no rule, so the cache alone decides: no agent contact. */
	assert_int_equal(kill(agent.pid, SIGSTOP), 0);
	start = monotonic_usec();
	auth = pam_step("mid_permit", "root", "anything", PAM_STEP_AUTHENTICATE);
	auth_ms = elapsed_ms(start);
	start = monotonic_usec();
	account = pam_step("mid_permit", "root", NULL, PAM_STEP_ACCOUNT);
	account_ms = elapsed_ms(start);
	assert_int_equal(kill(agent.pid, SIGCONT), 0);

	printf("# unmanaged login with the agent stopped: authenticate %lld ms, account %lld ms\n",
	       (long long)auth_ms, (long long)account_ms);
	assert_pam("authenticate root", PAM_SUCCESS, auth);
	assert_pam("account root", PAM_SUCCESS, account);
	assert_true(auth_ms < UNMANAGED_MAX_MS);
	assert_true(account_ms < UNMANAGED_MAX_MS);
}

static void pam_managed_denied_when_hung(void **state)
{
	/* The same permissive stack fails closed for a managed account. */
	assert_int_equal(kill(agent.pid, SIGSTOP), 0);
	assert_pam("authenticate nobody", PAM_AUTHINFO_UNAVAIL,
		   pam_step("mid_permit", "nobody", WELL_FORMED_TOKEN, PAM_STEP_AUTHENTICATE));
	assert_int_equal(kill(agent.pid, SIGCONT), 0);
}

static void pam_no_descriptor_inherited(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	char *before = child_descriptor_list(), *after;

	assert_non_null(before);
	issue("nobody", NULL, cred, NULL);
	assert_pam("authenticate", PAM_SUCCESS,
		   pam_step("mid", "nobody", cred, PAM_STEP_AUTHENTICATE));
	assert_pam("account", PAM_SUCCESS, pam_step("mid", "nobody", NULL, PAM_STEP_ACCOUNT));
	assert_pam("authenticate root", PAM_SUCCESS,
		   pam_step("mid_permit", "root", "x", PAM_STEP_AUTHENTICATE));
	after = child_descriptor_list();
	assert_non_null(after);

	assert_null(strstr(after, MID_CACHE_FILE_NAME));
	assert_null(strstr(after, "agent.sock"));
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static int group_setup(void **state)
{
	if (sodium_init() < 0)
		return -1;
	return harness_start(&agent, test_dir, POLICY) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	harness_stop(&agent);
	return 0;
}

#define MAX_TESTS 64

int main(int argc, char **argv)
{
	static const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(agent_bad_names_rejected),
	    cmocka_unit_test(pam_bad_credentials_rejected),
	    cmocka_unit_test(pam_bad_credentials_not_logged),
	    cmocka_unit_test(pam_unknown_options_ignored),
	    cmocka_unit_test(pam_agent_stopped_unavailable),
	    cmocka_unit_test(pam_agent_hung_times_out),
	    cmocka_unit_test(pam_agent_restarting_unavailable),
	    cmocka_unit_test(pam_unmanaged_not_slowed),
	    cmocka_unit_test(pam_managed_denied_when_hung),
	    cmocka_unit_test(pam_no_descriptor_inherited),
	};
	struct CMUnitTest tests[MAX_TESTS];
	char names[MID_ELEMENTSOF(name_cases)][64];
	size_t n = 0;
	int failed;

	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_pam_hostile: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root: the agent lets only root issue and verify here\n");
		return 0;
	}
	harness_pam_wrapper(argv, "/tmp/mid-hardening-pam.XXXXXX", "MID_PAM_TEST_DIR", test_dir,
			    sizeof(test_dir), write_services);

	memset(name_256, 'a', sizeof(name_256) - 1);
	memset(name_4096, 'a', sizeof(name_4096) - 1);
	for (size_t i = 0; i < MID_ELEMENTSOF(name_cases); i++) {
		snprintf(names[i], sizeof(names[i]), "pam_bad_name %s", name_cases[i].label);
		tests[n++] = (struct CMUnitTest){
		    .name = names[i],
		    .test_func = pam_bad_name,
		    .initial_state = &name_cases[i],
		};
	}
	for (size_t i = 0; i < MID_ELEMENTSOF(fixed); i++)
		tests[n++] = fixed[i];

	failed =
	    _cmocka_run_group_tests("pam_mid hostile input", tests, n, group_setup, group_teardown);

	harness_dir_remove(test_dir);
	return failed;
}
