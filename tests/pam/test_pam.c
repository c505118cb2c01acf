/* pam_mid through a real Linux-PAM stack (pam_wrapper and libpamtest)
 * against a real mid-agentd. The program re-executes itself under
 * pam_wrapper with service files that load the built module. */
#include <fcntl.h>
#include <libpamtest.h>
#include <security/pam_appl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "harness.h"
#include "token.h"

#define POLICY                                                                                     \
	"lockout = { failures = 0; };\n"                                                            \
	"accounts = (\n"                                                                           \
	"  { name = \"nobody\"; ttl = \"5m\"; max_ttl = \"1h\"; },\n"                              \
	"  { name = \"daemon\"; ttl = \"5m\"; max_uses = 1; }\n"                                   \
	");\n"                                                                                     \
	"classes = (\n"                                                                            \
	"  { name = \"ci\"; prefix = \"ci-\"; uid_min = 61000; uid_max = 61999;\n"                 \
	"    group = \"mid-ci\"; gid = 61000; ttl = \"5m\"; }\n"                                   \
	");\n"

/* Has the form of a credential, so pam_mid sends it to the agent; no
 * agent ever issued it. */
#define WELL_FORMED_TOKEN                                                                          \
	"mid1_0000000000000000_"                                                                   \
	"0000000000000000000000000000000000000000000000000000000000000000_00000000"

static struct harness agent;
static char test_dir[256];

/* Service files: "mid" is the plain stack; "mid_ignore" succeeds only
 * when pam_mid returns PAM_IGNORE, so a test can tell IGNORE apart. */
static void write_services(const char *dir)
{
	const char *m = harness_module_path();
	char opts[700], down[700], hung[700];
	const char *set_items = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_set_items.so";

	snprintf(opts, sizeof(opts), "socket=%s/agent.sock cache=%s/run/%s", test_dir, test_dir,
		 MID_CACHE_FILE_NAME);
	snprintf(down, sizeof(down), "socket=%s/missing.sock cache=%s/run/%s", test_dir, test_dir,
		 MID_CACHE_FILE_NAME);
	snprintf(hung, sizeof(hung), "socket=%s/hung.sock timeout=300 cache=%s/run/%s", test_dir,
		 test_dir, MID_CACHE_FILE_NAME);

	harness_service_write(dir, "other",
			      "auth required pam_deny.so\naccount required pam_deny.so\n");
	harness_service_write(dir, "mid",
			      "auth required %s %s\naccount required %s %s\n"
			      "session required %s %s\n",
			      m, opts, m, opts, m, opts);
	harness_service_write(
	    dir, "mid_ignore",
	    "auth [ignore=1 default=die] %s %s\nauth requisite pam_deny.so\n"
	    "auth required pam_permit.so\n"
	    "account [ignore=1 default=die] %s %s\naccount requisite pam_deny.so\n"
	    "account required pam_permit.so\n",
	    m, opts, m, opts);
	harness_service_write(dir, "mid_first",
			      "auth required %s\nauth required %s use_first_pass %s\n", set_items,
			      m, opts);
	harness_service_write(dir, "mid_try",
			      "auth required %s\nauth required %s try_first_pass %s\n", set_items,
			      m, opts);
	harness_service_write(dir, "mid_down", "auth required %s %s\naccount required %s %s\n", m,
			      down, m, down);
	harness_service_write(dir, "mid_hung", "auth required %s %s\n", m, hung);
	harness_service_write(dir, "mid_opts", "auth required %s no_such_option timeout=abc %s\n",
			      m, opts);
	harness_service_write(dir, "mid_nocache",
			      "auth required %s socket=%s/agent.sock cache=%s/none\n", m, test_dir,
			      test_dir);
	harness_service_write(dir, "mid_nocache_ignore",
			      "auth [ignore=1 default=die] %s socket=%s/agent.sock cache=%s/none\n"
			      "auth requisite pam_deny.so\nauth required pam_permit.so\n",
			      m, test_dir, test_dir);
	harness_service_write(dir, "mid_nocache_down",
			      "auth required %s socket=%s/missing.sock cache=%s/none\n", m,
			      test_dir, test_dir);
}

static void issue(const char *account, const char *class_name, uint32_t ttl, char *credential,
		  struct mid_lease_info *lease)
{
	int r = harness_issue(&agent, account, class_name, ttl, credential, lease);

	assert_int_equal(r, MID_OK);
}

static enum pamtest_err run(const char *service, const char *user, const char *credential,
			    struct pam_testcase *tests, size_t n)
{
	const char *tokens[] = {credential, NULL};
	struct pamtest_conv_data conv = {.in_echo_off = tokens};

	return _pamtest(service, user, &conv, tests, n, NULL);
}

static void assert_auth(const char *service, const char *user, const char *credential,
			int expected)
{
	struct pam_testcase tests[] = {pam_test(PAMTEST_AUTHENTICATE, expected)};
	enum pamtest_err perr = run(service, user, credential, tests, 1);

	if (perr != PAMTEST_ERR_OK)
		fail_msg("authenticate %s as %s: expected %s, got %s", service, user,
			 pam_strerror(NULL, expected), pam_strerror(NULL, tests[0].op_rv));
}

static void auth_right_credential(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct pam_testcase tests[] = {
		pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS),
		pam_test(PAMTEST_ACCOUNT, PAM_SUCCESS),
		pam_test(PAMTEST_OPEN_SESSION, PAM_SUCCESS),
		pam_test(PAMTEST_CLOSE_SESSION, PAM_SUCCESS),
	};

	issue("nobody", NULL, 0, cred, NULL);
	assert_int_equal(run("mid", "nobody", cred, tests, MID_ELEMENTSOF(tests)), PAMTEST_ERR_OK);
}

static void auth_ephemeral_account(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_testcase tests[] = {
		pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS),
		pam_test(PAMTEST_ACCOUNT, PAM_SUCCESS),
	};

	issue(NULL, "ci", 0, cred, &lease);
	assert_int_equal(run("mid", lease.account, cred, tests, MID_ELEMENTSOF(tests)),
			 PAMTEST_ERR_OK);
}

static void auth_wrong_secret(void **state)
{
	uint8_t other_key[MID_HOST_KEY_BYTES], hash[MID_TOKEN_HASH_BYTES];
	char cred[MID_CREDENTIAL_MAX + 1], forged[MID_TOKEN_LEN + 1];
	struct mid_lease_info lease;

	/* Well-formed, with a valid checksum and a live lease id, but a
	 * secret the agent never issued. */
	issue("nobody", NULL, 0, cred, &lease);
	randombytes_buf(other_key, sizeof(other_key));
	assert_int_equal(token_new(lease.lease, other_key, forged, hash), 0);
	assert_auth("mid", "nobody", forged, PAM_AUTH_ERR);
}

static void auth_bad_checksum(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	size_t len;

	issue("nobody", NULL, 0, cred, NULL);
	len = strlen(cred);
	cred[len - 1] = cred[len - 1] == '0' ? '1' : '0';
	assert_auth("mid", "nobody", cred, PAM_AUTH_ERR);
}

static void auth_malformed_credential(void **state)
{
	assert_auth("mid", "nobody", "hunter2", PAM_AUTH_ERR);
}

static void password_never_reaches_agent(void **state)
{
	/* With the agent down, a password is refused on the spot (AUTH_ERR),
	 * not sent and found unreachable (AUTHINFO_UNAVAIL). */
	assert_auth("mid_down", "nobody", "hunter2", PAM_AUTH_ERR);
}

static void auth_empty_credential(void **state)
{
	assert_auth("mid", "nobody", "", PAM_AUTH_ERR);
}

static void auth_overlong_credential(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 50];

	memset(cred, 'a', sizeof(cred) - 1);
	cred[sizeof(cred) - 1] = '\0';
	assert_auth("mid", "nobody", cred, PAM_AUTH_ERR);
}

static void auth_other_account_credential(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	issue(NULL, "ci", 0, cred, NULL);
	assert_auth("mid", "nobody", cred, PAM_AUTH_ERR);
}

static void auth_revoked_credential(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;

	issue("nobody", NULL, 0, cred, &lease);
	assert_int_equal(harness_revoke(&agent, lease.lease), MID_OK);
	assert_auth("mid", "nobody", cred, PAM_AUTH_ERR);
}

static void sleep_until(int64_t t)
{
	while (time(NULL) < t)
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
}

static void auth_expired_credential(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;

	issue("nobody", NULL, 1, cred, &lease);
	sleep_until(lease.expires_at);
	assert_auth("mid", "nobody", cred, PAM_AUTH_ERR);
}

static int conv_reply(int n, const struct pam_message **msg, struct pam_response **resp,
		      void *data)
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

/* The account phase in the same transaction sees the lease end. */
static void account_after_lease_ends(int64_t (*end_lease)(const struct mid_lease_info *))
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_conv conv = {.conv = conv_reply, .appdata_ptr = cred};
	pam_handle_t *pamh = NULL;

	issue(NULL, "ci", 2, cred, &lease);
	assert_int_equal(pam_start("mid", lease.account, &conv, &pamh), PAM_SUCCESS);
	assert_int_equal(pam_authenticate(pamh, 0), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(pamh, 0), PAM_SUCCESS);
	end_lease(&lease);
	assert_int_equal(pam_acct_mgmt(pamh, 0), PAM_ACCT_EXPIRED);
	assert_int_equal(pam_end(pamh, PAM_SUCCESS), PAM_SUCCESS);
}

/* Authenticates lease's account on a new handle, then stops the agent, so
 * that the account phase must decide without a request to it. */
static pam_handle_t *authenticated_then_agent_stopped(const struct mid_lease_info *lease,
						      struct pam_conv *conv)
{
	pam_handle_t *pamh = NULL;

	assert_int_equal(pam_start("mid", lease->account, conv, &pamh), PAM_SUCCESS);
	assert_int_equal(pam_authenticate(pamh, 0), PAM_SUCCESS);
	assert_int_equal(harness_stop_agent(&agent), 0);
	return pamh;
}

/* The first account phase right after authentication takes the verdict of
 * the verification. A second one, one for another user, or one after a
 * second sends a request to the agent again. */
static void account_takes_fresh_verdict(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_lease_info lease;
	struct pam_conv conv = {.conv = conv_reply, .appdata_ptr = cred};
	pam_handle_t *pamh;

	issue(NULL, "ci", 60, cred, &lease);
	pamh = authenticated_then_agent_stopped(&lease, &conv);
	assert_int_equal(pam_acct_mgmt(pamh, 0), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(pamh, 0), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(pam_end(pamh, PAM_SUCCESS), PAM_SUCCESS);
	assert_int_equal(harness_restart_agent(&agent), 0);

	pamh = authenticated_then_agent_stopped(&lease, &conv);
	assert_int_equal(pam_set_item(pamh, PAM_USER, "daemon"), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(pamh, 0), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(pam_end(pamh, PAM_SUCCESS), PAM_SUCCESS);
	assert_int_equal(harness_restart_agent(&agent), 0);

	pamh = authenticated_then_agent_stopped(&lease, &conv);
	usleep(1100 * 1000);
	assert_int_equal(pam_acct_mgmt(pamh, 0), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(pam_end(pamh, PAM_SUCCESS), PAM_SUCCESS);
	assert_int_equal(harness_restart_agent(&agent), 0);
}

static int64_t wait_expiry(const struct mid_lease_info *lease)
{
	sleep_until(lease->expires_at);
	return 0;
}

static int64_t revoke_now(const struct mid_lease_info *lease)
{
	assert_int_equal(harness_revoke(&agent, lease->lease), MID_OK);
	return 0;
}

static void account_expired_lease(void **state)
{
	account_after_lease_ends(wait_expiry);
}

static void account_revoked_lease(void **state)
{
	account_after_lease_ends(revoke_now);
}

static void one_time_credential(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	issue("daemon", NULL, 0, cred, NULL);
	assert_auth("mid", "daemon", cred, PAM_SUCCESS);
	assert_auth("mid", "daemon", cred, PAM_AUTH_ERR);
}

static void unmanaged_user_ignored(void **state)
{
	struct pam_testcase tests[] = {
		pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS),
		pam_test(PAMTEST_ACCOUNT, PAM_SUCCESS),
	};

	/* mid_ignore succeeds only if pam_mid returned PAM_IGNORE. */
	assert_int_equal(run("mid_ignore", "root", "whatever", tests, MID_ELEMENTSOF(tests)),
			 PAMTEST_ERR_OK);
}

static void managed_user_not_ignored(void **state)
{
	assert_auth("mid_ignore", "nobody", "wrong", PAM_AUTH_ERR);
}

static void invalid_user_names(void **state)
{
	char long_name[300];
	const char *names[] = {"a/b", "..", "../etc", "a:b", "a\nb", "12345", "\x1b[31m", "\xff\xfe",
			       long_name};

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (size_t i = 0; i < MID_ELEMENTSOF(names); i++)
		assert_auth("mid", names[i], "x", PAM_USER_UNKNOWN);
}

static void agent_down_unavailable(void **state)
{
	struct pam_testcase tests[] = {
		pam_test(PAMTEST_AUTHENTICATE, PAM_AUTHINFO_UNAVAIL),
		pam_test(PAMTEST_ACCOUNT, PAM_AUTHINFO_UNAVAIL),
	};

	assert_int_equal(run("mid_down", "nobody", WELL_FORMED_TOKEN, tests, MID_ELEMENTSOF(tests)),
			 PAMTEST_ERR_OK);
}

static void agent_down_unmanaged_ignored(void **state)
{
	/* The cache alone tells that root is not mid's: no agent needed. */
	assert_auth("mid_down", "root", "x", PAM_PERM_DENIED);
}

static void agent_hung_times_out(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec t0, t1;
	int64_t elapsed_ms;
	int fd;

	/* A socket that accepts into its backlog but never answers. */
	assert_true(strlen(test_dir) + sizeof("/hung.sock") <= sizeof(sa.sun_path));
	strcpy(sa.sun_path, test_dir);
	strcat(sa.sun_path, "/hung.sock");
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_auth("mid_hung", "nobody", WELL_FORMED_TOKEN, PAM_AUTHINFO_UNAVAIL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	close(fd);
	unlink(sa.sun_path);

	/* timeout=300 in the service file: the module gives up after it. Its
	 * deadline is kept in whole milliseconds, so it may end up to 1 ms
	 * early by this clock; 290 leaves room for that rounding. */
	assert_true(elapsed_ms >= 290);
	assert_true(elapsed_ms < 5000);
}

static void use_first_pass_token(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	issue("nobody", NULL, 0, cred, NULL);
	setenv("PAM_AUTHTOK", cred, 1);
	assert_auth("mid_first", "nobody", "not-this", PAM_SUCCESS);
	unsetenv("PAM_AUTHTOK");
}

static void use_first_pass_missing(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	issue("nobody", NULL, 0, cred, NULL);
	unsetenv("PAM_AUTHTOK");
	/* No earlier token: use_first_pass must not prompt. */
	assert_auth("mid_first", "nobody", cred, PAM_AUTH_ERR);
}

static void try_first_pass_prompts(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	issue("nobody", NULL, 0, cred, NULL);
	unsetenv("PAM_AUTHTOK");
	assert_auth("mid_try", "nobody", cred, PAM_SUCCESS);
}

static void try_first_pass_wrong_token(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	/* An earlier module's token that is not a credential (a password)
	 * makes try_first_pass prompt. */
	issue("nobody", NULL, 0, cred, NULL);
	setenv("PAM_AUTHTOK", "hunter2", 1);
	assert_auth("mid_try", "nobody", cred, PAM_SUCCESS);
	unsetenv("PAM_AUTHTOK");
}

static void no_cache_managed_verified(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	issue("nobody", NULL, 0, cred, NULL);
	assert_auth("mid_nocache", "nobody", cred, PAM_SUCCESS);
}

static void no_cache_unmanaged_not_prompted(void **state)
{
	struct pam_testcase tests[] = {pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS)};
	struct pamtest_conv_data conv = {.in_echo_off = NULL};

	/* No answer is available: a prompt would fail the conversation. */
	assert_int_equal(_pamtest("mid_nocache_ignore", "root", &conv, tests, 1, NULL),
			 PAMTEST_ERR_OK);
}

static void no_cache_agent_down_fails_closed(void **state)
{
	assert_auth("mid_nocache_down", "root", "x", PAM_AUTHINFO_UNAVAIL);
}

static void unknown_options_ignored(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];

	issue("nobody", NULL, 0, cred, NULL);
	assert_auth("mid_opts", "nobody", cred, PAM_SUCCESS);
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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(auth_right_credential),
		cmocka_unit_test(auth_ephemeral_account),
		cmocka_unit_test(auth_wrong_secret),
		cmocka_unit_test(auth_bad_checksum),
		cmocka_unit_test(auth_malformed_credential),
		cmocka_unit_test(password_never_reaches_agent),
		cmocka_unit_test(auth_empty_credential),
		cmocka_unit_test(auth_overlong_credential),
		cmocka_unit_test(auth_other_account_credential),
		cmocka_unit_test(auth_revoked_credential),
		cmocka_unit_test(auth_expired_credential),
		cmocka_unit_test(account_expired_lease),
		cmocka_unit_test(account_revoked_lease),
		cmocka_unit_test(account_takes_fresh_verdict),
		cmocka_unit_test(one_time_credential),
		cmocka_unit_test(unmanaged_user_ignored),
		cmocka_unit_test(managed_user_not_ignored),
		cmocka_unit_test(invalid_user_names),
		cmocka_unit_test(agent_down_unavailable),
		cmocka_unit_test(agent_down_unmanaged_ignored),
		cmocka_unit_test(agent_hung_times_out),
		cmocka_unit_test(use_first_pass_token),
		cmocka_unit_test(use_first_pass_missing),
		cmocka_unit_test(try_first_pass_prompts),
		cmocka_unit_test(unknown_options_ignored),
		cmocka_unit_test(try_first_pass_wrong_token),
		cmocka_unit_test(no_cache_managed_verified),
		cmocka_unit_test(no_cache_unmanaged_not_prompted),
		cmocka_unit_test(no_cache_agent_down_fails_closed),
	};
	int failed;

	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_pam: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	harness_pam_wrapper(argv, "/tmp/mid-pam-test.XXXXXX", "MID_PAM_TEST_DIR", test_dir,
			    sizeof(test_dir), write_services);

	failed = cmocka_run_group_tests_name("pam_mid", tests, group_setup, group_teardown);

	harness_dir_remove(test_dir);
	return failed;
}
