/* The session registry of a real mid-agentd, through its protocol: what
 * SESSION_OPEN accepts and rejects, max_sessions, listing, closing, the
 * end of sessions whose process exits, restarts, and warnings written to
 * a pseudo-terminal. Session processes are children of this test. */
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct harness agent;
static char me[64];
static bool root;

struct opened {
	int status;
	char id[MID_ID_MAX + 1];
	char message[MID_TEXT_MAX + 1];
};

/* Children still running, so a failed test does not leave them behind
 * holding the test's output open. */
static pid_t children[16];
static size_t n_children;

static pid_t child_start(void)
{
	pid_t pid;

	assert_true(n_children < MID_ELEMENTSOF(children));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		for (;;)
			pause();
	}
	children[n_children++] = pid;
	return pid;
}

/* Reaps pid, which may have ended already; returns its wait status. */
static int child_reap(pid_t pid, int options)
{
	int status = -1;
	pid_t r = waitpid(pid, &status, options);

	for (size_t i = 0; r == pid && i < n_children; i++)
		if (children[i] == pid)
			children[i] = children[--n_children];
	return r == pid ? status : -1;
}

static void child_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	(void)child_reap(pid, 0);
}

static int children_stop(void **state)
{
	while (n_children > 0)
		child_stop(children[0]);
	return 0;
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}, NULL);
}

static void issue(const char *account, uint32_t ttl, struct mid_lease_info *lease)
{
	assert_int_equal(harness_issue(&agent, account, NULL, ttl, NULL, lease), MID_OK);
}

static struct opened session_request(uint8_t type, const char *account, const char *lease,
				     uint32_t pid, const char *logind_id, const char *tty)
{
	struct mid_request req = {.type = type, .pid = pid};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	struct opened o = {0};

	assert_non_null(resp);
	snprintf(req.account, sizeof(req.account), "%s", account);
	snprintf(req.lease, sizeof(req.lease), "%s", lease);
	snprintf(req.service, sizeof(req.service), "sshd");
	snprintf(req.rhost, sizeof(req.rhost), "192.0.2.7");
	snprintf(req.tty, sizeof(req.tty), "%s", tty);
	snprintf(req.session_id, sizeof(req.session_id), "%s", logind_id);
	o.status = harness_call(&agent, &req, resp);
	memcpy(o.id, resp->id, sizeof(o.id));
	memcpy(o.message, resp->message, sizeof(o.message));
	free(resp);
	return o;
}

static struct opened session_open(const struct mid_lease_info *lease, pid_t pid)
{
	return session_request(MID_REQ_SESSION_OPEN, lease->account, lease->lease, (uint32_t)pid,
			       "", "ssh");
}

static int session_close(const struct mid_lease_info *lease, pid_t pid)
{
	return session_request(MID_REQ_SESSION_CLOSE, lease->account, lease->lease, (uint32_t)pid,
			       "", "ssh")
		.status;
}

/* Finds the open session of lease in the listing; returns how many the
 * lease has and copies the first into *ret when set. */
static int sessions_of(const char *lease, struct mid_session_info *ret)
{
	struct mid_request req = {.type = MID_REQ_SESSIONS};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int found = 0;

	assert_non_null(resp);
	for (;;) {
		assert_int_equal(harness_call(&agent, &req, resp), MID_OK);
		for (unsigned i = 0; i < resp->count; i++) {
			if (strcmp(resp->sessions[i].lease, lease) != 0)
				continue;
			if (found++ == 0 && ret)
				*ret = resp->sessions[i];
		}
		req.offset += resp->count;
		if (resp->count == 0 || req.offset >= resp->total)
			break;
	}
	free(resp);
	return found;
}

static int kill_request(const char *id)
{
	struct mid_request req = {.type = MID_REQ_KILL};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int r;

	assert_non_null(resp);
	snprintf(req.id, sizeof(req.id), "%s", id);
	r = harness_call(&agent, &req, resp);
	free(resp);
	return r;
}

static void test_open_registers_session(void **state)
{
	struct mid_session_info info;
	struct mid_lease_info lease;
	struct opened o;
	pid_t pid = child_start();

	issue(me, 0, &lease);
	o = session_request(MID_REQ_SESSION_OPEN, me, lease.lease, (uint32_t)pid, "c5", "ssh");
	assert_int_equal(o.status, MID_OK);
	assert_int_equal(strlen(o.id), 16);
	assert_int_equal(sessions_of(lease.lease, &info), 1);
	assert_string_equal(info.id, o.id);
	assert_string_equal(info.account, me);
	assert_string_equal(info.service, "sshd");
	assert_string_equal(info.rhost, "192.0.2.7");
	assert_string_equal(info.logind_id, "c5");
	assert_int_equal(info.pid, (uint32_t)pid);
	assert_int_equal(info.deadline, lease.expires_at);
	assert_int_equal(info.state, MID_SESSION_OPEN);

	assert_int_equal(session_close(&lease, pid), MID_OK);
	assert_int_equal(sessions_of(lease.lease, NULL), 0);
	assert_int_equal(session_close(&lease, pid), MID_ERR_NOT_FOUND);
	child_stop(pid);
}

static void test_open_rejects_invalid_requests(void **state)
{
	struct mid_lease_info lease, other;
	pid_t pid = child_start(), gone = child_start();
	struct opened o;

	issue(me, 0, &lease);
	issue("nobody", 0, &other);
	child_stop(gone);

	assert_int_equal(
		session_request(MID_REQ_SESSION_OPEN, me, lease.lease, (uint32_t)pid, "c;1", "ssh")
			.status,
		MID_ERR_INVALID);
	assert_int_equal(session_open(&lease, 1).status, MID_ERR_INVALID);
	assert_int_equal(session_open(&lease, gone).status, MID_ERR_INVALID);
	assert_int_equal(session_request(MID_REQ_SESSION_OPEN, "-bad", lease.lease, (uint32_t)pid,
					 "", "ssh")
				 .status,
			 MID_ERR_INVALID);
	o = session_request(MID_REQ_SESSION_OPEN, "daemon", "", (uint32_t)pid, "", "ssh");
	assert_int_equal(o.status, MID_ERR_UNMANAGED);
	/* A lease of another account does not open a session. */
	o = session_request(MID_REQ_SESSION_OPEN, me, other.lease, (uint32_t)pid, "", "ssh");
	assert_int_equal(o.status, MID_ERR_NOT_FOUND);
	assert_int_equal(sessions_of(lease.lease, NULL), 0);
	child_stop(pid);
}

static void test_open_rejects_ended_lease(void **state)
{
	struct mid_lease_info revoked, expiring;
	pid_t pid = child_start();

	issue(me, 0, &revoked);
	assert_int_equal(harness_revoke(&agent, revoked.lease), MID_OK);
	assert_int_equal(session_open(&revoked, pid).status, MID_ERR_REVOKED);

	issue(me, 1, &expiring);
	sleep_ms(2100);
	assert_int_equal(session_open(&expiring, pid).status, MID_ERR_EXPIRED);
	child_stop(pid);
}

static void test_limit_rejects_extra_session(void **state)
{
	struct mid_lease_info lease;
	pid_t first = child_start(), second = child_start(), third = child_start();
	struct opened o;

	issue(me, 0, &lease);
	assert_int_equal(session_open(&lease, first).status, MID_OK);
	assert_int_equal(session_open(&lease, second).status, MID_OK);
	o = session_open(&lease, third);
	assert_int_equal(o.status, MID_ERR_LIMIT);
	assert_non_null(strstr(o.message, "max_sessions"));
	assert_int_equal(sessions_of(lease.lease, NULL), 2);

	/* A session whose process is gone no longer counts. */
	child_stop(first);
	assert_int_equal(session_open(&lease, third).status, MID_OK);

	assert_int_equal(harness_revoke(&agent, lease.lease), MID_OK);
	assert_int_equal(sessions_of(lease.lease, NULL), 0);
	assert_true(WIFSIGNALED(child_reap(second, 0)));
	assert_true(WIFSIGNALED(child_reap(third, 0)));
}

static void test_exited_process_closes_session(void **state)
{
	struct mid_lease_info lease;
	pid_t pid = child_start();
	int left = 1;

	issue(me, 0, &lease);
	assert_int_equal(session_open(&lease, pid).status, MID_OK);
	child_stop(pid);
	for (int i = 0; i < 100 && left; i++) {
		sleep_ms(10);
		left = sessions_of(lease.lease, NULL);
	}
	assert_int_equal(left, 0);
}

static void test_kill_rejects_invalid_ids(void **state)
{
	struct mid_lease_info lease;
	pid_t pid = child_start();
	struct opened o;

	if (!root)
		skip();
	issue(me, 0, &lease);
	o = session_open(&lease, pid);
	assert_int_equal(o.status, MID_OK);
	assert_int_equal(session_close(&lease, pid), MID_OK);

	assert_int_equal(kill_request("xyz"), MID_ERR_INVALID);
	assert_int_equal(kill_request("0123456789ABCDEF"), MID_ERR_INVALID);
	assert_int_equal(kill_request("0123456789abcdef"), MID_ERR_NOT_FOUND);
	assert_int_equal(kill_request(o.id), MID_ERR_NOT_FOUND);
	/* The closed session's process was left alone. */
	assert_int_equal(child_reap(pid, WNOHANG), -1);
	child_stop(pid);
}

static void test_renew_moves_deadline(void **state)
{
	struct mid_request req = {.type = MID_REQ_RENEW, .ttl = 1200};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	struct mid_session_info info;
	struct mid_lease_info lease;
	pid_t pid = child_start();

	assert_non_null(resp);
	issue(me, 60, &lease);
	assert_int_equal(session_open(&lease, pid).status, MID_OK);
	snprintf(req.lease, sizeof(req.lease), "%s", lease.lease);
	assert_int_equal(harness_call(&agent, &req, resp), MID_OK);
	assert_int_equal(sessions_of(lease.lease, &info), 1);
	assert_int_equal(info.deadline, resp->lease.expires_at);
	assert_true(info.deadline > lease.expires_at);
	assert_int_equal(session_close(&lease, pid), MID_OK);
	free(resp);
	child_stop(pid);
}

static void test_sessions_survive_restart(void **state)
{
	struct mid_lease_info lease;
	struct mid_session_info after;
	pid_t pid = child_start(), gone = child_start();
	struct opened o;

	issue(me, 0, &lease);
	o = session_open(&lease, pid);
	assert_int_equal(o.status, MID_OK);
	assert_int_equal(session_open(&lease, gone).status, MID_OK);
	assert_int_equal(sessions_of(lease.lease, NULL), 2);

	assert_int_equal(harness_stop_agent(&agent), 0);
	child_stop(gone);
	assert_int_equal(harness_restart_agent(&agent), 0);

	/* The session of the process that exited meanwhile is closed. */
	assert_int_equal(sessions_of(lease.lease, &after), 1);
	assert_string_equal(after.id, o.id);
	assert_int_equal(after.pid, (uint32_t)pid);
	assert_int_equal(after.deadline, lease.expires_at);
	assert_int_equal(session_close(&lease, pid), MID_OK);
	child_stop(pid);
}

/* Reads what reaches the pty's master within timeout_ms. */
static void pty_read(int master, char *buf, size_t size, int timeout_ms)
{
	struct pollfd p = {.fd = master, .events = POLLIN};
	size_t len = 0;

	buf[0] = '\0';
	while (len + 1 < size && poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = read(master, buf + len, size - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		timeout_ms = 200;
	}
}

static void test_warning_reaches_terminal(void **state)
{
	char tty[64], text[1024], expected[128];
	struct mid_lease_info lease;
	int master, slave, status;
	struct opened o;
	pid_t pid = child_start();

	assert_int_equal(openpty(&master, &slave, tty, NULL, NULL), 0);
	issue(me, 3, &lease);
	o = session_request(MID_REQ_SESSION_OPEN, me, lease.lease, (uint32_t)pid, "", tty);
	assert_int_equal(o.status, MID_OK);

	pty_read(master, text, sizeof(text), 2500);
	snprintf(expected, sizeof(expected), "[mid] Lease %s of account %s ends in", lease.lease,
		 me);
	assert_non_null(strstr(text, expected));
	assert_non_null(strstr(text, "This session will be terminated then"));

	/* At expiry the session ends: SIGHUP ends the child. */
	status = child_reap(pid, 0);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGHUP);
	close(master);
	close(slave);
}

static void test_warning_skips_foreign_terminal(void **state)
{
	char tty[64], text[1024];
	struct mid_lease_info lease;
	int master, slave;
	pid_t pid = child_start();

	if (!root)
		skip();
	/* The pty belongs to root, and the lease's account is nobody. */
	assert_int_equal(openpty(&master, &slave, tty, NULL, NULL), 0);
	issue("nobody", 3, &lease);
	assert_int_equal(session_request(MID_REQ_SESSION_OPEN, "nobody", lease.lease,
					 (uint32_t)pid, "", tty)
				 .status,
			 MID_OK);
	pty_read(master, text, sizeof(text), 2500);
	assert_string_equal(text, "");
	assert_true(WIFSIGNALED(child_reap(pid, 0)));
	close(master);
	close(slave);
}

static int group_setup(void **state)
{
	struct passwd *pw = getpwuid(getuid());
	char policy[1024];

	if (!pw)
		return -1;
	snprintf(me, sizeof(me), "%s", pw->pw_name);
	root = getuid() == 0;
	snprintf(policy, sizeof(policy),
		 "verifiers = { users = [\"%s\"]; };\n"
		 "accounts = (\n"
		 "  { name = \"%s\"; ttl = \"5m\"; max_ttl = \"1h\"; max_sessions = 2; grace = \"1s\";\n"
		 "    warn_before = [\"2s\"]; requesters = { users = [\"%s\"]; }; },\n"
		 "  { name = \"nobody\"; ttl = \"5m\"; max_ttl = \"1h\"; grace = \"1s\";\n"
		 "    warn_before = [\"2s\"]; requesters = { users = [\"%s\"]; }; }\n"
		 ");\n",
		 me, me, me, me);
	setenv("MID_LOGIND_BUS_ADDRESS", "unix:path=/nonexistent/mid-test-no-logind", 1);
	return harness_start(&agent, NULL, policy) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	harness_stop(&agent);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_open_registers_session, children_stop),
		cmocka_unit_test_teardown(test_open_rejects_invalid_requests, children_stop),
		cmocka_unit_test_teardown(test_open_rejects_ended_lease, children_stop),
		cmocka_unit_test_teardown(test_limit_rejects_extra_session, children_stop),
		cmocka_unit_test_teardown(test_exited_process_closes_session, children_stop),
		cmocka_unit_test_teardown(test_kill_rejects_invalid_ids, children_stop),
		cmocka_unit_test_teardown(test_renew_moves_deadline, children_stop),
		cmocka_unit_test_teardown(test_sessions_survive_restart, children_stop),
		cmocka_unit_test_teardown(test_warning_reaches_terminal, children_stop),
		cmocka_unit_test_teardown(test_warning_skips_foreign_terminal, children_stop),
	};

	return cmocka_run_group_tests_name("session registry", tests, group_setup,
					   group_teardown);
}
