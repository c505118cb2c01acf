/* How a real mid-agentd ends a session when its lease ends: through logind
 * when it is reachable, here a fake logind on a private dbus-daemon that
 * records each call, and else by signals through pidfds. The session's
 * process is a child of this test that records the signals it catches. */
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define GRACE_SECONDS 1
#define FAKE_SESSION_PATH "/org/freedesktop/login1/session/c7"

static char test_dir[256];
static char bus_address[300];
static char calls_path[300];
static pid_t dbus_pid, fake_pid;
static struct harness with_logind, without_logind;
static char account[64];

/* ---- A fake logind ---- */

static int calls_fd = -1;

MID_PRINTF(1, 2)
static void record_call(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && write(calls_fd, line, (size_t)n) != n)
		_exit(3);
}

static int fake_terminate_session(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *id;
	int r = sd_bus_message_read(m, "s", &id);

	if (r < 0)
		return r;
	record_call("TerminateSession %s\n", id);
	if (strcmp(id, "nosuch") == 0)
		return sd_bus_error_setf(error, "org.freedesktop.login1.NoSuchSession",
					 "No session '%s' known", id);
	return sd_bus_reply_method_return(m, NULL);
}

static int fake_get_session_by_pid(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	uint32_t pid;
	int r = sd_bus_message_read(m, "u", &pid);

	if (r < 0)
		return r;
	record_call("GetSessionByPID %u\n", pid);
	return sd_bus_reply_method_return(m, "o", FAKE_SESSION_PATH);
}

static int fake_session_id(sd_bus *bus, const char *path, const char *interface,
			   const char *property, sd_bus_message *reply, void *userdata,
			   sd_bus_error *error)
{
	return sd_bus_message_append(reply, "s", "c7");
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("TerminateSession", "s", "", fake_terminate_session,
		      SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("GetSessionByPID", "u", "o", fake_get_session_by_pid,
		      SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

static const sd_bus_vtable session_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Id", "s", fake_session_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_VTABLE_END,
};

/* Serves org.freedesktop.login1 on the private bus until killed; writes
 * one byte to ready_fd once the name is owned. Runs in a child. */
static void fake_logind_run(int ready_fd)
{
	sd_bus *bus = NULL;
	int r;

	calls_fd = open(calls_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	r = calls_fd < 0 ? -errno : sd_bus_new(&bus);
	if (r >= 0)
		r = sd_bus_set_address(bus, bus_address);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, true);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r >= 0)
		r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/login1",
					     "org.freedesktop.login1.Manager", manager_vtable,
					     NULL);
	if (r >= 0)
		r = sd_bus_add_object_vtable(bus, NULL, FAKE_SESSION_PATH,
					     "org.freedesktop.login1.Session", session_vtable,
					     NULL);
	if (r >= 0)
		r = sd_bus_request_name(bus, "org.freedesktop.login1", 0);
	if (r < 0) {
		fprintf(stderr, "# fake logind failed to start: %s\n", strerror(-r));
		_exit(2);
	}
	if (write(ready_fd, "R", 1) != 1)
		_exit(2);
	close(ready_fd);
	for (;;) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			_exit(2);
		if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
			_exit(2);
	}
}

/* ---- The session's process ---- */

struct victim {
	pid_t pid;
	int signals_fd; /* one byte per caught signal */
	struct timespec started;
};

static int victim_fd = -1;
static bool victim_exit_on_term;
/* Victims, and other children of a test, are stopped after each test so
 * that a failed test does not leave them behind. */
static struct victim victims[4];
static pid_t others[2];

static void victim_on_signal(int sig)
{
	char c = (char)sig;

	if (write(victim_fd, &c, 1) < 0)
		_exit(4);
	if (sig == SIGTERM && victim_exit_on_term)
		_exit(0);
}

/* Starts a child that records SIGHUP and SIGTERM and otherwise runs on,
 * unless exit_on_term. */
static struct victim *victim_start(bool exit_on_term)
{
	struct victim *v = NULL;
	int fds[2];
	char ready;

	for (size_t i = 0; !v && i < MID_ELEMENTSOF(victims); i++)
		if (victims[i].pid == 0)
			v = &victims[i];
	assert_non_null(v);

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	v->pid = fork();
	assert_true(v->pid >= 0);
	if (v->pid == 0) {
		struct sigaction sa = {.sa_handler = victim_on_signal};
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		/* One handler at a time, so the record keeps the order. */
		sigfillset(&sa.sa_mask);
		close(fds[0]);
		victim_fd = fds[1];
		victim_exit_on_term = exit_on_term;
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		if (write(victim_fd, "R", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(fds[1]);
	v->signals_fd = fds[0];
	assert_int_equal(read(v->signals_fd, &ready, 1), 1);
	assert_int_equal(ready, 'R');
	assert_int_equal(fcntl(v->signals_fd, F_SETFL, O_NONBLOCK), 0);
	return v;
}

/* Returns the signals the victim caught so far, as names ("HUP TERM"). */
static const char *victim_signals(const struct victim *v)
{
	static char names[64];
	char buf[16];
	ssize_t n = read(v->signals_fd, buf, sizeof(buf));

	names[0] = '\0';
	for (ssize_t i = 0; i < n; i++) {
		const char *name = "?";

		if (buf[i] == SIGHUP)
			name = "HUP";
		else if (buf[i] == SIGTERM)
			name = "TERM";
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			 names[0] ? " " : "", name);
	}
	return names;
}

/* Waits up to timeout_ms for the victim to end; returns its wait status,
 * or -1 while it still runs. */
static int victim_wait(struct victim *v, int timeout_ms)
{
	int status;

	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		if (waitpid(v->pid, &status, WNOHANG) == v->pid) {
			v->pid = 0;
			return status;
		}
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	return -1;
}

static void victim_stop(struct victim *v)
{
	if (v->pid > 0) {
		kill(v->pid, SIGKILL);
		waitpid(v->pid, NULL, 0);
		v->pid = 0;
	}
	if (v->signals_fd >= 0)
		close(v->signals_fd);
	v->signals_fd = -1;
}

static int children_stop(void **state)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(victims); i++)
		if (victims[i].pid > 0)
			victim_stop(&victims[i]);
	for (size_t i = 0; i < MID_ELEMENTSOF(others); i++)
		if (others[i] > 0) {
			kill(others[i], SIGKILL);
			waitpid(others[i], NULL, 0);
			others[i] = 0;
		}
	return 0;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- Requests ---- */

static void issue(struct harness *h, struct mid_lease_info *lease)
{
	assert_int_equal(harness_issue(h, account, NULL, 0, NULL, lease), MID_OK);
}

/* Registers a session of lease held by pid; returns the reply's status. */
static int session_open(struct harness *h, const struct mid_lease_info *lease, pid_t pid,
			const char *logind_id, char session_id[MID_ID_MAX + 1])
{
	struct mid_request req = {.type = MID_REQ_SESSION_OPEN, .pid = (uint32_t)pid};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int r;

	assert_non_null(resp);
	snprintf(req.account, sizeof(req.account), "%s", lease->account);
	snprintf(req.lease, sizeof(req.lease), "%s", lease->lease);
	snprintf(req.service, sizeof(req.service), "sshd");
	snprintf(req.tty, sizeof(req.tty), "ssh");
	snprintf(req.session_id, sizeof(req.session_id), "%s", logind_id);
	r = harness_call(h, &req, resp);
	if (r == MID_OK && session_id)
		memcpy(session_id, resp->id, sizeof(resp->id));
	free(resp);
	return r;
}

static char *calls_read(void)
{
	static char buf[1024];
	int fd = open(calls_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void calls_clear(void)
{
	assert_int_equal(truncate(calls_path, 0), 0);
}

/* ---- Tests ---- */

static void test_logind_terminates_registered_session(void **state)
{
	struct mid_lease_info lease;
	struct victim *v;
	int status;

	calls_clear();
	issue(&with_logind, &lease);
	v = victim_start(false);
	assert_int_equal(session_open(&with_logind, &lease, v->pid, "c42", NULL), MID_OK);

	clock_gettime(CLOCK_MONOTONIC, &v->started);
	assert_int_equal(harness_revoke(&with_logind, lease.lease), MID_OK);
	assert_string_equal(calls_read(), "TerminateSession c42\n");

	/* logind ends the session; the agent only sends SIGKILL after grace. */
	status = victim_wait(v, 3000);
	assert_true(status != -1);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_true(seconds_since(&v->started) >= GRACE_SECONDS - 0.1);
	assert_string_equal(victim_signals(v), "");
	victim_stop(v);
}

static void test_logind_finds_session_by_pid(void **state)
{
	struct mid_lease_info lease;
	char expected[128];
	struct victim *v;

	calls_clear();
	issue(&with_logind, &lease);
	v = victim_start(false);
	assert_int_equal(session_open(&with_logind, &lease, v->pid, "", NULL), MID_OK);

	assert_int_equal(harness_revoke(&with_logind, lease.lease), MID_OK);
	snprintf(expected, sizeof(expected), "GetSessionByPID %d\nTerminateSession c7\n",
		 (int)v->pid);
	assert_string_equal(calls_read(), expected);
	assert_true(victim_wait(v, 3000) != -1);
	assert_string_equal(victim_signals(v), "");
	victim_stop(v);
}

static void test_logind_refusal_falls_back_to_signals(void **state)
{
	struct mid_lease_info lease;
	struct victim *v;
	int status;

	calls_clear();
	issue(&with_logind, &lease);
	v = victim_start(false);
	assert_int_equal(session_open(&with_logind, &lease, v->pid, "nosuch", NULL), MID_OK);

	clock_gettime(CLOCK_MONOTONIC, &v->started);
	assert_int_equal(harness_revoke(&with_logind, lease.lease), MID_OK);
	assert_string_equal(calls_read(), "TerminateSession nosuch\n");
	status = victim_wait(v, 3000);
	assert_true(status != -1);
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_true(seconds_since(&v->started) >= GRACE_SECONDS - 0.1);
	assert_string_equal(victim_signals(v), "HUP TERM");
	victim_stop(v);
}

static void test_signals_then_sigkill_after_grace(void **state)
{
	struct mid_lease_info lease;
	struct victim *v;
	int status;

	issue(&without_logind, &lease);
	v = victim_start(false);
	assert_int_equal(session_open(&without_logind, &lease, v->pid, "c1", NULL), MID_OK);

	clock_gettime(CLOCK_MONOTONIC, &v->started);
	assert_int_equal(harness_revoke(&without_logind, lease.lease), MID_OK);
	/* SIGHUP and SIGTERM come at once; the process ignores them. */
	nanosleep(&(struct timespec){.tv_nsec = 300 * 1000 * 1000}, NULL);
	assert_string_equal(victim_signals(v), "HUP TERM");
	assert_int_equal(victim_wait(v, 0), -1);

	status = victim_wait(v, 3000);
	assert_true(status != -1);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_true(seconds_since(&v->started) >= GRACE_SECONDS - 0.1);
	victim_stop(v);
}

static void test_sigterm_ends_cooperative_process(void **state)
{
	struct mid_lease_info lease;
	struct victim *v;
	int status;

	issue(&without_logind, &lease);
	v = victim_start(true);
	assert_int_equal(session_open(&without_logind, &lease, v->pid, "", NULL), MID_OK);

	clock_gettime(CLOCK_MONOTONIC, &v->started);
	assert_int_equal(harness_revoke(&without_logind, lease.lease), MID_OK);
	status = victim_wait(v, 3000);
	assert_true(status != -1);
	assert_true(WIFEXITED(status));
	assert_true(seconds_since(&v->started) < GRACE_SECONDS);
	victim_stop(v);
}

/* A child of the session's process in a session of its own, as the
 * user's command is under sshd, is signalled too. This test is the child
 * subreaper, so the orphaned grandchild is its to reap. */
static void test_signals_reach_descendants(void **state)
{
	struct mid_lease_info lease;
	int fds[2], status;
	pid_t child, grandchild = 0;

	issue(&without_logind, &lease);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		pid_t g;

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		g = fork();

		if (g == 0) {
			setsid();
			for (;;)
				pause();
		}
		if (write(fds[1], &g, sizeof(g)) != sizeof(g))
			_exit(4);
		for (;;)
			pause();
	}
	others[0] = child;
	close(fds[1]);
	assert_int_equal(read(fds[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));
	others[1] = grandchild;
	close(fds[0]);
	assert_int_equal(session_open(&without_logind, &lease, child, "", NULL), MID_OK);

	assert_int_equal(harness_revoke(&without_logind, lease.lease), MID_OK);
	assert_int_equal(waitpid(child, &status, 0), child);
	others[0] = 0;
	assert_int_equal(WTERMSIG(status), SIGHUP);
	assert_int_equal(waitpid(grandchild, &status, 0), grandchild);
	others[1] = 0;
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGHUP);
}

/* A recorded start time that no longer matches the PID means the PID now
 * names another process, which must not be signalled. */
static void test_reused_pid_is_not_signalled(void **state)
{
	char db_path[400], *err = NULL;
	struct mid_lease_info lease;
	struct victim *v;
	sqlite3 *db;

	issue(&without_logind, &lease);
	v = victim_start(false);
	assert_int_equal(session_open(&without_logind, &lease, v->pid, "", NULL), MID_OK);

	assert_int_equal(harness_stop_agent(&without_logind), 0);
	snprintf(db_path, sizeof(db_path), "%s/state/state.db", without_logind.dir);
	assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE sessions SET pid_start = pid_start + 1", NULL,
				      NULL, &err),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(harness_restart_agent(&without_logind), 0);

	assert_int_equal(harness_revoke(&without_logind, lease.lease), MID_OK);
	assert_int_equal(victim_wait(v, (GRACE_SECONDS + 1) * 1000), -1);
	assert_string_equal(victim_signals(v), "");
	victim_stop(v);
}

/* ---- Setup ---- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int dbus_start(void)
{
	char config_path[300], config[1024], log_path[300];
	struct stat st;

	snprintf(config_path, sizeof(config_path), "%s/bus.conf", test_dir);
	snprintf(log_path, sizeof(log_path), "%s/dbus.log", test_dir);
	snprintf(config, sizeof(config),
		 "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		 " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		 "<busconfig>\n"
		 "  <type>mid-test</type>\n"
		 "  <listen>unix:path=%s/bus</listen>\n"
		 "  <auth>EXTERNAL</auth>\n"
		 "  <policy context=\"default\">\n"
		 "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
		 "    <allow eavesdrop=\"true\"/>\n"
		 "    <allow own=\"*\"/>\n"
		 "  </policy>\n"
		 "</busconfig>\n",
		 test_dir);
	write_text(config_path, config);
	snprintf(bus_address, sizeof(bus_address), "unix:path=%s/bus", test_dir);

	dbus_pid = fork();
	if (dbus_pid < 0)
		return -errno;
	if (dbus_pid == 0) {
		char arg[320];
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		snprintf(arg, sizeof(arg), "--config-file=%s", config_path);
		execlp("dbus-daemon", "dbus-daemon", arg, "--nofork", "--nopidfile", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		char socket_path[320];

		snprintf(socket_path, sizeof(socket_path), "%s/bus", test_dir);
		if (stat(socket_path, &st) == 0)
			return 0;
		if (waitpid(dbus_pid, NULL, WNOHANG) == dbus_pid) {
			dbus_pid = 0;
			return -ECHILD;
		}
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	return -ETIMEDOUT;
}

static int fake_logind_start(void)
{
	int fds[2];
	char ready = 0;

	snprintf(calls_path, sizeof(calls_path), "%s/logind-calls", test_dir);
	write_text(calls_path, "");
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fake_pid = fork();
	if (fake_pid < 0)
		return -errno;
	if (fake_pid == 0) {
		close(fds[0]);
		fake_logind_run(fds[1]);
	}
	close(fds[1]);
	if (read(fds[0], &ready, 1) != 1)
		ready = 0;
	close(fds[0]);
	return ready == 'R' ? 0 : -ECHILD;
}

static void stop_child(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		*pid = 0;
	}
}

static int group_setup(void **state)
{
	char policy[1024], dir[300];
	struct passwd *me = getpwuid(getuid());
	int r;

	if (!me)
		return -1;
	/* The account is the test's own user, so the test also runs
	 * unprivileged: such a peer may only register its own processes. */
	snprintf(account, sizeof(account), "%s", me->pw_name);
	snprintf(test_dir, sizeof(test_dir), "/tmp/mid-logind.XXXXXX");
	if (!mkdtemp(test_dir))
		return -1;
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);

	r = dbus_start();
	if (r < 0) {
		fprintf(stderr, "# failed to start dbus-daemon: %s\n", strerror(-r));
		return -1;
	}
	r = fake_logind_start();
	if (r < 0) {
		fprintf(stderr, "# failed to start the fake logind\n");
		return -1;
	}

	snprintf(policy, sizeof(policy),
		 "verifiers = { users = [\"%s\"]; };\n"
		 "accounts = (\n"
		 "  { name = \"%s\"; ttl = \"5m\"; max_ttl = \"1h\"; grace = \"%ds\";\n"
		 "    requesters = { users = [\"%s\"]; }; }\n"
		 ");\n",
		 account, account, GRACE_SECONDS, account);

	setenv("MID_LOGIND_BUS_ADDRESS", bus_address, 1);
	snprintf(dir, sizeof(dir), "%s/with", test_dir);
	if (mkdir(dir, 0700) < 0 || harness_start(&with_logind, dir, policy) < 0)
		return -1;
	/* Nothing listens here: the agent must fall back to signals. */
	snprintf(bus_address, sizeof(bus_address), "unix:path=%s/no-logind", test_dir);
	setenv("MID_LOGIND_BUS_ADDRESS", bus_address, 1);
	snprintf(dir, sizeof(dir), "%s/without", test_dir);
	if (mkdir(dir, 0700) < 0 || harness_start(&without_logind, dir, policy) < 0)
		return -1;
	unsetenv("MID_LOGIND_BUS_ADDRESS");
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[400];

	harness_stop(&with_logind);
	harness_stop(&without_logind);
	stop_child(&fake_pid);
	stop_child(&dbus_pid);
	if (test_dir[0] && !getenv("MID_KEEP_TEST_DIR")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# failed to remove %s\n", test_dir);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_logind_terminates_registered_session, children_stop),
		cmocka_unit_test_teardown(test_logind_finds_session_by_pid, children_stop),
		cmocka_unit_test_teardown(test_logind_refusal_falls_back_to_signals, children_stop),
		cmocka_unit_test_teardown(test_signals_then_sigkill_after_grace, children_stop),
		cmocka_unit_test_teardown(test_sigterm_ends_cooperative_process, children_stop),
		cmocka_unit_test_teardown(test_signals_reach_descendants, children_stop),
		cmocka_unit_test_teardown(test_reused_pid_is_not_signalled, children_stop),
	};

	return cmocka_run_group_tests_name("session termination", tests, group_setup,
					   group_teardown);
}
