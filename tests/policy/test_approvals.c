/* The approval workflow against a real mid-agentd: pending requests,
 * approvals by other users, denial, expiry, collection, and the midctl
 * commands that drive them. A peer with another UID is a forked child
 * that drops to an existing system user (daemon, bin, sys, nobody,
 * www-data) before it connects, so the test must run as root. */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "names.h"

/* Who requests and who approves, by rule:
 *   games     daemon requests; bin or sys approves (1 needed)
 *   man       daemon requests; 2 of bin, sys, nobody approve
 *   lp        daemon requests; bin approves; requests expire after 1s
 *   uucp      daemon requests; bin approves; requests expire after 2s
 *   news      sys requests and is itself an approver, with bin
 *   list      www-data requests (the open request limit); bin approves
 *   mail      daemon requests; no approval
 *   irc, proxy, backup, sync   daemon requests; bin (or sys for sync)
 *             approves; the reload test changes them
 *   class ci  daemon requests; bin approves */
#define BY_DAEMON "requesters = { users = [\"daemon\"]; };\n"
#define BY_BIN "    approval = { approvers = { users = [\"bin\"]; }; }; },\n"
#define BY_BIN_SYS "    approval = { approvers = { users = [\"bin\", \"sys\"]; }; }; },\n"

#define POLICY_RULES \
	"lockout = { failures = 0; };\n" \
	"accounts = (\n" \
	"  { name = \"games\"; ttl = \"5m\"; " BY_DAEMON BY_BIN_SYS \
	"  { name = \"man\"; ttl = \"5m\"; " BY_DAEMON \
	"    approval = { approvers = { users = [\"bin\", \"sys\", \"nobody\"]; };\n" \
	"      required = 2; }; },\n" \
	"  { name = \"lp\"; ttl = \"5m\"; " BY_DAEMON \
	"    approval = { approvers = { users = [\"bin\"]; }; request_ttl = \"1s\"; }; },\n" \
	"  { name = \"uucp\"; ttl = \"5m\"; " BY_DAEMON \
	"    approval = { approvers = { users = [\"bin\"]; }; request_ttl = \"2s\"; }; },\n" \
	"  { name = \"news\"; ttl = \"5m\"; requesters = { users = [\"sys\"]; };\n" BY_BIN_SYS \
	"  { name = \"list\"; ttl = \"5m\"; requesters = { users = [\"www-data\"]; };\n" BY_BIN \
	"  { name = \"mail\"; ttl = \"5m\"; " BY_DAEMON "  },\n"

#define POLICY_CLASSES \
	"classes = (\n" \
	"  { name = \"ci\"; prefix = \"ci-\"; uid_min = 61000; uid_max = 61999;\n" \
	"    group = \"mid-ci\"; gid = 61000; ttl = \"5m\"; " BY_DAEMON \
	"    approval = { approvers = { users = [\"bin\"]; }; }; }\n" \
	");\n"

/* The rules that the reload test changes, as they start. */
#define POLICY_RELOADABLE \
	"  { name = \"irc\"; ttl = \"5m\"; " BY_DAEMON BY_BIN \
	"  { name = \"proxy\"; ttl = \"5m\"; " BY_DAEMON BY_BIN \
	"  { name = \"backup\"; ttl = \"5m\"; " BY_DAEMON BY_BIN \
	"  { name = \"sync\"; ttl = \"5m\"; " BY_DAEMON \
	"    approval = { approvers = { users = [\"bin\", \"sys\"]; }; }; }\n" \
	");\n"

#define POLICY POLICY_RULES POLICY_RELOADABLE POLICY_CLASSES

/* As the server side caps them: see OPEN_REQUESTS_MAX in agentd/approvals.c. */
#define OPEN_REQUESTS_MAX 100

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_PENDING 4

#define assert_contains(text, needle)                                                              \
	do {                                                                                       \
		if (!strstr((text), (needle)))                                                     \
			fail_msg("expected \"%s\" in \"%s\"", (needle), (text));                   \
	} while (0)

#define assert_not_contains(text, needle)                                                          \
	do {                                                                                       \
		if (strstr((text), (needle)))                                                      \
			fail_msg("did not expect \"%s\" in \"%s\"", (needle), (text));             \
	} while (0)

static struct harness agent;

/* In a forked child: drops to user's UID and primary GID with no other
 * groups, or exits 126. "root" stays root. */
static void child_become(const char *user)
{
	struct passwd *pw;

	if (strcmp(user, "root") == 0)
		return;
	pw = getpwnam(user);
	if (!pw || setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0 || getuid() != pw->pw_uid)
		_exit(126);
}

static int read_full(int fd, void *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = read(fd, (char *)buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = write(fd, (const char *)buf + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Sends req to the agent as user, from a child process. Returns the
 * reply's status or -errno and writes the reply to resp. */
static int call_as(const char *user, const struct mid_request *req, struct mid_response *resp)
{
	int fds[2], status, r;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct mid_response *child_resp = calloc(1, sizeof(*child_resp));

		close(fds[0]);
		child_become(user);
		if (!child_resp)
			_exit(125);
		r = harness_call(&agent, req, child_resp);
		if (write_full(fds[1], &r, sizeof(r)) < 0 ||
		    write_full(fds[1], child_resp, sizeof(*child_resp)) < 0)
			_exit(124);
		_exit(0);
	}
	close(fds[1]);
	memset(resp, 0, sizeof(*resp));
	if (read_full(fds[0], &r, sizeof(r)) < 0 || read_full(fds[0], resp, sizeof(*resp)) < 0)
		r = -ECHILD;
	close(fds[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		r = -ECHILD;
	return r;
}

static int issue_as(const char *user, const char *account, const char *class_name,
		    const char *reason, struct mid_response *resp)
{
	struct mid_request req = {.type = MID_REQ_ISSUE};

	if (account)
		snprintf(req.account, sizeof(req.account), "%s", account);
	if (class_name)
		snprintf(req.class_name, sizeof(req.class_name), "%s", class_name);
	if (reason)
		snprintf(req.reason, sizeof(req.reason), "%s", reason);
	return call_as(user, &req, resp);
}

/* APPROVE, DENY or COLLECT of request id as user. */
static int decide_as(const char *user, uint8_t type, const char *id, const char *reason,
		     struct mid_response *resp)
{
	struct mid_request req = {.type = type};

	snprintf(req.id, sizeof(req.id), "%s", id);
	if (reason)
		snprintf(req.reason, sizeof(req.reason), "%s", reason);
	return call_as(user, &req, resp);
}

static int approve_as(const char *user, const char *id, struct mid_response *resp)
{
	return decide_as(user, MID_REQ_APPROVE, id, NULL, resp);
}

static int deny_as(const char *user, const char *id, const char *reason, struct mid_response *resp)
{
	return decide_as(user, MID_REQ_DENY, id, reason, resp);
}

static int collect_as(const char *user, const char *id, struct mid_response *resp)
{
	return decide_as(user, MID_REQ_COLLECT, id, NULL, resp);
}

/* Makes a request that must come back pending and writes its id. */
static void request_pending(const char *user, const char *account, const char *class_name,
			    char id[MID_ID_MAX + 1], struct mid_response *resp)
{
	assert_int_equal(issue_as(user, account, class_name, "approval test", resp), MID_PENDING);
	assert_true(lease_id_is_valid(resp->id));
	snprintf(id, MID_ID_MAX + 1, "%s", resp->id);
}

/* Verifies a credential as root, the way pam_mid does. */
static int verify_credential(const char *account, const char *credential,
			     struct mid_response *resp)
{
	struct mid_request req = {.type = MID_REQ_VERIFY};

	snprintf(req.account, sizeof(req.account), "%s", account);
	snprintf(req.credential, sizeof(req.credential), "%s", credential);
	snprintf(req.service, sizeof(req.service), "sshd");
	return harness_call(&agent, &req, resp);
}

/* Looks for request id in the REQUESTS listing user sees. Returns 1 and
 * fills ret when found, 0 when not, or -errno. */
static int listing_find(const char *user, const char *id, struct mid_approval_info *ret,
			struct mid_response *resp)
{
	struct mid_request req = {.type = MID_REQ_REQUESTS};
	int r;

	for (;;) {
		r = call_as(user, &req, resp);
		if (r != MID_OK)
			return r < 0 ? r : -EPERM;
		for (unsigned i = 0; i < resp->count; i++)
			if (strcmp(resp->approvals[i].id, id) == 0) {
				*ret = resp->approvals[i];
				return 1;
			}
		req.offset += resp->count;
		if (resp->count == 0 || req.offset >= resp->total)
			return 0;
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Output of the one midctl process that runs at a time. A listing that
 * root or an approver sees contains every request the tests made. */
#define OUTPUT_MAX (1024 * 1024)
static char midctl_stdout[OUTPUT_MAX];
static char midctl_stderr[OUTPUT_MAX];

/* One midctl process run as some user, with its stdout and stderr. */
struct midctl_run {
	pid_t pid;
	int out_fd;
	int err_fd;
	int status; /* exit status, or -1 when it did not exit normally */
	char *out;
	char *err;
};

static void read_output(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

/* Starts midctl --socket SOCKET args... as user, with its output in
 * memory files; args ends with NULL. */
static void midctl_start(struct midctl_run *run, const char *user, const char *const *args)
{
	const char *builddir = getenv("MID_BUILDDIR");
	char path[512];
	const char *argv[32];
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/midctl/midctl", builddir ? builddir : ".");
	argv[n++] = path;
	argv[n++] = "--socket";
	argv[n++] = agent.socket_path;
	for (size_t i = 0; args[i] && n < MID_ELEMENTSOF(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	memset(run, 0, sizeof(*run));
	run->out = midctl_stdout;
	run->err = midctl_stderr;
	run->out[0] = '\0';
	run->err[0] = '\0';
	run->out_fd = memfd_create("midctl-stdout", MFD_CLOEXEC);
	run->err_fd = memfd_create("midctl-stderr", MFD_CLOEXEC);
	assert_true(run->out_fd >= 0);
	assert_true(run->err_fd >= 0);
	run->pid = fork();
	assert_true(run->pid >= 0);
	if (run->pid == 0) {
		child_become(user);
		if (dup2(run->out_fd, STDOUT_FILENO) < 0 || dup2(run->err_fd, STDERR_FILENO) < 0)
			_exit(125);
		unsetenv("MID_SOCKET");
		execv(path, (char *const *)argv);
		_exit(127);
	}
}

static void midctl_finish(struct midctl_run *run)
{
	int status;

	assert_int_equal(waitpid(run->pid, &status, 0), run->pid);
	run->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	read_output(run->out_fd, run->out, OUTPUT_MAX);
	read_output(run->err_fd, run->err, OUTPUT_MAX);
	close(run->out_fd);
	close(run->err_fd);
}

/* Runs midctl as user to its end; the arguments end with NULL. Returns
 * its exit status. */
static int midctl(struct midctl_run *run, const char *user, ...)
{
	const char *args[24];
	size_t n = 0;
	va_list ap;

	va_start(ap, user);
	while (n < MID_ELEMENTSOF(args) - 1 && (args[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	args[n] = NULL;
	midctl_start(run, user, args);
	midctl_finish(run);
	return run->status;
}

/* Waits until a midctl issue --wait names its request on stderr and
 * writes that id. */
static void midctl_wait_for_id(struct midctl_run *run, char id[MID_ID_MAX + 1])
{
	static const char marker[] = "waiting for request ";

	for (int i = 0; i < 1000; i++) {
		const char *at;

		read_output(run->err_fd, run->err, OUTPUT_MAX);
		at = strstr(run->err, marker);
		if (at && strlen(at) >= sizeof(marker) - 1 + MID_LEASE_ID_LEN) {
			at += sizeof(marker) - 1;
			snprintf(id, MID_ID_MAX + 1, "%.*s", MID_LEASE_ID_LEN, at);
			return;
		}
		sleep_ms(10);
	}
	fail_msg("midctl issue --wait named no request; stderr: %s", run->err);
}

/* Pulls "credential: ..." out of midctl's text output. */
static void credential_from_output(const char *out, char credential[MID_CREDENTIAL_MAX + 1])
{
	const char *at = strstr(out, "credential: ");

	if (!at)
		fail_msg("no credential in midctl output: %s", out);
	at += strlen("credential: ");
	snprintf(credential, MID_CREDENTIAL_MAX + 1, "%.*s", (int)strcspn(at, "\n"), at);
}

static int resp_setup(void **state)
{
	*state = calloc(1, sizeof(struct mid_response));
	return *state ? 0 : -1;
}

static int resp_teardown(void **state)
{
	free(*state);
	return 0;
}

/* Protocol */

static void approve_collect_verifies(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1], credential[MID_CREDENTIAL_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_contains(resp->message, id);
	assert_contains(resp->message, "midctl collect");

	assert_int_equal(approve_as("bin", id, resp), MID_OK);
	assert_string_equal(resp->id, id);

	assert_int_equal(collect_as("daemon", id, resp), MID_OK);
	assert_string_equal(resp->lease.account, "games");
	assert_int_equal(resp->lease.requester_uid, 1);
	assert_string_equal(resp->lease.reason, "approval test");
	assert_true(strncmp(resp->credential, "mid1_", 5) == 0);
	snprintf(credential, sizeof(credential), "%s", resp->credential);

	assert_int_equal(verify_credential("games", credential, resp), MID_OK);
	assert_string_equal(resp->lease.account, "games");
}

static void issue_without_approval_direct(void **state)
{
	struct mid_response *resp = *state;

	assert_int_equal(issue_as("daemon", "mail", NULL, NULL, resp), MID_OK);
	assert_true(strncmp(resp->credential, "mid1_", 5) == 0);
	assert_string_equal(resp->id, "");
}

static void class_request_collects_account(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1], credential[MID_CREDENTIAL_MAX + 1], account[MID_NAME_MAX + 1];

	request_pending("daemon", NULL, "ci", id, resp);
	assert_contains(resp->message, "class ci");
	assert_int_equal(approve_as("bin", id, resp), MID_OK);
	assert_int_equal(collect_as("daemon", id, resp), MID_OK);
	assert_string_equal(resp->lease.class_name, "ci");
	assert_true(strncmp(resp->lease.account, "ci-", 3) == 0);
	snprintf(account, sizeof(account), "%s", resp->lease.account);
	snprintf(credential, sizeof(credential), "%s", resp->credential);
	assert_int_equal(verify_credential(account, credential, resp), MID_OK);
}

static void two_approvers_needed(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "man", NULL, id, resp);
	assert_contains(resp->message, "2 approval(s)");

	assert_int_equal(approve_as("bin", id, resp), MID_PENDING);
	assert_contains(resp->message, "1 of 2");
	assert_int_equal(collect_as("daemon", id, resp), MID_PENDING);
	assert_contains(resp->message, "1 of 2");
}

static void same_approver_counts_once(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "man", NULL, id, resp);
	assert_int_equal(approve_as("bin", id, resp), MID_PENDING);

	assert_int_equal(approve_as("bin", id, resp), MID_ERR_DENIED);
	assert_contains(resp->message, "counts once");
	assert_int_equal(collect_as("daemon", id, resp), MID_PENDING);

	assert_int_equal(approve_as("nobody", id, resp), MID_OK);
	assert_contains(resp->message, "2 of 2");
	assert_int_equal(collect_as("daemon", id, resp), MID_OK);
	assert_string_equal(resp->lease.account, "man");
}

static void requester_cannot_approve_own(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	/* sys requests news and is one of its approvers. */
	request_pending("sys", "news", NULL, id, resp);
	assert_int_equal(approve_as("sys", id, resp), MID_ERR_PERMISSION);
	assert_contains(resp->message, "may not approve");
	assert_int_equal(collect_as("sys", id, resp), MID_PENDING);
}

static void root_cannot_approve_own(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	/* Root may request anything and approve anything, except this. */
	request_pending("root", "games", NULL, id, resp);
	assert_int_equal(approve_as("root", id, resp), MID_ERR_PERMISSION);
	assert_contains(resp->message, "may not approve");
	assert_int_equal(collect_as("root", id, resp), MID_PENDING);

	assert_int_equal(approve_as("sys", id, resp), MID_OK);
	assert_int_equal(collect_as("root", id, resp), MID_OK);
	assert_int_equal(resp->lease.requester_uid, 0);
}

static void root_approves_others(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_int_equal(approve_as("root", id, resp), MID_OK);
	assert_int_equal(collect_as("daemon", id, resp), MID_OK);
}

static void non_approver_rejected(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);

	/* The user nobody approves man, not games. */
	assert_int_equal(approve_as("nobody", id, resp), MID_ERR_PERMISSION);
	assert_contains(resp->message, "not an approver");
	assert_int_equal(deny_as("nobody", id, "no", resp), MID_ERR_PERMISSION);
	assert_contains(resp->message, "not an approver");
	assert_int_equal(collect_as("daemon", id, resp), MID_PENDING);
}

static void deny_blocks_collect(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_int_equal(deny_as("sys", id, "change freeze until Monday", resp), MID_OK);

	assert_int_equal(collect_as("daemon", id, resp), MID_ERR_DENIED);
	assert_contains(resp->message, "change freeze until Monday");
	assert_contains(resp->message, "denied by UID 3");

	assert_int_equal(approve_as("bin", id, resp), MID_ERR_DENIED);
	assert_contains(resp->message, "was denied");
	assert_int_equal(deny_as("bin", id, "again", resp), MID_ERR_DENIED);
}

static void deny_needs_reason(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_int_equal(deny_as("sys", id, NULL, resp), MID_ERR_INVALID);
	assert_contains(resp->message, "reason");
	assert_int_equal(collect_as("daemon", id, resp), MID_PENDING);
}

static void deny_after_approval_vetoes(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_int_equal(approve_as("bin", id, resp), MID_OK);
	assert_int_equal(deny_as("sys", id, "second thoughts", resp), MID_OK);
	assert_int_equal(collect_as("daemon", id, resp), MID_ERR_DENIED);
	assert_contains(resp->message, "second thoughts");
}

static void requester_withdraws_request(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_int_equal(deny_as("daemon", id, "not needed after all", resp), MID_OK);
	assert_int_equal(approve_as("bin", id, resp), MID_ERR_DENIED);
}

static void expired_request_rejected(void **state)
{
	struct mid_response *resp = *state;
	struct mid_approval_info info;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "lp", NULL, id, resp);
	sleep_ms(2100);

	assert_int_equal(approve_as("bin", id, resp), MID_ERR_EXPIRED);
	assert_contains(resp->message, "expired");
	assert_int_equal(collect_as("daemon", id, resp), MID_ERR_EXPIRED);
	assert_contains(resp->message, "expired");
	assert_int_equal(deny_as("bin", id, "late", resp), MID_ERR_EXPIRED);

	assert_int_equal(listing_find("root", id, &info, resp), 1);
	assert_string_equal(mid_approval_state_to_string(info.state), "expired");
}

static void approved_request_expires(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	/* uucp requests live 2s: at least one whole second to approve. */
	request_pending("daemon", "uucp", NULL, id, resp);
	assert_int_equal(approve_as("bin", id, resp), MID_OK);
	sleep_ms(3100);
	assert_int_equal(collect_as("daemon", id, resp), MID_ERR_EXPIRED);
}

static void second_collect_fails(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1], lease[MID_LEASE_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_int_equal(approve_as("bin", id, resp), MID_OK);
	assert_int_equal(collect_as("daemon", id, resp), MID_OK);
	snprintf(lease, sizeof(lease), "%s", resp->lease.lease);

	assert_int_equal(collect_as("daemon", id, resp), MID_ERR_DENIED);
	assert_contains(resp->message, "already collected");
	assert_contains(resp->message, lease);
	assert_string_equal(resp->credential, "");
	assert_int_equal(approve_as("sys", id, resp), MID_ERR_DENIED);
}

static void collect_by_other_rejected(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_int_equal(approve_as("bin", id, resp), MID_OK);

	assert_int_equal(collect_as("bin", id, resp), MID_ERR_PERMISSION);
	assert_contains(resp->message, "only that user");
	assert_int_equal(collect_as("root", id, resp), MID_ERR_PERMISSION);
	assert_int_equal(collect_as("nobody", id, resp), MID_ERR_PERMISSION);

	assert_int_equal(collect_as("daemon", id, resp), MID_OK);
}

static void invalid_and_unknown_ids(void **state)
{
	static const char *const invalid[] = {
		"", "0123", "0123456789ABCDEF", "0123456789abcdeg", "0123456789abcdef0",
		"../../etc/passwd",
	};
	struct mid_response *resp = *state;

	for (size_t i = 0; i < MID_ELEMENTSOF(invalid); i++) {
		assert_int_equal(approve_as("bin", invalid[i], resp), MID_ERR_INVALID);
		assert_contains(resp->message, "invalid request id");
		assert_int_equal(collect_as("daemon", invalid[i], resp), MID_ERR_INVALID);
		assert_int_equal(deny_as("bin", invalid[i], "x", resp), MID_ERR_INVALID);
	}
	assert_int_equal(approve_as("bin", "0123456789abcdef", resp), MID_ERR_NOT_FOUND);
	assert_contains(resp->message, "no approval request 0123456789abcdef");
	assert_int_equal(collect_as("daemon", "0123456789abcdef", resp), MID_ERR_NOT_FOUND);
	assert_int_equal(deny_as("bin", "0123456789abcdef", "x", resp), MID_ERR_NOT_FOUND);
}

static void requests_listing_visibility(void **state)
{
	struct mid_response *resp = *state;
	struct mid_approval_info info;
	char games_id[MID_ID_MAX + 1], news_id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, games_id, resp);
	request_pending("sys", "news", NULL, news_id, resp);

	/* Root sees all. */
	assert_int_equal(listing_find("root", games_id, &info, resp), 1);
	assert_int_equal(listing_find("root", news_id, &info, resp), 1);
	/* A requester sees its own. */
	assert_int_equal(listing_find("daemon", games_id, &info, resp), 1);
	assert_int_equal(listing_find("daemon", news_id, &info, resp), 0);
	/* An approver sees the requests it may approve, and sys its own. */
	assert_int_equal(listing_find("bin", games_id, &info, resp), 1);
	assert_int_equal(listing_find("bin", news_id, &info, resp), 1);
	assert_int_equal(listing_find("sys", games_id, &info, resp), 1);
	assert_int_equal(listing_find("sys", news_id, &info, resp), 1);
	/* The user nobody approves only man. */
	assert_int_equal(listing_find("nobody", games_id, &info, resp), 0);
	assert_int_equal(listing_find("nobody", news_id, &info, resp), 0);

	assert_int_equal(listing_find("daemon", games_id, &info, resp), 1);
	assert_string_equal(info.account, "games");
	assert_string_equal(info.class_name, "");
	assert_int_equal(info.requester_uid, 1);
	assert_int_equal(info.approvals, 0);
	assert_int_equal(info.required, 1);
	assert_string_equal(mid_approval_state_to_string(info.state), "pending");
	assert_string_equal(info.reason, "approval test");
	assert_true(info.expires_at > info.created_at);

	assert_int_equal(approve_as("bin", games_id, resp), MID_OK);
	assert_int_equal(listing_find("daemon", games_id, &info, resp), 1);
	assert_string_equal(mid_approval_state_to_string(info.state), "approved");
	assert_int_equal(info.approvals, 1);
}

static void open_request_limit(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	for (int i = 0; i < OPEN_REQUESTS_MAX; i++)
		assert_int_equal(issue_as("www-data", "list", NULL, NULL, resp), MID_PENDING);
	assert_int_equal(issue_as("www-data", "list", NULL, NULL, resp), MID_ERR_LIMIT);
	assert_contains(resp->message, "100 open approval requests");

	/* Another requester has a budget of its own. */
	request_pending("daemon", "games", NULL, id, resp);
}

static void decided_request_frees_slot(void **state)
{
	struct mid_response *resp = *state;
	struct mid_request req = {.type = MID_REQ_REQUESTS};
	char id[MID_ID_MAX + 1] = "";

	/* open_request_limit left www-data at the limit. */
	assert_int_equal(issue_as("www-data", "list", NULL, NULL, resp), MID_ERR_LIMIT);
	assert_int_equal(call_as("www-data", &req, resp), MID_OK);
	assert_true(resp->count > 0);
	snprintf(id, sizeof(id), "%s", resp->approvals[0].id);
	assert_int_equal(deny_as("www-data", id, "withdrawn", resp), MID_OK);
	assert_int_equal(issue_as("www-data", "list", NULL, NULL, resp), MID_PENDING);
	assert_int_equal(issue_as("www-data", "list", NULL, NULL, resp), MID_ERR_LIMIT);
}

static void request_survives_restart(void **state)
{
	struct mid_response *resp = *state;
	char id[MID_ID_MAX + 1];

	request_pending("daemon", "games", NULL, id, resp);
	assert_int_equal(approve_as("bin", id, resp), MID_OK);
	assert_int_equal(harness_stop_agent(&agent), 0);
	assert_int_equal(harness_restart_agent(&agent), 0);
	assert_int_equal(collect_as("daemon", id, resp), MID_OK);
	assert_string_equal(resp->lease.account, "games");
}

/* midctl */

static void midctl_issue_prints_pending(void **state)
{
	struct midctl_run run;
	char id[MID_ID_MAX + 1];

	assert_int_equal(midctl(&run, "daemon", "issue", "games", "--reason", "cli", NULL),
			 EXIT_PENDING);
	assert_contains(run.out, "request:    ");
	assert_contains(run.out, "state:      pending");
	snprintf(id, sizeof(id), "%.*s", MID_LEASE_ID_LEN, strstr(run.out, "request:    ") + 12);
	assert_true(lease_id_is_valid(id));
	assert_contains(run.out, "midctl collect");

	assert_int_equal(midctl(&run, "daemon", "--json", "issue", "games", NULL), EXIT_PENDING);
	assert_true(strncmp(run.out, "{\"request\":\"", 12) == 0);
	assert_contains(run.out, "\"state\":\"pending\"");

	assert_int_equal(midctl(&run, "daemon", "--field", "request", "issue", "games", NULL),
			 EXIT_PENDING);
	assert_int_equal(strlen(run.out), MID_LEASE_ID_LEN + 1);
	run.out[MID_LEASE_ID_LEN] = '\0';
	assert_true(lease_id_is_valid(run.out));
}

static void midctl_issue_field_credential_pending(void **state)
{
	struct midctl_run run;

	/* A script asking for the credential gets none, and a distinct code. */
	assert_int_equal(midctl(&run, "daemon", "--field", "credential", "issue", "games", NULL),
			 EXIT_PENDING);
	assert_string_equal(run.out, "");
	assert_contains(run.err, "no credential yet");
}

static void midctl_field_request_without_approval(void **state)
{
	struct midctl_run run;

	/* mail needs no approval: the credential that came back would never
	 * be printed, so midctl revokes its lease again. */
	assert_int_equal(midctl(&run, "daemon", "--field", "request", "issue", "mail", NULL),
			 EXIT_REFUSED);
	assert_string_equal(run.out, "");
	assert_contains(run.err, "revoked again");
	assert_int_equal(midctl(&run, "daemon", "--json", "list", NULL), 0);
	assert_contains(run.out, "\"account\":\"mail\"");
	assert_contains(run.out, "\"state\":\"revoked\"");
}

static void midctl_approve_collect(void **state)
{
	struct mid_response *resp = *state;
	struct midctl_run run;
	char id[MID_ID_MAX + 1], credential[MID_CREDENTIAL_MAX + 1];

	assert_int_equal(midctl(&run, "daemon", "-F", "request", "issue", "games", NULL),
			 EXIT_PENDING);
	snprintf(id, sizeof(id), "%.*s", MID_LEASE_ID_LEN, run.out);

	assert_int_equal(midctl(&run, "daemon", "approve", id, NULL), EXIT_REFUSED);
	assert_contains(run.err, "may not approve");

	assert_int_equal(midctl(&run, "daemon", "collect", id, NULL), EXIT_PENDING);
	assert_contains(run.out, "state:      pending");

	assert_int_equal(midctl(&run, "bin", "approve", id, "--reason", "looks fine", NULL), 0);
	assert_contains(run.out, "state:      approved");
	assert_contains(run.out, id);

	assert_int_equal(midctl(&run, "daemon", "collect", id, NULL), 0);
	credential_from_output(run.out, credential);
	assert_contains(run.out, "account:    games");
	assert_int_equal(verify_credential("games", credential, resp), MID_OK);

	assert_int_equal(midctl(&run, "daemon", "collect", id, NULL), EXIT_REFUSED);
	assert_contains(run.err, "already collected");
	assert_not_contains(run.out, "credential");
}

static void midctl_approve_json_pending(void **state)
{
	struct midctl_run run;
	char id[MID_ID_MAX + 1];

	assert_int_equal(midctl(&run, "daemon", "-F", "request", "issue", "man", NULL),
			 EXIT_PENDING);
	snprintf(id, sizeof(id), "%.*s", MID_LEASE_ID_LEN, run.out);

	assert_int_equal(midctl(&run, "bin", "--json", "approve", id, NULL), 0);
	assert_contains(run.out, "\"state\":\"pending\"");
	assert_contains(run.out, "1 of 2");
	assert_int_equal(midctl(&run, "nobody", "-F", "state", "approve", id, NULL), 0);
	assert_string_equal(run.out, "approved\n");
	assert_int_equal(midctl(&run, "sys", "approve", id, NULL), EXIT_REFUSED);
	assert_contains(run.err, "already approved");
}

static void midctl_deny_and_collect(void **state)
{
	struct midctl_run run;
	char id[MID_ID_MAX + 1];

	assert_int_equal(midctl(&run, "daemon", "-F", "request", "issue", "games", NULL),
			 EXIT_PENDING);
	snprintf(id, sizeof(id), "%.*s", MID_LEASE_ID_LEN, run.out);

	assert_int_equal(midctl(&run, "sys", "deny", id, NULL), EXIT_USAGE);
	assert_contains(run.err, "--reason");
	assert_int_equal(midctl(&run, "nobody", "deny", id, "--reason", "no", NULL), EXIT_REFUSED);
	assert_contains(run.err, "not an approver");

	assert_int_equal(
		midctl(&run, "sys", "--json", "deny", id, "--reason", "out of hours", NULL), 0);
	assert_contains(run.out, "\"state\":\"denied\"");

	assert_int_equal(midctl(&run, "daemon", "collect", id, NULL), EXIT_REFUSED);
	assert_contains(run.err, "out of hours");
}

static void midctl_rejects_bad_ids(void **state)
{
	struct midctl_run run;

	assert_int_equal(midctl(&run, "bin", "approve", "nothex", NULL), EXIT_USAGE);
	assert_contains(run.err, "invalid request id");
	assert_int_equal(midctl(&run, "daemon", "collect", NULL), EXIT_USAGE);
	assert_int_equal(midctl(&run, "daemon", "collect", "0123456789abcdef", "extra", NULL),
			 EXIT_USAGE);
	assert_int_equal(
		midctl(&run, "daemon", "collect", "0123456789abcdef", "--reason", "x", NULL),
		EXIT_USAGE);
	assert_int_equal(midctl(&run, "bin", "approve", "0123456789abcdef", NULL), EXIT_REFUSED);
	assert_contains(run.err, "no approval request");
	assert_int_equal(midctl(&run, "bin", "-F", "credential", "approve", "0123456789abcdef",
				NULL),
			 EXIT_USAGE);
	assert_int_equal(midctl(&run, "daemon", "requests", "extra", NULL), EXIT_USAGE);
	assert_int_equal(midctl(&run, "daemon", "-F", "request", "requests", NULL), EXIT_USAGE);
	assert_int_equal(midctl(&run, "daemon", "issue", "games", "--timeout", "5s", NULL),
			 EXIT_USAGE);
	assert_int_equal(midctl(&run, "daemon", "issue", "games", "--wait", "--timeout", "soon",
				NULL),
			 EXIT_USAGE);
}

static void midctl_requests_lists(void **state)
{
	struct midctl_run run;
	char id[MID_ID_MAX + 1], needle[64];

	assert_int_equal(midctl(&run, "daemon", "-F", "request", "issue", "games", "--reason",
				"listing check", NULL),
			 EXIT_PENDING);
	snprintf(id, sizeof(id), "%.*s", MID_LEASE_ID_LEN, run.out);

	assert_int_equal(midctl(&run, "daemon", "requests", NULL), 0);
	assert_contains(run.out, "REQUEST");
	assert_contains(run.out, id);
	assert_contains(run.out, "listing check");
	assert_contains(run.out, "daemon");

	assert_int_equal(midctl(&run, "bin", "--json", "requests", NULL), 0);
	snprintf(needle, sizeof(needle), "{\"request\":\"%s\"", id);
	assert_contains(run.out, needle);
	assert_contains(run.out, "\"requester\":\"daemon\"");
	assert_contains(run.out, "\"total\":");

	assert_int_equal(midctl(&run, "nobody", "requests", NULL), 0);
	assert_not_contains(run.out, id);
}

static void midctl_wait_gets_credential(void **state)
{
	static const char *const args[] = {"issue", "games", "--wait", "--timeout", "60s", NULL};
	struct mid_response *resp = *state;
	struct midctl_run run;
	char id[MID_ID_MAX + 1], credential[MID_CREDENTIAL_MAX + 1];

	midctl_start(&run, "daemon", args);
	midctl_wait_for_id(&run, id);
	sleep_ms(300);
	assert_int_equal(approve_as("sys", id, resp), MID_OK);
	midctl_finish(&run);

	assert_int_equal(run.status, 0);
	credential_from_output(run.out, credential);
	assert_int_equal(verify_credential("games", credential, resp), MID_OK);
	assert_int_equal(collect_as("daemon", id, resp), MID_ERR_DENIED);
}

static void midctl_wait_reports_denial(void **state)
{
	static const char *const args[] = {"issue", "games", "--wait", "--timeout", "60s", NULL};
	struct mid_response *resp = *state;
	struct midctl_run run;
	char id[MID_ID_MAX + 1];

	midctl_start(&run, "daemon", args);
	midctl_wait_for_id(&run, id);
	assert_int_equal(deny_as("bin", id, "wrong ticket", resp), MID_OK);
	midctl_finish(&run);

	assert_int_equal(run.status, EXIT_REFUSED);
	assert_contains(run.err, "wrong ticket");
	assert_not_contains(run.out, "credential");
}

static void midctl_wait_times_out(void **state)
{
	struct midctl_run run;

	assert_int_equal(midctl(&run, "daemon", "issue", "games", "--wait", "--timeout", "1s",
				NULL),
			 EXIT_PENDING);
	assert_contains(run.err, "timed out");
	assert_contains(run.out, "state:      pending");
}

static void midctl_wait_sees_expiry(void **state)
{
	struct midctl_run run;

	/* The timeout only bounds the test: the request expires after 1s. */
	assert_int_equal(midctl(&run, "daemon", "issue", "lp", "--wait", "--timeout", "30s", NULL),
			 EXIT_REFUSED);
	assert_contains(run.err, "expired");
	assert_not_contains(run.out, "credential");
}

/* Reload: the rule, the requester and the conditions are read again at
 * collect. */

static void write_policy_and_reload(const char *text, struct mid_response *resp)
{
	struct mid_request req = {.type = MID_REQ_RELOAD};
	FILE *f = fopen(agent.config_path, "we");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(harness_call(&agent, &req, resp), MID_OK);
}

static void reload_changes_collect(void **state)
{
	struct mid_response *resp = *state;
	char irc[MID_ID_MAX + 1], proxy[MID_ID_MAX + 1], backup[MID_ID_MAX + 1];
	char sync_id[MID_ID_MAX + 1], policy[8192], rules[1024];
	time_t now = time(NULL);
	struct tm tm;
	int hour;

	request_pending("daemon", "irc", NULL, irc, resp);
	request_pending("daemon", "proxy", NULL, proxy, resp);
	request_pending("daemon", "backup", NULL, backup, resp);
	request_pending("daemon", "sync", NULL, sync_id, resp);
	assert_int_equal(approve_as("bin", irc, resp), MID_OK);
	assert_int_equal(approve_as("bin", proxy, resp), MID_OK);
	assert_int_equal(approve_as("bin", backup, resp), MID_OK);
	assert_int_equal(approve_as("bin", sync_id, resp), MID_OK);

	/* irc is gone, proxy only allows a half hour twelve hours from now,
	 * backup no longer lets daemon request, sync needs two approvals. */
	gmtime_r(&now, &tm);
	hour = (tm.tm_hour + 12) % 24;
	snprintf(rules, sizeof(rules),
		 "  { name = \"proxy\"; ttl = \"5m\"; requesters = { users = [\"daemon\"]; };\n"
		 "    timezone = \"UTC\"; hours = [\"%02d:00-%02d:30\"];\n"
		 "    approval = { approvers = { users = [\"bin\"]; }; }; },\n"
		 "  { name = \"backup\"; ttl = \"5m\"; requesters = { users = [\"bin\"]; };\n"
		 "    approval = { approvers = { users = [\"bin\"]; }; }; },\n"
		 "  { name = \"sync\"; ttl = \"5m\"; requesters = { users = [\"daemon\"]; };\n"
		 "    approval = { approvers = { users = [\"bin\", \"sys\"]; };\n"
		 "      required = 2; }; }\n"
		 ");\n",
		 hour, hour);
	snprintf(policy, sizeof(policy), "%s%s%s", POLICY_RULES, rules, POLICY_CLASSES);
	write_policy_and_reload(policy, resp);

	assert_int_equal(collect_as("daemon", irc, resp), MID_ERR_DENIED);
	assert_contains(resp->message, "no rule for account irc");
	assert_int_equal(collect_as("daemon", proxy, resp), MID_ERR_DENIED);
	assert_contains(resp->message, "only during hours");
	assert_int_equal(collect_as("daemon", backup, resp), MID_ERR_PERMISSION);
	assert_contains(resp->message, "may no longer request");
	assert_int_equal(collect_as("daemon", sync_id, resp), MID_PENDING);
	assert_contains(resp->message, "1 of 2");

	write_policy_and_reload(POLICY, resp);
	/* Each was refused before it was claimed, so it is still collectable. */
	assert_int_equal(collect_as("daemon", proxy, resp), MID_OK);
	assert_int_equal(collect_as("daemon", backup, resp), MID_OK);
	assert_int_equal(collect_as("daemon", irc, resp), MID_OK);
	assert_int_equal(collect_as("daemon", sync_id, resp), MID_OK);
}

static int group_setup(void **state)
{
	int r = harness_start(&agent, NULL, POLICY);

	if (r < 0) {
		fprintf(stderr, "# failed to start mid-agentd: %s\n", strerror(-r));
		return -1;
	}
	/* The harness directory is 0700; the users the test acts as must
	 * reach the socket inside it. */
	if (chmod(agent.dir, 0755) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	harness_stop(&agent);
	return 0;
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, resp_setup, resp_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(approve_collect_verifies),
		TEST(issue_without_approval_direct),
		TEST(class_request_collects_account),
		TEST(two_approvers_needed),
		TEST(same_approver_counts_once),
		TEST(requester_cannot_approve_own),
		TEST(root_cannot_approve_own),
		TEST(root_approves_others),
		TEST(non_approver_rejected),
		TEST(deny_blocks_collect),
		TEST(deny_needs_reason),
		TEST(deny_after_approval_vetoes),
		TEST(requester_withdraws_request),
		TEST(expired_request_rejected),
		TEST(approved_request_expires),
		TEST(second_collect_fails),
		TEST(collect_by_other_rejected),
		TEST(invalid_and_unknown_ids),
		TEST(requests_listing_visibility),
		TEST(open_request_limit),
		TEST(decided_request_frees_slot),
		TEST(request_survives_restart),
		TEST(midctl_issue_prints_pending),
		TEST(midctl_issue_field_credential_pending),
		TEST(midctl_field_request_without_approval),
		TEST(midctl_approve_collect),
		TEST(midctl_approve_json_pending),
		TEST(midctl_deny_and_collect),
		TEST(midctl_rejects_bad_ids),
		TEST(midctl_requests_lists),
		TEST(midctl_wait_gets_credential),
		TEST(midctl_wait_reports_denial),
		TEST(midctl_wait_times_out),
		TEST(midctl_wait_sees_expiry),
		TEST(reload_changes_collect),
	};

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root to act as the users daemon, bin, sys and nobody\n");
		return 0;
	}
	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_approvals: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	return cmocka_run_group_tests_name("approvals", tests, group_setup, group_teardown);
}
