/* Policy conditions through a real PAM stack (pam_wrapper, libpamtest) and
 * through midctl, against a real mid-agentd: services, sources, hours and
 * time zones, uses, ttl and renewal, narrowing at issue, requesters and
 * verifiers, and the errors that mid-agentd --check-config prints. */
#include <fcntl.h>
#include <grp.h>
#include <libpamtest.h>
#include <security/pam_appl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "client.h"
#include "harness.h"

#define SET_ITEMS "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_set_items.so"
#define MAX_RULES 48

/* Asia/Kolkata is UTC+05:30 with no daylight saving time, so its offset
 * is fixed, and a window there is 5.5 hours away from the same text in
 * UTC. It is the policy's default zone here. */
#define POLICY_ZONE "Asia/Kolkata"
#define POLICY_ZONE_OFFSET (5 * 3600 + 30 * 60)

/* Debian's fixed IDs of the users and groups the clients run as. */
#define UID_DAEMON 1
#define GID_DAEMON 1
#define UID_SYNC 4
#define UID_NOBODY 65534
#define GID_NOGROUP 65534

static struct harness agent;
static char test_dir[256];

/* Where each rule starts in the generated policy, for the "(FILE:LINE)"
 * that every refusal must carry. */
static struct {
	char name[MID_NAME_MAX + 1];
	int line;
} rule_lines[MAX_RULES];
static size_t n_rule_lines;

/* Hour windows relative to the time the suite starts. Each window that
 * should contain "now" starts an hour before it and ends two hours after,
 * so the suite may run for an hour without a verdict changing. */
static struct {
	char zone_in[32];       /* around now in POLICY_ZONE */
	char zone_out[32];      /* 3 to 4 hours from now in POLICY_ZONE */
	char utc_in[32];        /* around now in UTC */
	char other_day[32];     /* all of the day after tomorrow in POLICY_ZONE */
	char midnight_zone[32]; /* an Etc/GMT zone whose local hour is 23 now */
	char midnight_in[32];   /* "<today> 22:00-02:00" in midnight_zone */
	char midnight_prev[32]; /* "<yesterday> 22:00-02:00" in midnight_zone */
} windows;

/* ---- the policy ---- */

struct policy_writer {
	FILE *f;
	int line;        /* the line the next write starts on */
	bool list_first; /* no rule yet in the open list */
};

MID_PRINTF(2, 3)
static void policy_line(struct policy_writer *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(w->f, fmt, ap);
	va_end(ap);
	fputc('\n', w->f);
	w->line++;
}

static void rule_line_record(const char *name, int line)
{
	assert_true(n_rule_lines < MAX_RULES);
	snprintf(rule_lines[n_rule_lines].name, sizeof(rule_lines[0].name), "%s", name);
	rule_lines[n_rule_lines].line = line;
	n_rule_lines++;
}

static int rule_line(const char *name)
{
	for (size_t i = 0; i < n_rule_lines; i++)
		if (strcmp(rule_lines[i].name, name) == 0)
			return rule_lines[i].line;
	fail_msg("no rule %s in the test policy", name);
	return 0;
}

/* libconfig takes no comma after the last element, so each rule but the
 * first starts with one. */
static const char *rule_separator(struct policy_writer *w)
{
	bool first = w->list_first;

	w->list_first = false;
	return first ? "  " : ", ";
}

static void list_open(struct policy_writer *w, const char *name)
{
	policy_line(w, "%s = (", name);
	w->list_first = true;
}

static void account_rule(struct policy_writer *w, const char *name, const char *settings)
{
	rule_line_record(name, w->line);
	policy_line(w, "%s{ name = \"%s\"; %s }", rule_separator(w), name, settings);
}

/* Each class gets the prefix "NAME-" and 100 UIDs of its own. */
static void class_rule(struct policy_writer *w, const char *name, const char *settings)
{
	unsigned uid_min = 61000 + 100 * (unsigned)n_rule_lines;

	rule_line_record(name, w->line);
	policy_line(w,
		    "%s{ name = \"%s\"; prefix = \"%s-\"; uid_min = %u; uid_max = %u; "
		    "group = \"mid-%s\"; gid = %u; %s }",
		    rule_separator(w), name, name, uid_min, uid_min + 99, name, uid_min, settings);
}

/* Writes the test policy. With hours_closed, class "flip" allows only
 * hours that do not contain now; the line numbers stay the same. */
static char *policy_text(bool hours_closed)
{
	struct policy_writer w = {.line = 1};
	char settings[256];
	char *text = NULL;
	size_t size = 0;

	w.f = open_memstream(&text, &size);
	assert_non_null(w.f);
	n_rule_lines = 0;

	policy_line(&w, "timezone = \"%s\";", POLICY_ZONE);
	policy_line(&w, "lockout = { failures = 0; };");
	policy_line(&w, "verifiers = { users = [\"sync\"]; };");
	list_open(&w, "accounts");
	account_rule(&w, "nobody", "services = [\"sshd\"]; sources = [\"10.0.0.0/8\"];");
	account_rule(&w, "daemon", "max_uses = 1;");
	account_rule(&w, "bin", "ttl = \"1m\"; max_ttl = \"3m\";");
	account_rule(&w, "sys", "renew = false;");
	account_rule(&w, "games", "requesters = { groups = [\"daemon\"]; };");
	account_rule(&w, "man", "requesters = { users = [\"daemon\"]; };");
	account_rule(&w, "lp", "verifiers = { users = [\"daemon\"]; };");
	account_rule(&w, "mail", "");
	policy_line(&w, ");");

	list_open(&w, "classes");
	class_rule(&w, "open", "");
	class_rule(&w, "svc", "services = [\"sshd\", \"login\"];");
	class_rule(&w, "net4", "sources = [\"10.1.2.0/24\"];");
	class_rule(&w, "net6", "sources = [\"2001:db8:1::/48\"];");
	class_rule(&w, "loc", "sources = [\"local\"];");
	class_rule(&w, "loopback", "sources = [\"127.0.0.0/8\"];");
	snprintf(settings, sizeof(settings),
		 "services = [\"sshd\"]; sources = [\"10.1.2.0/24\", \"2001:db8:1::/48\"]; "
		 "hours = [\"%s\"];",
		 windows.zone_in);
	class_rule(&w, "combo", settings);
	snprintf(settings, sizeof(settings), "hours = [\"%s\"];", windows.zone_in);
	class_rule(&w, "hours_in", settings);
	snprintf(settings, sizeof(settings), "timezone = \"UTC\"; hours = [\"%s\"];",
		 windows.utc_in);
	class_rule(&w, "hours_utc", settings);
	snprintf(settings, sizeof(settings), "timezone = \"UTC\"; hours = [\"%s\"];",
		 windows.zone_in);
	class_rule(&w, "tz_mismatch", settings);
	snprintf(settings, sizeof(settings), "hours = [\"%s\"];", windows.zone_out);
	class_rule(&w, "closed", settings);
	snprintf(settings, sizeof(settings), "hours = [\"%s\"];", windows.other_day);
	class_rule(&w, "otherday", settings);
	snprintf(settings, sizeof(settings), "timezone = \"%s\"; hours = [\"%s\"];",
		 windows.midnight_zone, windows.midnight_in);
	class_rule(&w, "midnight", settings);
	snprintf(settings, sizeof(settings), "timezone = \"%s\"; hours = [\"%s\"];",
		 windows.midnight_zone, windows.midnight_prev);
	class_rule(&w, "midprev", settings);
	snprintf(settings, sizeof(settings), "services = [\"sshd\"]; hours = [\"%s\"];",
		 hours_closed ? windows.zone_out : windows.zone_in);
	class_rule(&w, "flip", settings);
	class_rule(&w, "once", "max_uses = 1;");
	class_rule(&w, "many", "max_uses = 0;");
	class_rule(&w, "limits", "ttl = \"1m\"; max_ttl = \"3m\"; max_uses = 2;");
	class_rule(&w, "night", "timezone = \"UTC\"; hours = [\"Mon 22:00-02:00\"];");
	class_rule(&w, "office", "hours = [\"Mon-Fri 09:00-17:00\"];");
	class_rule(&w, "office_utc", "timezone = \"UTC\"; hours = [\"Mon-Fri 09:00-17:00\"];");
	policy_line(&w, ");");

	assert_int_equal(fclose(w.f), 0);
	return text;
}

static const char *const day_names[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

/* Local time at a fixed offset, worked out without the code under test. */
static void local_at_offset(int64_t t, long offset, struct tm *ret)
{
	time_t local = (time_t)(t + offset);

	gmtime_r(&local, ret);
}

static int monday_based_day(const struct tm *tm)
{
	return (tm->tm_wday + 6) % 7;
}

static void window_from_hours(char *buf, size_t size, int start_hour, int end_hour)
{
	snprintf(buf, size, "%02d:00-%02d:00", (start_hour + 24) % 24, end_hour % 24);
}

static void windows_compute(void)
{
	int64_t now = (int64_t)time(NULL);
	struct tm tm;
	int offset_hours, today;

	local_at_offset(now, POLICY_ZONE_OFFSET, &tm);
	window_from_hours(windows.zone_in, sizeof(windows.zone_in), tm.tm_hour - 1, tm.tm_hour + 2);
	window_from_hours(windows.zone_out, sizeof(windows.zone_out), tm.tm_hour + 3,
			  tm.tm_hour + 4);
	snprintf(windows.other_day, sizeof(windows.other_day), "%s 00:00-24:00",
		 day_names[(monday_based_day(&tm) + 2) % 7]);

	local_at_offset(now, 0, &tm);
	window_from_hours(windows.utc_in, sizeof(windows.utc_in), tm.tm_hour - 1, tm.tm_hour + 2);

	/* The offset that makes the local hour 23, in -12..+14 hours: the
	 * range the Etc/GMT zones cover. Their names invert the sign. */
	offset_hours = (23 - tm.tm_hour + 24) % 24;
	if (offset_hours > 14)
		offset_hours -= 24;
	if (offset_hours == 0)
		snprintf(windows.midnight_zone, sizeof(windows.midnight_zone), "Etc/GMT");
	else
		snprintf(windows.midnight_zone, sizeof(windows.midnight_zone), "Etc/GMT%+d",
			 -offset_hours);
	local_at_offset(now, (long)offset_hours * 3600, &tm);
	assert_int_equal(tm.tm_hour, 23);
	today = monday_based_day(&tm);
	snprintf(windows.midnight_in, sizeof(windows.midnight_in), "%s 22:00-02:00",
		 day_names[today]);
	snprintf(windows.midnight_prev, sizeof(windows.midnight_prev), "%s 22:00-02:00",
		 day_names[(today + 6) % 7]);
}

static void policy_reload(bool hours_closed)
{
	struct mid_request req = {.type = MID_REQ_RELOAD};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	char *text = policy_text(hours_closed);
	FILE *f = fopen(agent.config_path, "w");

	assert_non_null(resp);
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	free(text);
	assert_int_equal(harness_call(&agent, &req, resp), MID_OK);
	free(resp);
}

/* ---- checks on text ---- */

#define assert_contains(text, part) assert_contains_at(text, part, __FILE__, __LINE__)

static void assert_contains_at(const char *text, const char *part, const char *file, int line)
{
	if (!strstr(text, part)) {
		print_error("expected \"%s\" in \"%s\"\n", part, text);
		_fail(file, line);
	}
}

/* A refusal names its rule as "KIND NAME" and where it is, "FILE:LINE". */
#define assert_names_rule(text, kind, name)                                                        \
	do {                                                                                       \
		char rule_name_[80], rule_place_[400];                                             \
                                                                                                   \
		snprintf(rule_name_, sizeof(rule_name_), "%s %s", kind, name);                     \
		snprintf(rule_place_, sizeof(rule_place_), "%s:%d", agent.config_path,             \
			 rule_line(name));                                                         \
		assert_contains(text, rule_name_);                                                 \
		assert_contains(text, rule_place_);                                                \
	} while (0)

/* ---- PAM ---- */

struct pam_result {
	int rc;
	char error[PAM_MAX_MSG_SIZE + 1]; /* the first PAM_ERROR_MSG, or "" */
};

/* Runs one PAM operation for user through the service file named service,
 * with PAM_RHOST set to rhost (NULL leaves it unset). */
static void pam_run(enum pamtest_ops op, const char *service, const char *user,
		    const char *rhost, const char *credential, struct pam_result *ret)
{
	static char errors[4][PAM_MAX_MSG_SIZE + 1];
	char *out_err[4] = {errors[0], errors[1], errors[2], errors[3]};
	const char *tokens[] = {credential, NULL};
	struct pamtest_conv_data conv = {.in_echo_off = tokens, .out_err = out_err};
	struct pam_testcase tests[] = {pam_test(op, PAM_SUCCESS)};
	enum pamtest_err perr;

	memset(errors, 0, sizeof(errors));
	if (rhost)
		setenv("PAM_RHOST", rhost, 1);
	else
		unsetenv("PAM_RHOST");
	perr = _pamtest(service, user, &conv, tests, 1, NULL);
	unsetenv("PAM_RHOST");
	if (perr != PAMTEST_ERR_OK && perr != PAMTEST_ERR_CASE)
		fail_msg("PAM %s as %s failed to run: %s", service, user, pamtest_strerror(perr));
	ret->rc = tests[0].op_rv;
	snprintf(ret->error, sizeof(ret->error), "%s", errors[0]);
}

static void login_try(const char *service, const char *user, const char *rhost,
		      const char *credential, struct pam_result *ret)
{
	pam_run(PAMTEST_AUTHENTICATE, service, user, rhost, credential, ret);
}

#define assert_pam_rc(result, expected)                                                    \
	do {                                                                               \
		if ((result)->rc != (expected))                                            \
			fail_msg("expected %s, got %s (message \"%s\")",                    \
				 pam_strerror(NULL, expected),                             \
				 pam_strerror(NULL, (result)->rc), (result)->error);       \
	} while (0)

/* Issues a credential for account or, with class_name, for a new account
 * of that class; fills ret_lease when it is not NULL. */
static void issue(const char *account, const char *class_name, char *credential,
		  struct mid_lease_info *ret_lease)
{
	struct mid_lease_info lease;
	int r = harness_issue(&agent, account, class_name, 0, credential, &lease);

	if (r != MID_OK)
		fail_msg("issue for %s failed with status %d", account ? account : class_name, r);
	if (ret_lease)
		*ret_lease = lease;
}

/* ---- running programs ---- */

/* Runs argv as identity (NULL: as this process) and collects its output. */
static void program_run(struct harness_command *c, const struct harness_identity *identity,
			char *const argv[])
{
	assert_int_equal(harness_program_run(c, test_dir, identity, argv), 0);
}

static void midctl_run(struct harness_command *c, const struct harness_identity *identity,
		       const char *const *leading, va_list ap)
{
	assert_int_equal(harness_midctl(c, &agent, test_dir, identity, leading, ap), 0);
}

/* Runs midctl ARGS... as identity (NULL: as this process), the list
 * ending with NULL. */
static void midctl_as(struct harness_command *c, const struct harness_identity *identity, ...)
{
	va_list ap;

	va_start(ap, identity);
	midctl_run(c, identity, NULL, ap);
	va_end(ap);
}

#define midctl(c, ...) midctl_as(c, NULL, __VA_ARGS__, (char *)NULL)

#define assert_exit_status(c, expected)                                                    \
	do {                                                                               \
		if ((c)->status != (expected))                                             \
			fail_msg("exit status %d, expected %d; stderr: %s", (c)->status,    \
				 expected, (c)->err);                                      \
	} while (0)

static void output_trim(char *text)
{
	size_t len = strlen(text);

	while (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
}

/* Runs midctl --json issue --class CLASS ARGS..., the list ending with NULL. */
static void midctl_issue(struct harness_command *c, const char *class_name, ...)
{
	const char *leading[] = {"--json", "issue", "--class", class_name, NULL};
	va_list ap;

	va_start(ap, class_name);
	midctl_run(c, NULL, leading, ap);
	va_end(ap);
}

/* Reads "NAME":"VALUE" out of midctl's one-line JSON. */
static void json_field(const char *json, const char *name, char *buf, size_t size)
{
	char key[64];
	const char *start, *end;

	snprintf(key, sizeof(key), "\"%s\":\"", name);
	start = strstr(json, key);
	if (!start)
		fail_msg("no %s in %s", name, json);
	start += strlen(key);
	end = strchr(start, '"');
	assert_non_null(end);
	assert_true((size_t)(end - start) < size);
	memcpy(buf, start, (size_t)(end - start));
	buf[end - start] = '\0';
}

/* ---- login conditions, one table per condition ---- */

struct login_case {
	const char *rule; /* a class */
	const char *service;
	const char *rhost; /* NULL: PAM_RHOST unset */
	int expected;
	const char *reason; /* part of the refusal PAM shows; NULL when allowed */
};

static void login_cases_run(const struct login_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct login_case *t = &cases[i];
		char cred[MID_CREDENTIAL_MAX + 1];
		struct mid_lease_info lease;
		struct pam_result res;

		print_message("# %s via %s from %s\n", t->rule, t->service,
			      t->rhost ? t->rhost : "(no PAM_RHOST)");
		issue(NULL, t->rule, cred, &lease);
		login_try(t->service, lease.account, t->rhost, cred, &res);
		assert_pam_rc(&res, t->expected);
		if (!t->reason) {
			assert_string_equal(res.error, "");
			continue;
		}
		assert_contains(res.error, "mid: ");
		assert_names_rule(res.error, "class", t->rule);
		assert_contains(res.error, t->reason);
	}
}

static void services_condition(void **state)
{
	static const struct login_case cases[] = {
		{"svc", "sshd", NULL, PAM_SUCCESS, NULL},
		{"svc", "login", NULL, PAM_SUCCESS, NULL},
		{"svc", "su", NULL, PAM_AUTH_ERR, "allows services sshd, login, not su"},
		{"svc", "sudo", NULL, PAM_AUTH_ERR, "allows services sshd, login, not sudo"},
		{"open", "su", NULL, PAM_SUCCESS, NULL},
		{"open", "sudo", "192.0.2.1", PAM_SUCCESS, NULL},
	};

	login_cases_run(cases, MID_ELEMENTSOF(cases));
}

static void sources_ipv4_cidr(void **state)
{
	static const struct login_case cases[] = {
		{"net4", "sshd", "10.1.2.3", PAM_SUCCESS, NULL},
		{"net4", "sshd", "10.1.2.0", PAM_SUCCESS, NULL},
		{"net4", "sshd", "10.1.2.255", PAM_SUCCESS, NULL},
		{"net4", "sshd", "10.1.3.0", PAM_AUTH_ERR,
		 "allows logins from 10.1.2.0/24, not from 10.1.3.0"},
		{"net4", "sshd", "10.1.1.255", PAM_AUTH_ERR, "not from 10.1.1.255"},
		{"net4", "sshd", "2001:db8:1::1", PAM_AUTH_ERR, "not from 2001:db8:1::1"},
	};

	login_cases_run(cases, MID_ELEMENTSOF(cases));
}

static void sources_ipv6_cidr(void **state)
{
	static const struct login_case cases[] = {
		{"net6", "sshd", "2001:db8:1::1", PAM_SUCCESS, NULL},
		{"net6", "sshd", "2001:db8:1:ffff:ffff:ffff:ffff:ffff", PAM_SUCCESS, NULL},
		{"net6", "sshd", "2001:DB8:1:2::5", PAM_SUCCESS, NULL},
		{"net6", "sshd", "2001:db8:2::1", PAM_AUTH_ERR,
		 "allows logins from 2001:db8:1::/48, not from 2001:db8:2::1"},
		{"net6", "sshd", "2001:db8::1", PAM_AUTH_ERR, "not from 2001:db8::1"},
		{"net6", "sshd", "10.1.2.3", PAM_AUTH_ERR, "not from 10.1.2.3"},
	};

	login_cases_run(cases, MID_ELEMENTSOF(cases));
}

static void sources_ipv4_mapped_ipv6(void **state)
{
	static const struct login_case cases[] = {
		{"net4", "sshd", "::ffff:10.1.2.3", PAM_SUCCESS, NULL},
		{"net4", "sshd", "::FFFF:10.1.2.200", PAM_SUCCESS, NULL},
		{"net4", "sshd", "::ffff:10.1.3.3", PAM_AUTH_ERR, "not from ::ffff:10.1.3.3"},
		/* IPv4-compatible (not mapped) addresses are plain IPv6. */
		{"net4", "sshd", "::10.1.2.3", PAM_AUTH_ERR, "not from ::10.1.2.3"},
	};

	login_cases_run(cases, MID_ELEMENTSOF(cases));
}

static void sources_local(void **state)
{
	static const struct login_case cases[] = {
		{"loc", "login", NULL, PAM_SUCCESS, NULL},
		{"loc", "su", "", PAM_SUCCESS, NULL},
		/* "local" is a login without a remote host, not loopback. */
		{"loc", "sshd", "127.0.0.1", PAM_AUTH_ERR,
		 "allows logins from local, not from 127.0.0.1"},
		{"loc", "sshd", "::1", PAM_AUTH_ERR, "not from ::1"},
		{"net4", "login", NULL, PAM_AUTH_ERR,
		 "allows logins from 10.1.2.0/24, not from local"},
		{"net4", "su", "", PAM_AUTH_ERR, "not from local"},
	};

	login_cases_run(cases, MID_ELEMENTSOF(cases));
}

static void sources_host_name(void **state)
{
	static const struct login_case cases[] = {
		{"loopback", "sshd", "127.0.0.1", PAM_SUCCESS, NULL},
		/* Never resolved, so denied even where it would resolve inside. */
		{"loopback", "sshd", "localhost", PAM_AUTH_ERR, "not from localhost"},
		{"net4", "sshd", "host.example", PAM_AUTH_ERR, "not from host.example"},
		{"net4", "sshd", "10.1.2.3.example", PAM_AUTH_ERR, "not from 10.1.2.3.example"},
		{"net4", "sshd", "10.1.2.3/32", PAM_AUTH_ERR, "not from 10.1.2.3/32"},
		{"open", "sshd", "host.example", PAM_SUCCESS, NULL},
	};

	login_cases_run(cases, MID_ELEMENTSOF(cases));
}

static void sources_rhost_escaped(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_result res;

	issue(NULL, "net4", cred, &lease);
	login_try("sshd", lease.account, "evil\x1b[2J\nhost", cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
	assert_names_rule(res.error, "class", "net4");
	assert_null(strchr(res.error, '\x1b'));
	assert_null(strchr(res.error, '\n'));
}

static void hours_condition(void **state)
{
	static const struct login_case cases[] = {
		{"hours_in", "sshd", NULL, PAM_SUCCESS, NULL},
		{"hours_utc", "sshd", NULL, PAM_SUCCESS, NULL},
		{"midnight", "sshd", NULL, PAM_SUCCESS, NULL},
	};

	print_message("# policy zone window %s, UTC window %s, %s window %s\n", windows.zone_in,
		      windows.utc_in, windows.midnight_zone, windows.midnight_in);
	login_cases_run(cases, MID_ELEMENTSOF(cases));
}

/* Outside its hours a rule issues nothing, and the refusal names the hours. */
static void hours_refused_at_issue(void **state)
{
	const struct {
		const char *rule;
		const char *hours;
		const char *zone;
	} cases[] = {
		{"closed", windows.zone_out, POLICY_ZONE},
		{"otherday", windows.other_day, POLICY_ZONE},
		{"tz_mismatch", windows.zone_in, "UTC"},
		{"midprev", windows.midnight_prev, windows.midnight_zone},
	};

	for (size_t i = 0; i < MID_ELEMENTSOF(cases); i++) {
		struct harness_command c;
		char text[128];

		print_message("# issue %s\n", cases[i].rule);
		midctl(&c, "issue", "--class", cases[i].rule);
		assert_exit_status(&c, 1);
		assert_string_equal(c.out, "");
		assert_names_rule(c.err, "class", cases[i].rule);
		snprintf(text, sizeof(text), "allows logins only during hours %s (%s)",
			 cases[i].hours, cases[i].zone);
		assert_contains(c.err, text);
	}
}

/* Hours are checked again at every login, in both PAM phases. */
static void hours_checked_at_login(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], text[128];
	struct mid_lease_info lease;
	struct pam_result res;

	issue(NULL, "flip", cred, &lease);
	login_try("sshd", lease.account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);

	policy_reload(true);
	login_try("sshd", lease.account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
	assert_names_rule(res.error, "class", "flip");
	snprintf(text, sizeof(text), "allows logins only during hours %s (%s)", windows.zone_out,
		 POLICY_ZONE);
	assert_contains(res.error, text);

	/* The account phase alone, as after a public key login. */
	pam_run(PAMTEST_ACCOUNT, "sshd", lease.account, NULL, NULL, &res);
	assert_pam_rc(&res, PAM_PERM_DENIED);
	assert_names_rule(res.error, "class", "flip");
	assert_contains(res.error, text);

	policy_reload(false);
	login_try("sshd", lease.account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
}

static void combined_conditions(void **state)
{
	static const struct login_case cases[] = {
		{"combo", "sshd", "10.1.2.3", PAM_SUCCESS, NULL},
		{"combo", "sshd", "2001:db8:1::9", PAM_SUCCESS, NULL},
		{"combo", "sshd", "::ffff:10.1.2.9", PAM_SUCCESS, NULL},
		{"combo", "su", "10.1.2.3", PAM_AUTH_ERR, "allows services sshd, not su"},
		{"combo", "sshd", "10.9.9.9", PAM_AUTH_ERR, "not from 10.9.9.9"},
		{"combo", "sshd", NULL, PAM_AUTH_ERR, "not from local"},
		/* The service is checked first. */
		{"combo", "login", "10.9.9.9", PAM_AUTH_ERR, "not login"},
	};

	login_cases_run(cases, MID_ELEMENTSOF(cases));
}

static void combined_on_named_account(void **state)
{
	static const struct {
		const char *service;
		const char *rhost;
		int expected;
		const char *reason;
	} cases[] = {
		{"sshd", "10.20.30.40", PAM_SUCCESS, NULL},
		{"su", "10.20.30.40", PAM_AUTH_ERR, "allows services sshd, not su"},
		{"sshd", "192.168.1.1", PAM_AUTH_ERR,
		 "allows logins from 10.0.0.0/8, not from 192.168.1.1"},
		{"sshd", NULL, PAM_AUTH_ERR, "not from local"},
	};
	char cred[MID_CREDENTIAL_MAX + 1];

	issue("nobody", NULL, cred, NULL);
	for (size_t i = 0; i < MID_ELEMENTSOF(cases); i++) {
		struct pam_result res;

		print_message("# nobody via %s from %s\n", cases[i].service,
			      cases[i].rhost ? cases[i].rhost : "(no PAM_RHOST)");
		login_try(cases[i].service, "nobody", cases[i].rhost, cred, &res);
		assert_pam_rc(&res, cases[i].expected);
		if (!cases[i].reason) {
			assert_string_equal(res.error, "");
			continue;
		}
		assert_names_rule(res.error, "account", "nobody");
		assert_contains(res.error, cases[i].reason);
	}
}

/* With public key authentication only the account phase runs pam_mid: it
 * must check the sources on its own. */
static void account_phase_checks_sources(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_result res;

	issue(NULL, "net4", cred, &lease);
	pam_run(PAMTEST_ACCOUNT, "sshd_key", lease.account, "10.1.3.3", NULL, &res);
	assert_pam_rc(&res, PAM_PERM_DENIED);
	assert_names_rule(res.error, "class", "net4");
	assert_contains(res.error, "not from 10.1.3.3");

	pam_run(PAMTEST_ACCOUNT, "sshd_key", lease.account, "10.1.2.3", NULL, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
	assert_string_equal(res.error, "");
}

/* ---- hours through midctl explain --at ---- */

struct explain_case {
	const char *rule;
	const char *at;
	bool allowed;
};

/* Returns the last line of text, without its newline. */
static const char *last_line(char *text)
{
	char *start;

	output_trim(text);
	start = strrchr(text, '\n');
	return start ? start + 1 : text;
}

static void explain_cases_run(const struct explain_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *verdict;
		struct harness_command c;

		print_message("# explain %s at %s\n", cases[i].rule, cases[i].at);
		midctl(&c, "explain", "--class", cases[i].rule, "--at", cases[i].at);
		assert_exit_status(&c, cases[i].allowed ? 0 : 1);
		assert_string_equal(c.err, "");
		verdict = last_line(c.out);
		assert_contains(verdict, cases[i].allowed ? "allowed by class"
							  : "denied by hours of class");
		assert_names_rule(verdict, "class", cases[i].rule);
	}
}

/* "Mon 22:00-02:00" runs past midnight and belongs to Monday: it covers
 * Monday night and the early hours of Tuesday, never of Monday. */
static void hours_past_midnight_window(void **state)
{
	static const struct explain_case cases[] = {
		{"night", "2026-12-07T22:00:00Z", true},  /* Mon 22:00 */
		{"night", "2026-12-07T23:59:00Z", true},  /* Mon 23:59 */
		{"night", "2026-12-08T00:00:00Z", true},  /* Tue 00:00 */
		{"night", "2026-12-08T01:59:00Z", true},  /* Tue 01:59 */
		{"night", "2026-12-08T02:00:00Z", false}, /* Tue 02:00 */
		{"night", "2026-12-07T21:59:00Z", false}, /* Mon 21:59 */
		{"night", "2026-12-07T01:00:00Z", false}, /* Mon 01:00: Sunday had no window */
		{"night", "2026-12-06T23:00:00Z", false}, /* Sun 23:00 */
		{"night", "2026-12-08T23:00:00Z", false}, /* Tue 23:00 */
	};

	explain_cases_run(cases, MID_ELEMENTSOF(cases));
}

/* The same "Mon-Fri 09:00-17:00" in the policy's zone (UTC+05:30) and in
 * a rule that sets timezone = "UTC". */
static void hours_time_zones(void **state)
{
	static const struct explain_case cases[] = {
		{"office", "2026-12-07T03:30:00Z", true},      /* Mon 09:00 in Kolkata */
		{"office", "2026-12-07T03:29:00Z", false},     /* Mon 08:59 in Kolkata */
		{"office", "2026-12-07T11:29:00Z", true},      /* Mon 16:59 in Kolkata */
		{"office", "2026-12-07T11:30:00Z", false},     /* Mon 17:00 in Kolkata */
		{"office", "2026-12-05T03:30:00Z", false},     /* Sat 09:00 in Kolkata */
		{"office", "2026-12-04T16:00:00Z", false},     /* Fri 21:30 in Kolkata */
		{"office_utc", "2026-12-04T16:00:00Z", true},  /* Fri 16:00 UTC */
		{"office_utc", "2026-12-07T03:30:00Z", false}, /* Mon 03:30 UTC */
		{"office_utc", "2026-12-07T09:00:00Z", true},  /* Mon 09:00 UTC */
		{"office_utc", "2026-12-07T16:59:00Z", true},  /* Mon 16:59 UTC */
		{"office_utc", "2026-12-07T17:00:00Z", false}, /* Mon 17:00 UTC */
	};

	explain_cases_run(cases, MID_ELEMENTSOF(cases));
}

/* ---- uses ---- */

static void max_uses_one_time(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_result res;

	issue(NULL, "once", cred, &lease);
	assert_int_equal(lease.max_uses, 1);
	login_try("sshd", lease.account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
	login_try("sshd", lease.account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
	login_try("su", lease.account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);

	issue("daemon", NULL, cred, &lease);
	login_try("login", "daemon", NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
	login_try("login", "daemon", NULL, cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
}

/* A refused login uses nothing up. */
static void max_uses_refusal_uses_nothing(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_result res;
	struct harness_command c;

	midctl_issue(&c, "once", "--service", "sshd", (char *)NULL);
	assert_exit_status(&c, 0);
	json_field(c.out, "credential", cred, sizeof(cred));
	json_field(c.out, "account", lease.account, sizeof(lease.account));

	login_try("su", lease.account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
	login_try("sshd", lease.account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
}

static void max_uses_unlimited(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_result res;

	issue(NULL, "many", cred, &lease);
	assert_int_equal(lease.max_uses, 0);
	for (int i = 0; i < 8; i++) {
		login_try(i % 2 ? "sshd" : "su", lease.account, NULL, cred, &res);
		assert_pam_rc(&res, PAM_SUCCESS);
	}
}

static void uses_narrowed_at_issue(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], account[MID_NAME_MAX + 1];
	struct pam_result res;
	struct harness_command c;

	/* Under max_uses = 0 a request may still ask for a limit. */
	midctl_issue(&c, "many", "--uses", "2", (char *)NULL);
	assert_exit_status(&c, 0);
	json_field(c.out, "credential", cred, sizeof(cred));
	json_field(c.out, "account", account, sizeof(account));
	assert_contains(c.out, "\"max_uses\":2");
	for (int i = 0; i < 2; i++) {
		login_try("sshd", account, NULL, cred, &res);
		assert_pam_rc(&res, PAM_SUCCESS);
	}
	login_try("sshd", account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);

	midctl_issue(&c, "limits", "--uses", "1", (char *)NULL);
	assert_exit_status(&c, 0);
	assert_contains(c.out, "\"max_uses\":1");
}

static void uses_above_max_refused(void **state)
{
	static const char *const asked[] = {"3", "0", "4294967295"};

	for (size_t i = 0; i < MID_ELEMENTSOF(asked); i++) {
		struct harness_command c;

		print_message("# --uses %s\n", asked[i]);
		midctl_issue(&c, "limits", "--uses", asked[i], (char *)NULL);
		assert_exit_status(&c, 1);
		assert_string_equal(c.out, "");
		assert_contains(c.err, "allows at most 2 uses");
	}
}

static void uses_refusal_names_rule(void **state)
{
	struct harness_command c;

	midctl_issue(&c, "limits", "--uses", "3", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_names_rule(c.err, "class", "limits");
}

static void uses_invalid_rejected(void **state)
{
	static const char *const asked[] = {"-1", "two", "", "4294967296", "1.5"};

	for (size_t i = 0; i < MID_ELEMENTSOF(asked); i++) {
		struct harness_command c;

		print_message("# --uses \"%s\"\n", asked[i]);
		midctl_issue(&c, "limits", "--uses", asked[i], (char *)NULL);
		assert_exit_status(&c, 2);
		assert_string_equal(c.out, "");
		assert_contains(c.err, "invalid --uses");
	}
}

/* ---- ttl and renewal ---- */

static int64_t time_parse(const char *text);

static void ttl_above_max_ttl_refused(void **state)
{
	char created[32], expires[32];
	struct harness_command c;

	midctl_issue(&c, "limits", "--ttl", "4m", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_string_equal(c.out, "");
	assert_contains(c.err, "ttl 4m is above max_ttl 3m");

	midctl_issue(&c, "limits", "--ttl", "3m1s", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_contains(c.err, "above max_ttl 3m");

	midctl_issue(&c, "limits", "--ttl", "3m", (char *)NULL);
	assert_exit_status(&c, 0);
	json_field(c.out, "created_at", created, sizeof(created));
	json_field(c.out, "expires_at", expires, sizeof(expires));
	assert_int_equal(time_parse(expires) - time_parse(created), 180);
}

static void ttl_refusal_names_rule(void **state)
{
	struct harness_command c;

	midctl_issue(&c, "limits", "--ttl", "4m", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_names_rule(c.err, "class", "limits");
}

static int64_t time_parse(const char *text)
{
	struct tm tm = {0};
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);

	if (!end || *end)
		fail_msg("not an RFC 3339 UTC time: \"%s\"", text);
	return (int64_t)timegm(&tm);
}

static int64_t renew_expires_at(const char *lease, const char *ttl, struct harness_command *c)
{
	midctl(c, "--field", "expires_at", "renew", lease, "--ttl", ttl);
	if (c->status != 0)
		return -1;
	output_trim(c->out);
	return time_parse(c->out);
}

static void renew_up_to_max_ttl(void **state)
{
	struct mid_lease_info lease;
	struct harness_command c;
	int64_t expires_at, before;

	issue("bin", NULL, NULL, &lease);
	assert_int_equal(lease.expires_at - lease.created_at, 60);
	assert_int_equal(lease.max_expires_at - lease.created_at, 180);

	before = (int64_t)time(NULL);
	expires_at = renew_expires_at(lease.lease, "2m", &c);
	assert_exit_status(&c, 0);
	assert_in_range(expires_at, before + 120, (int64_t)time(NULL) + 120);

	/* Longer than max_ttl allows: the lease runs to max_ttl from issue. */
	expires_at = renew_expires_at(lease.lease, "10m", &c);
	assert_exit_status(&c, 0);
	assert_int_equal(expires_at, lease.max_expires_at);

	/* And never beyond it. */
	expires_at = renew_expires_at(lease.lease, "10m", &c);
	assert_exit_status(&c, 1);
	assert_string_equal(c.out, "");
	assert_contains(c.err, "already runs to");
	assert_contains(c.err, "max_ttl");
}

static void renew_refusal_names_rule(void **state)
{
	struct mid_lease_info lease;
	struct harness_command c;

	issue("bin", NULL, NULL, &lease);
	assert_int_equal(renew_expires_at(lease.lease, "10m", &c), lease.max_expires_at);
	renew_expires_at(lease.lease, "10m", &c);
	assert_exit_status(&c, 1);
	assert_names_rule(c.err, "account", "bin");
}

static void renew_false_refused(void **state)
{
	struct mid_lease_info lease;
	struct harness_command c;

	issue("sys", NULL, NULL, &lease);
	midctl(&c, "renew", lease.lease);
	assert_exit_status(&c, 1);
	assert_string_equal(c.out, "");
	assert_contains(c.err, "does not allow renewal (renew = false)");
}

static void renew_false_names_rule(void **state)
{
	struct mid_lease_info lease;
	struct harness_command c;

	issue("sys", NULL, NULL, &lease);
	midctl(&c, "renew", lease.lease);
	assert_exit_status(&c, 1);
	assert_names_rule(c.err, "account", "sys");
}

/* ---- narrowing at issue ---- */

static void narrowed_service_enforced(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], account[MID_NAME_MAX + 1];
	struct pam_result res;
	struct harness_command c;

	midctl_issue(&c, "open", "--service", "sshd", (char *)NULL);
	assert_exit_status(&c, 0);
	json_field(c.out, "credential", cred, sizeof(cred));
	json_field(c.out, "account", account, sizeof(account));

	login_try("su", account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
	assert_names_rule(res.error, "class", "open");
	assert_contains(res.error, "allows services sshd (narrowed at issue), not su");
	login_try("sshd", account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);

	/* A list narrows to each of its services. */
	midctl_issue(&c, "svc", "--service", "sshd,login", (char *)NULL);
	assert_exit_status(&c, 0);
	json_field(c.out, "credential", cred, sizeof(cred));
	json_field(c.out, "account", account, sizeof(account));
	login_try("login", account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
	login_try("su", account, NULL, cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
}

static void narrowed_source_enforced(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], account[MID_NAME_MAX + 1];
	struct pam_result res;
	struct harness_command c;

	midctl_issue(&c, "net4", "--source", "10.1.2.3/32", (char *)NULL);
	assert_exit_status(&c, 0);
	json_field(c.out, "credential", cred, sizeof(cred));
	json_field(c.out, "account", account, sizeof(account));

	login_try("sshd", account, "10.1.2.4", cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
	assert_contains(res.error, "narrowed at issue to sources 10.1.2.3/32, not 10.1.2.4");

	login_try("sshd", account, "10.1.2.3", cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
	login_try("sshd", account, "::ffff:10.1.2.3", cred, &res);
	assert_pam_rc(&res, PAM_SUCCESS);
}

/* Like every other refusal at login, this one names the rule. */
static void narrowed_source_refusal_names_rule(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1], account[MID_NAME_MAX + 1];
	struct pam_result res;
	struct harness_command c;

	midctl_issue(&c, "net4", "--source", "10.1.2.3/32", (char *)NULL);
	assert_exit_status(&c, 0);
	json_field(c.out, "credential", cred, sizeof(cred));
	json_field(c.out, "account", account, sizeof(account));
	login_try("sshd", account, "10.1.2.4", cred, &res);
	assert_pam_rc(&res, PAM_AUTH_ERR);
	assert_names_rule(res.error, "class", "net4");
}

static void narrowing_wider_refused(void **state)
{
	static const struct {
		const char *rule;
		const char *option;
		const char *value;
		const char *reason;
	} cases[] = {
		{"svc", "--service", "su", "service su is wider than class svc"},
		{"svc", "--service", "sshd,sudo", "service sudo is wider than class svc"},
		{"net4", "--source", "10.0.0.0/8", "source 10.0.0.0/8 is wider than class net4"},
		{"net4", "--source", "10.1.3.1", "source 10.1.3.1 is wider than class net4"},
		{"net4", "--source", "local", "source local is wider than class net4"},
		{"net4", "--source", "2001:db8:1::/64",
		 "source 2001:db8:1::/64 is wider than class net4"},
		{"net6", "--source", "2001:db8::/32",
		 "source 2001:db8::/32 is wider than class net6"},
		{"combo", "--service", "login", "service login is wider than class combo"},
	};

	for (size_t i = 0; i < MID_ELEMENTSOF(cases); i++) {
		struct harness_command c;

		print_message("# issue %s %s %s\n", cases[i].rule, cases[i].option, cases[i].value);
		midctl_issue(&c, cases[i].rule, cases[i].option, cases[i].value, (char *)NULL);
		assert_exit_status(&c, 1);
		assert_string_equal(c.out, "");
		assert_contains(c.err, cases[i].reason);
		assert_names_rule(c.err, "class", cases[i].rule);
	}
}

static void narrowing_within_accepted(void **state)
{
	static const struct {
		const char *rule;
		const char *option;
		const char *value;
	} cases[] = {
		{"svc", "--service", "login"},
		{"net4", "--source", "10.1.2.0/25"},
		{"net4", "--source", "10.1.2.3,10.1.2.7/32"},
		{"net6", "--source", "2001:db8:1:5::/64"},
		{"loc", "--source", "local"},
		{"open", "--source", "192.0.2.0/24"},
	};

	for (size_t i = 0; i < MID_ELEMENTSOF(cases); i++) {
		struct harness_command c;

		print_message("# issue %s %s %s\n", cases[i].rule, cases[i].option, cases[i].value);
		midctl_issue(&c, cases[i].rule, cases[i].option, cases[i].value, (char *)NULL);
		assert_exit_status(&c, 0);
		assert_contains(c.out, "\"credential\":\"mid1_");
	}
}

static void narrowing_invalid_rejected(void **state)
{
	static const struct {
		const char *option;
		const char *value;
		const char *reason;
	} cases[] = {
		{"--service", "bad name", "invalid service list"},
		{"--service", "sshd,,su", "invalid service list"},
		{"--service", ",sshd", "invalid service list"},
		{"--source", "10.1.2.3/33", "invalid source 10.1.2.3/33"},
		{"--source", "10.1.2.1/24", "invalid source 10.1.2.1/24"},
		{"--source", "host.example", "invalid source host.example"},
	};

	for (size_t i = 0; i < MID_ELEMENTSOF(cases); i++) {
		struct harness_command c;

		print_message("# issue open %s \"%s\"\n", cases[i].option, cases[i].value);
		midctl_issue(&c, "open", cases[i].option, cases[i].value, (char *)NULL);
		assert_exit_status(&c, 1);
		assert_string_equal(c.out, "");
		assert_contains(c.err, cases[i].reason);
	}
}

/* ---- requesters and verifiers ---- */

static const gid_t daemon_group[] = {GID_DAEMON};
static const struct harness_identity as_nobody = {.uid = UID_NOBODY, .gid = GID_NOGROUP};
static const struct harness_identity as_nobody_in_daemon = {
	.uid = UID_NOBODY, .gid = GID_NOGROUP, .groups = daemon_group, .n_groups = 1};
static const struct harness_identity as_daemon = {.uid = UID_DAEMON, .gid = GID_DAEMON};
static const struct harness_identity as_sync = {.uid = UID_SYNC, .gid = GID_NOGROUP};

/* Lets users other than root reach the agent's socket. */
static void socket_open_to_all(void)
{
	assert_int_equal(chmod(test_dir, 0755), 0);
}

static void requesters_enforced(void **state)
{
	static const struct {
		const char *account;
		const struct harness_identity *identity;
		const char *identity_name;
		bool allowed;
	} cases[] = {
		{"games", &as_nobody, "nobody", false},
		{"games", &as_daemon, "daemon", true},
		{"games", &as_nobody_in_daemon, "nobody with supplementary group daemon", true},
		{"games", NULL, "root", true},
		{"man", &as_nobody, "nobody", false},
		{"man", &as_nobody_in_daemon, "nobody with supplementary group daemon", false},
		{"man", &as_daemon, "daemon", true},
		{"nobody", &as_daemon, "daemon", false},
	};

	socket_open_to_all();
	for (size_t i = 0; i < MID_ELEMENTSOF(cases); i++) {
		struct harness_command c;

		print_message("# %s issues %s\n", cases[i].identity_name, cases[i].account);
		midctl_as(&c, cases[i].identity, "--field", "lease", "issue", cases[i].account,
			  (char *)NULL);
		if (cases[i].allowed) {
			assert_exit_status(&c, 0);
			assert_string_equal(c.err, "");
			continue;
		}
		assert_exit_status(&c, 1);
		assert_string_equal(c.out, "");
		assert_contains(c.err, "may not request credentials for account");
		assert_contains(c.err, cases[i].account);
	}
}

static void requesters_refusal_names_rule(void **state)
{
	struct harness_command c;

	socket_open_to_all();
	midctl_as(&c, &as_nobody, "issue", "games", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_names_rule(c.err, "account", "games");
}

static void explain_as_other_users(void **state)
{
	struct harness_command c;

	socket_open_to_all();

	/* A requester may read the rule; others may not. */
	midctl_as(&c, &as_daemon, "explain", "games", (char *)NULL);
	assert_exit_status(&c, 0);
	assert_contains(c.out, "requester UID 1: allowed");
	/* Others get the answer for a name without a rule, so explain does
	 * not tell them which names the policy lists. */
	midctl_as(&c, &as_nobody, "explain", "games", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_contains(c.out, "no rule in");
	midctl_as(&c, &as_nobody, "explain", "no-such-account", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_contains(c.out, "no rule in");

	/* Only root may ask for another user. */
	midctl_as(&c, &as_daemon, "explain", "games", "--as", "nobody", (char *)NULL);
	assert_exit_status(&c, 1);
	assert_contains(c.err, "only root may explain the policy as another user");
	midctl(&c, "explain", "games", "--as", "nobody");
	assert_exit_status(&c, 1);
	assert_contains(c.out, "requester nobody: denied, not in requesters");
	assert_contains(c.out, "denied by requesters of account games");
	midctl(&c, "explain", "games", "--as", "daemon");
	assert_exit_status(&c, 0);
	assert_contains(c.out, "requester daemon: allowed");
	midctl(&c, "explain", "games", "--as", "no-such-user-here");
	assert_exit_status(&c, 1);
	assert_contains(c.err, "user no-such-user-here does not exist");
}

/* Sends a VERIFY as identity from a child process; returns the reply status. */
static int verify_as(const struct harness_identity *identity, const char *account, const char *credential)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct mid_request req = {.type = MID_REQ_VERIFY};
		struct mid_response *resp = calloc(1, sizeof(*resp));

		if (harness_become(identity) < 0)
			_exit(126);
		if (!resp)
			_exit(100);
		snprintf(req.account, sizeof(req.account), "%s", account);
		snprintf(req.credential, sizeof(req.credential), "%s", credential);
		snprintf(req.service, sizeof(req.service), "sshd");
		snprintf(req.rhost, sizeof(req.rhost), "10.2.3.4");
		if (mid_client_call(agent.socket_path, 5000, &req, resp) < 0)
			_exit(101);
		_exit(resp->status);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void verifiers_enforced(void **state)
{
	char lp_cred[MID_CREDENTIAL_MAX + 1], nobody_cred[MID_CREDENTIAL_MAX + 1];

	socket_open_to_all();
	issue("lp", NULL, lp_cred, NULL);
	issue("nobody", NULL, nobody_cred, NULL);

	/* The rule's verifiers. */
	assert_int_equal(verify_as(&as_daemon, "lp", lp_cred), MID_OK);
	assert_int_equal(verify_as(&as_nobody, "lp", lp_cred), MID_ERR_PERMISSION);
	assert_int_equal(verify_as(&as_daemon, "nobody", nobody_cred), MID_ERR_PERMISSION);
	/* The policy's verifiers, for every rule. */
	assert_int_equal(verify_as(&as_sync, "nobody", nobody_cred), MID_OK);
	assert_int_equal(verify_as(&as_sync, "lp", lp_cred), MID_OK);
	/* Root always. */
	assert_int_equal(verify_as(NULL, "lp", lp_cred), MID_OK);
}

/* ---- mid-agentd --check-config ---- */

struct config_error {
	int line;
	const char *text;
};

struct config_case {
	const char *name; /* of the test */
	const char *policy;
	struct config_error errors[6]; /* ends with line 0 */
};

static const struct config_case config_cases[] = {
	{
		"check_config_three_rules",
		"accounts = (\n"
		"  { name = \"nobody\"; ttl = \"soon\"; },\n"
		"  { name = \"daemon\"; sources = [\"10.0.0.1/8\"]; },\n"
		"  { name = \"bin\"; hours = [\"Mon-Fri 08:00-25:00\"]; }\n"
		");\n",
		{{2, "invalid ttl \"soon\""},
		 {3, "invalid entry in sources: 10.0.0.1/8"},
		 {4, "invalid entry in hours: Mon-Fri 08:00-25:00"}},
	},
	{
		"check_config_unknown_settings",
		"timezone = \"Mars/Olympus_Mons\";\n"
		"lockout = { failures = 3; windw = \"1m\"; };\n"
		"accounts = ( { name = \"nobody\"; colour = \"blue\"; } );\n",
		{{1, "unknown time zone \"Mars/Olympus_Mons\""},
		 {2, "unknown setting \"windw\" in lockout"},
		 {3, "unknown setting \"colour\""}},
	},
	{
		"check_config_errors_in_one_rule",
		"accounts = (\n"
		"  { name = \"nobody\"; ttl = \"2h\"; max_ttl = \"1h\"; },\n"
		"  { name = \"daemon\"; max_uses = -1; services = \"sshd\"; renew = \"yes\"; }\n"
		");\n",
		{{2, "ttl is longer than max_ttl"},
		 {3, "max_uses = -1 is out of range"},
		 {3, "services must be a list"},
		 {3, "renew must be true or false"}},
	},
	{
		"check_config_hours_and_sources",
		"accounts = (\n"
		"  { name = \"nobody\";\n"
		"    hours = [\"Mon-Fri 08:00-08:00\", \"Someday 08:00-09:00\"];\n"
		"    sources = [\"10.0.0.0/33\", \"::1/129\", \"host.example\"]; }\n"
		");\n",
		{{3, "invalid entry in hours: Mon-Fri 08:00-08:00"},
		 {3, "invalid entry in hours: Someday 08:00-09:00"},
		 {4, "invalid entry in sources: 10.0.0.0/33"},
		 {4, "invalid entry in sources: ::1/129"},
		 {4, "invalid entry in sources: host.example"}},
	},
	{
		"check_config_duplicate_rule",
		"accounts = (\n"
		"  { name = \"nobody\"; },\n"
		"  { name = \"nobody\"; ttl = \"1m\"; },\n"
		"  { name = \"daemon\"; lockout = { failures = \"many\"; }; }\n"
		");\n",
		{{3, "account \"nobody\" is defined twice (first at line 2)"},
		 {4, "failures must be a whole number"}},
	},
	{
		"check_config_syntax_error",
		"accounts = (\n"
		"  { name = \"nobody\"; }\n"
		"  { name = \"daemon\"; }\n"
		");\n",
		{{3, "syntax error"}},
	},
	{
		"check_config_class_overlap",
		"accounts = ( { name = \"nobody\"; ttl = \"never\"; } );\n"
		"classes = (\n"
		"  { name = \"a\"; prefix = \"ci-\"; uid_min = 61000; uid_max = 61999; "
		"group = \"g\"; gid = 61000; },\n"
		"  { name = \"b\"; prefix = \"ci-x\"; uid_min = 62000; uid_max = 62999; "
		"group = \"g\"; gid = 61000; }\n"
		");\n",
		{{1, "invalid ttl \"never\""}, {4, "prefix \"ci-x\" overlaps class \"a\""}},
	},
	{
		"check_config_every_bad_name",
		"accounts = ( { name = \"nobody\";\n"
		"  requesters = { users = [\"ok\", \"bad/name\", \"x:y\"]; }; } );\n",
		{{2, "invalid name in users: bad/name"}, {2, "invalid name in users: x:y"}},
	},
};

static void check_config_run(const char *path, struct harness_command *c)
{
	char agentd[400];
	char *argv[] = {agentd, (char *)"--check-config", (char *)"--config", (char *)path, NULL};

	snprintf(agentd, sizeof(agentd), "%s/agentd/mid-agentd", getenv("MID_BUILDDIR"));
	program_run(c, NULL, argv);
}

static size_t lines_count(const char *text)
{
	size_t n = 0;

	for (const char *p = text; *p; p++)
		n += *p == '\n';
	return n;
}

/* True when some line of text starts with prefix and contains part. */
static bool line_present(const char *text, const char *prefix, const char *part)
{
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[1024];

		snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
		if (strncmp(buf, prefix, strlen(prefix)) == 0 && strstr(buf, part))
			return true;
		if (!end)
			break;
		line = end + 1;
	}
	return false;
}

/* Checks one broken policy: exit status 1, and exactly one
 * "FILE:LINE: message" line on stderr for each expected error. */
static void check_config_case(void **state)
{
	const struct config_case *t = *state;
	size_t expected = 0;
	char path[400];
	struct harness_command c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/broken.conf", test_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(t->policy, f);
	assert_int_equal(fclose(f), 0);
	check_config_run(path, &c);

	assert_exit_status(&c, 1);
	assert_string_equal(c.out, "");
	for (; expected < MID_ELEMENTSOF(t->errors) && t->errors[expected].line; expected++) {
		char prefix[420];

		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, t->errors[expected].line);
		if (!line_present(c.err, prefix, t->errors[expected].text))
			fail_msg("expected a line \"%s...%s\" in:\n%s", prefix,
				 t->errors[expected].text, c.err);
	}
	if (lines_count(c.err) != expected)
		fail_msg("expected %zu error lines, got %zu:\n%s", expected, lines_count(c.err),
			 c.err);
}

static void check_config_accepts_valid(void **state)
{
	struct harness_command c;

	check_config_run(agent.config_path, &c);
	assert_exit_status(&c, 0);
	assert_string_equal(c.err, "");
	assert_contains(c.out, ": OK (8 accounts, 21 classes)");
}

static void check_config_missing_file(void **state)
{
	char path[400];
	struct harness_command c;

	snprintf(path, sizeof(path), "%s/no-such.conf", test_dir);
	check_config_run(path, &c);
	assert_exit_status(&c, 1);
	assert_contains(c.err, path);
	assert_contains(c.err, "cannot read file");
	assert_int_equal(lines_count(c.err), 1);
}

/* ---- setup ---- */

/* Service files sshd, su, login and sudo: pam_set_items copies PAM_RHOST
 * from the environment, then pam_mid decides. sshd_key runs pam_mid in
 * the account phase only, as sshd does after a public key login. */
static void services_write(const char *dir)
{
	static const char *const names[] = {"sshd", "su", "login", "sudo"};
	const char *m = harness_module_path();
	char opts[700];

	snprintf(opts, sizeof(opts), "socket=%s/agent.sock cache=%s/run/%s", test_dir, test_dir,
		 MID_CACHE_FILE_NAME);
	harness_service_write(dir, "other",
			      "auth required pam_deny.so\naccount required pam_deny.so\n");
	for (size_t i = 0; i < MID_ELEMENTSOF(names); i++)
		harness_service_write(dir, names[i],
				      "auth required %s\nauth required %s %s\n"
				      "account required %s\naccount required %s %s\n",
				      SET_ITEMS, m, opts, SET_ITEMS, m, opts);
	harness_service_write(dir, "sshd_key",
			      "auth required pam_permit.so\n"
			      "account required %s\naccount required %s %s\n",
			      SET_ITEMS, m, opts);
}

static int group_setup(void **state)
{
	char *text;
	int r;

	if (sodium_init() < 0)
		return -1;
	windows_compute();
	text = policy_text(false);
	r = harness_start(&agent, test_dir, text);
	free(text);
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
	const struct CMUnitTest fixed_tests[] = {
		cmocka_unit_test(services_condition),
		cmocka_unit_test(sources_ipv4_cidr),
		cmocka_unit_test(sources_ipv6_cidr),
		cmocka_unit_test(sources_ipv4_mapped_ipv6),
		cmocka_unit_test(sources_local),
		cmocka_unit_test(sources_host_name),
		cmocka_unit_test(sources_rhost_escaped),
		cmocka_unit_test(hours_condition),
		cmocka_unit_test(hours_refused_at_issue),
		cmocka_unit_test(hours_checked_at_login),
		cmocka_unit_test(hours_past_midnight_window),
		cmocka_unit_test(hours_time_zones),
		cmocka_unit_test(combined_conditions),
		cmocka_unit_test(combined_on_named_account),
		cmocka_unit_test(account_phase_checks_sources),
		cmocka_unit_test(max_uses_one_time),
		cmocka_unit_test(max_uses_refusal_uses_nothing),
		cmocka_unit_test(max_uses_unlimited),
		cmocka_unit_test(uses_narrowed_at_issue),
		cmocka_unit_test(uses_above_max_refused),
		cmocka_unit_test(uses_refusal_names_rule),
		cmocka_unit_test(uses_invalid_rejected),
		cmocka_unit_test(ttl_above_max_ttl_refused),
		cmocka_unit_test(ttl_refusal_names_rule),
		cmocka_unit_test(renew_up_to_max_ttl),
		cmocka_unit_test(renew_refusal_names_rule),
		cmocka_unit_test(renew_false_refused),
		cmocka_unit_test(renew_false_names_rule),
		cmocka_unit_test(narrowed_service_enforced),
		cmocka_unit_test(narrowed_source_enforced),
		cmocka_unit_test(narrowed_source_refusal_names_rule),
		cmocka_unit_test(narrowing_wider_refused),
		cmocka_unit_test(narrowing_within_accepted),
		cmocka_unit_test(narrowing_invalid_rejected),
		cmocka_unit_test(requesters_enforced),
		cmocka_unit_test(requesters_refusal_names_rule),
		cmocka_unit_test(explain_as_other_users),
		cmocka_unit_test(verifiers_enforced),
		cmocka_unit_test(check_config_accepts_valid),
		cmocka_unit_test(check_config_missing_file),
	};
	struct CMUnitTest tests[MID_ELEMENTSOF(fixed_tests) + MID_ELEMENTSOF(config_cases)];
	size_t n_tests = 0;
	int failed;

	for (size_t i = 0; i < MID_ELEMENTSOF(fixed_tests); i++)
		tests[n_tests++] = fixed_tests[i];
	for (size_t i = 0; i < MID_ELEMENTSOF(config_cases); i++)
		tests[n_tests++] = (struct CMUnitTest){
			.name = config_cases[i].name,
			.test_func = check_config_case,
			.initial_state = (void *)&config_cases[i],
		};

	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_conditions: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	if (geteuid() != 0) {
		/* Requesters and verifiers need processes of other users. */
		printf("1..0 # SKIP needs root to run clients as other users\n");
		return 0;
	}
	harness_pam_wrapper(argv, "/tmp/mid-policy-test.XXXXXX", "MID_POLICY_TEST_DIR", test_dir,
			    sizeof(test_dir), services_write);

	failed = _cmocka_run_group_tests("policy conditions", tests, n_tests, group_setup,
					 group_teardown);

	harness_dir_remove(test_dir);
	return failed;
}
